"""Reviewer expertise, review assignments, structured reviews and threaded comments."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, BigIntPK, CreatedAtMixin, IdMixin, utcnow

CRITERIA = ("clarity", "rigor", "documentation", "significance")


class AssignmentStatus(enum.StrEnum):
    open = "open"  # waiting for the reviewer's review
    declined = "declined"  # the reviewer said no, with a reason
    completed = "completed"  # the reviewer published a review


class ReviewStatus(enum.StrEnum):
    draft = "draft"  # only its reviewer sees it, and may edit it
    published = "published"  # public and immutable


class Recommendation(enum.StrEnum):
    endorse = "endorse"
    revise = "revise"
    reject = "reject"


class ReviewerExpertise(Base):
    """One expertise tag a user declared (benchmark ids are tags too)."""

    __tablename__ = "reviewer_expertise"

    user_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("user.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class ReviewAssignment(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "review_assignment"
    __table_args__ = (
        UniqueConstraint("submission_id", "reviewer_id"),
        Index("ix_review_assignment_reviewer_id_status", "reviewer_id", "status"),
    )

    submission_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("submission.id"))
    reviewer_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("user.id"))
    assigned_by_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("user.id"))
    status: Mapped[str] = mapped_column(String(16), default=AssignmentStatus.open.value)
    note: Mapped[str | None] = mapped_column(Text)
    decline_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def _score_range(criterion: str) -> CheckConstraint:
    return CheckConstraint(f"{criterion}_score BETWEEN 1 AND 5", name=f"{criterion}_score_range")


class Review(IdMixin, CreatedAtMixin, Base):
    """A structured review of one submission version; immutable once published."""

    __tablename__ = "review"
    __table_args__ = (
        Index("ix_review_submission_id_status", "submission_id", "status"),
        Index("ix_review_reviewer_id_status", "reviewer_id", "status"),
        *(_score_range(c) for c in CRITERIA),
    )

    submission_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("submission.id"))
    version_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("submission_version.id"))
    reviewer_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("user.id"))
    assignment_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("review_assignment.id"))
    status: Mapped[str] = mapped_column(String(16), default=ReviewStatus.draft.value)
    clarity_score: Mapped[int]
    clarity_comment: Mapped[str] = mapped_column(Text)
    rigor_score: Mapped[int]
    rigor_comment: Mapped[str] = mapped_column(Text)
    documentation_score: Mapped[int]
    documentation_comment: Mapped[str] = mapped_column(Text)
    significance_score: Mapped[int]
    significance_comment: Mapped[str] = mapped_column(Text)
    recommendation: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text, default="")
    corrects_id: Mapped[int | None] = mapped_column(BigIntPK, ForeignKey("review.id"), index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    published_at: Mapped[dt.datetime | None]


class Comment(IdMixin, CreatedAtMixin, Base):
    """A comment in a submission's discussion; ``thread_id`` is the top-level comment's id."""

    __tablename__ = "comment"
    __table_args__ = (
        Index("ix_comment_submission_id_parent_id", "submission_id", "parent_id"),
        Index("ix_comment_thread_id", "thread_id"),
    )

    submission_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("submission.id"))
    version_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("submission_version.id"))
    author_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("user.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(BigIntPK, ForeignKey("comment.id"))
    thread_id: Mapped[int | None] = mapped_column(BigIntPK, ForeignKey("comment.id"))
    depth: Mapped[int] = mapped_column(default=0)
    body: Mapped[str] = mapped_column(Text)  # Markdown as written
    body_html: Mapped[str] = mapped_column(Text)  # rendered and sanitised once, at write time
    edited_at: Mapped[dt.datetime | None]
    hidden_at: Mapped[dt.datetime | None]
    hidden_by_id: Mapped[int | None] = mapped_column(BigIntPK, ForeignKey("user.id"))
    hidden_reason: Mapped[str | None] = mapped_column(String(200))
