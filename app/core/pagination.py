"""The one list envelope: ``{items, pagination}`` with a clamped ``limit``."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel

T = TypeVar("T")


class PaginationInfo(BaseModel):
    limit: int
    offset: int
    total: int
    next_offset: int | None


class Page(BaseModel, Generic[T]):
    items: list[T]
    pagination: PaginationInfo


class PageParams(BaseModel):
    limit: int
    offset: int


async def page_params(  # async: a plain ``def`` dependency costs a threadpool hop per request
    request: Request,
    limit: Annotated[int | None, Query(ge=1, description="items per page (clamped)")] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> PageParams:
    """Read ``limit``/``offset``; ``limit`` defaults and is clamped by the settings."""
    settings = request.app.state.settings
    wanted = limit if limit is not None else settings.page_limit_default
    return PageParams(limit=min(wanted, settings.page_limit_max), offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]


def make_page(items: list[T], *, params: PageParams, total: int) -> Page[T]:
    """Wrap one page of items with its pagination block."""
    end = params.offset + len(items)
    return Page[T](
        items=items,
        pagination=PaginationInfo(
            limit=params.limit,
            offset=params.offset,
            total=total,
            next_offset=end if end < total else None,
        ),
    )
