"""Account rules: registration, tokens shown once, revocation, worker tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.db import utcnow
from app.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.core.security import (
    USER_TOKEN_PREFIX,
    WORKER_TOKEN_PREFIX,
    display_prefix,
    hash_token,
    new_token,
)
from app.users import repository
from app.users.models import ApiToken, Role, User, WorkerToken

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,38}[a-z0-9]$")
LABEL_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class IssuedToken:
    """A token together with its only plaintext copy, returned once."""

    token: ApiToken
    plaintext: str


@dataclass(frozen=True)
class IssuedWorkerToken:
    worker: WorkerToken
    plaintext: str


def validate_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise ValidationFailed(
            "name must be 3-40 characters of lowercase letters, digits, '-' or '_', "
            "starting and ending with a letter or digit",
            errors=[{"loc": "name", "msg": "invalid user name"}],
        )


async def create_user(
    session: AsyncSession,
    *,
    name: str,
    role: Role = Role.member,
    display_name: str | None = None,
    actor_id: int | None = None,
) -> IssuedToken:
    """Create an account and its first token (the plaintext is shown once)."""
    validate_name(name)
    if await repository.get_user_by_name(session, name) is not None:
        raise Conflict(f"the user name {name!r} is taken")
    user = User(name=name, role=role.value, display_name=display_name)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent registration won the name
        raise Conflict(f"the user name {name!r} is taken") from exc
    issued = await issue_token(session, user=user, name="default")
    audit.record(
        session,
        actor_type="user" if actor_id else "system",
        actor_id=actor_id or user.id,
        action="user.create",
        object_type="user",
        object_id=user.id,
        detail={"name": name, "role": role.value},
    )
    return issued


async def issue_token(session: AsyncSession, *, user: User, name: str) -> IssuedToken:
    """A new API token for ``user``."""
    plaintext = new_token(USER_TOKEN_PREFIX)
    token = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=hash_token(plaintext),
        prefix=display_prefix(plaintext),
    )
    session.add(token)
    await session.flush()
    audit.record(
        session,
        actor_type="user",
        actor_id=user.id,
        action="token.create",
        object_type="api_token",
        object_id=token.id,
        detail={"name": name},
    )
    return IssuedToken(token=token, plaintext=plaintext)


async def revoke_token(session: AsyncSession, *, user: User, token_id: int) -> ApiToken:
    """Revoke one of the caller's tokens (maintainers may revoke anyone's)."""
    token = await repository.get_token(session, token_id)
    if token is None or (token.user_id != user.id and user.role != Role.maintainer.value):
        raise NotFound(f"no token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(
            session,
            actor_type="user",
            actor_id=user.id,
            action="token.revoke",
            object_type="api_token",
            object_id=token.id,
        )
    return token


def parse_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if not LABEL_RE.match(key) or not LABEL_RE.match(value):
            raise ValidationFailed(
                f"label {key}={value} is invalid: keys and values are 1-64 of [A-Za-z0-9._-]",
                errors=[{"loc": f"labels.{key}", "msg": "invalid label"}],
            )
    if len(labels) > 16:
        raise ValidationFailed("at most 16 labels", errors=[{"loc": "labels", "msg": "too many"}])
    return dict(labels)


async def create_worker_token(
    session: AsyncSession, *, actor: User, name: str, labels: dict[str, str]
) -> IssuedWorkerToken:
    """A worker token with its registered labels (maintainers only)."""
    if actor.role != Role.maintainer.value:
        raise Forbidden("only maintainers create worker tokens")
    plaintext = new_token(WORKER_TOKEN_PREFIX)
    worker = WorkerToken(
        name=name,
        token_hash=hash_token(plaintext),
        prefix=display_prefix(plaintext),
        labels=parse_labels(labels),
        created_by_id=actor.id,
    )
    session.add(worker)
    await session.flush()
    audit.record(
        session,
        actor_type="user",
        actor_id=actor.id,
        action="worker.create",
        object_type="worker_token",
        object_id=worker.id,
        detail={"name": name, "labels": worker.labels},
    )
    return IssuedWorkerToken(worker=worker, plaintext=plaintext)


async def revoke_worker_token(session: AsyncSession, *, actor: User, worker_id: int) -> WorkerToken:
    worker = await repository.get_worker(session, worker_id)
    if worker is None:
        raise NotFound(f"no worker token {worker_id}")
    if worker.revoked_at is None:
        worker.revoked_at = utcnow()
        audit.record(
            session,
            actor_type="user",
            actor_id=actor.id,
            action="worker.revoke",
            object_type="worker_token",
            object_id=worker.id,
        )
    return worker
