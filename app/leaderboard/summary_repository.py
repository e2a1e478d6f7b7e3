"""Queries behind the summaries: technique aggregates, reproduction-rate counts, profiles."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.leaderboard.models import LeaderboardEntry, LeaderboardEntryTag, TechniqueScore
from app.leaderboard.repository import upsert_statement
from app.submissions.models import Submission, SubmissionStatus
from app.users.models import User

E = LeaderboardEntry
ET = LeaderboardEntryTag


@dataclass(frozen=True)
class Member:
    """One entry of a technique, for its cross-benchmark aggregate."""

    submission_id: int
    benchmark_id: int
    metric: str
    fresh_values: list[float]
    scored_at: dt.datetime


async def technique_members(session: AsyncSession, owner_id: int, name: str) -> list[Member]:
    stmt = (
        select(E.submission_id, E.benchmark_id, E.metric, E.fresh_values, E.scored_at)
        .where(E.owner_id == owner_id, E.name == name)
        .order_by(E.scored_at.desc(), E.submission_id.desc())
    )
    return [Member(*row) for row in await session.execute(stmt)]


async def save_technique(session: AsyncSession, values: dict[str, Any]) -> None:
    stmt = upsert_statement(session, TechniqueScore).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[TechniqueScore.owner_id, TechniqueScore.name],
        set_={k: stmt.excluded[k] for k in values if k not in ("owner_id", "name")},
    )
    await session.execute(stmt)


async def delete_technique(session: AsyncSession, owner_id: int, name: str) -> None:
    await session.execute(
        delete(TechniqueScore).where(
            and_(TechniqueScore.owner_id == owner_id, TechniqueScore.name == name)
        )
    )


# ---------------------------------------------------------------------------------- techniques

T = TechniqueScore


def _techniques(min_benchmarks: int, author: str | None) -> Select[TechniqueScore]:
    stmt = select(T)
    if min_benchmarks > 1:
        stmt = stmt.where(T.benchmarks >= min_benchmarks)
    if author:
        stmt = stmt.where(T.author == author)
    return stmt


async def technique_page(
    session: AsyncSession, *, min_benchmarks: int, author: str | None, limit: int, offset: int
) -> tuple[list[TechniqueScore], int]:
    stmt = _techniques(min_benchmarks, author)
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    page = stmt.order_by(T.rank_key, T.owner_id, T.name).limit(limit).offset(offset)
    return list((await session.execute(page)).scalars()), int(total)


async def technique_bands(session: AsyncSession) -> tuple[list[float], list[float]]:
    keys: list[float] = []
    highs: list[float] = []
    for key, high in await session.execute(select(T.rank_key, T.band_high)):
        keys.append(key)
        highs.append(high)
    return keys, highs


# --------------------------------------------------------------------------------------- stats


async def verdict_counts_by_benchmark(session: AsyncSession) -> list[tuple[int, str, int]]:
    stmt = select(E.benchmark_id, E.claim_verdict, func.count()).group_by(
        E.benchmark_id, E.claim_verdict
    )
    return [(b, v, int(n)) for b, v, n in await session.execute(stmt)]


async def verdict_counts_by_tag(session: AsyncSession) -> list[tuple[str, str, int]]:
    stmt = (
        select(ET.tag, E.claim_verdict, func.count())
        .join(E, E.submission_id == ET.submission_id)
        .group_by(ET.tag, E.claim_verdict)
    )
    return [(t, v, int(n)) for t, v, n in await session.execute(stmt)]


async def verdict_counts_by_author(
    session: AsyncSession, owner_id: int | None = None
) -> list[tuple[str, str, int]]:
    stmt = select(E.author, E.claim_verdict, func.count()).group_by(E.author, E.claim_verdict)
    if owner_id is not None:
        stmt = stmt.where(E.owner_id == owner_id)
    return [(a, v, int(n)) for a, v, n in await session.execute(stmt)]


# ------------------------------------------------------------------------------------ profiles


@dataclass(frozen=True)
class OwnedSubmission:
    submission: Submission
    entry: LeaderboardEntry | None


async def submissions_of(
    session: AsyncSession, *, owner_id: int, include_withdrawn: bool, limit: int, offset: int
) -> tuple[list[OwnedSubmission], int]:
    """A user's submissions, newest first, each with the entry that stands for it (if any)."""
    where = [Submission.owner_id == owner_id]
    if not include_withdrawn:
        where.append(Submission.status == SubmissionStatus.active.value)
    total = (
        await session.execute(select(func.count()).select_from(Submission).where(*where))
    ).scalar_one()
    stmt = (
        select(Submission, E)
        .outerjoin(E, E.submission_id == Submission.id)
        .where(*where)
        .order_by(Submission.created_at.desc(), Submission.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = [OwnedSubmission(s, e) for s, e in await session.execute(stmt)]
    return rows, int(total)


async def user_by_name(session: AsyncSession, name: str) -> User | None:
    return (await session.execute(select(User).where(User.name == name))).scalar_one_or_none()


async def techniques_of(session: AsyncSession, owner_id: int) -> list[TechniqueScore]:
    stmt = select(T).where(T.owner_id == owner_id).order_by(T.rank_key, T.name)
    return list((await session.execute(stmt)).scalars())
