"""Boards and the cross-benchmark ranking on the real catalog: rosenbrock and quadratic-illcond
rank lower-is-better metrics and carry the reference values that normalization needs."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from fastapi import FastAPI
from sqlalchemy import Connection, delete, select

from app.leaderboard.models import (
    LeaderboardBoard,
    LeaderboardEntry,
    LeaderboardEntryTag,
    TechniqueScore,
)
from app.leaderboard.ranking import normalized_group
from app.scoring.aggregate import iqm, stratified_bootstrap_iqm
from tests.conftest import Account
from tests.helpers import ROOT, targz, toy_files, toy_manifest, upload
from tests.jobs.test_queue import WorkerApi
from tests.leaderboard.boardkit import run_version, scored, spread

ROSENBROCK = {"benchmark": "rosenbrock", "metric": "log10_final_value"}  # refs −1.725 / −3.594
REVISION = ROOT / "migrations" / "versions" / "2026_11_27_1200-leaderboard.py"
QUADRATIC = {"benchmark": "quadratic-illcond", "metric": "log10_suboptimality"}  # −3.887 / −5.192


@pytest.fixture
def benchmarks_dir() -> Path:
    return ROOT / "benchmarks"


@pytest.fixture
def worker(client: httpx.AsyncClient, worker_token: str) -> WorkerApi:
    return WorkerApi(client, worker_token)


async def test_lower_is_better_ranks_the_smallest_mean_first(
    client: httpx.AsyncClient, worker: WorkerApi, alice: Account, bob: Account
) -> None:
    made = {}
    for account, title, mean in (
        (alice, "Momentum, tuned", -3.5),
        (bob, "Plain SGD", -1.7),
        (alice, "Adam, defaults", -2.6),
    ):
        made[title] = await scored(
            client,
            worker,
            account,
            fresh=spread(mean, 0.1, 5),
            claimed=mean,
            title=title,
            name=title.split(",")[0].lower().replace(" ", "-"),
            **ROSENBROCK,
        )
    body = (await client.get("/v1/benchmarks/rosenbrock/leaderboard")).json()
    assert [r["title"] for r in body["items"]] == ["Momentum, tuned", "Adam, defaults", "Plain SGD"]
    assert [r["rank"] for r in body["items"]] == [1, 2, 3]
    assert body["board"]["direction"] == "lower"
    means = [r["reproduced_mean"] for r in body["items"]]
    assert means == sorted(means)
    worst_first = (await client.get("/v1/benchmarks/rosenbrock/leaderboard?sort=-rank")).json()
    assert [r["title"] for r in worst_first["items"]] == [
        "Plain SGD",
        "Adam, defaults",
        "Momentum, tuned",
    ]
    page = await client.get("/benchmarks/rosenbrock")
    assert page.status_code == 200
    assert (
        page.text.index("Momentum, tuned")
        < page.text.index("Adam, defaults")
        < page.text.index("Plain SGD")
    )
    assert "Data and licence" not in page.text or "None: the function is defined" in page.text


def _normalized(values: list[float], low: float, high: float) -> list[float]:
    group = normalized_group("x", values, reference_low=low, reference_high=high)
    assert group is not None
    return group.values


async def test_techniques_are_ranked_by_the_iqm_of_normalized_runs(
    client: httpx.AsyncClient, worker: WorkerApi, alice: Account, bob: Account
) -> None:
    rb = {"momentum": [-3.6, -3.55, -3.5, -3.45, -3.4], "adam": [-2.7, -2.65, -2.6, -2.5, -2.4]}
    qd = {"momentum": [-5.3, -5.25, -5.2, -5.15, -5.1]}
    await scored(
        client,
        worker,
        alice,
        fresh=rb["momentum"],
        claimed=-3.5,
        title="Momentum on Rosenbrock",
        name="momentum",
        **ROSENBROCK,
    )
    await scored(
        client,
        worker,
        alice,
        fresh=qd["momentum"],
        claimed=-5.2,
        title="Momentum on the quadratic",
        name="momentum",
        **QUADRATIC,
    )
    adam = await scored(
        client,
        worker,
        bob,
        fresh=rb["adam"],
        claimed=-2.6,
        title="Adam on Rosenbrock",
        name="adam",
        **ROSENBROCK,
    )

    body = (await client.get("/v1/leaderboard")).json()
    assert [(r["author"], r["name"]) for r in body["items"]] == [
        ("alice", "momentum"),
        ("bob", "adam"),
    ]
    top = body["items"][0]
    groups = [  # in benchmark order
        _normalized(qd["momentum"], -3.887, -5.192),
        _normalized(rb["momentum"], -1.725, -3.594),
    ]
    expected = stratified_bootstrap_iqm(groups)
    assert top["iqm"] == pytest.approx(expected.estimate, abs=1e-12)
    assert (top["ci95_low"], top["ci95_high"]) == pytest.approx(
        (expected.low, expected.high), abs=1e-12
    )
    assert (top["benchmarks"], top["runs"], top["rank"], top["rank_band"]) == (2, 10, 1, 1)
    assert [r["benchmark"] for r in top["results"]] == ["quadratic-illcond", "rosenbrock"]
    assert top["results"][1]["iqm"] == pytest.approx(iqm(groups[1]))
    assert len(top["profile"]) == len(body["profile_taus"])
    assert top["profile"][body["profile_taus"].index(0.0)] == 1.0  # every run beats plain SGD
    assert body["items"][1]["benchmarks"] == 1

    several = (await client.get("/v1/leaderboard", params={"min_benchmarks": 2})).json()
    assert [r["name"] for r in several["items"]] == ["momentum"]
    assert (await client.get("/v1/leaderboard", params={"author": "bob"})).json()["items"][0][
        "name"
    ] == "adam"
    html = await client.get("/techniques")
    assert html.status_code == 200
    assert html.text.index("momentum") < html.text.index("adam")

    # Withdrawing bob's only entry removes his technique.
    resp = await client.post(f"/v1/submissions/{adam['id']}/withdraw", headers=bob.headers)
    assert resp.status_code == 200
    after = (await client.get("/v1/leaderboard")).json()
    assert [r["name"] for r in after["items"]] == ["momentum"]


async def test_stats_give_wilson_intervals_per_benchmark_tag_and_author(
    client: httpx.AsyncClient, worker: WorkerApi, alice: Account, bob: Account
) -> None:
    await scored(
        client,
        worker,
        alice,
        fresh=spread(-3.5, 0.1, 5),
        claimed=-3.5,
        title="Reproduces fine",
        tags=("momentum",),
        **ROSENBROCK,
    )
    await scored(
        client,
        worker,
        bob,
        fresh=spread(-1.0, 0.1, 5),
        claimed=-3.5,
        title="Falls well short",
        tags=("momentum", "adam"),
        **ROSENBROCK,
    )
    await scored(
        client,
        worker,
        bob,
        fresh=spread(-5.2, 0.05, 5),
        claimed=-5.2,
        title="Quadratic fine",
        tags=("adam",),
        **QUADRATIC,
    )
    body: dict[str, Any] = (await client.get("/v1/stats")).json()
    from app.scoring.aggregate import reproduction_rate

    overall = reproduction_rate(2, 3)
    assert body["overall"]["rate"] == {
        "successes": 2,
        "trials": 3,
        "proportion": overall.proportion,
        "ci95_low": overall.low,
        "ci95_high": overall.high,
    }
    benchmarks = {g["key"]: g for g in body["benchmarks"]}
    assert benchmarks["rosenbrock"]["verdicts"]["not_reproduced"] == 1
    assert benchmarks["rosenbrock"]["rate"]["successes"] == 1
    assert benchmarks["quadratic-illcond"]["rate"]["proportion"] == 1.0
    tags = {g["key"]: g["rate"]["successes"] for g in body["tags"]}
    assert tags == {"momentum": 1, "adam": 1}
    authors = {g["key"]: (g["rate"]["successes"], g["rate"]["trials"]) for g in body["authors"]}
    assert authors == {"alice": (1, 1), "bob": (1, 2)}
    listed = (await client.get("/v1/stats/authors", params={"limit": 1})).json()
    assert listed["pagination"]["total"] == 2
    assert listed["items"][0]["key"] == "bob"
    assert (await client.get("/v1/stats/nothing")).status_code == 404


def _rows(objs: list[Any], skip: set[str]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in vars(o).items() if not k.startswith("_") and k not in skip} for o in objs
    ]


async def test_the_migration_puts_existing_verdicts_on_the_boards(
    app: FastAPI, client: httpx.AsyncClient, worker: WorkerApi, alice: Account, bob: Account
) -> None:
    rb = {"benchmark": "rosenbrock", "metric": "log10_final_value"}
    qd = {"benchmark": "quadratic-illcond", "metric": "log10_suboptimality"}
    await scored(
        client,
        worker,
        alice,
        fresh=spread(-3.5, 0.1, 5),
        claimed=-3.5,
        title="Momentum on Rosenbrock",
        name="momentum",
        **rb,
    )
    await scored(
        client,
        worker,
        alice,
        fresh=spread(-5.2, 0.1, 5),
        claimed=-5.2,
        title="Momentum on the quadratic",
        name="momentum",
        **qd,
    )
    await scored(
        client,
        worker,
        bob,
        fresh=spread(-2.0, 0.1, 5),
        claimed=-3.5,
        title="Adam on Rosenbrock",
        name="adam",
        **rb,
    )

    async def snapshot() -> list[list[dict[str, Any]]]:
        models = (
            (LeaderboardEntry, LeaderboardEntry.submission_id, set()),
            (LeaderboardEntryTag, LeaderboardEntryTag.tag, set()),
            (TechniqueScore, TechniqueScore.name, {"updated_at"}),
            (LeaderboardBoard, LeaderboardBoard.benchmark_id, {"updated_at", "generation"}),
        )
        async with app.state.db.session() as s:
            return [
                _rows(
                    list(
                        (await s.execute(select(m).order_by(o, *m.__table__.primary_key))).scalars()
                    ),
                    skip,
                )
                for m, o, skip in models
            ]

    before = await snapshot()
    assert [len(rows) for rows in before] == [3, 3, 2, 2]  # entries, tags, techniques, boards
    async with app.state.db.session(write=True) as s:  # as if the boards had never existed
        for model in (LeaderboardEntryTag, LeaderboardEntry, TechniqueScore, LeaderboardBoard):
            await s.execute(delete(model))
    # The revision's backfill, run as Alembic runs it (the revisions after it belong to other
    # features, so the test does not downgrade through them).
    spec = importlib.util.spec_from_file_location("leaderboard_revision", REVISION)
    assert spec is not None
    assert spec.loader is not None
    revision = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(revision)

    def backfill(connection: Connection) -> None:
        with Operations.context(MigrationContext.configure(connection)):
            revision._backfill(
                LeaderboardEntry.__table__,
                LeaderboardEntryTag.__table__,
                LeaderboardBoard.__table__,
                TechniqueScore.__table__,
            )

    async with app.state.db.engine.begin() as conn:
        await conn.run_sync(backfill)
    after = await snapshot()
    assert after == before


async def _command_claim(
    client: httpx.AsyncClient,
    worker: WorkerApi,
    account: Account,
    *,
    metric: str,
    direction: str,
    fresh: list[float],
    title: str,
) -> dict[str, Any]:
    manifest = toy_manifest(
        package=f'[package]\nname = "own-pipeline"\nversion = "1.0.0"\ntitle = "{title}"\n'
        'description = "A pipeline of our own."\nauthors = ["Ada <ada@example.org>"]\n'
        'license = "MIT"\n',
        benchmark='[benchmark]\nid = "custom-command"\nversion = 1\n',
        entry='[entry]\ncommand = ["python", "run.py"]\n',
        hyperparameters="",
        metrics=f"[claim.metrics.{metric}]\nmean = 1.0\nvalues = [0.95, 1.0, 1.05]\n"
        f'direction = "{direction}"\ntolerance = 0.2\n',
    )
    resp = await client.post(
        "/v1/submissions",
        headers=account.headers,
        **upload(targz(toy_files(manifest, **{"run.py": "print('hi')\n"}))),
    )
    assert resp.status_code == 202, resp.text
    body: dict[str, Any] = resp.json()
    await run_version(worker, body, fresh=fresh, claimed_values=[0.95, 1.0, 1.05], metric=metric)
    return body


async def test_command_benchmarks_have_a_board_per_claimed_metric(
    client: httpx.AsyncClient, worker: WorkerApi, alice: Account, bob: Account
) -> None:
    a = await _command_claim(
        client,
        worker,
        alice,
        metric="val_mse",
        direction="lower",
        fresh=[0.4, 0.5, 0.6, 0.5, 0.5],
        title="Small MSE",
    )
    b = await _command_claim(
        client,
        worker,
        bob,
        metric="val_mse",
        direction="lower",
        fresh=[0.9, 1.0, 1.1, 1.0, 1.0],
        title="Same MSE",
    )
    c = await _command_claim(
        client,
        worker,
        bob,
        metric="val_r2",
        direction="higher",
        fresh=[0.9, 1.0, 1.1, 1.0, 1.0],
        title="An R squared",
    )
    body = (await client.get("/v1/benchmarks/custom-command/leaderboard")).json()
    assert body["board"]["metrics"] == ["val_mse", "val_r2"]
    assert body["board"]["metric"] == "val_mse"
    assert body["board"]["direction"] is None  # each claim declares its own
    assert [r["submission_id"] for r in body["items"]] == [a["id"], b["id"]]
    assert all(r["self_reported"] and r["direction"] == "lower" for r in body["items"])
    r2 = (await client.get("/v1/benchmarks/custom-command/leaderboard?metric=val_r2")).json()
    assert [r["submission_id"] for r in r2["items"]] == [c["id"]]
    page = (await client.get("/benchmarks/custom-command?metric=val_r2")).text
    assert "An R squared" in page
    assert "Small MSE" not in page
    assert (await client.get("/v1/leaderboard")).json()["items"] == []  # no references
