#!/usr/bin/env bash
# Migrate a scratch SQLite database to head and ask Alembic whether the models drifted from it.
# With REPRISE_TEST_POSTGRES_URL set, the same against a scratch PostgreSQL schema.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
REPRISE_DATA_DIR="$tmp" "$BIN/alembic" upgrade head >/dev/null
REPRISE_DATA_DIR="$tmp" "$BIN/alembic" check
if [ -n "${REPRISE_TEST_POSTGRES_URL:-}" ]; then
  # A scratch database next to the test one, dropped and made again each time.
  url=$("$BIN/python" - <<'PY'
import asyncio, os
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from app.core.config import normalise_database_url
url = make_url(normalise_database_url(os.environ["REPRISE_TEST_POSTGRES_URL"]))
async def main() -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text("DROP DATABASE IF EXISTS reprise_alembic_check"))
        await conn.execute(text("CREATE DATABASE reprise_alembic_check"))
    await engine.dispose()
asyncio.run(main())
print(url.set(database="reprise_alembic_check").render_as_string(hide_password=False))
PY
)
  REPRISE_DATABASE_URL="$url" "$BIN/alembic" upgrade head >/dev/null
  REPRISE_DATABASE_URL="$url" "$BIN/alembic" check
fi
