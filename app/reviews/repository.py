"""Queries about expertise, assignments, reviews and comments."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.reviews.models import (
    AssignmentStatus,
    Comment,
    Review,
    ReviewAssignment,
    ReviewerExpertise,
    ReviewStatus,
)
from app.submissions.models import LATEST_VERSION, Submission, SubmissionTag, SubmissionVersion
from app.users.models import Role, User

REVIEWER_ROLES = (Role.reviewer.value, Role.maintainer.value)

# --- users, versions, tags ----------------------------------------------------------------


async def users_by_id(session: AsyncSession, ids: Iterable[int]) -> dict[int, User]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await session.execute(select(User).where(User.id.in_(wanted)))
    return {u.id: u for u in rows.scalars()}


async def users_named(session: AsyncSession, keys: Sequence[str]) -> list[User]:
    """Users whose name or display name, lower-cased, is one of ``keys``."""
    if not keys:
        return []
    stmt = select(User).where(
        or_(func.lower(User.name).in_(list(keys)), func.lower(User.display_name).in_(list(keys)))
    )
    return list((await session.execute(stmt)).scalars())


async def version_numbers(session: AsyncSession, version_ids: Iterable[int]) -> dict[int, int]:
    wanted = sorted(set(version_ids))
    if not wanted:
        return {}
    rows = await session.execute(
        select(SubmissionVersion.id, SubmissionVersion.number).where(
            SubmissionVersion.id.in_(wanted)
        )
    )
    return {vid: number for vid, number in rows}


async def version_ids_by_number(session: AsyncSession, submission_id: int) -> dict[int, int]:
    """Version number → version id for one submission."""
    rows = await session.execute(
        select(SubmissionVersion.number, SubmissionVersion.id).where(
            SubmissionVersion.submission_id == submission_id
        )
    )
    return {number: vid for number, vid in rows}


async def submission_tags(session: AsyncSession, submission_id: int) -> list[str]:
    rows = await session.execute(
        select(SubmissionTag.tag).where(SubmissionTag.submission_id == submission_id)
    )
    return sorted(rows.scalars())


async def author_list(session: AsyncSession, submission: Submission) -> Any:
    """``package.authors`` of the submission's latest version."""
    stmt = select(SubmissionVersion.manifest["package"]["authors"]).where(
        SubmissionVersion.submission_id == submission.id,
        SubmissionVersion.number == submission.latest_version,
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def latest_author_lists(session: AsyncSession) -> list[tuple[int, int, Any]]:
    """(submission id, owner id, ``package.authors`` of its latest version) for every submission."""
    stmt = select(
        Submission.id, Submission.owner_id, SubmissionVersion.manifest["package"]["authors"]
    ).join(
        SubmissionVersion,
        LATEST_VERSION,
    )
    return [(sid, owner, authors) for sid, owner, authors in await session.execute(stmt)]


# --- expertise and matching ---------------------------------------------------------------


async def expertise_of(session: AsyncSession, user_id: int) -> list[str]:
    rows = await session.execute(
        select(ReviewerExpertise.tag)
        .where(ReviewerExpertise.user_id == user_id)
        .order_by(ReviewerExpertise.tag)
    )
    return list(rows.scalars())


async def replace_expertise(session: AsyncSession, user_id: int, tags: Sequence[str]) -> None:
    await session.execute(delete(ReviewerExpertise).where(ReviewerExpertise.user_id == user_id))
    session.add_all(ReviewerExpertise(user_id=user_id, tag=t) for t in sorted(set(tags)))


async def reviewers_with_tags(
    session: AsyncSession, tags: Sequence[str]
) -> list[tuple[User, list[str]]]:
    """Active reviewers and maintainers with at least one of ``tags``, and which ones."""
    if not tags:
        return []
    stmt = (
        select(User, ReviewerExpertise.tag)
        .join(ReviewerExpertise, ReviewerExpertise.user_id == User.id)
        .where(
            ReviewerExpertise.tag.in_(list(tags)),
            User.role.in_(REVIEWER_ROLES),
            User.disabled_at.is_(None),
        )
        .order_by(User.id, ReviewerExpertise.tag)
    )
    found: dict[int, tuple[User, list[str]]] = {}
    for user, tag in await session.execute(stmt):
        found.setdefault(user.id, (user, []))[1].append(tag)
    return list(found.values())


async def open_assignment_counts(
    session: AsyncSession, reviewer_ids: Iterable[int]
) -> dict[int, int]:
    wanted = sorted(set(reviewer_ids))
    if not wanted:
        return {}
    stmt = (
        select(ReviewAssignment.reviewer_id, func.count())
        .where(
            ReviewAssignment.reviewer_id.in_(wanted),
            ReviewAssignment.status == AssignmentStatus.open.value,
        )
        .group_by(ReviewAssignment.reviewer_id)
    )
    return {rid: int(n) for rid, n in (await session.execute(stmt))}


# --- assignments --------------------------------------------------------------------------


async def get_assignment(session: AsyncSession, assignment_id: int) -> ReviewAssignment | None:
    return await session.get(ReviewAssignment, assignment_id)


async def assignment_for(
    session: AsyncSession, submission_id: int, reviewer_id: int
) -> ReviewAssignment | None:
    stmt = select(ReviewAssignment).where(
        ReviewAssignment.submission_id == submission_id,
        ReviewAssignment.reviewer_id == reviewer_id,
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def assigned_reviewer_ids(session: AsyncSession, submission_id: int) -> set[int]:
    rows = await session.execute(
        select(ReviewAssignment.reviewer_id).where(ReviewAssignment.submission_id == submission_id)
    )
    return set(rows.scalars())


async def list_assignments(
    session: AsyncSession,
    *,
    reviewer_id: int | None = None,
    submission_id: int | None = None,
    status: str | None = None,
    limit: int,
    offset: int,
) -> tuple[list[tuple[ReviewAssignment, Submission]], int]:
    stmt = select(ReviewAssignment, Submission).join(
        Submission, Submission.id == ReviewAssignment.submission_id
    )
    if reviewer_id is not None:
        stmt = stmt.where(ReviewAssignment.reviewer_id == reviewer_id)
    if submission_id is not None:
        stmt = stmt.where(ReviewAssignment.submission_id == submission_id)
    if status is not None:
        stmt = stmt.where(ReviewAssignment.status == status)
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = await session.execute(
        stmt.order_by(ReviewAssignment.id.desc()).limit(limit).offset(offset)
    )
    return [(a, s) for a, s in rows], int(total)


async def newest_review_ids(
    session: AsyncSession, pairs: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], int]:
    """(submission id, reviewer id) → the id of the reviewer's newest review of it."""
    wanted = set(pairs)
    if not wanted:
        return {}
    stmt = (
        select(Review.submission_id, Review.reviewer_id, func.max(Review.id))
        .where(Review.submission_id.in_(sorted({s for s, _ in wanted})))
        .group_by(Review.submission_id, Review.reviewer_id)
    )
    out: dict[tuple[int, int], int] = {}
    for sid, rid, review_id in await session.execute(stmt):
        if (sid, rid) in wanted:
            out[(sid, rid)] = int(review_id)
    return out


# --- reviews ------------------------------------------------------------------------------


async def get_review(session: AsyncSession, review_id: int) -> Review | None:
    return await session.get(Review, review_id)


async def reviews_of_reviewer_for_version(
    session: AsyncSession, reviewer_id: int, version_id: int
) -> list[Review]:
    stmt = (
        select(Review)
        .where(Review.reviewer_id == reviewer_id, Review.version_id == version_id)
        .order_by(Review.id)
    )
    return list((await session.execute(stmt)).scalars())


async def list_reviews(
    session: AsyncSession,
    submission_id: int,
    *,
    viewer_id: int | None,
    version_id: int | None,
    limit: int,
    offset: int,
) -> tuple[list[Review], int]:
    """Published reviews of a submission, plus the viewer's own drafts; oldest first."""
    visible = Review.status == ReviewStatus.published.value
    if viewer_id is not None:
        visible = or_(visible, Review.reviewer_id == viewer_id)
    stmt = select(Review).where(Review.submission_id == submission_id, visible)
    if version_id is not None:
        stmt = stmt.where(Review.version_id == version_id)
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = await session.execute(stmt.order_by(Review.id).limit(limit).offset(offset))
    return list(rows.scalars()), int(total)


async def published_reviews(session: AsyncSession, submission_id: int) -> list[Review]:
    stmt = (
        select(Review)
        .where(
            Review.submission_id == submission_id,
            Review.status == ReviewStatus.published.value,
        )
        .order_by(Review.id)
    )
    return list((await session.execute(stmt)).scalars())


async def corrections_of(session: AsyncSession, review_ids: Iterable[int]) -> dict[int, int]:
    """Review id → the id of its newest published correction."""
    wanted = sorted(set(review_ids))
    if not wanted:
        return {}
    stmt = (
        select(Review.corrects_id, func.max(Review.id))
        .where(Review.corrects_id.in_(wanted), Review.status == ReviewStatus.published.value)
        .group_by(Review.corrects_id)
    )
    rows = await session.execute(stmt)
    return {int(old): int(new) for old, new in rows if old is not None}


# --- comments -----------------------------------------------------------------------------


async def get_comment(session: AsyncSession, comment_id: int) -> Comment | None:
    return await session.get(Comment, comment_id)


async def comment_times_since(
    session: AsyncSession, author_id: int, since: dt.datetime
) -> list[dt.datetime]:
    """Creation times of the author's comments since ``since``, oldest first."""
    stmt = (
        select(Comment.created_at)
        .where(Comment.author_id == author_id, Comment.created_at >= since)
        .order_by(Comment.created_at)
    )
    return list((await session.execute(stmt)).scalars())


async def top_level_comments(
    session: AsyncSession, submission_id: int, *, version_id: int | None, limit: int, offset: int
) -> tuple[list[Comment], int]:
    stmt = select(Comment).where(
        Comment.submission_id == submission_id, Comment.parent_id.is_(None)
    )
    if version_id is not None:
        stmt = stmt.where(Comment.version_id == version_id)
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = await session.execute(stmt.order_by(Comment.id).limit(limit).offset(offset))
    return list(rows.scalars()), int(total)


async def replies_in_threads(session: AsyncSession, thread_ids: Sequence[int]) -> list[Comment]:
    if not thread_ids:
        return []
    rows = await session.execute(
        select(Comment).where(Comment.thread_id.in_(list(thread_ids))).order_by(Comment.id)
    )
    return list(rows.scalars())
