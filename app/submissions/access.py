"""Object-level authorisation for submissions: public to read while active; withdrawn ones
only for their owner and maintainers; changes only by the owner. Anything else is a 404, so
ids of other people's objects leak nothing (OWASP API1)."""

from __future__ import annotations

from app.submissions.models import Submission, SubmissionStatus
from app.users.models import Role, User


def is_maintainer(user: User | None) -> bool:
    return user is not None and user.role == Role.maintainer.value


def can_read(submission: Submission, user: User | None) -> bool:
    if submission.status == SubmissionStatus.active.value:
        return True
    return user is not None and (user.id == submission.owner_id or is_maintainer(user))


def can_change(submission: Submission, user: User) -> bool:
    return user.id == submission.owner_id
