"""Helpers for the community page tests: published reviews, comments, and challenges with
judged attempts, all made through the API as a person would."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from tests.conftest import Account
from tests.jobs.test_queue import WorkerApi
from tests.reviews.kit import plan, run_all, submit
from tests.web.htmltree import Element, parse

CRITERIA = ("clarity", "rigor", "documentation", "significance")
# Fresh values of three attempts: the hand computation of tests/challenges/test_pooling.py.
ATTEMPT_VALUES = ([2.0, 2.1, 2.2], [1.9, 2.0, 2.1], [1.7, 1.9, 2.1])


async def review(
    client: httpx.AsyncClient,
    maintainer: Account,
    reviewer: Account,
    sid: int,
    scores: tuple[int, int, int, int],
    **extra: Any,
) -> dict[str, Any]:
    """Assign ``reviewer`` (unless already) and publish their review of submission ``sid``."""
    await client.post(
        f"/v1/submissions/{sid}/assignments",
        headers=maintainer.headers,
        json={"reviewer": reviewer.name},
    )
    body: dict[str, Any] = {
        c: {"score": s, "comment": f"{c} comment by {reviewer.name}"}
        for c, s in zip(CRITERIA, scores, strict=True)
    }
    body |= {"recommendation": "revise", "publish": True} | extra
    resp = await client.post(f"/v1/submissions/{sid}/reviews", headers=reviewer.headers, json=body)
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    return out


async def comment(
    client: httpx.AsyncClient, who: Account, sid: int, body: str, parent: int | None = None
) -> int:
    resp = await client.post(
        f"/v1/submissions/{sid}/comments",
        headers=who.headers,
        json={"body": body, **({"parent_id": parent} if parent else {})},
    )
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


async def page(
    client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> Element:
    resp = await client.get(url, headers=headers or {})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/html")
    return parse(resp.text)


async def open_challenge(client: httpx.AsyncClient, maintainer: Account, **extra: Any) -> int:
    body = {
        "title": "Does plain SGD reach 2.0 on toy?",
        "deadline": (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).isoformat(),
        "benchmark": "toy",
        "metrics": {"score": {"mean": 2.0, "spread": 0.1, "spread_kind": "sd", "n": 5}},
        "source_url": "https://arxiv.org/abs/2501.00001",
    } | extra
    resp = await client.post("/v1/challenges", headers=maintainer.headers, json=body)
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


async def attempts(
    client: httpx.AsyncClient, worker: WorkerApi, challenge_id: int, people: list[Account]
) -> list[int]:
    """One judged attempt per person, with the fresh values of ``ATTEMPT_VALUES`` in turn."""
    plans = {}
    for who, fresh in zip(people, ATTEMPT_VALUES, strict=False):
        sub = await submit(client, who, path=f"/v1/challenges/{challenge_id}/attempts")
        plans[sub["id"]] = plan(sub, fresh)
    await run_all(worker, plans)
    return list(plans)
