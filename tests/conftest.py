"""Shared fixtures: a migrated database per test (SQLite always, PostgreSQL when
``REPRISE_TEST_POSTGRES_URL`` is set), an app with its lifespan, clients and users.

Databases are migrated with Alembic once per session (a real upgrade, then ``alembic check``
semantics are covered by tests/test_migrations.py); each test then gets a clean copy: SQLite
copies a migrated template file, PostgreSQL truncates every table.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import Settings, normalise_database_url
from app.main import create_app
from tests.helpers import migrate, reset_database

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_BENCHMARKS = ROOT / "tests" / "fixtures" / "benchmarks"
POSTGRES_URL = os.environ.get("REPRISE_TEST_POSTGRES_URL", "")


def _backends() -> list[Any]:
    params: list[Any] = ["sqlite"]
    if POSTGRES_URL:
        params.append(pytest.param("postgresql", marks=pytest.mark.postgres))
    return params


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    migrate(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_migrated() -> str:
    reset_database(POSTGRES_URL)
    return normalise_database_url(POSTGRES_URL)


async def _truncate(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        tables = (
            (
                await conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename <> 'alembic_version'"
                    )
                )
            )
            .scalars()
            .all()
        )
        if tables:
            quoted = ", ".join(f'"{t}"' for t in tables)
            await conn.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "reprise.sqlite3"
        shutil.copy(template, target)
        yield f"sqlite+aiosqlite:///{target}"
    else:
        url: str = request.getfixturevalue("postgres_migrated")
        asyncio.run(_truncate(url))
        yield url


@pytest.fixture
def benchmarks_dir() -> Path:
    return FIXTURE_BENCHMARKS


@pytest.fixture
def settings(database_url: str, tmp_path: Path, benchmarks_dir: Path) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        data_dir=tmp_path / "var",
        benchmarks_dir=benchmarks_dir,
        allow_unsandboxed=True,
        log_level="WARNING",
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@dataclass
class Account:
    name: str
    token: str
    id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def _make_user(app: FastAPI, name: str, role: str) -> Account:
    from app.users.models import Role
    from app.users.service import create_user

    async with app.state.db.session(write=True) as session:
        issued = await create_user(session, name=name, role=Role(role))
    return Account(name=name, token=issued.plaintext, id=issued.token.user_id)


@pytest.fixture
async def alice(app: FastAPI) -> Account:
    return await _make_user(app, "alice", "member")


@pytest.fixture
async def bob(app: FastAPI) -> Account:
    return await _make_user(app, "bob", "member")


@pytest.fixture
async def maintainer(app: FastAPI) -> Account:
    return await _make_user(app, "maya", "maintainer")


@pytest.fixture
async def worker_token(app: FastAPI, maintainer: Account) -> str:
    from app.users.service import create_worker_token

    async with app.state.db.session(write=True) as session:
        from app.users.repository import get_user

        actor = await get_user(session, maintainer.id)
        assert actor is not None
        issued = await create_worker_token(session, actor=actor, name="test-worker", labels={})
    return issued.plaintext
