"""The leaderboard's read model: one row per submission that has a scored version.

``leaderboard_entry`` is written when a verdict is stored (``service.on_verdict_stored``) and
holds exactly what a board row shows, so a board page is one indexed range scan with no joins.
Ranks are kept in *rank space*: ``rank_key`` is the reproduced mean of the ranked metric signed
so that lower is better whatever the metric's direction, and ``band_low``/``band_high`` are the
95% interval's ends in the same space. ``leaderboard_board`` carries a generation per benchmark
version that changes whenever one of its rows does (cache keys for ranks and charts), and
``technique_score`` the cross-benchmark aggregate of each technique (author + package name).
``leaderboard_entry_tag`` repeats each entry's board and rank key per tag of its version.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, BigIntPK, utcnow


class LeaderboardEntry(Base):
    """What a submission shows on its board: its latest scored version."""

    __tablename__ = "leaderboard_entry"
    __table_args__ = (
        # A board page in rank order is a forward scan of this index (rank_key ASC NULLS LAST);
        # with band_high included, the page keys and the rank index are index-only scans.
        Index(
            "ix_leaderboard_entry_board",
            "benchmark_id",
            "metric",
            "rank_key",
            "submission_id",
            postgresql_include=["band_high"],
        ),
        Index(
            "ix_leaderboard_entry_board_verdict",
            "benchmark_id",
            "metric",
            "claim_verdict",
            "rank_key",
        ),
        # The other orders a page offers, each a scan of its own index in either direction.
        Index("ix_leaderboard_entry_board_quality", "benchmark_id", "metric", "quality"),
        Index("ix_leaderboard_entry_board_scored_at", "benchmark_id", "metric", "scored_at"),
        Index("ix_leaderboard_entry_board_title", "benchmark_id", "metric", "title"),
        Index("ix_leaderboard_entry_board_author", "benchmark_id", "metric", "author"),
        Index("ix_leaderboard_entry_board_claimed", "benchmark_id", "metric", "claimed_mean"),
        Index(
            "ix_leaderboard_entry_board_owner",
            "benchmark_id",
            "metric",
            "owner_id",
            "rank_key",
            "submission_id",
        ),
        Index("ix_leaderboard_entry_owner_id_name", "owner_id", "name"),
        Index("ix_leaderboard_entry_scored_at", "scored_at"),
        Index("ix_leaderboard_entry_verdict_id", "verdict_id"),
    )

    submission_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("submission.id", ondelete="CASCADE"), primary_key=True
    )
    # Re-scoring the standing version deletes its verdict: the row goes with it and is written
    # again from the new verdict in the same transaction.
    verdict_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("verdict.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("submission_version.id"))
    benchmark_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("benchmark.id"))
    owner_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("user.id"))
    version_number: Mapped[int]
    name: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    author: Mapped[str] = mapped_column(String(40))  # user names never change
    metric: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(8))
    tolerance: Mapped[float] = mapped_column(Float)
    claimed_mean: Mapped[float] = mapped_column(Float)  # every claimed metric has a mean
    reproduced_mean: Mapped[float | None] = mapped_column(Float)
    ci95_low: Mapped[float | None] = mapped_column(Float)
    ci95_high: Mapped[float | None] = mapped_column(Float)
    rank_key: Mapped[float | None] = mapped_column(Float)
    band_low: Mapped[float | None] = mapped_column(Float)
    band_high: Mapped[float | None] = mapped_column(Float)
    claim_verdict: Mapped[str] = mapped_column(String(24))
    claim_lean: Mapped[str | None] = mapped_column(String(8))
    quality: Mapped[float] = mapped_column(Float)
    seed_selection_flag: Mapped[bool]
    deterministic: Mapped[bool | None]
    self_reported: Mapped[bool]
    fresh_values: Mapped[list[float]] = mapped_column(JSON)
    scored_at: Mapped[dt.datetime]


class LeaderboardEntryTag(Base):
    """The tags of the standing version, with the entry's board and rank key: a tag-filtered
    board is a range scan of one index, however rare the tag."""

    __tablename__ = "leaderboard_entry_tag"
    __table_args__ = (
        Index(
            "ix_leaderboard_entry_tag_board",
            "benchmark_id",
            "metric",
            "tag",
            "rank_key",
            "submission_id",
        ),
    )

    submission_id: Mapped[int] = mapped_column(
        BigIntPK,
        ForeignKey("leaderboard_entry.submission_id", ondelete="CASCADE"),
        primary_key=True,
    )
    tag: Mapped[str] = mapped_column(String(40), primary_key=True)
    benchmark_id: Mapped[int] = mapped_column(BigIntPK)
    metric: Mapped[str] = mapped_column(String(64))
    rank_key: Mapped[float | None] = mapped_column(Float)


class LeaderboardBoard(Base):
    """A generation per benchmark version, bumped whenever one of its entries changes."""

    __tablename__ = "leaderboard_board"

    benchmark_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("benchmark.id"), primary_key=True
    )
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TechniqueScore(Base):
    """One technique (author + package name) across benchmarks: IQM of normalized runs."""

    __tablename__ = "technique_score"
    __table_args__ = (
        Index("ix_technique_score_rank", "rank_key", "owner_id", "name"),
        Index("ix_technique_score_benchmarks", "benchmarks"),
    )

    owner_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("user.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    author: Mapped[str] = mapped_column(String(40))
    benchmarks: Mapped[int]
    runs: Mapped[int]
    iqm: Mapped[float] = mapped_column(Float)
    ci95_low: Mapped[float] = mapped_column(Float)
    ci95_high: Mapped[float] = mapped_column(Float)
    rank_key: Mapped[float] = mapped_column(Float)  # −IQM: ascending is better
    band_low: Mapped[float] = mapped_column(Float)  # −ci95_high
    band_high: Mapped[float] = mapped_column(Float)  # −ci95_low
    profile: Mapped[list[float]] = mapped_column(JSON)
    breakdown: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
