"""Keeping boards current, and reading them.

Writes happen in two places, both inside someone else's transaction and never committing:
``on_verdict_stored`` (called by ``app.verdicts.service.store``) writes the submission's entry
when the stored verdict belongs to its newest scored version, and ``remove_withdrawn`` takes
withdrawn submissions off their boards. ``sync_withdrawals`` runs the latter in its own short
write before a leaderboard read, because withdrawal itself does not call into this feature.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.benchmarks.manifest import BenchmarkManifest
from app.benchmarks.models import Benchmark
from app.benchmarks.registry import CatalogEntry
from app.core.db import Database
from app.core.errors import NotFound
from app.jobs.repository import final_results
from app.leaderboard import repository, techniques
from app.leaderboard.cache import GenerationCache
from app.leaderboard.models import LeaderboardEntry
from app.leaderboard.ranking import RankIndex, rank_space, ranked_metric
from app.leaderboard.repository import BoardQuery, EntryKey
from app.leaderboard.schemas import LeaderboardRow, RowLinks
from app.scoring.comparison import Direction
from app.submissions.models import Submission, SubmissionStatus, SubmissionVersion
from app.users.models import User
from app.verdicts.models import Verdict

logger = logging.getLogger(__name__)


async def _fresh_values(session: AsyncSession, version_id: int, metric: str) -> list[float]:
    values = []
    for job, result in await final_results(session, version_id):
        if job.kind == "fresh" and result is not None and result.outcome == "succeeded":
            value = result.metrics.get(metric)
            if isinstance(value, int | float):
                values.append(float(value))
    return values


async def on_verdict_stored(
    session: AsyncSession, *, version: SubmissionVersion, verdict: Verdict
) -> None:
    """Put the version on its board if it is the submission's newest scored version."""
    submission = await session.get(Submission, version.submission_id)
    if submission is None or submission.status != SubmissionStatus.active.value:
        return  # a withdrawn submission never returns to a board
    if submission.challenge_id is not None:
        return  # an attempt is judged against a challenge's claim: it shows on the challenge
    bench_row = await session.get(Benchmark, version.benchmark_id)
    if bench_row is None:
        return
    bench = BenchmarkManifest.model_validate(bench_row.manifest)
    scored: dict[str, dict[str, Any]] = verdict.score.get("metrics", {})
    metric = ranked_metric(
        kind=bench.kind,
        benchmark_primaries=[m.name for m in bench.metrics if m.primary],
        scored=scored,
    )
    if metric is None:
        return
    m = scored[metric]
    direction = cast(Direction, m["direction"])
    ranks = rank_space(direction, m.get("reproduced_mean"), m.get("ci95_low"), m.get("ci95_high"))
    owner = await session.get(User, submission.owner_id)
    previous = await repository.entry_key(session, version.submission_id)
    package = version.manifest.get("package", {})
    values: dict[str, Any] = {
        "submission_id": version.submission_id,
        "verdict_id": verdict.id,
        "version_id": version.id,
        "benchmark_id": version.benchmark_id,
        "owner_id": submission.owner_id,
        "version_number": version.number,
        "name": str(package.get("name", ""))[:64],
        "title": str(package.get("title", ""))[:200],
        "author": owner.name if owner else "",
        "metric": metric,
        "direction": direction,
        "tolerance": float(m["tolerance"]),
        "claimed_mean": float(m["claimed_mean"]),
        "reproduced_mean": m.get("reproduced_mean"),
        "ci95_low": m.get("ci95_low"),
        "ci95_high": m.get("ci95_high"),
        "rank_key": ranks.key,
        "band_low": ranks.low,
        "band_high": ranks.high,
        "claim_verdict": verdict.claim_verdict,
        "claim_lean": verdict.claim_lean,
        "quality": verdict.quality,
        "seed_selection_flag": verdict.seed_selection_flag,
        "deterministic": verdict.deterministic,
        "self_reported": verdict.self_reported,
        "fresh_values": await _fresh_values(session, version.id, metric),
        "scored_at": verdict.scored_at,
    }
    if not await repository.upsert_entry(session, values):
        return  # an older version was re-scored; the newer one keeps standing
    await repository.replace_entry_tags(
        session,
        submission_id=version.submission_id,
        tags=[str(t)[:40] for t in package.get("tags") or []],
        benchmark_id=version.benchmark_id,
        metric=metric,
        rank_key=ranks.key,
    )
    touched = {version.benchmark_id} | ({previous.benchmark_id} if previous else set())
    await repository.bump_boards(session, sorted(touched))
    keys = {(values["owner_id"], values["name"])}
    if previous is not None:
        keys.add((previous.owner_id, previous.name))
    for owner_id, name in sorted(keys):
        await techniques.refresh(session, owner_id=owner_id, name=name)


async def remove_withdrawn(session: AsyncSession, stale: list[EntryKey]) -> None:
    """Take withdrawn submissions off their boards and out of their techniques."""
    if not stale:
        return
    await repository.delete_entries(session, [k.submission_id for k in stale])
    await repository.bump_boards(session, sorted({k.benchmark_id for k in stale}))
    for owner_id, name in sorted({(k.owner_id, k.name) for k in stale}):
        await techniques.refresh(session, owner_id=owner_id, name=name)


async def on_withdrawn(session: AsyncSession, *, submission_id: int) -> None:
    """For the withdrawal itself to call, in its transaction: the entry goes at once."""
    key = await repository.entry_key(session, submission_id)
    if key is not None:
        await remove_withdrawn(session, [key])


async def sync_withdrawals(session: AsyncSession, db: Database) -> int:
    """Remove entries of submissions withdrawn since, in a short write of its own.

    The removal commits in its own session and the request's read transaction is then ended,
    so the request's next statement (SQLite keeps a snapshot per transaction) already sees it.
    """
    async with db.session(write=True) as writer:
        stale = await repository.withdrawn_entries(writer)
        await remove_withdrawn(writer, stale)
    await session.rollback()
    if stale:
        logger.info("removed %d withdrawn submission(s) from the leaderboards", len(stale))
    return len(stale)


async def current_generation(
    session: AsyncSession, db: Database, benchmark_id: int | None, *, cache: GenerationCache
) -> int:
    """A board's generation (all boards' with ``None``) once no withdrawn entry is left on it.

    Called first by every leaderboard read: one query reads the generation and the number of
    withdrawn submissions. Only when that number moved since this process last looked are the
    entries of withdrawn submissions looked for, and removed in a short write of their own.
    """
    generation, withdrawn = await repository.board_state(session, benchmark_id)
    if withdrawn != cache.withdrawals_seen:
        if await repository.withdrawn_entries(session):
            await sync_withdrawals(session, db)
            generation, withdrawn = await repository.board_state(session, benchmark_id)
        cache.withdrawals_seen = withdrawn
    return generation


# ----------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Board:
    """One benchmark version's board for one metric, with its rank index."""

    entry: CatalogEntry
    metric: str
    metrics: list[str]
    direction: str | None
    tolerance: float | None
    generation: int
    index: RankIndex
    total: int


@dataclass(frozen=True)
class _Loaded:
    index: RankIndex
    total: int


async def open_board(
    session: AsyncSession,
    *,
    cache: GenerationCache,
    entry: CatalogEntry,
    metric: str | None,
    generation: int,
) -> Board:
    """The board of ``entry`` for ``metric`` (default: the benchmark's primary metric)."""
    bench = entry.manifest
    if bench.kind == "optimizer":
        metrics = [m.name for m in bench.metrics if m.primary]
    else:  # command benchmarks: one board per claimed metric name, the most used first

        async def counts() -> dict[str, int]:
            return await repository.board_metrics(session, entry.id)

        metrics = list(await cache.get_or_load(("metrics", entry.id), generation, counts))
    if metric is not None and metric not in metrics:
        known = ", ".join(metrics) or "none yet"
        raise NotFound(
            f"benchmark {bench.id} version {bench.version} has no board for metric {metric!r}; "
            f"boards: {known}"
        )
    chosen = metric or (metrics[0] if metrics else "")

    async def load() -> _Loaded:
        keys, highs, total = await repository.board_ranks(session, entry.id, chosen)
        return _Loaded(RankIndex(keys, highs), total)

    loaded = await cache.get_or_load(("ranks", entry.id, chosen), generation, load)
    spec = bench.metric(chosen)
    return Board(
        entry=entry,
        metric=chosen,
        metrics=metrics,
        direction=spec.direction if spec else None,
        tolerance=spec.tolerance if spec else None,
        generation=generation,
        index=loaded.index,
        total=loaded.total,
    )


def row_out(e: Row[Any] | LeaderboardEntry, index: RankIndex) -> LeaderboardRow:
    """A board row from the stored entry, ranked against the whole board."""
    sid = e.submission_id
    return LeaderboardRow(
        rank=index.rank(e.rank_key),
        rank_band=index.band(e.band_low),
        submission_id=sid,
        title=e.title,
        author=e.author,
        version=e.version_number,
        date=e.scored_at,
        metric=e.metric,
        direction=e.direction,
        claimed=e.claimed_mean,
        reproduced_mean=e.reproduced_mean,
        ci95_low=e.ci95_low,
        ci95_high=e.ci95_high,
        verdict=e.claim_verdict,
        lean=e.claim_lean,
        quality=e.quality,
        seed_selection_flag=e.seed_selection_flag,
        deterministic=e.deterministic,
        self_reported=e.self_reported,
        links=RowLinks(
            submission=f"/v1/submissions/{sid}",
            web=f"/submissions/{sid}",
            history=f"/submissions/{sid}#versions",
            badge=f"/badges/submissions/{sid}.svg",
        ),
    )


async def board_rows(
    session: AsyncSession, board: Board, query: BoardQuery, *, limit: int, offset: int
) -> tuple[list[LeaderboardRow], int]:
    """One page of a board, ranked against the whole board (filters do not renumber)."""
    entries = await repository.board_page(session, query, limit=limit, offset=offset)
    total = await repository.board_count(session, query) if query.filtered else board.total
    return [row_out(e, board.index) for e in entries], total
