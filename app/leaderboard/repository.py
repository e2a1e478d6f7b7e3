"""Every query of the leaderboard: entries, board generations, techniques and counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import utcnow
from app.leaderboard.models import (
    LeaderboardBoard,
    LeaderboardEntry,
    LeaderboardEntryTag,
)
from app.submissions.models import Submission, SubmissionStatus
from app.users.models import User

E = LeaderboardEntry
ET = LeaderboardEntryTag

# The columns a board can be sorted by (the API's ``sort`` values).
SORT_COLUMNS: dict[str, Any] = {
    "rank": E.rank_key,
    "band": E.band_low,  # the band number grows with the interval's better end
    "title": E.title,
    "author": E.author,
    "version": E.version_number,
    "date": E.scored_at,
    "claimed": E.claimed_mean,
    "reproduced": E.reproduced_mean,
    "interval": E.ci95_high - E.ci95_low,
    "verdict": E.claim_verdict,
    "lean": E.claim_lean,
    "quality": E.quality,
    "seed_selection": E.seed_selection_flag,
    "deterministic": E.deterministic,
    "self_reported": E.self_reported,
}


# What a board row shows (fresh_values and the ids behind it are not).
ROW_COLUMNS = tuple(
    c
    for c in LeaderboardEntry.__table__.columns
    if c.name not in ("fresh_values", "verdict_id", "version_id", "owner_id", "benchmark_id")
)


@dataclass(frozen=True)
class BoardQuery:
    """One board (benchmark version + ranked metric), its filters and its order."""

    benchmark_id: int
    metric: str
    verdicts: tuple[str, ...] = ()
    min_quality: float | None = None
    tag: str | None = None
    author: str | None = None
    sort: str = "rank"
    descending: bool = False

    @property
    def filtered(self) -> bool:
        return bool(self.tag) or self.filtered_on_entries

    @property
    def filtered_on_entries(self) -> bool:
        return bool(self.verdicts or self.min_quality is not None or self.author)


def _board(q: BoardQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [E.benchmark_id == q.benchmark_id, E.metric == q.metric]
    if q.verdicts:
        where.append(E.claim_verdict.in_(q.verdicts))
    if q.min_quality is not None:
        where.append(E.quality >= q.min_quality)
    if q.author:
        owner = select(User.id).where(User.name == q.author).scalar_subquery()
        where.append(E.owner_id == owner)
    return where


def _tagged(q: BoardQuery) -> list[ColumnElement[bool]]:
    return [ET.benchmark_id == q.benchmark_id, ET.metric == q.metric, ET.tag == q.tag]


def _keys(q: BoardQuery) -> Select[int]:
    """The submission ids of the board's rows in page order (before limit and offset).

    With a tag, the tag's rows of ``leaderboard_entry_tag`` drive: in rank order and without
    other filters they are already an ordered range of ``ix_leaderboard_entry_tag_board``.
    """
    if not q.tag:
        return select(E.submission_id).where(*_board(q)).order_by(*_order(q))
    if q.sort == "rank" and not q.filtered_on_entries:
        key = ET.rank_key.desc() if q.descending else ET.rank_key.asc()
        tie = ET.submission_id.desc() if q.descending else ET.submission_id.asc()
        return select(ET.submission_id).where(*_tagged(q)).order_by(key.nulls_last(), tie)
    return (
        select(E.submission_id)
        .join(ET, (ET.submission_id == E.submission_id) & (ET.tag == q.tag))
        .where(*_board(q))
        .order_by(*_order(q))
    )


# Sorts on columns that may be NULL put the NULLs last in both directions; the others leave
# NULLS out of ORDER BY, so that one ascending index serves both directions.
NULLABLE_SORTS = frozenset({"rank", "band", "reproduced", "interval", "lean", "deterministic"})


def _order(q: BoardQuery) -> list[Any]:
    column = SORT_COLUMNS[q.sort]
    primary = column.desc() if q.descending else column.asc()
    if q.sort in NULLABLE_SORTS:
        primary = primary.nulls_last()
    if q.sort == "rank":
        tie = E.submission_id.desc() if q.descending else E.submission_id.asc()
        return [primary, tie]
    return [primary, E.rank_key.asc().nulls_last(), E.submission_id.asc()]


def board_page_stmt(q: BoardQuery, *, limit: int, offset: int) -> Select[Any]:
    """One page of a board as plain rows (also what tests/perf/bench_leaderboard.py explains).

    A deferred join: the page's keys are found first — for the rank order an index-only scan of
    ``ix_leaderboard_entry_board``, however deep the offset — and only those rows are read.
    """
    keys = _keys(q).limit(limit).offset(offset).subquery("page")
    return (
        select(*ROW_COLUMNS)
        .join_from(E, keys, keys.c.submission_id == E.submission_id)
        .order_by(*_order(q))
    )


def board_count_stmt(q: BoardQuery) -> Select[int]:
    if q.tag and not q.filtered_on_entries:
        return select(func.count()).select_from(ET).where(*_tagged(q))
    if q.tag:
        return (
            select(func.count())
            .select_from(E)
            .join(ET, (ET.submission_id == E.submission_id) & (ET.tag == q.tag))
            .where(*_board(q))
        )
    return select(func.count()).select_from(E).where(*_board(q))


def board_ranks_stmt(
    benchmark_id: int, metric: str
) -> Select[int, Sequence[float | None], Sequence[float | None]]:
    """PostgreSQL: the board's size and its sorted keys and interval ends, in one row."""
    ranked = E.rank_key.is_not(None)
    return select(  # unordered: the client sorts them anyway
        func.count(),
        func.array_agg(E.rank_key).filter(ranked),
        func.array_agg(E.band_high).filter(ranked),
    ).where(E.benchmark_id == benchmark_id, E.metric == metric)


async def board_page(
    session: AsyncSession, q: BoardQuery, *, limit: int, offset: int
) -> Sequence[Row[Any]]:
    """Rows with the entry's attributes (Core rows: a third of the cost of ORM objects)."""
    rows: Sequence[Row[Any]] = (
        await session.execute(board_page_stmt(q, limit=limit, offset=offset))
    ).all()
    return rows


async def board_count(session: AsyncSession, q: BoardQuery) -> int:
    return int((await session.execute(board_count_stmt(q))).scalar_one())


async def board_ranks(
    session: AsyncSession, benchmark_id: int, metric: str
) -> tuple[list[float], list[float], int]:
    """Every ranked entry's key and interval end on one board, and the board's size.

    Loaded once per board generation; on PostgreSQL as two arrays aggregated by the server from
    an index-only scan (50,000 rows as one row: a tenth of the time of fetching them).
    """
    if session.get_bind().dialect.name == "postgresql":
        total, keys, highs = (await session.execute(board_ranks_stmt(benchmark_id, metric))).one()
        return (
            [k for k in keys or () if k is not None],
            [h for h in highs or () if h is not None],
            total,
        )
    stmt = select(E.rank_key, E.band_high).where(
        E.benchmark_id == benchmark_id, E.metric == metric, E.rank_key.is_not(None)
    )
    pairs = [(k, h) for k, h in await session.execute(stmt) if k is not None and h is not None]
    total = await board_count(session, BoardQuery(benchmark_id=benchmark_id, metric=metric))
    return [k for k, _ in pairs], [h for _, h in pairs], total


async def board_metrics(session: AsyncSession, benchmark_id: int) -> dict[str, int]:
    """How many entries each ranked metric has on a benchmark version (command benchmarks)."""
    stmt = (
        select(E.metric, func.count())
        .where(E.benchmark_id == benchmark_id)
        .group_by(E.metric)
        .order_by(func.count().desc(), E.metric)
    )
    return {m: int(n) for m, n in await session.execute(stmt)}


async def board_points(
    session: AsyncSession, benchmark_id: int, metric: str
) -> list[tuple[float | None, float | None, float | None, float | None, str]]:
    """(claimed, reproduced, ci95 low, ci95 high, verdict) of every entry: the board's chart."""
    stmt = select(
        E.claimed_mean, E.reproduced_mean, E.ci95_low, E.ci95_high, E.claim_verdict
    ).where(E.benchmark_id == benchmark_id, E.metric == metric)
    return [tuple(r) for r in await session.execute(stmt)]  # type: ignore[misc]


async def board_state(session: AsyncSession, benchmark_id: int | None) -> tuple[int, int]:
    """(generation, number of withdrawn submissions) in one round trip.

    The generation is the board's, or with ``None`` the sum over all boards: generations only
    grow, so the sum changes whenever any board does. The count is an index-only scan of
    ``ix_submission_status``; withdrawal is one-way, so a changed count means a new withdrawal.
    """
    if benchmark_id is None:
        gen = select(func.coalesce(func.sum(LeaderboardBoard.generation), 0)).scalar_subquery()
    else:
        gen = (
            select(LeaderboardBoard.generation)
            .where(LeaderboardBoard.benchmark_id == benchmark_id)
            .scalar_subquery()
        )
    withdrawn = (
        select(func.count())
        .select_from(Submission)
        .where(Submission.status == SubmissionStatus.withdrawn.value)
        .scalar_subquery()
    )
    generation, count = (await session.execute(select(gen, withdrawn))).one()
    return int(generation or 0), int(count)


async def entry_of(session: AsyncSession, submission_id: int) -> LeaderboardEntry | None:
    return await session.get(E, submission_id)


async def recent_entries(session: AsyncSession, *, limit: int) -> list[LeaderboardEntry]:
    stmt = select(E).order_by(E.scored_at.desc(), E.submission_id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


# ------------------------------------------------------------------------------------- writes


@dataclass(frozen=True)
class EntryKey:
    """Where an entry stands: enough to know which board and technique it touches."""

    submission_id: int
    benchmark_id: int
    owner_id: int
    name: str
    version_number: int


async def entry_key(session: AsyncSession, submission_id: int) -> EntryKey | None:
    stmt = select(E.benchmark_id, E.owner_id, E.name, E.version_number).where(
        E.submission_id == submission_id
    )
    row = (await session.execute(stmt)).first()
    return EntryKey(submission_id, row[0], row[1], row[2], row[3]) if row else None


def upsert_statement(session: AsyncSession, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


async def upsert_entry(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert or replace a submission's entry unless a newer version already stands there.

    One statement, so two versions scored at once cannot both win. True when written.
    """
    stmt = upsert_statement(session, E).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[E.submission_id],
        set_={k: stmt.excluded[k] for k in values if k != "submission_id"},
        where=stmt.excluded.version_number >= E.version_number,
    ).returning(E.submission_id)
    return (await session.execute(stmt)).first() is not None


async def replace_entry_tags(
    session: AsyncSession,
    *,
    submission_id: int,
    tags: Sequence[str],
    benchmark_id: int,
    metric: str,
    rank_key: float | None,
) -> None:
    await session.execute(delete(ET).where(ET.submission_id == submission_id))
    rows = [
        {
            "submission_id": submission_id,
            "tag": t,
            "benchmark_id": benchmark_id,
            "metric": metric,
            "rank_key": rank_key,
        }
        for t in sorted(set(tags))
    ]
    if rows:
        await session.execute(insert(ET), rows)


async def bump_boards(session: AsyncSession, benchmark_ids: Sequence[int]) -> None:
    now = utcnow()
    for benchmark_id in sorted(set(benchmark_ids)):  # a fixed order: no lock-order deadlock
        stmt = upsert_statement(session, LeaderboardBoard).values(
            benchmark_id=benchmark_id, generation=1, updated_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[LeaderboardBoard.benchmark_id],
            set_={"generation": LeaderboardBoard.generation + 1, "updated_at": now},
        )
        await session.execute(stmt)


async def delete_entries(session: AsyncSession, submission_ids: Sequence[int]) -> None:
    await session.execute(delete(E).where(E.submission_id.in_(list(submission_ids))))


async def withdrawn_entries(session: AsyncSession) -> list[EntryKey]:
    """Entries whose submission has been withdrawn since (driven by the status index)."""
    stmt = (
        select(E.submission_id, E.benchmark_id, E.owner_id, E.name, E.version_number)
        .join(Submission, Submission.id == E.submission_id)
        .where(Submission.status == SubmissionStatus.withdrawn.value)
    )
    return [EntryKey(*row) for row in await session.execute(stmt)]
