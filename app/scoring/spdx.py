"""SPDX license identifiers and simple license expressions ("A OR B", "A AND B", "A WITH exc")."""

from __future__ import annotations

import re

from app.scoring._spdx_ids import EXCEPTION_IDS, LICENSE_IDS

_LICENSES = frozenset(i.lower() for i in LICENSE_IDS)
_EXCEPTIONS = frozenset(i.lower() for i in EXCEPTION_IDS)
_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def is_license_id(word: str) -> bool:
    """Whether a single word is a listed SPDX license id (an optional trailing '+' allowed)."""
    key = word.lower()
    if key.endswith("+"):
        key = key[:-1]
    return key in _LICENSES


class _Parser:
    """Recursive descent: expr := and (OR and)*; and := with (AND with)*; with := atom [WITH x]."""

    def __init__(self, words: list[str]) -> None:
        self.words = words
        self.pos = 0

    def peek(self) -> str | None:
        return self.words[self.pos] if self.pos < len(self.words) else None

    def take(self) -> str | None:
        word = self.peek()
        self.pos += 1
        return word

    def operator(self, name: str) -> bool:
        word = self.peek()
        if word is not None and word.upper() == name:
            self.pos += 1
            return True
        return False

    def expression(self) -> bool:
        if not self.conjunction():
            return False
        while self.operator("OR"):
            if not self.conjunction():
                return False
        return True

    def conjunction(self) -> bool:
        if not self.with_expression():
            return False
        while self.operator("AND"):
            if not self.with_expression():
                return False
        return True

    def with_expression(self) -> bool:
        if not self.atom():
            return False
        if self.operator("WITH"):
            exception = self.take()
            return exception is not None and exception.lower() in _EXCEPTIONS
        return True

    def atom(self) -> bool:
        word = self.take()
        if word is None:
            return False
        if word == "(":
            return self.expression() and self.take() == ")"
        if word.upper() in ("AND", "OR", "WITH") or word == ")":
            return False
        return is_license_id(word)


def is_spdx_identifier(s: str) -> bool:
    """Whether `s` is a listed SPDX license id or an expression of them with AND, OR, WITH."""
    words = _TOKEN.findall(s.strip())
    if not words:
        return False
    parser = _Parser(words)
    return parser.expression() and parser.pos == len(words)
