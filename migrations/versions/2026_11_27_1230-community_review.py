"""community review

Reviewer expertise, assignments, reviews, comments, challenges and webhooks.

Revision ID: 7a0000000001
Revises: 6a0000000001
Create Date: 2026-11-27 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import app.core.db  # noqa: F401

revision: str = "7a0000000001"
down_revision: str | None = "6a0000000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
