"""What the contributors page and a profile's "Replications and reviews" section show: the
counts behind ``GET /v1/contributors`` and ``GET /v1/users/{name}/contributions``, and the
person's published reviews and challenge attempts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from app.challenges.models import Challenge
from app.core.pagination import PageParams, make_page
from app.reviews import contributions, views
from app.reviews.schemas import Contributions, ReviewOut
from app.submissions.models import Submission
from app.users.models import User
from app.verdicts.models import Verdict
from app.web import repository

KINDS: tuple[contributions.Kind, ...] = get_args(contributions.Kind)
KIND_LABELS = {
    "all": "Everyone, by points",
    "authors": "Authors",
    "replicators": "Replicators",
    "reviewers": "Reviewers",
}
# A profile lists this many of each; the counts above the lists say how many there are in all.
PROFILE_ROWS = 50


async def ranking_context(session: AsyncSession, *, kind: str, page: PageParams) -> dict[str, Any]:
    """One page of the ranking; an unknown ``kind`` falls back to points, and says so."""
    chosen: contributions.Kind = next((k for k in KINDS if k == kind), "all")
    errors = [] if kind in KINDS else [f"unknown ranking {kind!r}; ranked by points"]
    items, total = await contributions.ranking(
        session, kind=chosen, limit=page.limit, offset=page.offset
    )
    return {
        "contributors": items,
        "listing": make_page(items, params=page, total=total),
        "kind": chosen,
        "kinds": KIND_LABELS,
        "errors": errors,
    }


@dataclass(frozen=True)
class Attempt:
    submission: Submission
    challenge: Challenge
    verdict: Verdict | None


@dataclass(frozen=True)
class ProfileCommunity:
    contributions: Contributions
    expertise: list[str]
    reviews: list[tuple[ReviewOut, Submission]]
    reviews_total: int
    attempts: list[Attempt]
    attempts_total: int


async def profile(
    session: AsyncSession, *, user: User, include_withdrawn: bool
) -> ProfileCommunity | None:
    """Counts, reviews and attempts for a profile (None for a disabled account, which the
    contributions API does not show either)."""
    if user.disabled_at is not None:
        return None
    counts = await contributions.of_user(session, name=user.name)
    reviewed, reviews_total = await repository.published_reviews_by(
        session, user.id, limit=PROFILE_ROWS
    )
    shown = await views.review_views(
        session, [r for r, _s in reviewed], {s.id: s.latest_version for _r, s in reviewed}
    )
    attempts, attempts_total = await repository.attempts_by(
        session, user.id, include_withdrawn=include_withdrawn, limit=PROFILE_ROWS
    )
    return ProfileCommunity(
        contributions=counts.contributions,
        expertise=counts.expertise,
        reviews=[(out, s) for out, (_r, s) in zip(shown, reviewed, strict=True)],
        reviews_total=reviews_total,
        attempts=[Attempt(s, c, v) for s, c, v in attempts],
        attempts_total=attempts_total,
    )
