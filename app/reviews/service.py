"""Review rules: expertise, assignments (with conflicts of interest), structured reviews.

A review is written by a reviewer assigned to the submission (an open or completed assignment),
bound to one version, editable while a draft, immutable once published. A correction is a new
review with ``corrects`` naming one's own published review; per reviewer and version there is at
most one draft, and a second published review must be a correction.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.db import utcnow
from app.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.reviews import matching, repository
from app.reviews.models import (
    CRITERIA,
    AssignmentStatus,
    Review,
    ReviewAssignment,
    ReviewStatus,
)
from app.reviews.schemas import CriterionIn, ReviewCreate, ReviewUpdate
from app.submissions import access
from app.submissions import repository as submissions
from app.submissions.models import Submission, SubmissionStatus, SubmissionVersion
from app.users import repository as users
from app.users.models import User
from app.webhooks import events


async def readable_submission(
    session: AsyncSession, *, submission_id: int, user: User | None
) -> Submission:
    """A submission the caller may read (withdrawn ones only for owner and maintainers)."""
    submission = await submissions.get_submission(session, submission_id)
    if submission is None or not access.can_read(submission, user):
        raise NotFound(f"no submission {submission_id}")
    return submission


async def version_of(
    session: AsyncSession, submission: Submission, number: int | None
) -> SubmissionVersion:
    wanted = number or submission.latest_version
    version = await submissions.get_version(session, submission.id, wanted)
    if version is None:
        raise NotFound(f"submission {submission.id} has no version {wanted}")
    return version


# --- expertise ----------------------------------------------------------------------------


async def set_expertise(session: AsyncSession, *, user: User, tags: list[str]) -> list[str]:
    """Replace the caller's expertise tags."""
    await repository.replace_expertise(session, user.id, tags)
    await session.flush()
    return await repository.expertise_of(session, user.id)


# --- assignments --------------------------------------------------------------------------


async def assign(
    session: AsyncSession, *, actor: User, submission_id: int, reviewer_name: str, note: str | None
) -> ReviewAssignment:
    """A maintainer asks a reviewer to review a submission (never an author or co-author)."""
    submission = await readable_submission(session, submission_id=submission_id, user=actor)
    if submission.status != SubmissionStatus.active.value:
        raise Conflict(f"submission {submission_id} is withdrawn")
    reviewer = await users.get_user_by_name(session, reviewer_name)
    if reviewer is None or reviewer.disabled_at is not None:
        raise ValidationFailed(
            f"no user {reviewer_name!r}", errors=[{"loc": "reviewer", "msg": "unknown user"}]
        )
    if reviewer.role not in repository.REVIEWER_ROLES:
        raise ValidationFailed(
            f"{reviewer_name} is not a reviewer (role {reviewer.role}); a maintainer can grant it",
            errors=[{"loc": "reviewer", "msg": "not a reviewer"}],
        )
    conflict = (await matching.conflicts(session, submission, [reviewer])).get(reviewer.id)
    if conflict is not None:
        raise Conflict(f"{reviewer_name} has a conflict of interest: {conflict}")
    existing = await repository.assignment_for(session, submission.id, reviewer.id)
    if existing is not None and existing.status != AssignmentStatus.declined.value:
        raise Conflict(f"{reviewer_name} is already assigned (assignment {existing.id})")
    if existing is None:
        existing = ReviewAssignment(
            submission_id=submission.id, reviewer_id=reviewer.id, assigned_by_id=actor.id
        )
        session.add(existing)
    existing.status = AssignmentStatus.open.value
    existing.assigned_by_id = actor.id
    existing.note = note
    existing.decline_reason = None
    await session.flush()
    audit.record(
        session,
        actor_type="user",
        actor_id=actor.id,
        action="review.assign",
        object_type="review_assignment",
        object_id=existing.id,
        detail={"submission_id": submission.id, "reviewer": reviewer.name},
    )
    return existing


async def decline(
    session: AsyncSession, *, user: User, assignment_id: int, reason: str
) -> ReviewAssignment:
    """The assigned reviewer declines, with a reason the maintainers see."""
    assignment = await repository.get_assignment(session, assignment_id)
    if assignment is None or assignment.reviewer_id != user.id:
        raise NotFound(f"no assignment {assignment_id}")
    if assignment.status != AssignmentStatus.open.value:
        raise Conflict(f"assignment {assignment_id} is {assignment.status}, not open")
    assignment.status = AssignmentStatus.declined.value
    assignment.decline_reason = reason
    assignment.updated_at = utcnow()
    audit.record(
        session,
        actor_type="user",
        actor_id=user.id,
        action="review.decline",
        object_type="review_assignment",
        object_id=assignment.id,
        detail={"submission_id": assignment.submission_id, "reason": reason},
    )
    return assignment


# --- reviews ------------------------------------------------------------------------------


def _apply_criterion(review: Review, name: str, criterion: CriterionIn) -> None:
    setattr(review, f"{name}_score", criterion.score)
    setattr(review, f"{name}_comment", criterion.comment)


async def create_review(
    session: AsyncSession, *, user: User, submission_id: int, body: ReviewCreate
) -> Review:
    """A review by an assigned reviewer, saved as a draft unless ``publish``."""
    submission = await readable_submission(session, submission_id=submission_id, user=user)
    assignment = await repository.assignment_for(session, submission.id, user.id)
    if assignment is None or assignment.status == AssignmentStatus.declined.value:
        raise Forbidden(f"you are not assigned to review submission {submission.id}")
    version = await version_of(session, submission, body.version)
    earlier = await repository.reviews_of_reviewer_for_version(session, user.id, version.id)
    draft = next((r for r in earlier if r.status == ReviewStatus.draft.value), None)
    if draft is not None:
        raise Conflict(f"you have a draft review of this version (review {draft.id}); edit it")
    if body.corrects is not None:
        old = await repository.get_review(session, body.corrects)
        if old is None or old.reviewer_id != user.id or old.submission_id != submission.id:
            raise ValidationFailed(
                f"review {body.corrects} is not one of your reviews of submission {submission.id}",
                errors=[{"loc": "corrects", "msg": "not your review of this submission"}],
            )
        if old.status != ReviewStatus.published.value:
            raise Conflict(f"review {old.id} is a draft: edit it instead of correcting it")
    elif earlier:
        raise Conflict(
            f"you already published review {earlier[-1].id} of version {version.number}; "
            "post a correction with corrects"
        )
    review = Review(
        submission_id=submission.id,
        version_id=version.id,
        reviewer_id=user.id,
        assignment_id=assignment.id,
        status=ReviewStatus.draft.value,
        recommendation=body.recommendation,
        summary=body.summary,
        corrects_id=body.corrects,
    )
    for name in CRITERIA:
        _apply_criterion(review, name, getattr(body, name))
    session.add(review)
    await session.flush()
    if body.publish:
        await _publish(session, user=user, review=review, submission=submission)
    return review


async def own_review(session: AsyncSession, *, user: User, review_id: int) -> Review:
    review = await repository.get_review(session, review_id)
    if review is None or review.reviewer_id != user.id:
        raise NotFound(f"no review {review_id}")
    return review


async def update_review(
    session: AsyncSession, *, user: User, review_id: int, body: ReviewUpdate
) -> Review:
    """Edit one's draft; a published review is immutable (correct it with a new one)."""
    review = await own_review(session, user=user, review_id=review_id)
    if review.status != ReviewStatus.draft.value:
        raise Conflict(
            f"review {review.id} is published and immutable; post a correction with "
            f"corrects={review.id}"
        )
    for name in CRITERIA:
        criterion = getattr(body, name)
        if criterion is not None:
            _apply_criterion(review, name, criterion)
    if body.recommendation is not None:
        review.recommendation = body.recommendation
    if body.summary is not None:
        review.summary = body.summary
    review.updated_at = utcnow()
    return review


async def publish_review(session: AsyncSession, *, user: User, review_id: int) -> Review:
    """Publish one's draft (publishing a published review changes nothing)."""
    review = await own_review(session, user=user, review_id=review_id)
    if review.status == ReviewStatus.published.value:
        return review
    submission = await readable_submission(session, submission_id=review.submission_id, user=user)
    await _publish(session, user=user, review=review, submission=submission)
    return review


async def _publish(
    session: AsyncSession, *, user: User, review: Review, submission: Submission
) -> None:
    now = utcnow()
    review.status = ReviewStatus.published.value
    review.published_at = now
    review.updated_at = now
    assignment = await repository.get_assignment(session, review.assignment_id)
    if assignment is not None and assignment.status == AssignmentStatus.open.value:
        assignment.status = AssignmentStatus.completed.value
        assignment.updated_at = now
    numbers = await repository.version_numbers(session, [review.version_id])
    audit.record(
        session,
        actor_type="user",
        actor_id=user.id,
        action="review.publish",
        object_type="review",
        object_id=review.id,
        detail={"submission_id": submission.id, "corrects": review.corrects_id},
    )
    await events.emit(
        session,
        user_ids=[submission.owner_id],
        event_name=events.REVIEW_RECEIVED,
        data={
            "review_id": review.id,
            "submission_id": submission.id,
            "version": numbers.get(review.version_id),
            "reviewer": user.name,
            "recommendation": review.recommendation,
            "corrects": review.corrects_id,
            "links": {"self": f"/v1/reviews/{review.id}"},
        },
    )


async def visible_review(session: AsyncSession, *, user: User | None, review_id: int) -> Review:
    """A published review of a readable submission, or the caller's own draft."""
    review = await repository.get_review(session, review_id)
    if review is None:
        raise NotFound(f"no review {review_id}")
    own = user is not None and review.reviewer_id == user.id
    if review.status != ReviewStatus.published.value and not own:
        raise NotFound(f"no review {review_id}")
    await readable_submission(session, submission_id=review.submission_id, user=user)
    return review
