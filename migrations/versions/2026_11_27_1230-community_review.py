"""community review

Reviewer expertise, assignments, reviews, comments, challenges and webhooks; a submission may be
an attempt at a challenge (``submission.challenge_id``) judged against the challenge's claim
(``submission_version.reference_claim``).

On SQLite the downgrade re-creates ``submission`` without ``challenge_id``; with rows that
reference submissions, SQLite's foreign keys refuse that and the downgrade changes nothing
(restore a backup instead). The upgrade only adds columns, so it is safe on a full database.

Revision ID: 7a0000000001
Revises: 6a0000000001
Create Date: 2026-11-27 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = "7a0000000001"
down_revision: str | None = "6a0000000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = app.core.db.UTCDateTime(timezone=True)


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    op.create_table(
        "reviewer_expertise",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_reviewer_expertise_user_id_user")
        ),
        sa.PrimaryKeyConstraint("user_id", "tag", name=op.f("pk_reviewer_expertise")),
    )
    op.create_index(op.f("ix_reviewer_expertise_tag"), "reviewer_expertise", ["tag"], unique=False)

    op.create_table(
        "review_assignment",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("submission_id", ID, nullable=False),
        sa.Column("reviewer_id", ID, nullable=False),
        sa.Column("assigned_by_id", ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("decline_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["assigned_by_id"], ["user.id"], name=op.f("fk_review_assignment_assigned_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["user.id"], name=op.f("fk_review_assignment_reviewer_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submission.id"],
            name=op.f("fk_review_assignment_submission_id_submission"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_assignment")),
        sa.UniqueConstraint(
            "submission_id",
            "reviewer_id",
            name=op.f("uq_review_assignment_submission_id_reviewer_id"),
        ),
    )
    op.create_index(
        "ix_review_assignment_reviewer_id_status",
        "review_assignment",
        ["reviewer_id", "status"],
        unique=False,
    )

    op.create_table(
        "review",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("submission_id", ID, nullable=False),
        sa.Column("version_id", ID, nullable=False),
        sa.Column("reviewer_id", ID, nullable=False),
        sa.Column("assignment_id", ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("clarity_score", sa.Integer(), nullable=False),
        sa.Column("clarity_comment", sa.Text(), nullable=False),
        sa.Column("rigor_score", sa.Integer(), nullable=False),
        sa.Column("rigor_comment", sa.Text(), nullable=False),
        sa.Column("documentation_score", sa.Integer(), nullable=False),
        sa.Column("documentation_comment", sa.Text(), nullable=False),
        sa.Column("significance_score", sa.Integer(), nullable=False),
        sa.Column("significance_comment", sa.Text(), nullable=False),
        sa.Column("recommendation", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("corrects_id", ID, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("published_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint(
            "clarity_score BETWEEN 1 AND 5", name=op.f("ck_review_clarity_score_range")
        ),
        sa.CheckConstraint(
            "documentation_score BETWEEN 1 AND 5", name=op.f("ck_review_documentation_score_range")
        ),
        sa.CheckConstraint("rigor_score BETWEEN 1 AND 5", name=op.f("ck_review_rigor_score_range")),
        sa.CheckConstraint(
            "significance_score BETWEEN 1 AND 5", name=op.f("ck_review_significance_score_range")
        ),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["review_assignment.id"],
            name=op.f("fk_review_assignment_id_review_assignment"),
        ),
        sa.ForeignKeyConstraint(
            ["corrects_id"], ["review.id"], name=op.f("fk_review_corrects_id_review")
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["user.id"], name=op.f("fk_review_reviewer_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submission.id"], name=op.f("fk_review_submission_id_submission")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["submission_version.id"],
            name=op.f("fk_review_version_id_submission_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review")),
    )
    op.create_index(op.f("ix_review_corrects_id"), "review", ["corrects_id"], unique=False)
    op.create_index(
        "ix_review_reviewer_id_status", "review", ["reviewer_id", "status"], unique=False
    )
    op.create_index(
        "ix_review_submission_id_status", "review", ["submission_id", "status"], unique=False
    )

    op.create_table(
        "comment",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("submission_id", ID, nullable=False),
        sa.Column("version_id", ID, nullable=False),
        sa.Column("author_id", ID, nullable=False),
        sa.Column("parent_id", ID, nullable=True),
        sa.Column("thread_id", ID, nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("edited_at", TS, nullable=True),
        sa.Column("hidden_at", TS, nullable=True),
        sa.Column("hidden_by_id", ID, nullable=True),
        sa.Column("hidden_reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["user.id"], name=op.f("fk_comment_author_id_user")),
        sa.ForeignKeyConstraint(
            ["hidden_by_id"], ["user.id"], name=op.f("fk_comment_hidden_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["comment.id"], name=op.f("fk_comment_parent_id_comment")
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submission.id"], name=op.f("fk_comment_submission_id_submission")
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"], ["comment.id"], name=op.f("fk_comment_thread_id_comment")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["submission_version.id"],
            name=op.f("fk_comment_version_id_submission_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comment")),
    )
    op.create_index(op.f("ix_comment_author_id"), "comment", ["author_id"], unique=False)
    op.create_index(
        "ix_comment_submission_id_parent_id",
        "comment",
        ["submission_id", "parent_id"],
        unique=False,
    )
    op.create_index("ix_comment_thread_id", "comment", ["thread_id"], unique=False)

    op.create_table(
        "challenge",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by_id", ID, nullable=False),
        sa.Column("submission_id", ID, nullable=True),
        sa.Column("source_version", sa.Integer(), nullable=True),
        sa.Column("source_url", sa.String(length=500), nullable=True),
        sa.Column("benchmark_id", ID, nullable=False),
        sa.Column("benchmark_slug", sa.String(length=64), nullable=False),
        sa.Column("claim", sa.JSON(), nullable=False),
        sa.Column("deadline", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["benchmark_id"], ["benchmark.id"], name=op.f("fk_challenge_benchmark_id_benchmark")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["user.id"], name=op.f("fk_challenge_created_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submission.id"], name=op.f("fk_challenge_submission_id_submission")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challenge")),
    )
    op.create_index(
        op.f("ix_challenge_benchmark_slug"), "challenge", ["benchmark_slug"], unique=False
    )
    op.create_index(op.f("ix_challenge_deadline"), "challenge", ["deadline"], unique=False)
    op.create_index(
        op.f("ix_challenge_submission_id"), "challenge", ["submission_id"], unique=False
    )

    if _is_sqlite():
        # A plain ADD COLUMN with an inline named reference. Batch mode would copy, drop and
        # re-create ``submission``, which the rows that reference it forbid (foreign keys are on).
        op.execute(
            "ALTER TABLE submission ADD COLUMN challenge_id INTEGER "
            "CONSTRAINT fk_submission_challenge_id_challenge REFERENCES challenge (id)"
        )
    else:
        op.add_column("submission", sa.Column("challenge_id", ID, nullable=True))
        op.create_foreign_key(
            op.f("fk_submission_challenge_id_challenge"),
            "submission",
            "challenge",
            ["challenge_id"],
            ["id"],
        )
    op.create_index(
        op.f("ix_submission_challenge_id"), "submission", ["challenge_id"], unique=False
    )
    op.add_column("submission_version", sa.Column("reference_claim", sa.JSON(), nullable=True))

    op.create_table(
        "webhook",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=80), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["user.id"], name=op.f("fk_webhook_owner_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook")),
    )
    op.create_index(op.f("ix_webhook_owner_id"), "webhook", ["owner_id"], unique=False)

    op.create_table(
        "webhook_delivery",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("webhook_id", ID, nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("locked_until", TS, nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("log", sa.JSON(), nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhook.id"],
            name=op.f("fk_webhook_delivery_webhook_id_webhook"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_delivery")),
    )
    op.create_index(
        "ix_webhook_delivery_status_next_attempt_at",
        "webhook_delivery",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_index(
        "ix_webhook_delivery_webhook_id_id", "webhook_delivery", ["webhook_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("webhook_delivery")
    op.drop_table("webhook")
    op.drop_column("submission_version", "reference_claim")
    op.drop_index(op.f("ix_submission_challenge_id"), table_name="submission")
    if _is_sqlite():
        # SQLite cannot drop a column that carries a reference: copy the table without it.
        with op.batch_alter_table("submission", recreate="always") as batch_op:
            batch_op.drop_column("challenge_id")
    else:
        op.drop_constraint(
            op.f("fk_submission_challenge_id_challenge"), "submission", type_="foreignkey"
        )
        op.drop_column("submission", "challenge_id")
    op.drop_table("challenge")
    op.drop_table("comment")
    op.drop_table("review")
    op.drop_table("review_assignment")
    op.drop_table("reviewer_expertise")
