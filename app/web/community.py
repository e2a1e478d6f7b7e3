"""What the submission page shows of community review: the published reviews, their mean scores
beside (never inside) the quality score, and the discussion as a tree of threads.

Everything comes from the API's own view builders (app/reviews/views.py and comments.py), so the
page and ``GET /v1/submissions/{id}/reviews|comments`` cannot disagree: hidden bodies are
dropped for non-maintainers there, and comment HTML was sanitised once, when it was written.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import PageParams, make_page
from app.reviews import comments, repository, views
from app.reviews.models import CRITERIA
from app.reviews.schemas import CRITERION_LABELS, ScoreMeans
from app.submissions.models import Submission
from app.users.models import User


async def review_context(
    session: AsyncSession,
    *,
    submission: Submission,
    version_number: int,
    viewer: User | None,
    page: PageParams,
) -> dict[str, Any]:
    """Published reviews of every version, the means for the shown version, and one page of
    top-level threads (each with all its replies nested)."""
    published = await repository.published_reviews(session, submission.id)
    reviews = await views.review_views(
        session, published, {submission.id: submission.latest_version}
    )
    summary = await views.review_summary(session, submission)
    shown: ScoreMeans | None = next(
        (m for m in summary.by_version if m.version == version_number), None
    )
    threads, total = await comments.tree(
        session,
        submission=submission,
        viewer=viewer,
        version=None,  # every version's threads, each labelled with its version
        limit=page.limit,
        offset=page.offset,
    )
    return {
        "reviews": reviews,
        "review_means": shown,
        "review_means_all": summary.all_versions,
        "criteria": [(c, CRITERION_LABELS[c]) for c in CRITERIA],
        "threads": threads,
        "discussion": make_page(threads, params=page, total=total),
    }
