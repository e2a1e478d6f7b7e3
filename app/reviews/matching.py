"""Who may review what: submission authors, conflicts of interest, and ranked suggestions.

*Authors* of a submission are its owner and every registered user named in its latest
``package.authors`` (matched case-insensitively on user name or display name, the ``<email>``
part ignored). A user has a *conflict of interest* with a submission when they are one of its
authors or share any other submission with one of them (are authors of it together). Matching
names can over-exclude two people called the same; for conflicts that is the safe direction.

Suggestions rank reviewers and maintainers whose expertise overlaps the submission's keywords
(its tags, weight 1, and its benchmark id, weight 2 — the most specific signal):

    relevance = Σ weight of matched keywords / Σ weight of all keywords      (0..1)
    score     = relevance / (1 + 0.5 × open assignments)

so a reviewer with two open assignments needs twice the relevance of an idle one. Ties go to
fewer open assignments, then to the name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.reviews import repository
from app.submissions.models import Submission
from app.users.models import User

BENCHMARK_WEIGHT = 2.0
TAG_WEIGHT = 1.0
LOAD_PENALTY = 0.5

_EMAIL = re.compile(r"<[^>]*>|\([^)]*\)")
_SPACE = re.compile(r"\s+")


def normalise_author(text: str) -> str:
    """``"Ada Lovelace <ada@example.org>"`` → ``"ada lovelace"``."""
    return _SPACE.sub(" ", _EMAIL.sub(" ", text)).strip().lower()


def user_keys(user: User) -> set[str]:
    keys = {user.name.lower()}
    if user.display_name:
        keys.add(_SPACE.sub(" ", user.display_name).strip().lower())
    return keys


def _author_strings(authors: Any) -> list[str]:
    if not isinstance(authors, list):
        return []
    return [normalise_author(a) for a in authors if isinstance(a, str)]


def keywords(tags: Sequence[str], benchmark: str) -> dict[str, float]:
    """The submission's keywords and their weights."""
    out = {t: TAG_WEIGHT for t in tags}
    out[benchmark] = BENCHMARK_WEIGHT
    return out


@dataclass(frozen=True)
class Candidate:
    user: User
    expertise: tuple[str, ...]
    open_assignments: int


@dataclass(frozen=True)
class Suggestion:
    user: User
    score: float
    relevance: float
    matched: tuple[str, ...]
    open_assignments: int


def rank(weights: Mapping[str, float], candidates: Sequence[Candidate]) -> list[Suggestion]:
    """Score and order candidates (pure: the formula in the module docstring)."""
    total = sum(weights.values())
    out = []
    for c in candidates:
        matched = tuple(sorted(k for k in c.expertise if k in weights))
        if not matched or total <= 0:
            continue
        relevance = sum(weights[k] for k in matched) / total
        score = relevance / (1 + LOAD_PENALTY * c.open_assignments)
        out.append(
            Suggestion(c.user, round(score, 6), round(relevance, 6), matched, c.open_assignments)
        )
    out.sort(key=lambda s: (-s.score, s.open_assignments, s.user.name))
    return out


async def authors_of(session: AsyncSession, submission: Submission) -> set[int]:
    """User ids of the submission's authors: its owner and the registered users it names."""
    names = _author_strings(await repository.author_list(session, submission))
    return {submission.owner_id} | {u.id for u in await repository.users_named(session, names)}


async def conflicts(
    session: AsyncSession, submission: Submission, candidates: Sequence[User]
) -> dict[int, str]:
    """Candidate id → why they may not review ``submission`` (absent: no conflict)."""
    own = _author_strings(await repository.author_list(session, submission))
    named = await repository.users_named(session, own)
    authors = {submission.owner_id} | {u.id for u in named}
    owners = await repository.users_by_id(session, [submission.owner_id])
    people = {u.id: u for u in [*owners.values(), *named, *candidates]}
    key_to_ids: dict[str, set[int]] = {}
    for user in people.values():
        for key in user_keys(user):
            key_to_ids.setdefault(key, set()).add(user.id)
    reasons: dict[int, str] = {}
    for c in candidates:
        if c.id in authors:
            reasons[c.id] = f"an author of submission {submission.id}"
    for sid, owner, author_list in await repository.latest_author_lists(session):
        if sid == submission.id:
            continue
        together = {owner}
        for key in _author_strings(author_list):
            together |= key_to_ids.get(key, set())
        if not together & authors:
            continue
        for c in candidates:
            if c.id in together and c.id not in reasons:
                reasons[c.id] = f"shares submission {sid} with an author"
    return reasons


async def suggest(session: AsyncSession, submission: Submission) -> list[Suggestion]:
    """Ranked reviewers for a submission, without authors, co-authors or those already asked."""
    weights = keywords(
        await repository.submission_tags(session, submission.id), submission.benchmark_slug
    )
    found = await repository.reviewers_with_tags(session, sorted(weights))
    already = await repository.assigned_reviewer_ids(session, submission.id)
    users = [u for u, _tags in found if u.id not in already]
    excluded = await conflicts(session, submission, users)
    load = await repository.open_assignment_counts(session, [u.id for u in users])
    candidates = [
        Candidate(u, tuple(tags), load.get(u.id, 0))
        for u, tags in found
        if u.id not in already and u.id not in excluded
    ]
    return rank(weights, candidates)
