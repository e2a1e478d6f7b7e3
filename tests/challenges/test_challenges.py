"""Replication challenges through the API: opening, listing, attempts judged against the
challenge's claim, the pooled estimate of three attempts, independence, and closing."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from app.challenges import service as challenge_service
from app.challenges.models import Challenge
from tests.conftest import Account
from tests.helpers import storage_snapshot, table_counts, toy_manifest
from tests.jobs.test_queue import WorkerApi
from tests.reviews.kit import plan, post_package, run_all, submit

# An attempt's own claim: far from the challenge's, so a verdict "reproduced" can only come
# from judging against the challenge's claim (2.0).
OWN_CLAIM = toy_manifest(metrics="[claim.metrics.score]\nmean = 5.0\nvalues = [4.9, 5.0, 5.1]\n")


def _later(days: float = 7) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat()


def _paper(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Does plain SGD reach 2.0 on toy?",
        "deadline": _later(),
        "benchmark": "toy",
        "metrics": {"score": {"mean": 2.0, "spread": 0.1, "spread_kind": "sd", "n": 5}},
        "source_url": "https://arxiv.org/abs/2501.00001",
    }
    body.update(extra)
    return body


async def _open(client: httpx.AsyncClient, maintainer: Account, **extra: Any) -> dict[str, Any]:
    resp = await client.post("/v1/challenges", headers=maintainer.headers, json=_paper(**extra))
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_maintainers_open_challenges_and_claims_are_checked(
    client: httpx.AsyncClient, alice: Account, maintainer: Account
) -> None:
    assert (
        await client.post("/v1/challenges", headers=alice.headers, json=_paper())
    ).status_code == 403
    assert (await client.post("/v1/challenges", json=_paper())).status_code == 401
    bad_cases = [
        {"metrics": {"accuracy": {"mean": 1.0}}},
        {"metrics": {"loss": {"mean": 0.1}}},  # no primary metric
        {"metrics": {"score": {"mean": 2.0, "direction": "higher"}}},
        {"metrics": {"score": {"mean": 2.0, "spread": 0.1, "spread_kind": "sd"}}},  # n missing
        {"metrics": {"score": {"mean": 2.0, "values": [1.0, 1.1]}}},  # mean ≠ mean of values
        {"source_url": None},
        {"source_url": "javascript:alert(1)"},
        {"deadline": (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()},
        {"deadline": "2030-01-01T00:00:00"},  # naive
        {"benchmark": "nope"},
        {"submission_id": 1},  # and a paper claim at once
        {"status": "closed"},
    ]
    for extra in bad_cases:
        resp = await client.post("/v1/challenges", headers=maintainer.headers, json=_paper(**extra))
        assert resp.status_code == 422, (extra, resp.text)

    made = await _open(client, maintainer)
    assert made["status"] == "open"
    assert made["source"] == {
        "kind": "paper",
        "submission_id": None,
        "version": None,
        "url": "https://arxiv.org/abs/2501.00001",
    }
    assert made["benchmark"] == {"id": "toy", "version": 1}
    assert made["consensus"]["verdict"] == "pending"
    assert made["attempts"] == []
    assert made["pooled"] == []

    sub = await submit(client, alice)
    on_sub = await client.post(
        "/v1/challenges",
        headers=maintainer.headers,
        json={"title": "Replicate alice", "deadline": _later(), "submission_id": sub["id"]},
    )
    assert on_sub.status_code == 201, on_sub.text
    assert on_sub.json()["source"]["kind"] == "submission"
    assert on_sub.json()["source"]["version"] == 1
    assert on_sub.json()["claim"]["metrics"]["score"]["values"] == [1.9, 2.0, 2.1]


async def test_challenges_are_listed_and_filtered(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, maintainer: Account
) -> None:
    sub = await submit(client, alice)
    first = await _open(client, maintainer, title="Momentum on toy")
    second = await client.post(
        "/v1/challenges",
        headers=maintainer.headers,
        json={"title": "Alice's SGD", "deadline": _later(), "submission_id": sub["id"]},
    )
    assert second.status_code == 201
    async with app.state.db.session(write=True) as s:
        await s.execute(
            update(Challenge)
            .where(Challenge.id == first["id"])
            .values(deadline=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )

    async def ids(**params: Any) -> list[int]:
        resp = await client.get("/v1/challenges", params=params)
        assert resp.status_code == 200, resp.text
        return [c["id"] for c in resp.json()["items"]]

    assert await ids() == [second.json()["id"], first["id"]]
    assert await ids(status="open") == [second.json()["id"]]
    assert await ids(status="closed") == [first["id"]]
    assert await ids(benchmark="toy-gpu") == []
    assert await ids(submission_id=sub["id"]) == [second.json()["id"]]
    assert await ids(q="momentum") == [first["id"]]
    assert await ids(q="%") == []
    listed = (await client.get("/v1/challenges")).json()["items"][1]
    assert listed["status"] == "closed"
    assert listed["attempt_count"] == 0
    assert (await client.get("/v1/challenges/999")).status_code == 404


async def test_three_attempts_are_judged_against_the_challenge_and_pooled(
    client: httpx.AsyncClient,
    maintainer: Account,
    bob: Account,
    carol: Account,
    dan: Account,
    worker_token: str,
) -> None:
    challenge = await _open(client, maintainer)
    url = f"/v1/challenges/{challenge['id']}/attempts"
    fresh = {"bob": [2.0, 2.1, 2.2], "carol": [1.9, 2.0, 2.1], "dan": [1.7, 1.9, 2.1]}
    plans: dict[int, dict[Any, float]] = {}
    subs = {}
    for who in (bob, carol, dan):
        sub = await submit(client, who, OWN_CLAIM, path=url)
        assert sub["challenge_id"] == challenge["id"]
        subs[who.name] = sub
        plans[sub["id"]] = plan(sub, fresh[who.name])
    await run_all(WorkerApi(client, worker_token), plans)

    body = (await client.get(f"/v1/challenges/{challenge['id']}")).json()
    assert body["attempt_count"] == 3
    assert body["judged_count"] == 3
    attempts = {a["owner"]: a for a in body["attempts"]}
    assert all(a["independent"] and a["verdict"] == "reproduced" for a in attempts.values())
    assert attempts["dan"]["metrics"]["score"]["se"] == pytest.approx(0.2 / math.sqrt(3))
    assert attempts["bob"]["metrics"]["score"]["weight"] == pytest.approx(300 / 675)
    [score] = body["pooled"]
    # The hand computation of tests/challenges/test_pooling.py, now through the whole service.
    assert score["metric"] == "score"
    assert score["k"] == 3
    assert score["estimate"] == pytest.approx(1372.5 / 675, abs=1e-9)
    assert score["se"] == pytest.approx(1 / math.sqrt(675), abs=1e-9)
    assert score["q"] == pytest.approx(3.0, abs=1e-9)
    assert score["i2"] == pytest.approx(1 / 3, abs=1e-9)
    assert score["tau2"] == pytest.approx(0.0025, abs=1e-9)
    assert score["verdict"] == "reproduced"
    assert body["consensus"]["verdict"] == "reproduced"
    assert body["consensus"]["independent_attempts"] == 3
    assert body["consensus"]["line"].startswith(
        "Consensus of 3 independent attempts: the claim is reproduced"
    )
    assert "I² = 33%" in body["consensus"]["line"]

    own = (await client.get(f"/v1/submissions/{subs['bob']['id']}")).json()
    assert own["verdict"] == "reproduced"  # against 2.0, though its own claim said 5.0
    assert own["version"]["claim"]["metrics"]["score"]["mean"] == 5.0
    assert own["version"]["verdict"]["metrics"]["score"]["claimed_mean"] == 2.0
    profile = (await client.get("/v1/users/bob/contributions")).json()["contributions"]
    assert (profile["attempts_contributed"], profile["attempts_judged"]) == (1, 1)
    assert profile["claims_reproduced"] == 1

    again = await post_package(client, bob, path=f"/v1/submissions/{subs['bob']['id']}/versions")
    assert again.status_code == 409, again.text
    assert "submit a new attempt" in again.json()["detail"]


async def test_independence_authors_and_repeat_attempts(
    client: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    maintainer: Account,
    worker_token: str,
) -> None:
    sub = await submit(client, alice)
    made = await client.post(
        "/v1/challenges",
        headers=maintainer.headers,
        json={"title": "Replicate alice", "deadline": _later(), "submission_id": sub["id"]},
    )
    url = f"/v1/challenges/{made.json()['id']}/attempts"
    own = await submit(client, alice, path=url)
    early = await submit(client, bob, path=url)
    late = await submit(client, bob, path=url)
    plans = {s["id"]: plan(s, [1.95, 2.0, 2.05]) for s in (sub, own, early, late)}
    await run_all(WorkerApi(client, worker_token), plans)
    body = (await client.get(f"/v1/challenges/{made.json()['id']}")).json()
    why = {a["submission_id"]: a["excluded_because"] for a in body["attempts"]}
    assert why == {
        own["id"]: "by an author of the challenged submission",
        early["id"]: "superseded by a later attempt of the same replicator",
        late["id"]: None,
    }
    assert body["consensus"]["verdict"] == "pending"
    assert body["consensus"]["independent_attempts"] == 1


async def test_attempts_must_match_the_challenge(
    app: FastAPI, client: httpx.AsyncClient, bob: Account, maintainer: Account
) -> None:
    challenge = await _open(
        client,
        maintainer,
        metrics={"score": {"mean": 2.0}, "loss": {"mean": 0.01}},
    )
    url = f"/v1/challenges/{challenge['id']}/attempts"
    before, blobs = await table_counts(app), storage_snapshot(app)
    gpu = toy_manifest(benchmark='[benchmark]\nid = "toy-gpu"\nversion = 1\n')
    wrong = await post_package(client, bob, gpu, path=url)
    assert wrong.status_code == 422, wrong.text
    assert "toy-gpu" in wrong.json()["detail"]
    partial = await post_package(client, bob, path=url)
    assert partial.status_code == 422
    assert "loss" in partial.json()["detail"]
    assert await table_counts(app) == before
    assert storage_snapshot(app) == blobs
    assert (await post_package(client, bob, path="/v1/challenges/999/attempts")).status_code == 404


async def test_a_closed_challenge_takes_no_attempts(
    app: FastAPI,
    client: httpx.AsyncClient,
    bob: Account,
    maintainer: Account,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    challenge = await _open(client, maintainer, deadline=_later(days=1 / 24))
    url = f"/v1/challenges/{challenge['id']}/attempts"
    deadline = dt.datetime.fromisoformat(challenge["deadline"])
    before, blobs = await table_counts(app), storage_snapshot(app)
    # The deadline passes while the package is being uploaded: the second check refuses it.
    clock = iter([deadline - dt.timedelta(seconds=1), deadline])
    monkeypatch.setattr(challenge_service, "utcnow", lambda: next(clock))
    late = await post_package(client, bob, path=url)
    assert late.status_code == 409, late.text
    assert "closed" in late.json()["detail"]
    assert await table_counts(app) == before
    assert storage_snapshot(app) == blobs
    monkeypatch.undo()
    async with app.state.db.session(write=True) as s:
        await s.execute(
            update(Challenge)
            .where(Challenge.id == challenge["id"])
            .values(deadline=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    refused = await post_package(client, bob, path=url)
    assert refused.status_code == 409
    assert (await client.get(f"/v1/challenges/{challenge['id']}")).json()["status"] == "closed"


async def test_attempt_uploads_get_the_package_size_cap(
    client: httpx.AsyncClient, bob: Account, maintainer: Account
) -> None:
    import os

    from tests.helpers import targz, toy_files, upload

    challenge = await _open(client, maintainer)
    big = targz(toy_files(**{"weights.bin": os.urandom(3 * 2**20 // 2)}))
    resp = await client.post(
        f"/v1/challenges/{challenge['id']}/attempts", headers=bob.headers, **upload(big)
    )
    assert resp.status_code == 202, resp.text
