"""Scored submissions with chosen numbers, through the real intake and worker protocol.

Each submission is run to completion before the next is made, so a fake worker can answer every
lease of the queue with the values chosen for that submission (claimed-seed re-runs, fresh
seeds, and the determinism probe, which repeats the first fresh seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from tests.conftest import Account
from tests.helpers import targz, toy_files, toy_manifest, upload
from tests.jobs.test_queue import WorkerApi


def package(
    *,
    name: str = "toy-sgd",
    title: str = "Plain SGD on toy",
    tags: Sequence[str] = ("sgd",),
    claimed: float = 2.0,
    claimed_values: Sequence[float] | None = None,
    benchmark: str = "toy",
    metric: str = "score",
) -> bytes:
    values = (
        list(claimed_values)
        if claimed_values is not None
        else [claimed - 0.05, claimed, claimed + 0.05]
    )
    tag_list = ", ".join(f'"{t}"' for t in tags)
    manifest = toy_manifest(
        package=f'[package]\nname = "{name}"\nversion = "1.0.0"\ntitle = "{title}"\n'
        'description = "Plain stochastic gradient descent with a constant step size."\n'
        'authors = ["Ada Lovelace <ada@example.org>"]\nlicense = "MIT"\n'
        f"tags = [{tag_list}]\n",
        benchmark=f'[benchmark]\nid = "{benchmark}"\nversion = 1\n',
        metrics=f"[claim.metrics.{metric}]\nmean = {claimed!r}\n"
        f"values = [{', '.join(map(repr, values))}]\n",
    )
    return targz(toy_files(manifest))


async def run_version(
    worker: WorkerApi,
    body: dict[str, Any],
    *,
    fresh: Sequence[float],
    claimed_values: Sequence[float] | None = None,
    fail_fresh: int = 0,
    metric: str = "score",
) -> None:
    """Answer every queued lease for the version in ``body`` with the chosen values."""
    claimed_seeds = body["version"]["seeds"]["claimed"]
    fresh_seeds = body["version"]["seeds"]["fresh"]
    claimed = list(claimed_values) if claimed_values is not None else [2.0] * len(claimed_seeds)
    by_seed = {("claimed", s): v for s, v in zip(claimed_seeds, claimed, strict=False)}
    by_seed.update({("fresh", s): v for s, v in zip(fresh_seeds, fresh, strict=True)})
    by_seed[("probe", fresh_seeds[0])] = fresh[0]
    failing = set(fresh_seeds[:fail_fresh])
    while (lease := await worker.lease()) is not None:
        assert lease["submission_id"] == body["id"], "one submission at a time"
        value = by_seed[(lease["kind"], lease["seed"])]
        if lease["kind"] == "fresh" and lease["seed"] in failing:
            resp = await worker.result(lease, outcome="user_error", metrics={}, reason="crashed")
        else:
            metrics = {"score": value, "loss": 10**-value} if metric == "score" else {metric: value}
            resp = await worker.result(lease, metrics=metrics)
        assert resp.status_code == 200, resp.text


def spread(mean: float, d: float = 0.05, n: int = 3) -> list[float]:
    """``n`` fresh values evenly spread over mean ± d (three: sd ``d``)."""
    return [mean - d + 2 * d * i / (n - 1) for i in range(n)]


async def scored(
    client: httpx.AsyncClient,
    worker: WorkerApi,
    account: Account,
    *,
    fresh: Sequence[float],
    claimed: float = 2.0,
    name: str = "toy-sgd",
    title: str = "Plain SGD on toy",
    tags: Sequence[str] = ("sgd",),
    fail_fresh: int = 0,
    benchmark: str = "toy",
    metric: str = "score",
) -> dict[str, Any]:
    """A new submission, run and scored; returns its detail document."""
    claimed_values = [claimed - 0.05, claimed, claimed + 0.05]
    pkg = package(
        name=name,
        title=title,
        tags=tags,
        claimed=claimed,
        claimed_values=claimed_values,
        benchmark=benchmark,
        metric=metric,
    )
    resp = await client.post("/v1/submissions", headers=account.headers, **upload(pkg))
    assert resp.status_code == 202, resp.text
    body: dict[str, Any] = resp.json()
    await run_version(
        worker,
        body,
        fresh=fresh,
        claimed_values=claimed_values,
        fail_fresh=fail_fresh,
        metric=metric,
    )
    done = (await client.get(f"/v1/submissions/{body['id']}")).json()
    assert done["state"] == "finished", done
    return done  # type: ignore[no-any-return]


async def new_version(
    client: httpx.AsyncClient,
    account: Account,
    submission_id: int,
    *,
    title: str,
    claimed: float = 2.0,
    name: str = "toy-sgd",
) -> dict[str, Any]:
    pkg = package(name=name, title=title, claimed=claimed)
    resp = await client.post(
        f"/v1/submissions/{submission_id}/versions", headers=account.headers, **upload(pkg)
    )
    assert resp.status_code == 202, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def board(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    resp = await client.get("/v1/benchmarks/toy/leaderboard", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]
