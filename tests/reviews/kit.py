"""Helpers for the community tests: more users, submissions run to a verdict with chosen
fresh-seed values, and a wait for background work."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
from fastapi import FastAPI

from tests.conftest import Account
from tests.helpers import targz, toy_files, upload
from tests.jobs.test_queue import WorkerApi


async def make_user(
    app: FastAPI, name: str, role: str = "member", display_name: str | None = None
) -> Account:
    from app.users.models import Role
    from app.users.service import create_user

    async with app.state.db.session(write=True) as session:
        issued = await create_user(session, name=name, role=Role(role), display_name=display_name)
    return Account(name=name, token=issued.plaintext, id=issued.token.user_id)


async def post_package(
    client: httpx.AsyncClient, account: Account, manifest: str | None = None, path: str = ""
) -> httpx.Response:
    return await client.post(
        path or "/v1/submissions", headers=account.headers, **upload(targz(toy_files(manifest)))
    )


async def submit(
    client: httpx.AsyncClient, account: Account, manifest: str | None = None, path: str = ""
) -> dict[str, Any]:
    resp = await post_package(client, account, manifest, path)
    assert resp.status_code == 202, resp.text
    body: dict[str, Any] = resp.json()
    return body


def plan(sub: dict[str, Any], fresh: Sequence[float], claimed: float = 2.0) -> dict[Any, float]:
    """Metric values for every job of a submission's current version: fresh seeds in order,
    the probe equal to the first fresh run, claimed seeds at ``claimed``."""
    seeds = sub["version"]["seeds"]
    out: dict[Any, float] = {("claimed", s): claimed for s in seeds["claimed"]}
    out.update({("fresh", s): v for s, v in zip(seeds["fresh"], fresh, strict=True)})
    out[("probe", seeds["fresh"][0])] = fresh[0]
    return out


async def run_all(worker: WorkerApi, plans: dict[int, dict[Any, float]]) -> None:
    """Lease every queued job and post a result from ``plans[submission id]``."""
    while (lease := await worker.lease()) is not None:
        values = plans.get(lease["submission_id"], {})
        score = values.get((lease["kind"], lease["seed"]), 2.0)
        resp = await worker.result(lease, metrics={"score": score, "loss": 10**-score})
        assert resp.status_code == 200, resp.text


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 15.0, what: str = "condition"
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
