"""Tokens and derived secrets: random, shown once, stored as sha256, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

USER_TOKEN_PREFIX = "rpu_"  # noqa: S105 - a prefix, not a secret
WORKER_TOKEN_PREFIX = "rpw_"  # noqa: S105


def new_token(prefix: str) -> str:
    """A fresh bearer token: a kind prefix and 256 random bits."""
    return prefix + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token. Tokens carry 256 bits, so a plain digest suffices."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_match(stored_hash: str, presented: str) -> bool:
    """Constant-time comparison of a stored hash with a presented token."""
    return hmac.compare_digest(stored_hash, hash_token(presented))


def display_prefix(token: str) -> str:
    """What may be shown of a token later (to tell tokens apart), never enough to use it."""
    return token[:10]


def derive_seed(secret: str, *parts: object) -> int:
    """A 31-bit seed that nobody can guess before the submission exists (HMAC of its ids)."""
    message = ":".join(str(p) for p in parts).encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF
