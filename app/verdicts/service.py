"""Scoring a finished version from its stored run results, and re-scoring it later.

``on_version_finished`` runs inside the transaction that records the version's last result, so
a version is never finished without its verdict. Everything it reads is stored (the manifest,
the benchmark row, the lint checks, the results of each job's last attempt), which is what makes
``reprise rescore`` possible: the same inputs give the same document.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.benchmarks.manifest import BenchmarkManifest
from app.benchmarks.models import Benchmark
from app.core.db import Database
from app.core.errors import Conflict, NotFound
from app.jobs.repository import final_results
from app.leaderboard.service import on_verdict_stored
from app.scoring.quality import CheckResult
from app.scoring.version import (
    ClaimedMetric,
    MetricDefinition,
    RunRecord,
    VersionInputs,
    VersionScore,
    score_version,
)
from app.submissions.models import SubmissionVersion, VersionStatus
from app.verdicts.models import Verdict, VerdictMetric

logger = logging.getLogger(__name__)


def _definitions(bench: BenchmarkManifest, claim_metrics: dict[str, Any]) -> list[MetricDefinition]:
    out = []
    for name, claimed in claim_metrics.items():
        spec = bench.metric(name)
        if spec is not None:
            out.append(
                MetricDefinition(
                    name=name,
                    direction=spec.direction,
                    tolerance=spec.tolerance,
                    primary=spec.primary,
                    seed_sd=spec.seed_sd,
                    reference_low=spec.reference_low,
                    reference_high=spec.reference_high,
                )
            )
        else:  # kind "command": the claim declares its own direction and margin, all primary
            out.append(
                MetricDefinition(
                    name=name,
                    direction=claimed["direction"],
                    tolerance=float(claimed["tolerance"]),
                    primary=True,
                )
            )
    return out


def _claims(claim_metrics: dict[str, Any]) -> dict[str, ClaimedMetric]:
    return {
        name: ClaimedMetric(
            mean=float(c["mean"]),
            values=tuple(float(v) for v in c["values"]) if c.get("values") is not None else None,
            spread=float(c["spread"]) if c.get("spread") is not None else None,
            spread_kind=c.get("spread_kind"),
            n=c.get("n"),
        )
        for name, c in claim_metrics.items()
    }


def _checks(lint_report: dict[str, Any]) -> list[CheckResult]:
    return [
        CheckResult(
            id=c["id"],
            part=c["part"],
            passed=bool(c["passed"]),
            reason=c["reason"],
            points=float(c["points"]),
            max_points=float(c["max_points"]),
        )
        for c in lint_report.get("checks", [])
    ]


async def build_inputs(session: AsyncSession, version: SubmissionVersion) -> VersionInputs:
    """Everything the statistics need, read from what is stored."""
    bench_row = await session.get(Benchmark, version.benchmark_id)
    if bench_row is None:
        raise NotFound(f"benchmark row {version.benchmark_id} is missing")
    bench = BenchmarkManifest.model_validate(bench_row.manifest)
    claim = version.manifest["claim"]
    # A challenge attempt is judged against the challenge's claim, not its own (app/challenges).
    claimed = (version.reference_claim or {}).get("metrics") or claim["metrics"]
    runs: list[RunRecord] = []
    self_reported = bench.kind == "command"
    for job, result in await final_results(session, version.id):
        outcome = result.outcome if result is not None else job.status
        metrics = {k: float(v) for k, v in (result.metrics if result is not None else {}).items()}
        runs.append(
            RunRecord(
                job_id=job.id,
                kind=cast(Literal["claimed", "fresh", "probe"], job.kind),
                seed=int(job.seed),
                outcome=outcome,
                metrics=metrics if outcome == "succeeded" else {},
            )
        )
        if result is not None and result.self_reported:
            self_reported = True
    return VersionInputs(
        metrics=_definitions(bench, claimed),
        claims=_claims(claimed),
        claimed_seeds=[int(s) for s in claim["seeds"]],
        runs=runs,
        checks=_checks(version.lint_report),
        variance_sources=tuple(claim.get("variance_sources") or ()),
        self_reported=self_reported,
    )


def _primary(score: VersionScore) -> str | None:
    return next((name for name, m in score.metrics.items() if m.primary), None)


def _verdict_row(version: SubmissionVersion, score: VersionScore) -> Verdict:
    doc = score.to_dict()
    primary = _primary(score)
    pm = score.metrics.get(primary) if primary else None
    return Verdict(
        version_id=version.id,
        submission_id=version.submission_id,
        benchmark_id=version.benchmark_id,
        claim_verdict=score.claim_verdict,
        claim_lean=score.claim_lean,
        point_rule=score.point_rule,
        quality=score.quality.total,
        primary_metric=primary,
        reproduced_mean=pm.reproduced_mean if pm else None,
        ci95_low=pm.ci95_low if pm else None,
        ci95_high=pm.ci95_high if pm else None,
        claimed_mean=pm.claimed_mean if pm else None,
        seed_selection_flag=score.seed_selection.flag,
        deterministic=score.determinism.deterministic,
        exactly_reproducible=score.exactness.exactly_reproducible,
        self_reported=score.self_reported,
        failed_runs=score.runs.failed,
        scoring_version=score.scoring_version,
        explanation=score.explanation,
        score=doc,
    )


def _metric_rows(verdict_id: int, score: VersionScore) -> list[VerdictMetric]:
    return [
        VerdictMetric(
            verdict_id=verdict_id,
            name=name,
            primary=m.primary,
            verdict=m.verdict,
            lean=m.lean,
            mode=m.mode,
            delta=m.delta,
            se=m.se,
            df=m.df,
            ci_low=m.ci_low,
            ci_high=m.ci_high,
            p_tost=m.p_tost,
            p_worse=m.p_worse,
            p_better=m.p_better,
            reproduced_mean=m.reproduced_mean,
            reproduced_sd=m.reproduced_sd,
            n_reproduced=m.n_reproduced,
            claimed_mean=m.claimed_mean,
            tolerance=m.tolerance,
        )
        for name, m in score.metrics.items()
    ]


async def store(session: AsyncSession, version: SubmissionVersion, score: VersionScore) -> Verdict:
    """Write (or replace) the verdict of a version and its per-metric rows."""
    old = (
        await session.execute(select(Verdict).where(Verdict.version_id == version.id))
    ).scalar_one_or_none()
    if old is not None:
        await session.execute(delete(VerdictMetric).where(VerdictMetric.verdict_id == old.id))
        await session.delete(old)
        await session.flush()
    row = _verdict_row(version, score)
    session.add(row)
    await session.flush()
    session.add_all(_metric_rows(row.id, score))
    await on_verdict_stored(session, version=version, verdict=row)
    return row


async def on_version_finished(session: AsyncSession, version: SubmissionVersion) -> None:
    """The statistics step: called in the transaction that records the last result."""
    score = score_version(await build_inputs(session, version))
    row = await store(session, version, score)
    logger.info(
        "version %s of submission %s scored: %s (Q %.1f)",
        version.number,
        version.submission_id,
        row.claim_verdict,
        row.quality,
    )


@dataclass(frozen=True)
class Rescore:
    version: SubmissionVersion
    stored: dict[str, Any] | None
    recomputed: dict[str, Any]
    differences: list[str]


def diff(old: Any, new: Any, path: str = "") -> list[str]:
    """Paths where two score documents differ (floats exactly: scoring is deterministic)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old or key not in new:
                out.append(f"{sub}: {'added' if key not in old else 'removed'}")
            else:
                out.extend(diff(old[key], new[key], sub))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            d
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for d in diff(a, b, f"{path}[{i}]")
        ]
    return [] if old == new else [f"{path}: {old!r} -> {new!r}"]


async def rescore(session: AsyncSession, version: SubmissionVersion, *, write: bool) -> Rescore:
    """Recompute a version's verdict from its stored runs and report any difference."""
    if version.status != VersionStatus.finished.value:
        raise Conflict(
            f"version {version.number} is {version.status}; only finished versions are scored"
        )
    stored = (
        await session.execute(select(Verdict).where(Verdict.version_id == version.id))
    ).scalar_one_or_none()
    score = score_version(await build_inputs(session, version))
    recomputed = score.to_dict()
    before = stored.score if stored is not None else None
    differences = diff(before, recomputed) if before is not None else ["no stored verdict"]
    if write and differences:
        await store(session, version, score)
    return Rescore(version=version, stored=before, recomputed=recomputed, differences=differences)


@dataclass
class RescoreReport:
    """What `reprise rescore --all` found: how many verdicts held and which did not."""

    checked: int = 0
    identical: int = 0
    differing: list[tuple[int, int, list[str]]] = field(default_factory=list)  # (sub, number, …)

    @property
    def different(self) -> int:
        return len(self.differing)


async def rescore_all(
    db: Database,
    *,
    write: bool,
    batch: int = 200,
    progress: Callable[[RescoreReport, int], None] | None = None,
) -> RescoreReport:
    """Rescore every finished version, oldest first, one transaction per version.

    ``progress(report, total)`` is called after each batch. With ``write`` a differing verdict
    is replaced (and its board entry with it) in that version's own transaction.
    """
    finished = SubmissionVersion.status == VersionStatus.finished.value
    async with db.session() as session:
        total = (
            await session.execute(
                select(func.count()).select_from(SubmissionVersion).where(finished)
            )
        ).scalar_one()
    report = RescoreReport()
    after = 0
    while True:
        async with db.session() as session:
            ids = (
                (
                    await session.execute(
                        select(SubmissionVersion.id)
                        .where(finished, SubmissionVersion.id > after)
                        .order_by(SubmissionVersion.id)
                        .limit(batch)
                    )
                )
                .scalars()
                .all()
            )
        if not ids:
            return report
        for version_id in ids:
            async with db.session(write=write) as session:
                version = await session.get(SubmissionVersion, version_id)
                if version is None or version.status != VersionStatus.finished.value:
                    continue  # deleted or reopened since the id was read
                result = await rescore(session, version, write=write)
            report.checked += 1
            if result.differences:
                report.differing.append((version.submission_id, version.number, result.differences))
            else:
                report.identical += 1
        after = ids[-1]
        if progress is not None:
            progress(report, total)


async def verdicts_for(session: AsyncSession, version_ids: list[int]) -> dict[int, Verdict]:
    if not version_ids:
        return {}
    rows = await session.execute(select(Verdict).where(Verdict.version_id.in_(version_ids)))
    return {v.version_id: v for v in rows.scalars()}
