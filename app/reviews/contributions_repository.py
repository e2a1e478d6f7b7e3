"""Per-user counts behind profiles and the contributors ranking (one grouped query each)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, case, distinct, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.reviews.models import Comment, Review, ReviewStatus
from app.submissions.models import LATEST_VERSION, Submission, SubmissionStatus, SubmissionVersion
from app.verdicts.models import Verdict

HELD_UP = ("reproduced", "exceeded")

_ACTIVE = Submission.status == SubmissionStatus.active.value


def _only(column: Any, user_id: int | None) -> ColumnElement[bool]:
    return true() if user_id is None else column == user_id


async def authored(session: AsyncSession, user_id: int | None = None) -> dict[int, tuple[int, int]]:
    """Owner → (own submissions with a verdict, of which reproduced or exceeded)."""
    held = func.sum(case((Verdict.claim_verdict.in_(HELD_UP), 1), else_=0))
    stmt = (
        select(Submission.owner_id, func.count(), held)
        .join(SubmissionVersion, LATEST_VERSION)
        .join(Verdict, Verdict.version_id == SubmissionVersion.id)
        .where(_ACTIVE, Submission.challenge_id.is_(None), _only(Submission.owner_id, user_id))
        .group_by(Submission.owner_id)
    )
    rows = (await session.execute(stmt)).all()
    return {int(o): (int(n), int(h or 0)) for o, n, h in rows}


async def attempts(
    session: AsyncSession, user_id: int | None = None
) -> dict[int, tuple[int, int, int]]:
    """Owner → (attempts, attempts with a verdict, challenges whose claim an attempt held up)."""
    held = func.count(distinct(case((Verdict.claim_verdict.in_(HELD_UP), Submission.challenge_id))))
    stmt = (
        select(Submission.owner_id, func.count(Submission.id), func.count(Verdict.id), held)
        .join(SubmissionVersion, LATEST_VERSION)
        .outerjoin(Verdict, Verdict.version_id == SubmissionVersion.id)
        .where(_ACTIVE, Submission.challenge_id.is_not(None), _only(Submission.owner_id, user_id))
        .group_by(Submission.owner_id)
    )
    rows = (await session.execute(stmt)).all()
    return {int(o): (int(n), int(j), int(h)) for o, n, j, h in rows}


async def reviews(session: AsyncSession, user_id: int | None = None) -> dict[int, int]:
    """Reviewer → published reviews, corrections not counted."""
    stmt = (
        select(Review.reviewer_id, func.count())
        .where(
            Review.status == ReviewStatus.published.value,
            Review.corrects_id.is_(None),
            _only(Review.reviewer_id, user_id),
        )
        .group_by(Review.reviewer_id)
    )
    return {int(r): int(n) for r, n in (await session.execute(stmt)).all()}


async def comments(session: AsyncSession, user_id: int | None = None) -> dict[int, int]:
    """Author → visible comments."""
    stmt = (
        select(Comment.author_id, func.count())
        .where(Comment.hidden_at.is_(None), _only(Comment.author_id, user_id))
        .group_by(Comment.author_id)
    )
    return {int(a): int(n) for a, n in (await session.execute(stmt)).all()}
