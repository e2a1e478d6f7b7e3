"""GET /v1/submissions/{id}/versions/{a}/diff/{b}: manifest and outcome changes."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Account
from tests.helpers import targz, toy_files, toy_manifest, upload
from tests.jobs.test_queue import WorkerApi
from tests.reviews.kit import plan, run_all, submit


def _by_path(changes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["path"]: c for c in changes}


async def test_diff_shows_manifest_and_outcome_changes(
    client: httpx.AsyncClient, alice: Account, bob: Account, worker_token: str
) -> None:
    worker = WorkerApi(client, worker_token)
    v1 = await submit(client, alice)
    await run_all(worker, {v1["id"]: plan(v1, [1.9, 2.0, 2.1])})
    manifest = toy_manifest(
        hyperparameters="[hyperparameters]\nlr = 0.2\nmomentum = 0.9\n",
        metrics="[claim.metrics.score]\nmean = 2.5\nvalues = [2.4, 2.5, 2.6]\n",
        environment='[environment]\nbase = "python-numpy"\npython = "3.12"\n',
    )
    resp = await client.post(
        f"/v1/submissions/{v1['id']}/versions",
        headers=alice.headers,
        **upload(targz(toy_files(manifest))),
    )
    assert resp.status_code == 202, resp.text
    v2 = resp.json()
    await run_all(worker, {v1["id"]: plan(v2, [1.0, 1.1, 1.2], claimed=2.5)})

    diff = await client.get(f"/v1/submissions/{v1['id']}/versions/1/diff/2")
    assert diff.status_code == 200, diff.text
    body = diff.json()
    assert body["base"]["number"] == 1
    assert body["target"]["number"] == 2
    assert body["same_package"] is False
    hyper = _by_path(body["manifest"]["hyperparameters"])
    assert hyper["lr"] == {
        "path": "lr",
        "kind": "changed",
        "before": 0.1,
        "after": 0.2,
        "change": 0.1,
    }
    assert hyper["momentum"]["kind"] == "added"
    assert hyper["momentum"]["after"] == 0.9
    claim = _by_path(body["manifest"]["claim"])
    assert claim["metrics.score.mean"]["before"] == 2.0
    assert claim["metrics.score.mean"]["after"] == 2.5
    assert claim["metrics.score.values"]["after"] == [2.4, 2.5, 2.6]
    env = _by_path(body["manifest"]["environment"])
    assert (env["python"]["before"], env["python"]["after"]) == ("3.11", "3.12")
    assert "input_hash" not in env  # same base and requirements: same environment hash
    assert body["manifest"]["entry"] == []
    assert body["manifest"]["benchmark"] == []

    outcome = _by_path(body["outcome"])
    assert outcome["verdict"]["before"] == "reproduced"
    assert outcome["verdict"]["after"] == "not_reproduced"
    assert outcome["quality"]["change"] < 0
    mean = outcome["metrics.score.reproduced_mean"]
    assert abs(mean["before"] - 2.0) < 1e-9
    assert abs(mean["after"] - 1.1) < 1e-9
    assert abs(mean["change"] + 0.9) < 1e-9
    assert body["outcome_before"]["state"] == body["outcome_after"]["state"] == "finished"

    same = (await client.get(f"/v1/submissions/{v1['id']}/versions/2/diff/2")).json()
    assert same["same_package"] is True
    assert same["outcome"] == []
    assert all(v == [] for v in same["manifest"].values())
    missing = await client.get(f"/v1/submissions/{v1['id']}/versions/1/diff/3")
    assert missing.status_code == 404
    await client.post(f"/v1/submissions/{v1['id']}/withdraw", headers=alice.headers)
    hidden = await client.get(f"/v1/submissions/{v1['id']}/versions/1/diff/2", headers=bob.headers)
    assert hidden.status_code == 404


async def test_diff_of_an_unscored_version_has_null_outcome(
    client: httpx.AsyncClient, alice: Account
) -> None:
    v1 = await submit(client, alice)
    await client.post(
        f"/v1/submissions/{v1['id']}/versions", headers=alice.headers, **upload(targz(toy_files()))
    )
    body = (await client.get(f"/v1/submissions/{v1['id']}/versions/1/diff/2")).json()
    outcome = _by_path(body["outcome"])
    assert outcome["state"]["before"] == "cancelled"
    assert outcome["state"]["after"] == "queued"
    assert body["outcome_after"]["verdict"] is None
