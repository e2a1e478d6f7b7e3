"""First end-to-end checks of the foundation: health, registration, a submission."""

from __future__ import annotations

import httpx

from tests.conftest import Account
from tests.helpers import targz, toy_files, upload


async def test_health_and_ready(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["catalog"] == "2 benchmarks"


async def test_submit_toy_package(client: httpx.AsyncClient, alice: Account) -> None:
    resp = await client.post("/v1/submissions", headers=alice.headers, **upload(targz(toy_files())))
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["benchmark"] == "toy"
    assert body["version"]["seeds"]["claimed"] == [0, 1, 2]
    assert len(body["version"]["seeds"]["fresh"]) == 3
    kinds = sorted(j["kind"] for j in body["jobs"])
    assert kinds == ["claimed"] * 3 + ["fresh"] * 3 + ["probe"]
