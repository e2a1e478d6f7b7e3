"""Reproduction rates with Wilson 95% intervals, overall and per benchmark, tag and author.

A claim counts as a success when its standing verdict is ``reproduced`` or ``exceeded`` (the
claim held, or the reproduction did significantly better). Every standing verdict is a trial
except ``insufficient_data``, where fewer than two fresh seeds produced a number and nothing was
learnt about the claim; ``inconclusive`` is a trial that did not succeed. The counts per verdict
are published next to the rate, so other definitions can be computed from them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.benchmarks.registry import Catalog
from app.leaderboard import summary_repository as repository
from app.leaderboard.cache import GenerationCache
from app.leaderboard.schemas import GroupStats, RateOut
from app.scoring.aggregate import reproduction_rate

SUCCESSES = frozenset({"reproduced", "exceeded"})
NOT_TRIALS = frozenset({"insufficient_data"})
VERDICTS = ("reproduced", "exceeded", "inconclusive", "not_reproduced", "insufficient_data")
Group = Literal["benchmarks", "tags", "authors"]
GROUPS: tuple[Group, ...] = ("benchmarks", "tags", "authors")


def group_stats(key: str, verdicts: Mapping[str, int]) -> GroupStats:
    """One group's counts per verdict and its reproduction rate."""
    counts = {v: int(verdicts.get(v, 0)) for v in VERDICTS}
    successes = sum(n for v, n in counts.items() if v in SUCCESSES)
    trials = sum(n for v, n in counts.items() if v not in NOT_TRIALS)
    rate = reproduction_rate(successes, trials)
    return GroupStats(
        key=key,
        scored=sum(counts.values()),
        verdicts=counts,
        rate=RateOut(
            successes=rate.successes,
            trials=rate.trials,
            proportion=rate.proportion,
            ci95_low=rate.low,
            ci95_high=rate.high,
        ),
    )


def _grouped(rows: Iterable[tuple[str, str, int]]) -> list[GroupStats]:
    by_key: dict[str, dict[str, int]] = {}
    for key, verdict, n in rows:
        per = by_key.setdefault(key, {})
        per[verdict] = per.get(verdict, 0) + n
    out = [group_stats(k, v) for k, v in by_key.items()]
    out.sort(key=lambda g: (-g.scored, g.key))
    return out


@dataclass(frozen=True)
class AllStats:
    overall: GroupStats
    groups: dict[Group, list[GroupStats]]


async def all_stats(
    session: AsyncSession, *, cache: GenerationCache, catalog: Catalog, generation: int
) -> AllStats:
    """Every group's rate, computed once per change of any board (three GROUP BY queries)."""

    async def load() -> AllStats:
        per_benchmark = [
            (catalog.by_id[b].slug if b in catalog.by_id else str(b), v, n)
            for b, v, n in await repository.verdict_counts_by_benchmark(session)
        ]
        totals: dict[str, int] = {}
        for _b, v, n in per_benchmark:
            totals[v] = totals.get(v, 0) + n
        return AllStats(
            overall=group_stats("all", totals),
            groups={
                "benchmarks": _grouped(per_benchmark),
                "tags": _grouped(await repository.verdict_counts_by_tag(session)),
                "authors": _grouped(await repository.verdict_counts_by_author(session)),
            },
        )

    return await cache.get_or_load(("stats",), generation, load)


async def author_stats(session: AsyncSession, *, owner_id: int, name: str) -> GroupStats:
    """One author's reproduction rate (the profile page), straight from the owner index."""
    counts: dict[str, int] = {}
    for _author, verdict, n in await repository.verdict_counts_by_author(session, owner_id):
        counts[verdict] = counts.get(verdict, 0) + n
    return group_stats(name, counts)
