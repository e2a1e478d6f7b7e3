"""The cross-benchmark ranking of techniques (STATISTICS.md §6).

A technique is an author's package name: the same ``[package] name`` submitted by the same
account to several benchmarks. Names alone would merge unrelated code (every second package is
called "adam"), and a package's code can differ between authors, so the author is part of the key.
On each benchmark the technique's newest scored entry counts, with its fresh-seed runs of the
ranked metric normalized between the benchmark's ``reference_low`` (0, plain SGD) and
``reference_high`` (1); benchmarks without references (command benchmarks) are left out.

The aggregate is recomputed when one of the technique's entries changes, in that transaction,
so reading the ranking is one indexed query.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.benchmarks.manifest import BenchmarkManifest
from app.benchmarks.models import Benchmark
from app.core.db import utcnow
from app.leaderboard import summary_repository as repository
from app.leaderboard.cache import GenerationCache
from app.leaderboard.ranking import (
    PROFILE_TAUS,
    NormalizedGroup,
    RankIndex,
    normalized_group,
    technique_aggregate,
)
from app.leaderboard.schemas import BenchmarkResult, TechniqueRow
from app.scoring.aggregate import iqm
from app.users.models import User


async def refresh(session: AsyncSession, *, owner_id: int, name: str) -> None:
    """Recompute one technique's aggregate from its current entries (or drop it)."""
    groups: list[NormalizedGroup] = []
    breakdown: list[dict[str, object]] = []
    seen: set[str] = set()
    for member in await repository.technique_members(session, owner_id, name):  # newest first
        bench_row = await session.get(Benchmark, member.benchmark_id)
        if bench_row is None or bench_row.slug in seen:
            continue
        spec = BenchmarkManifest.model_validate(bench_row.manifest).metric(member.metric)
        if spec is None:
            continue
        group = normalized_group(
            bench_row.slug,
            member.fresh_values,
            reference_low=spec.reference_low,
            reference_high=spec.reference_high,
        )
        if group is None:
            continue
        seen.add(bench_row.slug)
        groups.append(group)
        breakdown.append(
            {
                "benchmark": bench_row.slug,
                "version": bench_row.version,
                "submission_id": member.submission_id,
                "runs": len(group.values),
                "iqm": iqm(group.values),
            }
        )
    aggregate = technique_aggregate(groups)
    if aggregate is None:
        await repository.delete_technique(session, owner_id, name)
        return
    owner = await session.get(User, owner_id)
    await repository.save_technique(
        session,
        {
            "owner_id": owner_id,
            "name": name,
            "author": owner.name if owner else "",
            "benchmarks": aggregate.benchmarks,
            "runs": aggregate.runs,
            "iqm": aggregate.iqm,
            "ci95_low": aggregate.ci95_low,
            "ci95_high": aggregate.ci95_high,
            "rank_key": -aggregate.iqm,
            "band_low": -aggregate.ci95_high,
            "band_high": -aggregate.ci95_low,
            "profile": aggregate.profile,
            "breakdown": sorted(breakdown, key=lambda b: str(b["benchmark"])),
            "updated_at": utcnow(),
        },
    )


async def technique_rows(
    session: AsyncSession,
    *,
    cache: GenerationCache,
    generation: int,
    min_benchmarks: int,
    author: str | None,
    limit: int,
    offset: int,
) -> tuple[list[TechniqueRow], int]:
    """One page of techniques by IQM, each ranked and banded against all techniques."""

    async def load() -> RankIndex:
        return RankIndex(*await repository.technique_bands(session))

    index = await cache.get_or_load(("techniques",), generation, load)
    page, total = await repository.technique_page(
        session, min_benchmarks=min_benchmarks, author=author, limit=limit, offset=offset
    )
    rows = [
        TechniqueRow(
            rank=index.rank(t.rank_key) or 0,
            rank_band=index.band(t.band_low) or 0,
            author=t.author,
            name=t.name,
            benchmarks=t.benchmarks,
            runs=t.runs,
            iqm=t.iqm,
            ci95_low=t.ci95_low,
            ci95_high=t.ci95_high,
            profile=t.profile,
            results=[BenchmarkResult.model_validate(b) for b in t.breakdown],
        )
        for t in page
    ]
    return rows, total


def profile_taus() -> list[float]:
    return list(PROFILE_TAUS)
