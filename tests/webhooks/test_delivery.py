"""Delivery: signed with the documented recipe, retried with backoff, logged for the owner,
refused at delivery time when the name re-resolves to a private address."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.webhooks import signing, ssrf
from app.webhooks.config import WebhookSettings
from app.webhooks.delivery import backoff_s
from tests.conftest import Account
from tests.reviews.kit import wait_until
from tests.webhooks.conftest import Receiver

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def documented_verify() -> Any:
    """The verification recipe exactly as docs/webhooks.md prints it."""
    text = DOCS.read_text()
    block = re.search(r"<!-- verify-recipe.*?-->\s*```python\n(.*?)```", text, re.S)
    assert block is not None, "the recipe block is missing from docs/webhooks.md"
    scope: dict[str, Any] = {}
    exec(compile(block.group(1), str(DOCS), "exec"), scope)
    return scope["verify_reprise_signature"]


async def _hook(client: httpx.AsyncClient, who: Account, url: str, **extra: Any) -> dict[str, Any]:
    resp = await client.post("/v1/me/webhooks", headers=who.headers, json={"url": url, **extra})
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def _deliveries(
    client: httpx.AsyncClient, who: Account, hook_id: int
) -> list[dict[str, Any]]:
    resp = await client.get(f"/v1/me/webhooks/{hook_id}/deliveries", headers=who.headers)
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def test_a_ping_is_delivered_signed_and_verifies_with_the_documented_recipe(
    client: httpx.AsyncClient, alice: Account, receiver: Receiver
) -> None:
    hook = await _hook(client, alice, receiver.url, description="ci")
    secret = hook["secret"]
    listed = (await client.get("/v1/me/webhooks", headers=alice.headers)).json()["items"]
    assert "secret" not in listed[0]
    assert listed[0]["description"] == "ci"
    ping = await client.post(f"/v1/me/webhooks/{hook['id']}/ping", headers=alice.headers)
    assert ping.status_code == 202, ping.text

    async def delivered() -> bool:
        return [d["status"] for d in await _deliveries(client, alice, hook["id"])] == ["succeeded"]

    await wait_until(delivered, what="the ping")
    [request] = receiver.requests
    assert request.method == "POST"
    assert request.path == "/hook"
    assert request.headers["reprise-event"] == "ping"
    assert request.headers["content-type"] == "application/json"
    doc = json.loads(request.body)
    assert doc["type"] == "ping"
    assert doc["data"] == {"message": "pong"}
    assert request.headers["reprise-delivery"] == doc["id"]
    header = request.headers["reprise-signature"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header)

    verify = documented_verify()
    assert verify(secret, request.body, header) is True
    assert verify("whsec_wrong", request.body, header) is False
    assert verify(secret, request.body + b" ", header) is False
    assert verify(secret, request.body.replace(b"pong", b"PONG"), header) is False
    t = int(header.split(",")[0][2:])
    assert verify(secret, request.body, f"t={t + 1},{header.split(',')[1]}") is False
    old = signing.signature_header(secret, request.body, timestamp=int(time.time()) - 3600)
    assert verify(secret, request.body, old) is False  # a replay an hour later
    assert signing.verify(secret, request.body, header) is True  # the server's own copy agrees

    if shutil.which("openssl"):  # the shell recipe of the docs
        mac = (
            subprocess.run(
                ["openssl", "dgst", "-sha256", "-hmac", secret, "-r"],
                input=f"{t}.".encode() + request.body,
                capture_output=True,
                check=True,
            )
            .stdout.split()[0]
            .decode()
        )
        assert mac == header.split("v1=")[1]
    assert signing.sign(secret, t, request.body) == header.split("v1=")[1]

    [log] = (await _deliveries(client, alice, hook["id"]))[0]["log"]
    assert log["attempt"] == 1
    assert log["status_code"] == 200
    assert log["address"] == "127.0.0.1"


async def test_failures_are_retried_with_backoff_and_logged(
    client: httpx.AsyncClient, alice: Account, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503]
    hook = await _hook(client, alice, receiver.url)
    await client.post(f"/v1/me/webhooks/{hook['id']}/ping", headers=alice.headers)

    async def settled() -> bool:
        return (await _deliveries(client, alice, hook["id"]))[0]["status"] == "succeeded"

    await wait_until(settled, what="the third attempt")
    [delivery] = await _deliveries(client, alice, hook["id"])
    assert delivery["attempts"] == 3
    assert [a["status_code"] for a in delivery["log"]] == [500, 503, 200]
    assert delivery["log"][0]["error"] == "the receiver answered HTTP 500"
    assert len({r.headers["reprise-delivery"] for r in receiver.requests}) == 1  # same event id

    receiver.statuses = [500, 500, 500]
    await client.post(f"/v1/me/webhooks/{hook['id']}/ping", headers=alice.headers)

    async def failed() -> bool:
        return (await _deliveries(client, alice, hook["id"]))[0]["status"] == "failed"

    await wait_until(failed, what="giving up after max_attempts")
    newest = (await _deliveries(client, alice, hook["id"]))[0]
    assert newest["attempts"] == 3
    assert newest["next_attempt_at"] is None
    only_failed = await client.get(
        f"/v1/me/webhooks/{hook['id']}/deliveries",
        headers=alice.headers,
        params={"status": "failed"},
    )
    assert [d["id"] for d in only_failed.json()["items"]] == [newest["id"]]


def test_backoff_doubles_up_to_its_cap() -> None:
    config = WebhookSettings()
    assert [backoff_s(n, config) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff_s(20, config) == 3600


async def test_a_name_that_rebinds_to_loopback_is_not_contacted(
    app: FastAPI,
    client: httpx.AsyncClient,
    alice: Account,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = {"hooks.test": ["93.184.216.34"]}

    async def resolve(host: str, port: int) -> list[str]:
        return answers[host]

    monkeypatch.setattr(ssrf, "resolve", resolve)
    deliverer = app.state.webhook_deliverer
    monkeypatch.setattr(
        deliverer, "config", deliverer.config.model_copy(update={"allow_private_targets": False})
    )
    port = receiver.url.split(":")[2].split("/")[0]
    hook = await _hook(client, alice, f"http://hooks.test:{port}/hook")
    answers["hooks.test"] = ["127.0.0.1"]  # the name now points at the server's own loopback
    await client.post(f"/v1/me/webhooks/{hook['id']}/ping", headers=alice.headers)

    async def tried() -> bool:
        return (await _deliveries(client, alice, hook["id"]))[0]["attempts"] >= 1

    await wait_until(tried, what="a delivery attempt")
    delivery = (await _deliveries(client, alice, hook["id"]))[0]
    assert delivery["status"] in ("pending", "delivering", "failed")
    assert "loopback" in delivery["log"][0]["error"]
    assert receiver.requests == []


async def test_a_host_name_is_delivered_to_its_checked_address(
    client: httpx.AsyncClient,
    alice: Account,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        assert host == "hooks.test"
        return ["127.0.0.1"]

    monkeypatch.setattr(ssrf, "resolve", resolve)
    port = receiver.url.split(":")[2].split("/")[0]
    hook = await _hook(client, alice, f"http://hooks.test:{port}/in?x=1")
    await client.post(f"/v1/me/webhooks/{hook['id']}/ping", headers=alice.headers)

    async def arrived() -> bool:
        return len(receiver.requests) == 1

    await wait_until(arrived, what="the ping")
    [request] = receiver.requests
    assert request.headers["host"] == f"hooks.test:{port}"
    assert request.path == "/in?x=1"


async def test_webhooks_are_private_to_their_owner(
    client: httpx.AsyncClient, alice: Account, bob: Account, receiver: Receiver
) -> None:
    hook = await _hook(client, alice, receiver.url)
    base = f"/v1/me/webhooks/{hook['id']}"
    assert (await client.get(base, headers=bob.headers)).status_code == 404
    assert (await client.get(f"{base}/deliveries", headers=bob.headers)).status_code == 404
    assert (await client.post(f"{base}/ping", headers=bob.headers)).status_code == 404
    assert (await client.delete(base, headers=bob.headers)).status_code == 404
    assert (await client.get("/v1/me/webhooks", headers=bob.headers)).json()["items"] == []
    assert (await client.delete(base, headers=alice.headers)).status_code == 204
    assert (await client.get(base, headers=alice.headers)).status_code == 404
