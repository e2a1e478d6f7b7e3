"""Webhook events: queued as delivery rows in the transaction of the change they report.

Services emit with ``emit`` (review received, comment reply). Job and verdict events are
observed on the unit of work instead, so the queue and the statistics step stay unaware of
webhooks: a ``job`` row flushed into a final status is ``job.finished``; a ``verdict`` row
inserted is ``verdict.published`` (and ``challenge.attempt_judged`` when the submission is a
challenge attempt). A rolled-back transaction therefore never notifies anyone. Jobs cancelled
in bulk (withdrawal, a superseding version) are not reported one by one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction

from app.challenges.models import Challenge
from app.core.db import utcnow
from app.jobs.models import FINAL_STATUSES, Job
from app.submissions.models import Submission, SubmissionVersion
from app.verdicts.models import Verdict
from app.webhooks import repository
from app.webhooks.models import DeliveryStatus, WebhookDelivery

JOB_FINISHED = "job.finished"
VERDICT_PUBLISHED = "verdict.published"
REVIEW_RECEIVED = "review.received"
COMMENT_REPLY = "comment.reply"
ATTEMPT_JUDGED = "challenge.attempt_judged"
PING = "ping"
EVENTS = (JOB_FINISHED, VERDICT_PUBLISHED, REVIEW_RECEIVED, COMMENT_REPLY, ATTEMPT_JUDGED)

_ENQUEUED = "reprise_webhooks_enqueued"
_wakers: set[Callable[[], None]] = set()


def register_waker(wake: Callable[[], None]) -> None:
    """Called after a transaction that queued deliveries commits (a delivery loop's nudge)."""
    _wakers.add(wake)


def unregister_waker(wake: Callable[[], None]) -> None:
    _wakers.discard(wake)


def envelope(event_name: str, data: dict[str, Any]) -> dict[str, Any]:
    """The delivered document: ``{id, type, created_at, data}``."""
    return {
        "id": uuid.uuid4().hex,
        "type": event_name,
        "created_at": utcnow().isoformat(),
        "data": data,
    }


def _queue(session: Session, webhook_id: int, event_name: str, data: dict[str, Any]) -> None:
    doc = envelope(event_name, data)
    session.add(
        WebhookDelivery(
            webhook_id=webhook_id,
            event=event_name,
            event_id=doc["id"],
            payload=doc,
            status=DeliveryStatus.pending.value,
            attempts=0,
            next_attempt_at=utcnow(),
            log=[],
        )
    )
    session.info[_ENQUEUED] = True


def enqueue(
    session: Session, *, user_ids: Iterable[int], event_name: str, data: dict[str, Any]
) -> int:
    """Queue one delivery per active webhook of ``user_ids`` subscribed to ``event_name``."""
    with session.no_autoflush:
        hooks = repository.subscribed_webhook_ids(session, sorted(set(user_ids)), event_name)
    for hook_id in hooks:
        _queue(session, hook_id, event_name, data)
    return len(hooks)


async def emit(
    session: AsyncSession, *, user_ids: Iterable[int], event_name: str, data: dict[str, Any]
) -> int:
    """``enqueue`` from async code, in the caller's transaction."""
    ids = list(user_ids)
    return await session.run_sync(
        lambda s: enqueue(s, user_ids=ids, event_name=event_name, data=data)
    )


def queue_ping(session: Session, webhook_id: int) -> None:
    """A ``ping`` to one webhook, whatever it subscribes to."""
    _queue(session, webhook_id, PING, {"message": "pong"})


# --- observed events ----------------------------------------------------------------------


def _became_final(job: Job) -> bool:
    history = inspect(job).attrs.status.history
    if not history.added or history.added[0] not in FINAL_STATUSES:
        return False
    return not history.deleted or history.deleted[0] not in FINAL_STATUSES


def _job_finished(session: Session, job: Job) -> None:
    version = session.get(SubmissionVersion, job.version_id)
    enqueue(
        session,
        user_ids=[job.owner_id],
        event_name=JOB_FINISHED,
        data={
            "job_id": job.id,
            "submission_id": version.submission_id if version else None,
            "version": version.number if version else None,
            "kind": job.kind,
            "seed": job.seed,
            "status": job.status,
            "reason": job.reason,
            "links": {"self": f"/v1/jobs/{job.id}"},
        },
    )


def _verdict_published(session: Session, verdict: Verdict) -> None:
    submission = session.get(Submission, verdict.submission_id)
    version = session.get(SubmissionVersion, verdict.version_id)
    if submission is None or version is None:
        return
    data = {
        "submission_id": submission.id,
        "title": submission.title,
        "version": version.number,
        "claim_verdict": verdict.claim_verdict,
        "quality": verdict.quality,
        "primary_metric": verdict.primary_metric,
        "claimed_mean": verdict.claimed_mean,
        "reproduced_mean": verdict.reproduced_mean,
        "explanation": verdict.explanation,
        "links": {"self": f"/v1/submissions/{submission.id}"},
    }
    enqueue(session, user_ids=[submission.owner_id], event_name=VERDICT_PUBLISHED, data=data)
    if submission.challenge_id is None:
        return
    challenge = session.get(Challenge, submission.challenge_id)
    if challenge is None:
        return
    recipients = {submission.owner_id, challenge.created_by_id}
    if challenge.submission_id is not None:
        source = session.get(Submission, challenge.submission_id)
        if source is not None:
            recipients.add(source.owner_id)
    enqueue(
        session,
        user_ids=recipients,
        event_name=ATTEMPT_JUDGED,
        data={
            **data,
            "challenge_id": challenge.id,
            "challenge_title": challenge.title,
            "links": {
                "self": f"/v1/submissions/{submission.id}",
                "challenge": f"/v1/challenges/{challenge.id}",
            },
        },
    )


@event.listens_for(Session, "before_flush")
def _observe(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    jobs = [o for o in session.dirty if isinstance(o, Job) and _became_final(o)]
    verdicts = [o for o in session.new if isinstance(o, Verdict)]
    if not jobs and not verdicts:
        return
    with session.no_autoflush:
        for job in sorted(jobs, key=lambda j: j.id):
            _job_finished(session, job)
        for verdict in verdicts:
            _verdict_published(session, verdict)


@event.listens_for(Session, "after_commit")
def _wake(session: Session) -> None:
    if session.info.pop(_ENQUEUED, False):
        for wake in list(_wakers):
            wake()


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_ENQUEUED, None)
