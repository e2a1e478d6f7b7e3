"""The queries behind the database gauges of ``/metrics``: each one GROUP BY over an index.

- the queue: ``job`` rows queued or running (at most ``quotas.queue_cap`` plus the running ones),
  found through ``ix_job_status_lease_expires_at``;
- verdicts: ``verdict`` grouped by ``ix_verdict_benchmark_id_claim_verdict`` — both grouped
  columns are in that index, so PostgreSQL can answer from the index alone.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.jobs.models import Job, JobStatus
from app.ops.metrics import DatabaseSnapshot
from app.verdicts.models import Verdict


async def database_snapshot(
    session: AsyncSession, *, benchmark_slugs: dict[int, str], now: dt.datetime
) -> DatabaseSnapshot:
    """Queue depth, the oldest wait and verdict counts, as of ``now``."""
    snapshot = DatabaseSnapshot()
    queue = (
        select(Job.requires, Job.status, func.count(), func.min(Job.updated_at))
        .where(Job.status.in_([JobStatus.queued.value, JobStatus.running.value]))
        .group_by(Job.requires, Job.status)
    )
    for requires, status, n, oldest in await session.execute(queue):
        snapshot.queue[(requires, status)] = int(n)
        if status == JobStatus.queued.value and oldest is not None:
            snapshot.oldest_wait_s[requires] = max((now - _aware(oldest)).total_seconds(), 0.0)
    verdicts = select(Verdict.benchmark_id, Verdict.claim_verdict, func.count()).group_by(
        Verdict.benchmark_id, Verdict.claim_verdict
    )
    for benchmark_id, verdict, n in await session.execute(verdicts):
        key = (benchmark_slugs.get(benchmark_id, str(benchmark_id)), verdict)
        snapshot.verdicts[key] = snapshot.verdicts.get(key, 0) + int(n)  # versions of a slug
    return snapshot


def _aware(value: dt.datetime) -> dt.datetime:
    # An aggregate skips the column's type on SQLite: min() comes back naive (stored as UTC).
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
