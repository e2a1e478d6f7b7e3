"""Challenges with their attempts, assessed: what the API and the pages both show.

An attempt by an author of the challenged submission is never independent, so the assessment
needs those authors; a claim from a paper (no submission) has none.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.benchmarks.registry import Catalog
from app.challenges import repository, views
from app.challenges.models import Challenge
from app.challenges.repository import AttemptRow
from app.reviews.matching import authors_of
from app.submissions import repository as submissions


async def claim_authors(session: AsyncSession, challenge: Challenge) -> set[int]:
    """Authors of the challenged submission (none for a claim from a paper)."""
    if challenge.submission_id is None:
        return set()
    source = await submissions.get_submission(session, challenge.submission_id)
    return await authors_of(session, source) if source is not None else set()


async def assessed(
    session: AsyncSession, catalog: Catalog, challenges: Sequence[Challenge]
) -> dict[int, tuple[views.Assessment, list[AttemptRow]]]:
    """Each challenge's assessment with the attempt rows it was made from, by challenge id."""
    rows = await repository.attempts_of(session, [c.id for c in challenges])
    out = {}
    for c in challenges:
        bench = catalog.by_id[c.benchmark_id].manifest
        authors = await claim_authors(session, c)
        out[c.id] = (views.assess(c, rows[c.id], bench, authors), rows[c.id])
    return out
