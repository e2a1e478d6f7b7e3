"""Queries about catalog rows."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.benchmarks.models import Benchmark


async def all_benchmarks(session: AsyncSession) -> list[Benchmark]:
    """Every recorded benchmark version, including those no longer on disk (old versions keep
    serving the submissions that were made on them)."""
    return list((await session.execute(select(Benchmark).order_by(Benchmark.id))).scalars())
