"""Typed dependencies: the request's session, settings, and who is calling.

One session per request. It commits once, after the route returned and before the response is
sent (``scope="function"``), so a failed commit is an error answer, never a false success.
Requests that may write begin with ``BEGIN IMMEDIATE`` on SQLite.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import Database, utcnow
from app.core.errors import Forbidden, Unauthorized
from app.core.security import USER_TOKEN_PREFIX, WORKER_TOKEN_PREFIX, hash_token, tokens_match
from app.users.models import ApiToken, Role, User, WorkerToken

logger = logging.getLogger(__name__)

_LAST_USED_GRANULARITY = dt.timedelta(minutes=10)


# ``async def`` although they never await: FastAPI runs a plain ``def`` dependency in the
# threadpool, and these two are in nearly every request -- each thread hop cost a worker-protocol
# call more than its SQL did (docs/performance.md, "Profile findings").
async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_database)]


async def get_session(request: Request, db: DatabaseDep) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: commit once on success, roll back on any error.

    A request that may write gets a write session, whose transaction begins at its first
    statement (SQLite: ``BEGIN IMMEDIATE``): an upload streamed before that holds no lock."""
    reads_only = request.method in ("GET", "HEAD", "OPTIONS")
    async with db.sessionmaker() if reads_only else db.write_session() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            for undo in session.info.pop("after_rollback", []):
                try:
                    await undo()
                except Exception:
                    logger.exception("cleanup after rollback failed")
            raise
        finally:
            callbacks = session.info.pop("after_commit", [])
        for callback in callbacks:
            callback()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run ``callback()`` once the request's transaction committed (e.g. wake long-polls)."""
    session.info.setdefault("after_commit", []).append(callback)


def after_rollback(session: AsyncSession, undo: Callable[[], Awaitable[None]]) -> None:
    """Undo a side effect outside the database (e.g. a stored blob) if the transaction fails."""
    session.info.setdefault("after_rollback", []).append(undo)


@dataclass(frozen=True)
class WorkerPrincipal:
    token_id: int
    name: str
    labels: dict[str, str]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def optional_user(request: Request, db: DatabaseDep) -> User | None:
    """The calling user, or None for an anonymous request; a bad token is always 401.

    Looked up in its own short read session: the request's session stays unopened until the
    route needs it, so a long upload never holds a database connection or SQLite's write lock.
    """
    token = _bearer(request)
    if token is None:
        return None
    if token.startswith(WORKER_TOKEN_PREFIX):
        raise Forbidden("worker tokens are accepted only on /v1/worker routes")
    if not token.startswith(USER_TOKEN_PREFIX):
        raise Unauthorized("the bearer token is not a Reprise user token")
    async with db.sessionmaker() as session:
        row = (
            await session.execute(
                select(ApiToken, User)
                .join(User, User.id == ApiToken.user_id)
                .where(ApiToken.token_hash == hash_token(token))
            )
        ).first()
    if row is None:
        raise Unauthorized("the bearer token is unknown or revoked")
    api_token, user = row
    if not tokens_match(api_token.token_hash, token) or api_token.revoked_at is not None:
        raise Unauthorized("the bearer token is unknown or revoked")
    if user.disabled_at is not None:
        raise Unauthorized("this account is disabled")
    now = utcnow()
    if api_token.last_used_at is None or now - api_token.last_used_at > _LAST_USED_GRANULARITY:
        await _touch_token(db, api_token.id, now)
    request.state.user_id = user.id
    return user


async def _touch_token(db: Database, token_id: int, now: dt.datetime) -> None:
    # Its own short write, so a read-only request never upgrades its transaction to a write.
    try:
        async with db.session(write=True) as s:
            await s.execute(
                update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
            )
    except Exception:  # best effort: a busy database must not fail the request
        logger.warning("could not record token use", exc_info=True)


async def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise Unauthorized()
    return user


async def current_maintainer(user: Annotated[User, Depends(current_user)]) -> User:
    if user.role != Role.maintainer.value:
        raise Forbidden("this action needs the maintainer role")
    return user


async def current_worker(request: Request, db: DatabaseDep) -> WorkerPrincipal:
    """The calling worker (own short session: a long-poll must not hold a connection)."""
    token = _bearer(request)
    if token is None:
        raise Unauthorized("a worker token is required")
    if token.startswith(USER_TOKEN_PREFIX):
        raise Forbidden("user tokens are not accepted on the worker API; create a worker token")
    if not token.startswith(WORKER_TOKEN_PREFIX):
        raise Unauthorized("the bearer token is not a Reprise worker token")
    async with db.sessionmaker() as session:
        worker = (
            await session.execute(
                select(WorkerToken).where(WorkerToken.token_hash == hash_token(token))
            )
        ).scalar_one_or_none()
    if (
        worker is None
        or worker.revoked_at is not None
        or not tokens_match(worker.token_hash, token)
    ):
        raise Unauthorized("the worker token is unknown or revoked")
    return WorkerPrincipal(
        token_id=worker.id,
        name=worker.name,
        labels={str(k): str(v) for k, v in worker.labels.items()},
    )


OptionalUser = Annotated[User | None, Depends(optional_user)]
CurrentUser = Annotated[User, Depends(current_user)]
Maintainer = Annotated[User, Depends(current_maintainer)]
CurrentWorker = Annotated[WorkerPrincipal, Depends(current_worker)]
