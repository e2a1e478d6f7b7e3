"""Threaded comments on a submission: post, reply, edit for 15 minutes, hide, read as a tree.

Each comment is labelled with the version that was the latest when it was posted, so the
discussion of earlier versions stays and says which version it was about. A hidden comment
keeps its place in the thread and its reason; its body is shown to maintainers only.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.db import utcnow
from app.core.errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from app.reviews import matching, repository
from app.reviews.markdown import render_markdown
from app.reviews.models import Comment
from app.reviews.schemas import CommentAuthor, CommentOut, HiddenOut
from app.reviews.service import readable_submission, version_of
from app.submissions import access
from app.submissions.models import Submission
from app.users.models import User
from app.webhooks import events

EDIT_WINDOW = dt.timedelta(minutes=15)
HOUR = dt.timedelta(hours=1)
MAX_DEPTH = 8


def hidden_notice(reason: str) -> str:
    return f"hidden by a maintainer: {reason}"


async def post(
    session: AsyncSession,
    *,
    user: User,
    submission_id: int,
    body: str,
    parent_id: int | None,
    per_hour: int,
) -> Comment:
    """A new thread, or a reply to ``parent_id`` (whose author is notified).

    At most ``per_hour`` comments per user in any hour (a flood is answered 429 with the
    seconds until the oldest of them leaves the window)."""
    submission = await readable_submission(session, submission_id=submission_id, user=user)
    recent = await repository.comment_times_since(session, user.id, utcnow() - HOUR)
    if len(recent) >= per_hour:
        retry_after = int((recent[0] + HOUR - utcnow()).total_seconds()) + 1
        raise TooManyRequests(
            f"you have posted {len(recent)} comments in the last hour, the limit is {per_hour}",
            retry_after=max(retry_after, 1),
        )
    parent = None
    if parent_id is not None:
        parent = await repository.get_comment(session, parent_id)
        if parent is None or parent.submission_id != submission.id:
            raise ValidationFailed(
                f"no comment {parent_id} on submission {submission.id} to reply to",
                errors=[{"loc": "parent_id", "msg": "unknown comment"}],
            )
        if parent.depth + 1 > MAX_DEPTH:
            raise ValidationFailed(
                f"replies nest at most {MAX_DEPTH} levels; reply higher up the thread",
                errors=[{"loc": "parent_id", "msg": "too deep"}],
            )
    version = await version_of(session, submission, None)
    comment = Comment(
        submission_id=submission.id,
        version_id=version.id,
        author_id=user.id,
        parent_id=parent.id if parent else None,
        thread_id=(parent.thread_id or parent.id) if parent else None,
        depth=parent.depth + 1 if parent else 0,
        body=body,
        body_html=render_markdown(body),
    )
    session.add(comment)
    await session.flush()
    if parent is not None and parent.author_id != user.id:
        await events.emit(
            session,
            user_ids=[parent.author_id],
            event_name=events.COMMENT_REPLY,
            data={
                "comment_id": comment.id,
                "parent_id": parent.id,
                "submission_id": submission.id,
                "author": user.name,
                "links": {"thread": f"/v1/submissions/{submission.id}/comments"},
            },
        )
    return comment


async def edit(session: AsyncSession, *, user: User, comment_id: int, body: str) -> Comment:
    """The author rewrites a comment within 15 minutes of posting it; it is marked edited."""
    comment = await repository.get_comment(session, comment_id)
    if comment is None or comment.author_id != user.id:
        raise NotFound(f"no comment {comment_id}")
    await readable_submission(session, submission_id=comment.submission_id, user=user)
    if comment.hidden_at is not None:
        raise Conflict(f"comment {comment_id} was hidden by a maintainer and cannot be edited")
    now = utcnow()
    if now - comment.created_at > EDIT_WINDOW:
        raise Conflict(
            f"comments can be edited for {EDIT_WINDOW.seconds // 60} minutes after posting; "
            "post a reply instead"
        )
    comment.body = body
    comment.body_html = render_markdown(body)
    comment.edited_at = now
    return comment


async def _moderated(session: AsyncSession, comment_id: int) -> Comment:
    comment = await repository.get_comment(session, comment_id)
    if comment is None:
        raise NotFound(f"no comment {comment_id}")
    return comment


async def hide(session: AsyncSession, *, actor: User, comment_id: int, reason: str) -> Comment:
    """A maintainer hides a comment; the reason stays visible, the body goes."""
    comment = await _moderated(session, comment_id)
    comment.hidden_at = utcnow()
    comment.hidden_by_id = actor.id
    comment.hidden_reason = reason
    audit.record(
        session,
        actor_type="user",
        actor_id=actor.id,
        action="comment.hide",
        object_type="comment",
        object_id=comment.id,
        detail={
            "submission_id": comment.submission_id,
            "author_id": comment.author_id,
            "reason": reason,
        },
    )
    return comment


async def unhide(session: AsyncSession, *, actor: User, comment_id: int) -> Comment:
    """A maintainer shows a hidden comment again."""
    comment = await _moderated(session, comment_id)
    if comment.hidden_at is None:
        return comment
    audit.record(
        session,
        actor_type="user",
        actor_id=actor.id,
        action="comment.unhide",
        object_type="comment",
        object_id=comment.id,
        detail={"submission_id": comment.submission_id, "was": comment.hidden_reason},
    )
    comment.hidden_at = None
    comment.hidden_by_id = None
    comment.hidden_reason = None
    return comment


async def views(
    session: AsyncSession, comments: list[Comment], *, submission: Submission, viewer: User | None
) -> dict[int, CommentOut]:
    """Comment id → its view (replies not attached); bodies of hidden ones for maintainers."""
    people = await repository.users_by_id(session, [c.author_id for c in comments])
    numbers = await repository.version_numbers(session, [c.version_id for c in comments])
    authors = await matching.authors_of(session, submission)
    moderator = access.is_maintainer(viewer)
    out: dict[int, CommentOut] = {}
    for c in comments:
        person = people.get(c.author_id)
        shown = c.hidden_at is None or moderator
        out[c.id] = CommentOut(
            id=c.id,
            parent_id=c.parent_id,
            thread_id=c.thread_id or c.id,
            depth=c.depth,
            version=numbers.get(c.version_id, 0),
            author=CommentAuthor(
                name=person.name if person else "(unknown)",
                display_name=person.display_name if person else None,
                role=person.role if person else "member",
                is_submission_author=c.author_id in authors,
            ),
            body=c.body if shown else None,
            body_html=c.body_html if shown else None,
            created_at=c.created_at,
            edited=c.edited_at is not None,
            edited_at=c.edited_at,
            editable_until=c.created_at + EDIT_WINDOW,
            hidden=(
                HiddenOut(
                    reason=c.hidden_reason or "",
                    notice=hidden_notice(c.hidden_reason or ""),
                    at=c.hidden_at,
                )
                if c.hidden_at is not None
                else None
            ),
        )
    return out


async def tree(
    session: AsyncSession,
    *,
    submission: Submission,
    viewer: User | None,
    version: int | None,
    limit: int,
    offset: int,
) -> tuple[list[CommentOut], int]:
    """One page of top-level threads, oldest first, each with all its replies nested."""
    version_id = (await version_of(session, submission, version)).id if version else None
    tops, total = await repository.top_level_comments(
        session, submission.id, version_id=version_id, limit=limit, offset=offset
    )
    replies = await repository.replies_in_threads(session, [c.id for c in tops])
    nodes = await views(session, [*tops, *replies], submission=submission, viewer=viewer)
    for reply in replies:  # in id order, so a parent's node exists before its children's
        parent = nodes.get(reply.parent_id or 0)
        if parent is not None:
            parent.replies.append(nodes[reply.id])
    return [nodes[c.id] for c in tops], total
