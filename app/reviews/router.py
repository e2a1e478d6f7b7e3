"""Reviewer expertise and matching, assignments, structured reviews, and recognition.

Comment routes live in ``comments_router`` and are included here.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from app.core.deps import CurrentUser, Maintainer, OptionalUser, SessionDep
from app.core.pagination import Page, PageDep, make_page
from app.reviews import contributions, matching, repository, service, views
from app.reviews.comments_router import router as comments_router
from app.reviews.models import Review
from app.reviews.schemas import (
    AssignmentCreate,
    AssignmentOut,
    ContributionsOut,
    ContributorOut,
    DeclineIn,
    ExpertiseIn,
    ExpertiseOut,
    ReviewCreate,
    ReviewOut,
    ReviewSummary,
    ReviewUpdate,
    SuggestionOut,
)
from app.submissions import repository as submissions

router = APIRouter(prefix="/v1", tags=["reviews"])
router.include_router(comments_router)

AssignmentState = Literal["open", "declined", "completed"]


async def _review_out(session: SessionDep, review: Review) -> ReviewOut:
    submission = await submissions.get_submission(session, review.submission_id)
    latest = {review.submission_id: submission.latest_version if submission else 0}
    return (await views.review_views(session, [review], latest))[0]


# --- expertise and matching ---------------------------------------------------------------


@router.put("/me/expertise", operation_id="set_expertise")
async def set_expertise(body: ExpertiseIn, user: CurrentUser, session: SessionDep) -> ExpertiseOut:
    """Declare one's expertise tags (benchmark ids count too); replaces the previous list."""
    return ExpertiseOut(tags=await service.set_expertise(session, user=user, tags=body.tags))


@router.get("/me/expertise", operation_id="get_expertise")
async def get_expertise(user: CurrentUser, session: SessionDep) -> ExpertiseOut:
    return ExpertiseOut(tags=await repository.expertise_of(session, user.id))


@router.get("/submissions/{submission_id}/reviewer-suggestions", operation_id="suggest_reviewers")
async def suggest_reviewers(
    submission_id: int, user: Maintainer, session: SessionDep, page: PageDep
) -> Page[SuggestionOut]:
    """Reviewers ranked for a submission; authors and anyone sharing a submission with them
    are left out (conflict of interest), as are those already assigned."""
    submission = await service.readable_submission(session, submission_id=submission_id, user=user)
    ranked = await matching.suggest(session, submission)
    items = [
        SuggestionOut(
            reviewer=views.user_ref(s.user),
            score=s.score,
            relevance=s.relevance,
            matched=list(s.matched),
            open_assignments=s.open_assignments,
        )
        for s in ranked[page.offset : page.offset + page.limit]
    ]
    return make_page(items, params=page, total=len(ranked))


# --- assignments --------------------------------------------------------------------------


@router.post(
    "/submissions/{submission_id}/assignments",
    status_code=status.HTTP_201_CREATED,
    operation_id="assign_reviewer",
)
async def assign_reviewer(
    submission_id: int, body: AssignmentCreate, user: Maintainer, session: SessionDep
) -> AssignmentOut:
    """Ask a reviewer to review a submission (maintainers)."""
    assignment = await service.assign(
        session,
        actor=user,
        submission_id=submission_id,
        reviewer_name=body.reviewer,
        note=body.note,
    )
    submission = await service.readable_submission(session, submission_id=submission_id, user=user)
    return (await views.assignment_views(session, [(assignment, submission)]))[0]


@router.get("/submissions/{submission_id}/assignments", operation_id="list_submission_assignments")
async def list_submission_assignments(
    submission_id: int, user: Maintainer, session: SessionDep, page: PageDep
) -> Page[AssignmentOut]:
    await service.readable_submission(session, submission_id=submission_id, user=user)
    rows, total = await repository.list_assignments(
        session, submission_id=submission_id, limit=page.limit, offset=page.offset
    )
    return make_page(await views.assignment_views(session, rows), params=page, total=total)


@router.get("/me/assignments", operation_id="list_my_assignments")
async def list_my_assignments(
    user: CurrentUser,
    session: SessionDep,
    page: PageDep,
    status_: Annotated[AssignmentState | None, Query(alias="status")] = "open",
) -> Page[AssignmentOut]:
    """The caller's review queue (open assignments unless ``status`` says otherwise)."""
    rows, total = await repository.list_assignments(
        session, reviewer_id=user.id, status=status_, limit=page.limit, offset=page.offset
    )
    return make_page(await views.assignment_views(session, rows), params=page, total=total)


@router.post("/assignments/{assignment_id}/decline", operation_id="decline_assignment")
async def decline_assignment(
    assignment_id: int, body: DeclineIn, user: CurrentUser, session: SessionDep
) -> AssignmentOut:
    """Decline one's assignment, with a reason."""
    assignment = await service.decline(
        session, user=user, assignment_id=assignment_id, reason=body.reason
    )
    submission = await submissions.get_submission(session, assignment.submission_id)
    assert submission is not None
    return (await views.assignment_views(session, [(assignment, submission)]))[0]


# --- reviews ------------------------------------------------------------------------------


@router.post(
    "/submissions/{submission_id}/reviews",
    status_code=status.HTTP_201_CREATED,
    operation_id="create_review",
)
async def create_review(
    submission_id: int, body: ReviewCreate, user: CurrentUser, session: SessionDep
) -> ReviewOut:
    """Review a submission version (assigned reviewers only); a draft unless ``publish``."""
    review = await service.create_review(session, user=user, submission_id=submission_id, body=body)
    return await _review_out(session, review)


@router.get("/submissions/{submission_id}/reviews", operation_id="list_reviews")
async def list_reviews(
    submission_id: int,
    session: SessionDep,
    page: PageDep,
    user: OptionalUser,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> Page[ReviewOut]:
    """Published reviews of every version (each labelled), and the caller's own drafts."""
    submission = await service.readable_submission(session, submission_id=submission_id, user=user)
    version_id = (await service.version_of(session, submission, version)).id if version else None
    rows, total = await repository.list_reviews(
        session,
        submission.id,
        viewer_id=user.id if user else None,
        version_id=version_id,
        limit=page.limit,
        offset=page.offset,
    )
    items = await views.review_views(session, rows, {submission.id: submission.latest_version})
    return make_page(items, params=page, total=total)


@router.get("/submissions/{submission_id}/reviews/summary", operation_id="review_summary")
async def review_summary(
    submission_id: int, session: SessionDep, user: OptionalUser
) -> ReviewSummary:
    """Mean review scores per criterion, beside (never inside) the quality score."""
    submission = await service.readable_submission(session, submission_id=submission_id, user=user)
    return await views.review_summary(session, submission)


@router.get("/reviews/{review_id}", operation_id="get_review")
async def get_review(review_id: int, session: SessionDep, user: OptionalUser) -> ReviewOut:
    review = await service.visible_review(session, user=user, review_id=review_id)
    return await _review_out(session, review)


@router.patch("/reviews/{review_id}", operation_id="update_review")
async def update_review(
    review_id: int, body: ReviewUpdate, user: CurrentUser, session: SessionDep
) -> ReviewOut:
    """Edit one's draft review; published reviews are immutable."""
    review = await service.update_review(session, user=user, review_id=review_id, body=body)
    return await _review_out(session, review)


@router.post("/reviews/{review_id}/publish", operation_id="publish_review")
async def publish_review(review_id: int, user: CurrentUser, session: SessionDep) -> ReviewOut:
    """Publish one's draft review: it becomes public and immutable."""
    review = await service.publish_review(session, user=user, review_id=review_id)
    return await _review_out(session, review)


# --- recognition --------------------------------------------------------------------------


@router.get("/users/{name}/contributions", operation_id="get_contributions")
async def get_contributions(name: str, session: SessionDep) -> ContributionsOut:
    """What a person contributed: submissions, challenge attempts, reviews, comments."""
    return await contributions.of_user(session, name=name)


@router.get("/contributors", operation_id="list_contributors")
async def list_contributors(
    session: SessionDep,
    page: PageDep,
    kind: Annotated[contributions.Kind, Query()] = "all",
) -> Page[ContributorOut]:
    """Contributors ranked by points — authors, replicators and reviewers alike."""
    items, total = await contributions.ranking(
        session, kind=kind, limit=page.limit, offset=page.offset
    )
    return make_page(items, params=page, total=total)
