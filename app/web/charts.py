"""The data behind each chart, and the cached SVG itself.

A seed plot is a function of a verdict (its id and scoring version) and the stored runs of its
version; a board chart of a board's generation. Both are rendered at most once per key by
``PlotCache``, never on the request's event loop.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

from scipy import stats
from sqlalchemy.ext.asyncio import AsyncSession

from app.benchmarks.registry import CatalogEntry
from app.core.errors import NotFound
from app.jobs.models import Job, RunResult
from app.jobs.repository import final_results
from app.leaderboard import repository as boards
from app.submissions import access
from app.submissions.models import SubmissionVersion
from app.users.models import User
from app.verdicts.models import Verdict
from app.web import repository
from app.web.plot_cache import PlotCache, file_key
from app.web.plots import BoardPoint, SeedPanel, SeedRun, board_chart, seed_plot


def seed_runs(results: Sequence[tuple[Job, RunResult | None]], metric: str) -> list[SeedRun]:
    """Every run of a version for one metric, in job order; failed runs carry no value."""
    runs = []
    for job, result in results:
        outcome = result.outcome if result is not None else job.status
        value = None
        if result is not None and outcome == "succeeded":
            raw = result.metrics.get(metric)
            value = float(raw) if isinstance(raw, int | float) and math.isfinite(raw) else None
        runs.append(SeedRun(kind=job.kind, seed=int(job.seed), value=value, outcome=outcome))
    return runs


def claimed_interval(doc: dict[str, Any]) -> tuple[float | None, float | None]:
    """The claimed mean's 95% t-interval from the claim's sd and n (None without a spread)."""
    sd, n, mean = doc.get("claimed_sd"), doc.get("claimed_n"), doc.get("claimed_mean")
    if sd is None or n is None or mean is None or n < 2:
        return None, None
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return mean - half, mean + half


def seed_panel(
    verdict: Verdict,
    version: SubmissionVersion,
    results: Sequence[tuple[Job, RunResult | None]],
    metric: str,
) -> SeedPanel:
    doc = verdict.score["metrics"][metric]
    claim = version.manifest["claim"]
    stated = (claim.get("metrics", {}).get(metric) or {}).get("values") or []
    seeds = [int(s) for s in claim.get("seeds", [])]
    low, high = claimed_interval(doc)
    return SeedPanel(
        metric=metric,
        direction=doc["direction"],
        tolerance=float(doc["tolerance"]),
        claimed_mean=float(doc["claimed_mean"]),
        claimed_low=low,
        claimed_high=high,
        claimed_values={s: float(v) for s, v in zip(seeds, stated, strict=False)},
        runs=seed_runs(results, metric),
        reproduced_mean=doc.get("reproduced_mean"),
        reproduced_low=doc.get("ci95_low"),
        reproduced_high=doc.get("ci95_high"),
    )


def seed_plot_url(verdict: Verdict, metric: str) -> str:
    return f"/plots/verdicts/{verdict.id}/{metric_token(metric)}.svg"


def metric_token(metric: str) -> str:
    """A URL- and file-safe stand-in for a metric name (command claims name their own)."""
    return hashlib.sha256(metric.encode()).hexdigest()[:12]


async def seed_plot_svg(
    session: AsyncSession, cache: PlotCache, *, verdict_id: int, token: str, user: User | None
) -> bytes:
    """The seed plot of one metric of a verdict, rendered once and then served from the cache."""
    found = await repository.verdict_with_version(session, verdict_id)
    if found is None or not access.can_read(found[2], user):
        raise NotFound(f"no verdict {verdict_id}")
    verdict, version, _submission = found
    metric = next((m for m in verdict.score["metrics"] if metric_token(m) == token), None)
    if metric is None:
        raise NotFound(f"verdict {verdict_id} has no such metric")
    key = file_key("v", verdict.id, verdict.scoring_version, token)
    path = cache.path("verdicts", key)
    if path.exists():
        return path.read_bytes()
    results = await final_results(session, version.id)
    panel = seed_panel(verdict, version, results, metric)
    return await cache.get("verdicts", key, lambda: seed_plot(panel))


async def board_chart_svg(
    session: AsyncSession, cache: PlotCache, *, entry: CatalogEntry, metric: str, generation: int
) -> bytes:
    """Claimed vs reproduced for every entry of a board, once per board generation."""
    group = f"board-{entry.id}-{metric_token(metric)}"
    key = f"g{generation}"
    path = cache.path(group, key)
    if path.exists():
        return path.read_bytes()
    points = [
        BoardPoint(claimed=c, reproduced=r, low=lo, high=hi, verdict=v)
        for c, r, lo, hi, v in await boards.board_points(session, entry.id, metric)
        if c is not None and r is not None
    ]
    spec = entry.manifest.metric(metric)
    data = await cache.get(
        group,
        key,
        lambda: board_chart(
            points,
            metric=metric,
            direction=spec.direction if spec else None,
            tolerance=spec.tolerance if spec else None,
        ),
    )
    cache.prune(group, keep=key, prefix="g")
    return data
