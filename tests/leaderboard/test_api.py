"""The benchmark leaderboard API: ranking, rank bands, filters, sorting, CSV, withdrawals and
versions. Submissions are scored through the real intake and worker protocol (boardkit)."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.leaderboard.export import COLUMNS
from app.leaderboard.models import LeaderboardEntry
from app.submissions.models import SubmissionVersion
from app.verdicts.service import rescore
from tests.conftest import Account
from tests.jobs.test_queue import WorkerApi
from tests.leaderboard.boardkit import board, new_version, run_version, scored, spread


@pytest.fixture
def worker(client: httpx.AsyncClient, worker_token: str) -> WorkerApi:
    return WorkerApi(client, worker_token)


@pytest.fixture
async def four(
    client: httpx.AsyncClient, worker: WorkerApi, alice: Account, bob: Account
) -> dict[str, dict[str, Any]]:
    """best > wide ≈ narrow > broken; "wide" and "narrow" have overlapping 95% intervals."""
    return {
        "narrow": await scored(
            client, worker, alice, fresh=spread(2.0), title="Narrow momentum", tags=("momentum",)
        ),
        "best": await scored(
            client, worker, bob, fresh=spread(3.0), title="Best Adam", name="adam", tags=("adam",)
        ),
        "wide": await scored(
            client, worker, bob, fresh=spread(2.1, 0.1), title="Wide SGD", tags=("sgd",)
        ),
        "broken": await scored(
            client, worker, alice, fresh=spread(1.0), title="Broken schedule", name="broken"
        ),
    }


def ids(body: dict[str, Any]) -> list[int]:
    return [row["submission_id"] for row in body["items"]]


async def test_rows_are_ranked_by_reproduced_mean_with_bands_for_overlapping_intervals(
    client: httpx.AsyncClient, four: dict[str, dict[str, Any]]
) -> None:
    body = await board(client)
    order = ["best", "wide", "narrow", "broken"]
    assert ids(body) == [four[k]["id"] for k in order]
    rows = {row["title"]: row for row in body["items"]}
    assert [(r["rank"], r["rank_band"]) for r in body["items"]] == [(1, 1), (2, 2), (3, 2), (4, 4)]
    narrow = rows["Narrow momentum"]
    assert narrow["verdict"] == "reproduced"
    assert narrow["claimed"] == 2.0
    assert narrow["reproduced_mean"] == pytest.approx(2.0)
    assert narrow["ci95_low"] < 2.0 < narrow["ci95_high"]
    assert narrow["author"] == "alice"
    assert narrow["version"] == 1
    assert narrow["deterministic"] is True
    assert narrow["self_reported"] is False
    assert narrow["links"]["history"] == f"/submissions/{four['narrow']['id']}#versions"
    assert rows["Best Adam"]["verdict"] == "exceeded"
    assert rows["Broken schedule"]["verdict"] == "not_reproduced"
    assert rows["Broken schedule"]["quality"] <= 40
    assert body["board"] == {
        "benchmark": "toy",
        "version": 1,
        "versions": [1],
        "metric": "score",
        "metrics": ["score"],
        "direction": "higher",
        "tolerance": 0.5,
        "entries": 4,
        "ranked": 4,
        "generation": body["board"]["generation"],
        "sort": "rank",
    }


async def test_filters_narrow_the_rows_but_keep_the_global_ranks(
    client: httpx.AsyncClient, four: dict[str, dict[str, Any]]
) -> None:
    reproduced = await board(client, verdict="reproduced")
    assert ids(reproduced) == [four["wide"]["id"], four["narrow"]["id"]]
    assert [r["rank"] for r in reproduced["items"]] == [2, 3]
    assert reproduced["pagination"]["total"] == 2
    both = await board(client, verdict=["not_reproduced", "exceeded"])
    assert ids(both) == [four["best"]["id"], four["broken"]["id"]]
    by_bob = await board(client, author="bob")
    assert ids(by_bob) == [four["best"]["id"], four["wide"]["id"]]
    tagged = await board(client, tag="momentum")
    assert ids(tagged) == [four["narrow"]["id"]]
    good = await board(client, min_quality=50)
    assert four["broken"]["id"] not in ids(good)
    assert len(ids(good)) == 3
    assert (await board(client, author="nobody"))["items"] == []
    combined = await board(client, author="alice", min_quality=50, tag="momentum")
    assert ids(combined) == [four["narrow"]["id"]]
    bad = await client.get("/v1/benchmarks/toy/leaderboard", params={"verdict": "great"})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")


SORTS: dict[str, Any] = {
    "quality": lambda r: (r["quality"],),
    "-quality": lambda r: (-r["quality"],),
    "title": lambda r: (r["title"],),
    "-title": lambda r: tuple(-ord(c) for c in r["title"]),
    "author": lambda r: (r["author"],),
    "version": lambda r: (r["version"],),
    "date": lambda r: (r["date"],),
    "claimed": lambda r: (r["claimed"],),
    "-reproduced": lambda r: (-r["reproduced_mean"],),
    "interval": lambda r: (r["ci95_high"] - r["ci95_low"],),
    "verdict": lambda r: (r["verdict"],),
    "lean": lambda r: (r["lean"] or "~",),
    "band": lambda r: (r["rank_band"],),
    "-rank": lambda r: (-r["rank"],),
    "-seed_selection": lambda r: (not r["seed_selection_flag"],),
    "deterministic": lambda r: (r["deterministic"],),
    "self_reported": lambda r: (r["self_reported"],),
}


async def test_every_shown_column_sorts(
    client: httpx.AsyncClient, four: dict[str, dict[str, Any]]
) -> None:
    for sort, key in SORTS.items():
        body = await board(client, sort=sort)
        assert len(body["items"]) == 4, sort
        values = [key(r) for r in body["items"]]
        assert values == sorted(values), sort
        assert body["board"]["sort"] == sort
    bad = await client.get("/v1/benchmarks/toy/leaderboard", params={"sort": "owner_id"})
    assert bad.status_code == 422


async def test_pages_partition_the_board(
    client: httpx.AsyncClient, four: dict[str, dict[str, Any]]
) -> None:
    first = await board(client, limit=3)
    second = await board(client, limit=3, offset=3)
    assert first["pagination"] == {"limit": 3, "offset": 0, "total": 4, "next_offset": 3}
    assert [r["rank"] for r in first["items"] + second["items"]] == [1, 2, 3, 4]
    assert second["pagination"]["next_offset"] is None


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _as_cells(row: dict[str, Any]) -> dict[str, str]:
    out = {}
    for name in COLUMNS:
        value = row["links"]["web"] if name == "url" else row[name]
        out[name] = (
            ""
            if value is None
            else ("true" if value is True else "false" if value is False else str(value))
        )
    return out


@pytest.mark.parametrize("params", [{}, {"sort": "-quality", "limit": 2, "offset": 1}])
async def test_csv_has_the_same_rows_as_json(
    client: httpx.AsyncClient, four: dict[str, dict[str, Any]], params: dict[str, Any]
) -> None:
    body = await board(client, **params)
    by_param = await client.get(
        "/v1/benchmarks/toy/leaderboard", params={**params, "format": "csv"}
    )
    by_accept = await client.get(
        "/v1/benchmarks/toy/leaderboard", params=params, headers={"Accept": "text/csv"}
    )
    for resp in (by_param, by_accept):
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/csv; charset=utf-8"
        assert resp.headers["x-total-count"] == "4"
        assert resp.text.splitlines()[0] == ",".join(COLUMNS)
        assert _csv_rows(resp.text) == [_as_cells(r) for r in body["items"]]
    assert by_param.text == by_accept.text
    if params:
        assert 'rel="next"' in by_param.headers["link"]
    # An explicit format wins over the Accept header.
    json_anyway = await client.get(
        "/v1/benchmarks/toy/leaderboard", params={"format": "json"}, headers={"Accept": "text/csv"}
    )
    assert json_anyway.json()["items"]


async def test_withdrawn_submissions_disappear_from_board_and_statistics(
    client: httpx.AsyncClient, four: dict[str, dict[str, Any]], bob: Account
) -> None:
    before = await board(client)
    gone = four["best"]["id"]
    resp = await client.post(f"/v1/submissions/{gone}/withdraw", headers=bob.headers)
    assert resp.status_code == 200, resp.text
    after = await board(client)
    assert gone not in ids(after)
    assert [r["rank"] for r in after["items"]] == [1, 2, 3]
    assert after["board"]["entries"] == 3
    assert after["board"]["generation"] > before["board"]["generation"]
    stats = (await client.get("/v1/stats")).json()
    assert stats["overall"]["scored"] == 3
    assert stats["overall"]["verdicts"]["exceeded"] == 0
    assert (await client.get(f"/submissions/{gone}")).status_code == 404
    badge = await client.get(f"/badges/submissions/{gone}.svg")
    assert "withdrawn" in badge.text


async def test_a_new_version_replaces_the_old_one_only_once_it_is_scored(
    app: FastAPI,
    client: httpx.AsyncClient,
    worker: WorkerApi,
    alice: Account,
    four: dict[str, dict[str, Any]],
) -> None:
    sid = four["broken"]["id"]
    v2 = await new_version(client, alice, sid, title="Fixed schedule", claimed=2.0)
    pending = await board(client)
    row = next(r for r in pending["items"] if r["submission_id"] == sid)
    assert (row["version"], row["title"], row["verdict"]) == (
        1,
        "Broken schedule",
        "not_reproduced",
    )
    await run_version(worker, v2, fresh=spread(3.5), claimed_values=[1.95, 2.0, 2.05])
    after = await board(client)
    assert len(after["items"]) == 4
    row = next(r for r in after["items"] if r["submission_id"] == sid)
    assert (row["version"], row["title"], row["verdict"]) == (2, "Fixed schedule", "exceeded")
    assert row["rank"] == 1
    # Re-scoring the older version does not push it back onto the board.
    async with app.state.db.session(write=True) as session:
        v1 = (
            await session.execute(
                select(SubmissionVersion).where(
                    SubmissionVersion.submission_id == sid, SubmissionVersion.number == 1
                )
            )
        ).scalar_one()
        await rescore(session, v1, write=True)
    async with app.state.db.session() as session:
        entry = await session.get(LeaderboardEntry, sid)
        assert entry is not None
        assert entry.version_number == 2


async def test_rescoring_the_standing_version_rewrites_its_entry(
    app: FastAPI, client: httpx.AsyncClient, four: dict[str, dict[str, Any]]
) -> None:
    sid = four["narrow"]["id"]
    async with app.state.db.session() as session:
        before = await session.get(LeaderboardEntry, sid)
        assert before is not None
    async with app.state.db.session(write=True) as session:
        version = (
            await session.execute(
                select(SubmissionVersion).where(SubmissionVersion.submission_id == sid)
            )
        ).scalar_one()
        version.lint_report = {**version.lint_report, "checks": []}  # quality changes
        result = await rescore(session, version, write=True)
        assert result.differences
    async with app.state.db.session() as session:
        after = await session.get(LeaderboardEntry, sid)
        assert after is not None
    assert after.verdict_id != before.verdict_id
    assert after.quality < before.quality
    assert after.rank_key == before.rank_key


async def test_unknown_benchmarks_versions_and_metrics_are_404(client: httpx.AsyncClient) -> None:
    for url in (
        "/v1/benchmarks/nope/leaderboard",
        "/v1/benchmarks/toy/leaderboard?version=9",
        "/v1/benchmarks/toy/leaderboard?metric=loss",
    ):
        resp = await client.get(url)
        assert resp.status_code == 404, url
        assert resp.headers["content-type"].startswith("application/problem+json")
    empty = await board(client)
    assert empty["items"] == []
    assert empty["board"]["entries"] == 0


async def test_entries_with_insufficient_data_come_last_unranked(
    client: httpx.AsyncClient, worker: WorkerApi, alice: Account, bob: Account
) -> None:
    ok = await scored(client, worker, alice, fresh=spread(2.0), title="Fine run")
    failing = await scored(
        client, worker, bob, fresh=spread(2.5), title="Crashing run", fail_fresh=2
    )
    body = await board(client)
    assert ids(body) == [ok["id"], failing["id"]]
    last = body["items"][1]
    assert last["verdict"] == "insufficient_data"
    assert (last["rank"], last["rank_band"], last["ci95_low"]) == (None, None, None)
    assert (body["board"]["entries"], body["board"]["ranked"]) == (2, 1)
