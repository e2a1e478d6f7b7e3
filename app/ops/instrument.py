"""Feed the job metrics from what the ORM flushes, counted once the transaction commits.

A job changes on several paths — a worker's result, an expiry found by the lease long-poll or by
the periodic sweep, a release, a cancellation — in ``app.jobs.service``. Rather than a metrics
call on each path (and one more to forget on the next path), the session factory of the app's
database is tagged with its ``Metrics`` and three session events watch the rows themselves:

- a new ``run_result`` row: one attempt result (``reprise_job_results_total{outcome}``); one
  without a lease token is the server's own record of an expired lease
  (``reprise_lease_expiries_total``) — the expiry path writes exactly that;
- a ``job`` whose ``status`` changed to a final one: ``reprise_job_duration_seconds{outcome}``,
  from its first lease (``started_at``) to ``finished_at``. Jobs cancelled before any lease
  have no duration and are not observed;
- nothing is counted until the transaction commits, and a rollback drops what it had seen.

Bulk ``update()`` statements are not seen (the queue uses them only to cancel jobs that never
ran). Sessions of other databases — the CLI's, the tests' own — carry no metrics and cost one
dictionary look-up per flush.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, UOWTransaction

from app.core.db import Database
from app.jobs.models import FINAL_STATUSES, Job, RunResult
from app.ops.metrics import Metrics

METRICS_KEY = "reprise.metrics"
PENDING_KEY = "reprise.metrics.pending"

Pending = list[tuple[str, str, float]]  # (kind, outcome, seconds)


def instrument_database(db: Database, metrics: Metrics) -> None:
    """Count the job changes committed through ``db``'s sessions into ``metrics``."""
    db.sessionmaker.configure(info={METRICS_KEY: metrics})
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)


def _after_flush(session: Session, _flush_context: UOWTransaction) -> None:
    if METRICS_KEY not in session.info:
        return
    pending: Pending = session.info.setdefault(PENDING_KEY, [])
    for obj in session.new:
        if isinstance(obj, RunResult):
            pending.append(("result", obj.outcome, 0.0))
            if obj.lease_token is None:
                pending.append(("expiry", obj.outcome, 0.0))
    for obj in session.dirty:
        if isinstance(obj, Job) and _became_final(obj):
            assert obj.started_at is not None and obj.finished_at is not None
            seconds = (obj.finished_at - obj.started_at).total_seconds()
            pending.append(("finished", obj.status, seconds))


def _became_final(job: Job) -> bool:
    if job.status not in FINAL_STATUSES or job.started_at is None or job.finished_at is None:
        return False
    return bool(inspect(job).attrs.status.history.added)


def _after_commit(session: Session) -> None:
    pending: Pending | None = session.info.pop(PENDING_KEY, None)
    metrics: Any = session.info.get(METRICS_KEY)
    if not pending or not isinstance(metrics, Metrics):
        return
    for kind, outcome, seconds in pending:
        if kind == "result":
            metrics.record_job_result(outcome)
        elif kind == "expiry":
            metrics.record_lease_expiry()
        else:
            metrics.record_job_finished(outcome, seconds)


def _after_rollback(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)
