"""Queries about users and tokens."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.users.models import ApiToken, User, WorkerToken


async def get_user_by_name(session: AsyncSession, name: str) -> User | None:
    return (await session.execute(select(User).where(User.name == name))).scalar_one_or_none()


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def list_tokens(session: AsyncSession, user_id: int) -> list[ApiToken]:
    rows = await session.execute(
        select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)
    )
    return list(rows.scalars())


async def get_token(session: AsyncSession, token_id: int) -> ApiToken | None:
    return await session.get(ApiToken, token_id)


async def list_workers(
    session: AsyncSession, *, limit: int, offset: int
) -> tuple[list[WorkerToken], int]:
    total = (await session.execute(select(func.count()).select_from(WorkerToken))).scalar_one()
    rows = await session.execute(
        select(WorkerToken).order_by(WorkerToken.id).limit(limit).offset(offset)
    )
    return list(rows.scalars()), total


async def get_worker(session: AsyncSession, worker_id: int) -> WorkerToken | None:
    return await session.get(WorkerToken, worker_id)
