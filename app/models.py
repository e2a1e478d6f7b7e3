"""Every table of the service, imported in one place for Alembic and the metadata."""

import app.challenges.models
import app.leaderboard.models
import app.reviews.models
import app.webhooks.models  # noqa: F401 - feature tables register themselves on Base
from app.audit.models import AuditEvent
from app.benchmarks.models import Benchmark
from app.core.db import Base
from app.jobs.models import Job, RunResult
from app.submissions.models import Submission, SubmissionTag, SubmissionVersion
from app.users.models import ApiToken, User, WorkerToken
from app.verdicts.models import Verdict, VerdictMetric

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "Benchmark",
    "Job",
    "RunResult",
    "Submission",
    "SubmissionTag",
    "SubmissionVersion",
    "User",
    "Verdict",
    "VerdictMetric",
    "WorkerToken",
]
