"""Reviews and assignments as the API shows them (one batch of queries per page, no N+1)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.reviews import repository
from app.reviews.models import CRITERIA, Recommendation, Review, ReviewAssignment
from app.reviews.schemas import (
    CRITERION_LABELS,
    AssignmentOut,
    CriterionOut,
    ReviewOut,
    ReviewSummary,
    ScoreMeans,
    UserRef,
    VersionReviewMeans,
)
from app.submissions.models import Submission
from app.users.models import User
from app.verdicts.service import verdicts_for


def user_ref(user: User | None) -> UserRef:
    if user is None:
        return UserRef(name="(unknown)", role="member")
    return UserRef(name=user.name, display_name=user.display_name, role=user.role)


def _scores(review: Review) -> list[int]:
    return [int(getattr(review, f"{c}_score")) for c in CRITERIA]


async def review_views(
    session: AsyncSession, reviews: Sequence[Review], latest_versions: dict[int, int]
) -> list[ReviewOut]:
    """``latest_versions``: submission id → its latest version number."""
    people = await repository.users_by_id(session, [r.reviewer_id for r in reviews])
    numbers = await repository.version_numbers(session, [r.version_id for r in reviews])
    corrected = await repository.corrections_of(session, [r.id for r in reviews])
    out = []
    for r in reviews:
        number = numbers.get(r.version_id, 0)
        scores = _scores(r)
        out.append(
            ReviewOut(
                id=r.id,
                submission_id=r.submission_id,
                version=number,
                is_latest_version=number == latest_versions.get(r.submission_id),
                reviewer=user_ref(people.get(r.reviewer_id)),
                status=r.status,
                criteria={
                    c: CriterionOut(
                        label=CRITERION_LABELS[c],
                        score=int(getattr(r, f"{c}_score")),
                        comment=str(getattr(r, f"{c}_comment")),
                    )
                    for c in CRITERIA
                },
                mean_score=round(sum(scores) / len(scores), 3),
                recommendation=r.recommendation,
                summary=r.summary,
                corrects=r.corrects_id,
                corrected_by=corrected.get(r.id),
                created_at=r.created_at,
                updated_at=r.updated_at,
                published_at=r.published_at,
            )
        )
    return out


def score_means(reviews: Sequence[Review]) -> ScoreMeans:
    """Per-criterion means, their mean, and the count of each recommendation."""
    criteria: dict[str, float | None] = {}
    for c in CRITERIA:
        values = [int(getattr(r, f"{c}_score")) for r in reviews]
        criteria[c] = round(sum(values) / len(values), 3) if values else None
    present = [v for v in criteria.values() if v is not None]
    return ScoreMeans(
        reviews=len(reviews),
        criteria=criteria,
        overall=round(sum(present) / len(present), 3) if present else None,
        recommendations={
            rec.value: sum(1 for r in reviews if r.recommendation == rec.value)
            for rec in Recommendation
        },
    )


async def review_summary(session: AsyncSession, submission: Submission) -> ReviewSummary:
    """Mean scores of the current published reviews (a corrected review counts through its
    correction only), by version, beside the latest version's quality score."""
    published = await repository.published_reviews(session, submission.id)
    corrected = await repository.corrections_of(session, [r.id for r in published])
    current = [r for r in published if r.id not in corrected]
    numbers = await repository.version_numbers(session, [r.version_id for r in current])
    by_number: dict[int, list[Review]] = {}
    for r in current:
        by_number.setdefault(numbers.get(r.version_id, 0), []).append(r)
    latest_rows = by_number.get(submission.latest_version, [])
    version = await repository.version_ids_by_number(session, submission.id)
    latest_id = version.get(submission.latest_version)
    verdict = (await verdicts_for(session, [latest_id] if latest_id else [])).get(latest_id or 0)
    return ReviewSummary(
        submission_id=submission.id,
        latest_version=submission.latest_version,
        quality=verdict.quality if verdict else None,
        verdict=verdict.claim_verdict if verdict else None,
        latest=score_means(latest_rows),
        all_versions=score_means(current),
        by_version=[
            VersionReviewMeans(version=n, **score_means(rows).model_dump())
            for n, rows in sorted(by_number.items())
        ],
    )


async def assignment_views(
    session: AsyncSession, rows: Sequence[tuple[ReviewAssignment, Submission]]
) -> list[AssignmentOut]:
    people = await repository.users_by_id(
        session, [u for a, _s in rows for u in (a.reviewer_id, a.assigned_by_id)]
    )
    reviews = await repository.newest_review_ids(
        session, [(a.submission_id, a.reviewer_id) for a, _s in rows]
    )
    out = []
    for a, s in rows:
        assigner = people.get(a.assigned_by_id)
        out.append(
            AssignmentOut(
                id=a.id,
                submission_id=s.id,
                submission_title=s.title,
                benchmark=s.benchmark_slug,
                latest_version=s.latest_version,
                reviewer=user_ref(people.get(a.reviewer_id)),
                assigned_by=assigner.name if assigner else "(unknown)",
                status=a.status,
                note=a.note,
                decline_reason=a.decline_reason,
                review_id=reviews.get((a.submission_id, a.reviewer_id)),
                created_at=a.created_at,
                updated_at=a.updated_at,
            )
        )
    return out
