"""Turn pydantic validation errors into messages a person can act on: ``field.path: what``."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


def describe_errors(exc: ValidationError, *, prefix: str = "") -> list[dict[str, Any]]:
    """One ``{loc, msg}`` per problem, with dotted field paths (``claim.metrics.acc.mean``)."""
    out: list[dict[str, Any]] = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ()) if not str(p).startswith("function-"))
        msg = str(err.get("msg", "invalid"))
        if err.get("type") == "extra_forbidden":
            msg = "unknown key (check its spelling; unknown keys are not allowed)"
        elif err.get("type") == "missing":
            msg = "required but missing"
        out.append(
            {"loc": (prefix + loc) if loc else (prefix.rstrip(".") or "manifest"), "msg": msg}
        )
    return out


def first_problem(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "invalid"
    e = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{e['loc']}: {e['msg']}{more}"
