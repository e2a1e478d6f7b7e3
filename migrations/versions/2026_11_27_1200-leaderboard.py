"""leaderboard

Tables and indexes for leaderboards, rankings and exports (issue: leaderboards and web pages).

Revision ID: 6a0000000001
Revises: ed517997f23f
Create Date: 2026-11-27 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6a0000000001"
down_revision: str | None = "ed517997f23f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "submission_tag",
        sa.Column("submission_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["submission_id"], ["submission.id"],
                                name=op.f("fk_submission_tag_submission_id_submission"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("submission_id", "tag", name=op.f("pk_submission_tag")),
    )
    with op.batch_alter_table("submission_tag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_submission_tag_tag"), ["tag"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("submission_tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_submission_tag_tag"))
    op.drop_table("submission_tag")
