"""Production refuses secrets that would let anyone predict the fresh seeds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.core.config import DEV_SECRET, Settings, normalise_database_url


@pytest.mark.parametrize("secret", [DEV_SECRET, "", "short-but-not-default"])
def test_production_refuses_weak_secrets(secret: str) -> None:
    with pytest.raises(ValidationError, match="REPRISE_SECRET_KEY"):
        Settings(environment="production", secret_key=secret)


def test_production_accepts_a_long_random_secret() -> None:
    settings = Settings(environment="production", secret_key="a" * 16 + "0123456789abcdef" * 2)
    assert settings.environment == "production"


def test_plain_database_urls_get_async_drivers() -> None:
    assert normalise_database_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_database_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_database_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
