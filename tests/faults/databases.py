"""Databases of our own for the long-running suites (chaos, fuzzing, the sandbox corpus).

On PostgreSQL they never use the database of ``REPRISE_TEST_POSTGRES_URL`` itself, whose tables
the per-test fixtures truncate: they create a sibling database on the same server (by name) and
drop and migrate its schema. On SQLite they use a fresh file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import reset_database


@contextlib.contextmanager
def postgres_database(admin_url: str, name: str) -> Iterator[str]:
    """A database ``name`` on the server of ``admin_url`` (created when missing)."""
    import psycopg

    base = admin_url.rsplit("/", 1)[0]
    plain = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{base}/{name}"


@contextlib.contextmanager
def own_database(kind: str, name: str, root: Path, sqlite_template: Path) -> Iterator[str]:
    """``kind`` "sqlite": a copy of the migrated template under ``root``; "postgresql": the
    database ``name`` beside ``REPRISE_TEST_POSTGRES_URL``'s, migrated afresh."""
    if kind == "sqlite":
        db = root / f"{name}.sqlite3"
        shutil.copy(sqlite_template, db)
        yield f"sqlite+aiosqlite:///{db}"
        return
    with postgres_database(os.environ["REPRISE_TEST_POSTGRES_URL"], name) as url:
        reset_database(url)
        yield url
