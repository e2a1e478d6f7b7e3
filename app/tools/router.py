"""Statistics tools for researchers: compare claimed and reproduced numbers, plan seeds."""

from __future__ import annotations

import functools

import anyio
from fastapi import APIRouter

from app.core.deps import CurrentUser
from app.tools import service
from app.tools.schemas import CompareRequest, CompareResponse, PowerRequest, PowerResponse

router = APIRouter(prefix="/v1/tools", tags=["tools"])


@router.post("/compare", operation_id="tools_compare")
async def compare(body: CompareRequest, user: CurrentUser) -> CompareResponse:
    """The verdict Reprise would give: per metric, and for the claim when several are given."""
    return await anyio.to_thread.run_sync(functools.partial(service.compare, body))


@router.post("/power", operation_id="tools_power")
async def power(body: PowerRequest, user: CurrentUser) -> PowerResponse:
    """TOST power for a number of fresh seeds, and the seeds needed to reach a target power."""
    return await anyio.to_thread.run_sync(functools.partial(service.power, body))
