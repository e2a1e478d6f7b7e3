"""Submission intake: every bad input gets a 4xx problem+json naming the field or entry at
fault and leaves no row, no blob and no file behind; good input is queued as jobs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Account
from tests.helpers import (
    storage_snapshot,
    table_counts,
    targz,
    toy_files,
    toy_manifest,
    upload,
    zipped,
)


async def _rejected(
    app: FastAPI,
    client: httpx.AsyncClient,
    account: Account,
    data: bytes,
    *,
    status: int = 422,
    filename: str = "p.tar.gz",
) -> dict[str, Any]:
    counts, files = await table_counts(app), storage_snapshot(app)
    resp = await client.post("/v1/submissions", headers=account.headers, **upload(data, filename))
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert await table_counts(app) == counts
    assert storage_snapshot(app) == files
    body: dict[str, Any] = resp.json()
    return body


MANIFEST_CASES = [
    ("missing manifest", {"reprise.toml": None}, "no_manifest", None),
    ("toml syntax", {"reprise.toml": "format = 1\n[package\nname = 'x'"}, None, "line 2"),
    ("unknown top key", {"reprise.toml": toy_manifest() + "\nlicence = 'MIT'\n"}, None, "licence"),
    (
        "unknown benchmark",
        {"reprise.toml": toy_manifest(benchmark='[benchmark]\nid = "nope"\nversion = 1\n')},
        None,
        "no benchmark 'nope'",
    ),
    (
        "unknown metric",
        {"reprise.toml": toy_manifest(metrics="[claim.metrics.accuracy]\nmean = 0.9\n")},
        None,
        "no metric 'accuracy'",
    ),
    (
        "mean disagrees",
        {
            "reprise.toml": toy_manifest(
                metrics="[claim.metrics.score]\nmean = 2.5\nvalues = [1.9, 2.0, 2.1]\n"
            )
        },
        None,
        "disagrees",
    ),
    (
        "values length",
        {
            "reprise.toml": toy_manifest(
                metrics="[claim.metrics.score]\nmean = 2.0\nvalues = [2.0, 2.0]\n"
            )
        },
        None,
        "one value per seed",
    ),
    (
        "nan",
        {"reprise.toml": toy_manifest(metrics="[claim.metrics.score]\nmean = nan\n")},
        None,
        "claim.metrics.score.mean",
    ),
    (
        "spread without kind",
        {
            "reprise.toml": toy_manifest(
                metrics="[claim.metrics.score]\nmean = 2.0\nspread = 0.1\nn = 3\n"
            )
        },
        None,
        "spread_kind",
    ),
    ("entry missing", {"sgd.py": None}, None, "sgd.py is not in the archive"),
    (
        "base not approved",
        {"reprise.toml": toy_manifest(environment='[environment]\nbase = "cuda-12"\n')},
        None,
        "not an approved base",
    ),
    ("wrong format", {"reprise.toml": toy_manifest(top="format = 2\n")}, None, "format"),
]


@pytest.mark.parametrize(
    ("case", "changes", "code", "needle"), MANIFEST_CASES, ids=[c[0] for c in MANIFEST_CASES]
)
async def test_bad_packages_are_rejected_precisely(
    app: FastAPI,
    client: httpx.AsyncClient,
    alice: Account,
    case: str,
    changes: dict[str, str | None],
    code: str | None,
    needle: str | None,
) -> None:
    files: dict[str, str | bytes] = dict(toy_files())
    for name, content in changes.items():
        if content is None:
            files.pop(name)
        else:
            files[name] = content
    body = await _rejected(app, client, alice, targz(files))
    if code is not None:
        assert body["code"] == code
    if needle is not None:
        text = body["detail"] + " ".join(f"{e['loc']} {e['msg']}" for e in body.get("errors", []))
        assert needle in text, text


async def test_a_good_package_is_queued_with_claimed_fresh_and_probe_jobs(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    resp = await client.post(
        "/v1/submissions",
        headers=alice.headers,
        **upload(zipped(toy_files(), prefix="toy-sgd/"), "p.zip"),
    )
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["owner"] == "alice"
    assert body["state"] == "queued"
    version = body["version"]
    assert version["lint_report"]["errors"] == []
    assert {c["id"] for c in version["lint_report"]["checks"]} >= {"readme", "license_file"}
    fresh = version["seeds"]["fresh"]
    assert len(set(fresh)) == 3
    assert not set(fresh) & {0, 1, 2}
    probe = [j for j in body["jobs"] if j["kind"] == "probe"]
    assert [j["seed"] for j in probe] == [fresh[0]]
    blobs, scratch = storage_snapshot(app)
    assert any(p.name == version["package_sha256"] for p in blobs)
    assert scratch == []


async def test_fresh_seeds_differ_between_submissions_of_the_same_package(
    client: httpx.AsyncClient, alice: Account
) -> None:
    seeds = []
    for _ in range(2):
        resp = await client.post(
            "/v1/submissions", headers=alice.headers, **upload(targz(toy_files()))
        )
        seeds.append(resp.json()["version"]["seeds"]["fresh"])
    assert seeds[0] != seeds[1]


async def test_not_multipart_and_missing_or_extra_parts(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    resp = await client.post(
        "/v1/submissions",
        headers=alice.headers,
        content=b"hello",
        params={},
    )
    assert resp.status_code == 415
    resp = await client.post(
        "/v1/submissions", headers=alice.headers, data={"note": "hi"}, files={"other": ("x", b"y")}
    )
    assert resp.status_code == 422
    assert "unexpected form field" in resp.json()["detail"]
    assert storage_snapshot(app)[1] == []


async def test_listing_filters_and_detail(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    for account in (alice, bob):
        resp = await client.post(
            "/v1/submissions", headers=account.headers, **upload(targz(toy_files()))
        )
        assert resp.status_code == 202
    everyone = (await client.get("/v1/submissions")).json()
    assert everyone["pagination"]["total"] == 2
    by_bob = (await client.get("/v1/submissions", params={"author": "bob"})).json()
    assert [s["owner"] for s in by_bob["items"]] == ["bob"]
    queued = (
        await client.get("/v1/submissions", params={"state": "queued", "benchmark": "toy"})
    ).json()
    assert queued["pagination"]["total"] == 2
    tagged = (await client.get("/v1/submissions", params={"tag": "baseline"})).json()
    assert tagged["pagination"]["total"] == 2
    untagged = (await client.get("/v1/submissions", params={"tag": "momentum"})).json()
    assert untagged["items"] == []
    none = (await client.get("/v1/submissions", params={"benchmark": "other"})).json()
    assert none["items"] == []
    page = (await client.get("/v1/submissions", params={"limit": 1})).json()
    assert len(page["items"]) == 1
    assert page["pagination"]["next_offset"] == 1
    detail = (await client.get(f"/v1/submissions/{page['items'][0]['id']}")).json()
    assert len(detail["jobs"]) == 7


async def test_new_version_supersedes_and_keeps_history(
    client: httpx.AsyncClient, alice: Account
) -> None:
    first = (
        await client.post("/v1/submissions", headers=alice.headers, **upload(targz(toy_files())))
    ).json()
    sid = first["id"]
    manifest = toy_manifest(hyperparameters="[hyperparameters]\nlr = 0.05\n")
    resp = await client.post(
        f"/v1/submissions/{sid}/versions",
        headers=alice.headers,
        **upload(targz(toy_files(manifest))),
    )
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["latest_version"] == 2
    assert [v["number"] for v in body["versions"]] == [1, 2]
    assert body["version"]["hyperparameters"] == {"lr": 0.05}
    old = (await client.get(f"/v1/submissions/{sid}", params={"version": 1})).json()
    assert old["version"]["status"] == "cancelled"
    assert {j["status"] for j in old["jobs"]} == {"cancelled"}


async def test_withdraw_cancels_queued_jobs(client: httpx.AsyncClient, alice: Account) -> None:
    sid = (
        await client.post("/v1/submissions", headers=alice.headers, **upload(targz(toy_files())))
    ).json()["id"]
    resp = await client.post(f"/v1/submissions/{sid}/withdraw", headers=alice.headers)
    assert resp.status_code == 200
    assert resp.json()["status"] == "withdrawn"
    assert {j["status"] for j in resp.json()["jobs"]} == {"cancelled"}
    again = await client.post(
        f"/v1/submissions/{sid}/versions", headers=alice.headers, **upload(targz(toy_files()))
    )
    assert again.status_code == 409


async def test_daily_quota_answers_429_with_retry_after(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    app.state.settings.quotas.submissions_per_day = 1
    assert (
        await client.post("/v1/submissions", headers=alice.headers, **upload(targz(toy_files())))
    ).status_code == 202
    counts = await table_counts(app)
    resp = await client.post("/v1/submissions", headers=alice.headers, **upload(targz(toy_files())))
    assert resp.status_code == 429
    assert int(resp.headers["retry-after"]) > 3600
    assert await table_counts(app) == counts


async def test_queue_cap_answers_429(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    app.state.settings.quotas.queue_cap = 7
    assert (
        await client.post("/v1/submissions", headers=alice.headers, **upload(targz(toy_files())))
    ).status_code == 202
    resp = await client.post("/v1/submissions", headers=alice.headers, **upload(targz(toy_files())))
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "60"
    assert "queue is full" in resp.json()["detail"]


async def test_a_margin_too_small_for_the_claimed_spread_warns(
    client: httpx.AsyncClient, alice: Account
) -> None:
    manifest = toy_manifest(metrics="[claim.metrics.score]\nmean = 2.0\nvalues = [1.0, 2.0, 3.0]\n")
    resp = await client.post("/v1/submissions", headers=alice.headers,
                             **upload(targz(toy_files(manifest))))
    assert resp.status_code == 202
    warnings = resp.json()["version"]["lint_report"]["warnings"]
    assert any("claim.metrics.score" in w and "inconclusive" in w for w in warnings), warnings
