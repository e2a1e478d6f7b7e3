"""leaderboard

Tables and indexes for leaderboards, rankings and exports (issue: leaderboards and web pages).

Revision ID: 6a0000000001
Revises: ed517997f23f
Create Date: 2026-11-27 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import app.core.db  # noqa: F401

revision: str = "6a0000000001"
down_revision: str | None = "ed517997f23f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
