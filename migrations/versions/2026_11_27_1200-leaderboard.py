"""leaderboard

Tables and indexes for leaderboards, rankings and exports (issue: leaderboards and web pages):
the tags of a submission's latest version; ``leaderboard_entry``, the row each submission shows
on its board (its newest scored version), indexed for every board order the pages use, and
``leaderboard_entry_tag``, its tags with its board and rank key for tag-filtered boards;
``leaderboard_board``, a generation per benchmark version for caches; and ``technique_score``,
the cross-benchmark aggregate per technique. Existing verdicts are copied onto the boards.

Revision ID: 6a0000000001
Revises: ed517997f23f
Create Date: 2026-11-27 12:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = "6a0000000001"
down_revision: str | None = "ed517997f23f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "submission_tag",
        sa.Column("submission_id", BIGINT, nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["submission_id"], ["submission.id"],
                                name=op.f("fk_submission_tag_submission_id_submission"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("submission_id", "tag", name=op.f("pk_submission_tag")),
    )
    with op.batch_alter_table("submission_tag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_submission_tag_tag"), ["tag"], unique=False)

    board = op.create_table(
        "leaderboard_board",
        sa.Column("benchmark_id", BIGINT, nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["benchmark_id"], ["benchmark.id"], name=op.f("fk_leaderboard_board_benchmark_id_benchmark")),
        sa.PrimaryKeyConstraint("benchmark_id", name=op.f("pk_leaderboard_board")),
    )
    technique = op.create_table(
        "technique_score",
        sa.Column("owner_id", BIGINT, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(length=40), nullable=False),
        sa.Column("benchmarks", sa.Integer(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("iqm", sa.Float(), nullable=False),
        sa.Column("ci95_low", sa.Float(), nullable=False),
        sa.Column("ci95_high", sa.Float(), nullable=False),
        sa.Column("rank_key", sa.Float(), nullable=False),
        sa.Column("band_low", sa.Float(), nullable=False),
        sa.Column("band_high", sa.Float(), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("breakdown", sa.JSON(), nullable=False),
        sa.Column("updated_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["user.id"], name=op.f("fk_technique_score_owner_id_user")),
        sa.PrimaryKeyConstraint("owner_id", "name", name=op.f("pk_technique_score")),
    )
    with op.batch_alter_table("technique_score", schema=None) as batch_op:
        batch_op.create_index("ix_technique_score_benchmarks", ["benchmarks"], unique=False)
        batch_op.create_index("ix_technique_score_rank", ["rank_key", "owner_id", "name"], unique=False)

    entry = op.create_table(
        "leaderboard_entry",
        sa.Column("submission_id", BIGINT, nullable=False),
        sa.Column("verdict_id", BIGINT, nullable=False),
        sa.Column("version_id", BIGINT, nullable=False),
        sa.Column("benchmark_id", BIGINT, nullable=False),
        sa.Column("owner_id", BIGINT, nullable=False),
        sa.Column("version_number", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("author", sa.String(length=40), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("tolerance", sa.Float(), nullable=False),
        sa.Column("claimed_mean", sa.Float(), nullable=False),
        sa.Column("reproduced_mean", sa.Float(), nullable=True),
        sa.Column("ci95_low", sa.Float(), nullable=True),
        sa.Column("ci95_high", sa.Float(), nullable=True),
        sa.Column("rank_key", sa.Float(), nullable=True),
        sa.Column("band_low", sa.Float(), nullable=True),
        sa.Column("band_high", sa.Float(), nullable=True),
        sa.Column("claim_verdict", sa.String(length=24), nullable=False),
        sa.Column("claim_lean", sa.String(length=8), nullable=True),
        sa.Column("quality", sa.Float(), nullable=False),
        sa.Column("seed_selection_flag", sa.Boolean(), nullable=False),
        sa.Column("deterministic", sa.Boolean(), nullable=True),
        sa.Column("self_reported", sa.Boolean(), nullable=False),
        sa.Column("fresh_values", sa.JSON(), nullable=False),
        sa.Column("scored_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["benchmark_id"], ["benchmark.id"], name=op.f("fk_leaderboard_entry_benchmark_id_benchmark")),
        sa.ForeignKeyConstraint(["owner_id"], ["user.id"], name=op.f("fk_leaderboard_entry_owner_id_user")),
        sa.ForeignKeyConstraint(["submission_id"], ["submission.id"], name=op.f("fk_leaderboard_entry_submission_id_submission"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["verdict_id"], ["verdict.id"], name=op.f("fk_leaderboard_entry_verdict_id_verdict"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["version_id"], ["submission_version.id"], name=op.f("fk_leaderboard_entry_version_id_submission_version")),
        sa.PrimaryKeyConstraint("submission_id", name=op.f("pk_leaderboard_entry")),
    )
    with op.batch_alter_table("leaderboard_entry", schema=None) as batch_op:
        # Board pages: rank order is a forward scan (rank_key ASC NULLS LAST is the default
        # B-tree order on PostgreSQL); filters on verdict keep the rank order within a verdict;
        # the other indexed orders (quality, date, title, author, claimed) scan either way.
        batch_op.create_index("ix_leaderboard_entry_board", ["benchmark_id", "metric", "rank_key", "submission_id"], unique=False,
                              postgresql_include=["band_high"])
        batch_op.create_index("ix_leaderboard_entry_board_quality", ["benchmark_id", "metric", "quality"], unique=False)
        batch_op.create_index("ix_leaderboard_entry_board_scored_at", ["benchmark_id", "metric", "scored_at"], unique=False)
        batch_op.create_index("ix_leaderboard_entry_board_title", ["benchmark_id", "metric", "title"], unique=False)
        batch_op.create_index("ix_leaderboard_entry_board_author", ["benchmark_id", "metric", "author"], unique=False)
        batch_op.create_index("ix_leaderboard_entry_board_claimed", ["benchmark_id", "metric", "claimed_mean"], unique=False)
        batch_op.create_index("ix_leaderboard_entry_board_verdict", ["benchmark_id", "metric", "claim_verdict", "rank_key"], unique=False)
        batch_op.create_index("ix_leaderboard_entry_board_owner", ["benchmark_id", "metric", "owner_id", "rank_key", "submission_id"], unique=False)
        batch_op.create_index("ix_leaderboard_entry_owner_id_name", ["owner_id", "name"], unique=False)
        batch_op.create_index("ix_leaderboard_entry_scored_at", ["scored_at"], unique=False)
        batch_op.create_index("ix_leaderboard_entry_verdict_id", ["verdict_id"], unique=False)

    entry_tag = op.create_table(
        "leaderboard_entry_tag",
        sa.Column("submission_id", BIGINT, nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.Column("benchmark_id", BIGINT, nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("rank_key", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["submission_id"], ["leaderboard_entry.submission_id"],
                                name=op.f("fk_leaderboard_entry_tag_submission_id_leaderboard_entry"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("submission_id", "tag", name=op.f("pk_leaderboard_entry_tag")),
    )
    with op.batch_alter_table("leaderboard_entry_tag", schema=None) as batch_op:
        batch_op.create_index("ix_leaderboard_entry_tag_board", ["benchmark_id", "metric", "tag", "rank_key", "submission_id"], unique=False)

    _backfill(entry, entry_tag, board, technique)


def downgrade() -> None:
    with op.batch_alter_table("leaderboard_entry_tag", schema=None) as batch_op:
        batch_op.drop_index("ix_leaderboard_entry_tag_board")
    op.drop_table("leaderboard_entry_tag")
    with op.batch_alter_table("leaderboard_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_leaderboard_entry_verdict_id")
        batch_op.drop_index("ix_leaderboard_entry_scored_at")
        batch_op.drop_index("ix_leaderboard_entry_owner_id_name")
        batch_op.drop_index("ix_leaderboard_entry_board_owner")
        batch_op.drop_index("ix_leaderboard_entry_board_verdict")
        batch_op.drop_index("ix_leaderboard_entry_board_claimed")
        batch_op.drop_index("ix_leaderboard_entry_board_author")
        batch_op.drop_index("ix_leaderboard_entry_board_title")
        batch_op.drop_index("ix_leaderboard_entry_board_scored_at")
        batch_op.drop_index("ix_leaderboard_entry_board_quality")
        batch_op.drop_index("ix_leaderboard_entry_board")
    op.drop_table("leaderboard_entry")
    with op.batch_alter_table("technique_score", schema=None) as batch_op:
        batch_op.drop_index("ix_technique_score_rank")
        batch_op.drop_index("ix_technique_score_benchmarks")
    op.drop_table("technique_score")
    op.drop_table("leaderboard_board")

    with op.batch_alter_table("submission_tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_submission_tag_tag"))
    op.drop_table("submission_tag")


# ------------------------------------------------------------------------------------ backfill
# The same rules as app/leaderboard/service.py at this revision, written against plain tables so
# that later model changes cannot alter what this migration does. Only pure functions are shared.

_verdict = sa.table(
    "verdict", sa.column("id"), sa.column("version_id"), sa.column("submission_id"),
    sa.column("claim_verdict"), sa.column("claim_lean"), sa.column("quality", sa.Float),
    sa.column("seed_selection_flag", sa.Boolean), sa.column("deterministic", sa.Boolean),
    sa.column("self_reported", sa.Boolean), sa.column("score", sa.JSON),
    sa.column("scored_at", app.core.db.UTCDateTime()),
)
_version = sa.table(
    "submission_version", sa.column("id"), sa.column("number"), sa.column("benchmark_id"),
    sa.column("manifest", sa.JSON),
)
_submission = sa.table("submission", sa.column("id"), sa.column("owner_id"), sa.column("status"))
_user = sa.table("user", sa.column("id"), sa.column("name"))
_benchmark = sa.table("benchmark", sa.column("id"), sa.column("slug"), sa.column("version"), sa.column("manifest", sa.JSON))
_job = sa.table("job", sa.column("id"), sa.column("version_id"), sa.column("kind"), sa.column("attempt"))
_result = sa.table("run_result", sa.column("job_id"), sa.column("attempt"), sa.column("outcome"), sa.column("metrics", sa.JSON))


def _backfill(entry: sa.Table, entry_tag: sa.Table, board: sa.Table, technique: sa.Table) -> None:
    from app.leaderboard.ranking import (
        normalized_group,
        rank_space,
        ranked_metric,
        technique_aggregate,
    )
    from app.scoring.aggregate import iqm

    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_verdict, _version.c.number, _version.c.benchmark_id, _version.c.manifest,
                  _submission.c.owner_id, _user.c.name.label("author"))
        .join(_version, _version.c.id == _verdict.c.version_id)
        .join(_submission, _submission.c.id == _verdict.c.submission_id)
        .join(_user, _user.c.id == _submission.c.owner_id)
        .where(_submission.c.status == "active")
        .order_by(_verdict.c.submission_id, _version.c.number.desc())
    ).mappings().all()
    if not rows:
        return
    benches = {b.id: b for b in bind.execute(sa.select(_benchmark))}
    standing: dict[int, Any] = {}
    for r in rows:
        standing.setdefault(r["submission_id"], r)
    entries = []
    for r in standing.values():
        manifest = benches[r["benchmark_id"]].manifest
        scored = r["score"].get("metrics", {})
        metric = ranked_metric(
            kind=manifest["kind"],
            benchmark_primaries=[m["name"] for m in manifest.get("metrics", []) if m.get("primary")],
            scored=scored,
        )
        if metric is None:
            continue
        m = scored[metric]
        ranks = rank_space(m["direction"], m.get("reproduced_mean"), m.get("ci95_low"), m.get("ci95_high"))
        fresh = [
            float(res.metrics[metric])
            for res in bind.execute(
                sa.select(_result.c.outcome, _result.c.metrics)
                .join(_job, (_job.c.id == _result.c.job_id) & (_job.c.attempt == _result.c.attempt))
                .where(_job.c.version_id == r["version_id"], _job.c.kind == "fresh")
                .order_by(_job.c.id)
            )
            if res.outcome == "succeeded" and metric in res.metrics
        ]
        package = r["manifest"].get("package", {})
        entries.append({
            "submission_id": r["submission_id"], "verdict_id": r["id"], "version_id": r["version_id"],
            "benchmark_id": r["benchmark_id"], "owner_id": r["owner_id"], "version_number": r["number"],
            "name": str(package.get("name", ""))[:64], "title": str(package.get("title", ""))[:200],
            "author": r["author"], "metric": metric, "direction": m["direction"],
            "tolerance": float(m["tolerance"]), "claimed_mean": float(m["claimed_mean"]),
            "reproduced_mean": m.get("reproduced_mean"), "ci95_low": m.get("ci95_low"),
            "ci95_high": m.get("ci95_high"), "rank_key": ranks.key, "band_low": ranks.low,
            "band_high": ranks.high, "claim_verdict": r["claim_verdict"], "claim_lean": r["claim_lean"],
            "quality": r["quality"], "seed_selection_flag": r["seed_selection_flag"],
            "deterministic": r["deterministic"], "self_reported": r["self_reported"],
            "fresh_values": fresh, "scored_at": r["scored_at"], "_tags": package.get("tags") or [],
        })
    if not entries:
        return
    op.bulk_insert(entry, [{k: v for k, v in e.items() if k != "_tags"} for e in entries])
    tags = [
        {"submission_id": e["submission_id"], "tag": str(t)[:40], "benchmark_id": e["benchmark_id"],
         "metric": e["metric"], "rank_key": e["rank_key"]}
        for e in entries for t in sorted(set(e.pop("_tags")))
    ]
    if tags:
        op.bulk_insert(entry_tag, tags)
    now = app.core.db.utcnow()
    op.bulk_insert(board, [
        {"benchmark_id": b, "generation": 1, "updated_at": now}
        for b in sorted({e["benchmark_id"] for e in entries})
    ])
    techniques: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for e in sorted(entries, key=lambda e: e["scored_at"], reverse=True):
        techniques.setdefault((e["owner_id"], e["name"]), []).append(e)
    scores = []
    for (owner_id, name), members in techniques.items():
        groups, breakdown, seen = [], [], set()
        for e in members:
            bench = benches[e["benchmark_id"]]
            spec = next((m for m in bench.manifest.get("metrics", []) if m["name"] == e["metric"]), None)
            if bench.slug in seen or spec is None:
                continue
            group = normalized_group(bench.slug, e["fresh_values"], reference_low=spec.get("reference_low"),
                                     reference_high=spec.get("reference_high"))
            if group is None:
                continue
            seen.add(bench.slug)
            groups.append(group)
            breakdown.append({"benchmark": bench.slug, "version": bench.version, "submission_id": e["submission_id"],
                              "runs": len(group.values), "iqm": iqm(group.values)})
        agg = technique_aggregate(groups)
        if agg is None:
            continue
        scores.append({
            "owner_id": owner_id, "name": name, "author": members[0]["author"], "benchmarks": agg.benchmarks,
            "runs": agg.runs, "iqm": agg.iqm, "ci95_low": agg.ci95_low, "ci95_high": agg.ci95_high,
            "rank_key": -agg.iqm, "band_low": -agg.ci95_high, "band_high": -agg.ci95_low,
            "profile": agg.profile, "breakdown": sorted(breakdown, key=lambda b: str(b["benchmark"])),
            "updated_at": now,
        })
    if scores:
        op.bulk_insert(technique, scores)
