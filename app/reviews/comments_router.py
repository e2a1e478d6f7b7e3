"""Threaded comments on submissions; moderation by maintainers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.core.deps import CurrentUser, Maintainer, OptionalUser, SessionDep, SettingsDep
from app.core.pagination import Page, PageDep, make_page
from app.reviews import comments, service
from app.reviews.models import Comment
from app.reviews.schemas import CommentCreate, CommentOut, CommentUpdate, HideIn
from app.submissions import repository as submissions
from app.users.models import User

router = APIRouter(tags=["comments"])


async def _one(session: SessionDep, comment: Comment, viewer: User | None) -> CommentOut:
    submission = await submissions.get_submission(session, comment.submission_id)
    assert submission is not None
    nodes = await comments.views(session, [comment], submission=submission, viewer=viewer)
    return nodes[comment.id]


@router.post(
    "/submissions/{submission_id}/comments",
    status_code=status.HTTP_201_CREATED,
    operation_id="post_comment",
)
async def post_comment(
    submission_id: int,
    body: CommentCreate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> CommentOut:
    """Start a thread, or reply with ``parent_id``. Markdown; raw HTML is shown as text.
    At most ``quotas.comments_per_hour`` per user (429 with Retry-After beyond)."""
    comment = await comments.post(
        session,
        user=user,
        submission_id=submission_id,
        body=body.body,
        parent_id=body.parent_id,
        per_hour=settings.quotas.comments_per_hour,
    )
    return await _one(session, comment, user)


@router.get("/submissions/{submission_id}/comments", operation_id="list_comments")
async def list_comments(
    submission_id: int,
    session: SessionDep,
    page: PageDep,
    user: OptionalUser,
    version: Annotated[
        int | None, Query(ge=1, description="threads started on this version")
    ] = None,
) -> Page[CommentOut]:
    """Top-level threads, oldest first, paginated; each with its replies nested."""
    submission = await service.readable_submission(session, submission_id=submission_id, user=user)
    items, total = await comments.tree(
        session,
        submission=submission,
        viewer=user,
        version=version,
        limit=page.limit,
        offset=page.offset,
    )
    return make_page(items, params=page, total=total)


@router.patch("/comments/{comment_id}", operation_id="edit_comment")
async def edit_comment(
    comment_id: int, body: CommentUpdate, user: CurrentUser, session: SessionDep
) -> CommentOut:
    """Rewrite one's comment within 15 minutes of posting; it shows as edited."""
    comment = await comments.edit(session, user=user, comment_id=comment_id, body=body.body)
    return await _one(session, comment, user)


@router.post("/comments/{comment_id}/hide", operation_id="hide_comment")
async def hide_comment(
    comment_id: int, body: HideIn, user: Maintainer, session: SessionDep
) -> CommentOut:
    """Hide a comment (maintainers): its body goes, "hidden by a maintainer: reason" stays."""
    comment = await comments.hide(session, actor=user, comment_id=comment_id, reason=body.reason)
    return await _one(session, comment, user)


@router.post("/comments/{comment_id}/unhide", operation_id="unhide_comment")
async def unhide_comment(comment_id: int, user: Maintainer, session: SessionDep) -> CommentOut:
    comment = await comments.unhide(session, actor=user, comment_id=comment_id)
    return await _one(session, comment, user)
