"""Recognition: what each person contributed, and a ranking where checking others' work
(replicating, reviewing) counts as much as publishing.

``points = authored + attempts_judged + reviews_published``: one point per own submission with
a verdict, per challenge attempt with a verdict, per published review (corrections excluded).
Comments are counted and shown but earn no points, so volume of talk cannot buy rank.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.reviews import contributions_repository as counts
from app.reviews import repository
from app.reviews.schemas import Contributions, ContributionsOut, ContributorOut
from app.reviews.views import user_ref
from app.users import repository as users

Kind = Literal["all", "authors", "replicators", "reviewers"]


async def _tally(session: AsyncSession, user_id: int | None = None) -> dict[int, Contributions]:
    authored = await counts.authored(session, user_id)
    attempts = await counts.attempts(session, user_id)
    reviews = await counts.reviews(session, user_id)
    comments = await counts.comments(session, user_id)
    out: dict[int, Contributions] = {}
    for uid in set(authored) | set(attempts) | set(reviews) | set(comments):
        own, held = authored.get(uid, (0, 0))
        tried, judged, claims = attempts.get(uid, (0, 0, 0))
        published = reviews.get(uid, 0)
        out[uid] = Contributions(
            authored=own,
            authored_reproduced=held,
            attempts_contributed=tried,
            attempts_judged=judged,
            claims_reproduced=claims,
            reviews_published=published,
            comments=comments.get(uid, 0),
            points=own + judged + published,
        )
    return out


def _empty() -> Contributions:
    return Contributions(
        authored=0,
        authored_reproduced=0,
        attempts_contributed=0,
        attempts_judged=0,
        claims_reproduced=0,
        reviews_published=0,
        comments=0,
        points=0,
    )


async def of_user(session: AsyncSession, *, name: str) -> ContributionsOut:
    """One person's counts and expertise."""
    user = await users.get_user_by_name(session, name)
    if user is None or user.disabled_at is not None:
        raise NotFound(f"no user {name!r}")
    tally = (await _tally(session, user.id)).get(user.id, _empty())
    return ContributionsOut(
        user=user_ref(user),
        expertise=await repository.expertise_of(session, user.id),
        contributions=tally,
    )


def _key(kind: Kind, c: Contributions) -> int:
    return {
        "all": c.points,
        "authors": c.authored,
        "replicators": c.attempts_judged,
        "reviewers": c.reviews_published,
    }[kind]


async def ranking(
    session: AsyncSession, *, kind: Kind, limit: int, offset: int
) -> tuple[list[ContributorOut], int]:
    """Contributors by points (or by one kind of contribution); equal counts share a rank."""
    tally = await _tally(session)
    people = await repository.users_by_id(session, tally)
    ranked = sorted(
        (
            (uid, c)
            for uid, c in tally.items()
            if _key(kind, c) > 0 and uid in people and people[uid].disabled_at is None
        ),
        key=lambda item: (-_key(kind, item[1]), people[item[0]].name),
    )
    out = []
    rank = 0
    previous: int | None = None
    for position, (uid, c) in enumerate(ranked, start=1):
        if _key(kind, c) != previous:
            rank, previous = position, _key(kind, c)
        out.append(ContributorOut(rank=rank, user=user_ref(people[uid]), contributions=c))
    return out[offset : offset + limit], len(out)
