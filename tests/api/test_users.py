"""Accounts and tokens: shown once, stored hashed, revocable; worker tokens are separate."""

from __future__ import annotations

import hashlib

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.users.models import ApiToken
from tests.conftest import Account


async def test_registration_returns_the_token_once_and_stores_a_hash(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    resp = await client.post("/v1/users", json={"name": "grace", "display_name": "Grace H."})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    token = body["token"]["token"]
    assert token.startswith("rpu_")
    assert body["user"]["role"] == "member"
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["name"] == "grace"
    listed = await client.get("/v1/tokens", headers={"Authorization": f"Bearer {token}"})
    assert "token" not in listed.json()[0]
    async with app.state.db.session() as session:
        stored = (await session.execute(select(ApiToken.token_hash))).scalars().all()
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    assert token not in stored


async def test_registration_rejects_taken_and_invalid_names_and_server_fields(
    client: httpx.AsyncClient, alice: Account
) -> None:
    assert (await client.post("/v1/users", json={"name": "alice"})).status_code == 409
    bad = await client.post("/v1/users", json={"name": "A!"})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["errors"][0]["loc"] == "name"
    escalate = await client.post("/v1/users", json={"name": "mallory", "role": "maintainer"})
    assert escalate.status_code == 422
    assert escalate.json()["errors"][0]["loc"] == "role"


async def test_registration_can_be_switched_off(app: FastAPI, client: httpx.AsyncClient) -> None:
    app.state.settings.allow_registration = False
    resp = await client.post("/v1/users", json={"name": "grace"})
    assert resp.status_code == 403
    assert "switched off" in resp.json()["detail"]


async def test_revoked_token_is_refused(client: httpx.AsyncClient, alice: Account) -> None:
    second = (
        await client.post("/v1/tokens", headers=alice.headers, json={"name": "laptop"})
    ).json()
    other = {"Authorization": f"Bearer {second['token']}"}
    assert (await client.get("/v1/me", headers=other)).status_code == 200
    assert (
        await client.delete(f"/v1/tokens/{second['id']}", headers=alice.headers)
    ).status_code == 204
    refused = await client.get("/v1/me", headers=other)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"


async def test_a_member_cannot_revoke_someone_elses_token(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    tokens = (await client.get("/v1/tokens", headers=alice.headers)).json()
    resp = await client.delete(f"/v1/tokens/{tokens[0]['id']}", headers=bob.headers)
    assert resp.status_code == 404
    assert (await client.get("/v1/me", headers=alice.headers)).status_code == 200


async def test_worker_tokens_are_for_maintainers_and_only_for_the_worker_api(
    client: httpx.AsyncClient, alice: Account, maintainer: Account
) -> None:
    assert (
        await client.post("/v1/workers", headers=alice.headers, json={"name": "w"})
    ).status_code == 403
    created = await client.post(
        "/v1/workers",
        headers=maintainer.headers,
        json={"name": "lab-box", "labels": {"gpu": "a100"}},
    )
    assert created.status_code == 201
    worker = {"Authorization": f"Bearer {created.json()['token']}"}
    assert (await client.get("/v1/me", headers=worker)).status_code == 403
    assert (
        await client.post(
            "/v1/worker/lease", headers=alice.headers, json={"worker_id": "x", "wait_s": 0}
        )
    ).status_code == 403
    lease = await client.post(
        "/v1/worker/lease", headers=worker, json={"worker_id": "x", "wait_s": 0}
    )
    assert lease.status_code == 204
    listed = await client.get("/v1/workers", headers=maintainer.headers)
    assert listed.json()["items"][0]["labels"] == {"gpu": "a100"}
    assert "token" not in listed.json()["items"][0]


async def test_garbage_tokens_get_401_with_problem_json(client: httpx.AsyncClient) -> None:
    for header in ("Bearer nonsense", "Bearer rpu_" + "x" * 43, "Basic dXNlcjpwYXNz"):
        resp = await client.get("/v1/me", headers={"Authorization": header})
        assert resp.status_code == 401, header
        body = resp.json()
        assert body["type"].endswith("/unauthorized")
        assert body["request_id"] == resp.headers["x-request-id"]
