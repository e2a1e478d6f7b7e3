"""Every event reaches the people it concerns: job finished, verdict published, review
received, comment reply, challenge attempt judged; nothing for a rolled-back change."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.webhooks import events
from app.webhooks.models import WebhookDelivery
from tests.conftest import Account
from tests.jobs.test_queue import WorkerApi
from tests.reviews.kit import make_user, plan, run_all, submit, wait_until
from tests.webhooks.conftest import Receiver


def _by_owner(receiver: Receiver) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {}
    for r in receiver.requests:
        who = r.path.split("who=")[1]
        out.setdefault(who, Counter())[r.headers["reprise-event"]] += 1
    return out


async def test_each_event_reaches_its_subscribers(
    app: FastAPI,
    client: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    maintainer: Account,
    worker_token: str,
    receiver: Receiver,
) -> None:
    for who, subscribed in [
        (alice, None),
        (bob, ["comment.reply", "challenge.attempt_judged"]),
    ]:
        body: dict[str, Any] = {"url": f"{receiver.url}?who={who.name}"}
        if subscribed:
            body["events"] = subscribed
        resp = await client.post("/v1/me/webhooks", headers=who.headers, json=body)
        assert resp.status_code == 201, resp.text
    worker = WorkerApi(client, worker_token)
    sub = await submit(client, alice)
    await run_all(worker, {sub["id"]: plan(sub, [1.95, 2.0, 2.05])})

    rita = await make_user(app, "rita", "reviewer")
    await client.post(
        f"/v1/submissions/{sub['id']}/assignments",
        headers=maintainer.headers,
        json={"reviewer": "rita"},
    )
    criterion = {"score": 4, "comment": "ok"}
    review = await client.post(
        f"/v1/submissions/{sub['id']}/reviews",
        headers=rita.headers,
        json={
            "clarity": criterion,
            "rigor": criterion,
            "documentation": criterion,
            "significance": criterion,
            "recommendation": "endorse",
            "publish": True,
        },
    )
    assert review.status_code == 201, review.text

    comments = f"/v1/submissions/{sub['id']}/comments"
    question = (await client.post(comments, headers=bob.headers, json={"body": "Why?"})).json()
    answer = await client.post(
        comments, headers=alice.headers, json={"body": "Because.", "parent_id": question["id"]}
    )
    await client.post(  # a reply to oneself notifies nobody
        comments, headers=alice.headers, json={"body": "Also.", "parent_id": answer.json()["id"]}
    )

    challenge = await client.post(
        "/v1/challenges",
        headers=maintainer.headers,
        json={
            "title": "Replicate",
            "deadline": (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat(),
            "submission_id": sub["id"],
        },
    )
    attempt = await submit(client, bob, path=f"/v1/challenges/{challenge.json()['id']}/attempts")
    await run_all(worker, {attempt["id"]: plan(attempt, [1.95, 2.0, 2.05])})

    expected = {
        "alice": Counter(
            {
                "job.finished": 7,  # 3 claimed seeds, 3 fresh, 1 probe
                "verdict.published": 1,
                "review.received": 1,
                "challenge.attempt_judged": 1,  # an attempt at her claim
            }
        ),
        "bob": Counter({"comment.reply": 1, "challenge.attempt_judged": 1}),
    }

    async def all_delivered() -> bool:
        return _by_owner(receiver) == expected

    await wait_until(all_delivered, what=f"deliveries {expected} (got {_by_owner(receiver)})")
    docs = {json.loads(r.body)["type"]: json.loads(r.body) for r in receiver.requests}
    assert docs["verdict.published"]["data"]["claim_verdict"] == "reproduced"
    assert docs["verdict.published"]["data"]["submission_id"] == sub["id"]
    assert docs["review.received"]["data"]["reviewer"] == "rita"
    assert docs["comment.reply"]["data"]["parent_id"] == question["id"]
    assert docs["comment.reply"]["data"]["author"] == "alice"
    judged = docs["challenge.attempt_judged"]["data"]
    assert judged["challenge_id"] == challenge.json()["id"]
    assert judged["submission_id"] == attempt["id"]
    finished = [
        json.loads(r.body)["data"]
        for r in receiver.requests
        if r.headers["reprise-event"] == "job.finished"
    ]
    assert {f["status"] for f in finished} == {"succeeded"}
    assert sorted(f["kind"] for f in finished) == ["claimed"] * 3 + ["fresh"] * 3 + ["probe"]


async def test_a_rolled_back_change_notifies_nobody(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, receiver: Receiver
) -> None:
    await client.post("/v1/me/webhooks", headers=alice.headers, json={"url": receiver.url})

    async def failing_change() -> None:
        async with app.state.db.session(write=True) as s:
            queued = await events.emit(
                s, user_ids=[alice.id], event_name=events.REVIEW_RECEIVED, data={"x": 1}
            )
            assert queued == 1
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await failing_change()
    async with app.state.db.session() as s:
        count = (await s.execute(select(func.count()).select_from(WebhookDelivery))).scalar_one()
    assert count == 0
    assert receiver.requests == []
