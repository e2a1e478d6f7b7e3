"""NUL characters in client text: found anywhere in a JSON-like value, or replaced.

PostgreSQL's text types cannot hold U+0000 (asyncpg: "invalid byte sequence for encoding UTF8:
0x00"), so text that reaches the database must not carry one, on either backend.
"""

from __future__ import annotations

from typing import Any

NUL = "\x00"
REPLACEMENT = "\ufffd"
NUL_MESSAGE = "must not contain NUL characters (\\u0000)"


def has_nul(value: Any) -> bool:
    """True when ``value`` -- a string, or dicts/lists of them, keys included -- holds a NUL."""
    return find_nul(value) is not None


def find_nul(value: Any) -> str | None:
    """The dotted path (``package.title``, ``tags.2``) of the first string in ``value`` -- keys
    included -- that holds a NUL; ``""`` for ``value`` itself; None when there is none."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:  # a loop, not recursion: the nesting of a JSON body is the client's choice
        where, item = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return where
        elif isinstance(item, dict):
            for key, child in item.items():
                path = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and NUL in key:
                    return path.replace(NUL, "\\0")
                stack.append((path, child))
        elif isinstance(item, list | tuple):
            stack.extend((f"{where}.{i}" if where else str(i), v) for i, v in enumerate(item))
    return None


def replace_nul(value: Any) -> Any:
    """``value`` with every NUL of a string replaced by U+FFFD (anything else unchanged)."""
    if isinstance(value, str) and NUL in value:
        return value.replace(NUL, REPLACEMENT)
    return value
