"""The statistics step runs in the transaction of the last result, stores every number, and
can be reproduced from the stored run results alone (rescore)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update
from typer.testing import CliRunner, Result

from app.cli import app as cli
from app.core.config import get_settings
from app.submissions.models import SubmissionVersion
from app.verdicts.models import Verdict, VerdictMetric
from app.verdicts.service import rescore, rescore_all
from tests.conftest import Account
from tests.jobs.test_queue import WorkerApi, submit

cli_runner = CliRunner()


async def _run_all(
    worker: WorkerApi,
    values: dict[tuple[str, int], float],
    outcome_for: dict[int, str] | None = None,
) -> None:
    while (lease := await worker.lease()) is not None:
        seed = lease["seed"]
        outcome = (outcome_for or {}).get(seed, "succeeded")
        score = values.get((lease["kind"], seed), values.get(("any", seed), 2.0))
        metrics = {"score": score, "loss": 10**-score} if outcome == "succeeded" else {}
        resp = await worker.result(
            lease,
            outcome=outcome,
            metrics=metrics,
            reason=None if outcome == "succeeded" else "crashed",
        )
        assert resp.status_code == 200, resp.text


async def test_a_finished_version_gets_its_verdict_in_the_same_transaction(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, worker_token: str
) -> None:
    sub = await submit(client, alice)
    fresh = sub["version"]["seeds"]["fresh"]
    values: dict[tuple[str, int], float] = {
        ("claimed", 0): 1.9,
        ("claimed", 1): 2.0,
        ("claimed", 2): 2.1,
    }
    for i, seed in enumerate(fresh):
        values[("fresh", seed)] = 2.0 + 0.05 * (i - 1)
    values[("probe", fresh[0])] = values[("fresh", fresh[0])]
    await _run_all(WorkerApi(client, worker_token), values)

    body = (await client.get(f"/v1/submissions/{sub['id']}")).json()
    assert body["state"] == "finished"
    assert body["verdict"] == "reproduced"
    verdict = body["version"]["verdict"]
    assert verdict["claim_verdict"] == "reproduced"
    assert verdict["determinism"]["deterministic"] is True
    assert verdict["exactness"]["exactly_reproducible"] is True
    score = verdict["metrics"]["score"]
    assert score["n_reproduced"] == 3
    assert -0.5 < score["ci_low"] < score["ci_high"] < 0.5
    assert "reproduced" in score["explanation"]
    assert 0 < verdict["quality"]["total"] <= 100
    listed = (await client.get("/v1/submissions")).json()["items"][0]
    assert listed["verdict"] == "reproduced"
    assert listed["quality"] == verdict["quality"]["total"]
    async with app.state.db.session() as s:
        rows = (await s.execute(select(VerdictMetric.name))).scalars().all()
    assert sorted(rows) == ["score"]


async def test_failed_seeds_are_counted_not_dropped(
    client: httpx.AsyncClient, alice: Account, worker_token: str
) -> None:
    sub = await submit(client, alice)
    fresh = sub["version"]["seeds"]["fresh"]
    await _run_all(WorkerApi(client, worker_token), {}, outcome_for={fresh[1]: "user_error"})
    verdict = (await client.get(f"/v1/submissions/{sub['id']}")).json()["version"]["verdict"]
    assert verdict["runs"]["failed"] >= 1
    assert verdict["runs"]["failed_by_outcome"]["user_error"] >= 1
    assert verdict["metrics"]["score"]["n_reproduced"] == 2


async def test_rescore_reproduces_the_stored_verdict_and_reports_tampering(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, worker_token: str
) -> None:
    sub = await submit(client, alice)
    await _run_all(WorkerApi(client, worker_token), {})
    async with app.state.db.session(write=True) as s:
        version = (await s.execute(select(SubmissionVersion))).scalar_one()
        same = await rescore(s, version, write=False)
        assert same.differences == []
        stored: dict[str, Any] = dict(same.recomputed)
        stored["claim_verdict"] = "not_reproduced"
        await s.execute(update(Verdict).values(score=stored))
    async with app.state.db.session(write=True) as s:
        version = (await s.execute(select(SubmissionVersion))).scalar_one()
        changed = await rescore(s, version, write=True)
        assert changed.differences == [
            "claim_verdict: 'not_reproduced' -> " + repr(same.recomputed["claim_verdict"])
        ]
    async with app.state.db.session(write=True) as s:
        version = (await s.execute(select(SubmissionVersion))).scalar_one()
        assert (await rescore(s, version, write=False)).differences == []
    assert sub["id"]


async def _cli_rescore_all(database_url: str) -> Result:
    # The CLI reads its settings from the environment, once per process: forget them around it.
    get_settings.cache_clear()
    try:
        env = {"REPRISE_DATABASE_URL": database_url}
        return await asyncio.to_thread(cli_runner.invoke, cli, ["rescore", "--all"], env=env)
    finally:
        get_settings.cache_clear()


async def test_rescore_all_checks_every_finished_version_and_repairs_with_write(
    app: FastAPI,
    client: httpx.AsyncClient,
    alice: Account,
    worker_token: str,
    database_url: str,
) -> None:
    worker = WorkerApi(client, worker_token)
    first = await submit(client, alice)
    await _run_all(worker, {})
    second = await submit(client, alice)
    await _run_all(worker, {})
    await submit(client, alice)  # still queued: not scored, so not rescored
    async with app.state.db.session(write=True) as s:
        verdict = (
            await s.execute(select(Verdict).where(Verdict.submission_id == first["id"]))
        ).scalar_one()
        tampered: dict[str, Any] = {**verdict.score, "claim_verdict": "exceeded"}
        await s.execute(update(Verdict).where(Verdict.id == verdict.id).values(score=tampered))

    seen: list[tuple[int, int]] = []
    report = await rescore_all(
        app.state.db,
        write=False,
        batch=1,
        progress=lambda r, total: seen.append((r.checked, total)),
    )
    assert (report.checked, report.identical) == (2, 1)
    assert report.differing == [
        (first["id"], 1, [f"claim_verdict: 'exceeded' -> {verdict.claim_verdict!r}"])
    ]
    assert seen == [(1, 2), (2, 2)]

    result = await _cli_rescore_all(database_url)
    assert result.exit_code == 1, result.output
    assert "1 of 2 verdicts differ (1 identical)" in result.stdout
    assert f"submission {first['id']} v1: claim_verdict: 'exceeded' ->" in result.stdout

    repaired = await rescore_all(app.state.db, write=True)
    assert [d[0] for d in repaired.differing] == [first["id"]]
    result = await _cli_rescore_all(database_url)
    assert result.exit_code == 0, result.output
    assert "identical: all 2 stored verdicts are reproduced" in result.stdout
    assert second["id"] != first["id"]


def test_rescore_wants_a_submission_or_all() -> None:
    for args in (["rescore"], ["rescore", "3", "--all"], ["rescore", "--all", "--version", "2"]):
        result = cli_runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
