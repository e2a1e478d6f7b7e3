"""The Jinja2 environment of the pages: autoescaping, number and date filters, link helpers."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.scoring.explain import decimals_for, fmt

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
VERDICT_LABELS = {
    "reproduced": "reproduced",
    "exceeded": "exceeded",
    "not_reproduced": "not reproduced",
    "inconclusive": "inconclusive",
    "insufficient_data": "insufficient data",
}


def number(x: float | None, decimals: int = 3) -> str:
    """A number with fixed decimals and a real minus sign; an em dash when missing."""
    if x is None or not isinstance(x, int | float) or not math.isfinite(x):
        return "—"
    return fmt(float(x), decimals)


def percent(p: float | None) -> str:
    return "—" if p is None else f"{100 * p:.0f}%"


def date(value: dt.datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d")


def when(value: dt.datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def verdict_label(verdict: str | None) -> str:
    return VERDICT_LABELS.get(verdict or "", verdict or "not scored")


def _static_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC.glob("*")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(number=number, percent=percent, date=date, when=when)
    env.filters["verdict_label"] = verdict_label
    env.globals.update(decimals_for=decimals_for, static_version=_static_version())
    return env


ENV = _environment()


def url_with(request: Request, **changes: Any) -> str:
    """The current page's URL with some query parameters changed (None or "" removes one)."""
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    for key, value in changes.items():
        if value is None or value == "" or value == []:
            params.pop(key, None)
        elif isinstance(value, list | tuple):
            params[key] = [str(v) for v in value]
        else:
            params[key] = [str(value)]
    query = urlencode([(k, v) for k, vs in params.items() for v in vs])
    return request.url.path + (f"?{query}" if query else "")


def render(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """A page: the template rendered with ``context`` plus the request and link helpers."""
    html = ENV.get_template(template).render(
        request=request, url_with=lambda **kw: url_with(request, **kw), **context
    )
    return HTMLResponse(html, status_code=status_code)
