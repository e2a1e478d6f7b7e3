"""JSON logs (``REPRISE_LOG_JSON=true``): every line carries the request id, and the job id
while a job is being handled — the worker-protocol calls, a lease once it claimed a job, the
scoring that runs inside the last result — and no id leaks past its request."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.core.context import job_id_var
from app.main import create_app
from app.ops.logcontext import job_id_of
from tests.conftest import Account, _make_user
from tests.jobs.test_queue import WorkerApi, submit


@pytest.fixture
async def json_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, io.StringIO]]:
    """An app logging JSON lines at INFO into a buffer."""
    application = create_app(settings.model_copy(update={"log_json": True, "log_level": "INFO"}))
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_reprise", False))
    buffer = io.StringIO()
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(buffer)
    try:
        async with application.router.lifespan_context(application):
            yield application, buffer
    finally:
        handler.setStream(previous)
        logging.getLogger().setLevel(logging.WARNING)


def _lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def _access(lines: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    return [r for r in lines if r["logger"] == "reprise.access" and r.get("path") == path]


async def test_json_lines_carry_request_and_job_ids(
    json_app: tuple[FastAPI, io.StringIO],
) -> None:
    app, buffer = json_app
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        alice: Account = await _make_user(app, "alice", "member")
        maya: Account = await _make_user(app, "maya", "maintainer")
        token = (
            await client.post("/v1/workers", headers=maya.headers, json={"name": "w", "labels": {}})
        ).json()["token"]
        worker = WorkerApi(client, token)
        await submit(client, alice)
        lease = await worker.lease()
        assert lease is not None
        job_id = lease["job_id"]
        hb = await worker.heartbeat(lease, phase="ingest")
        assert hb.status_code == 200
        while lease is not None:  # run them all: the last result scores the version
            res = await worker.result(lease)
            assert res.status_code == 200
            last = (lease["job_id"], res.headers["x-request-id"])
            lease = await worker.lease()
        assert job_id_var.get() is None  # nothing leaked into the caller's context

    lines = _lines(buffer)
    assert lines, "no JSON log lines were written"
    for record in lines:
        assert {"ts", "level", "logger", "msg", "request_id", "job_id"} <= record.keys()

    submit_line = _access(lines, "/v1/submissions")[0]
    assert submit_line["request_id"] not in ("-", "")
    assert submit_line["job_id"] == "-"

    lease_lines = [r for r in _access(lines, "/v1/worker/lease") if r["status"] == 200]
    assert lease_lines[0]["job_id"] == job_id
    idle = [r for r in _access(lines, "/v1/worker/lease") if r["status"] == 204]
    assert idle
    assert idle[-1]["job_id"] == "-"

    beat = _access(lines, f"/v1/worker/jobs/{job_id}/heartbeat")[0]
    assert beat["job_id"] == job_id
    assert beat["request_id"] == hb.headers["x-request-id"]

    # The statistics step logs from inside the request that recorded the last result.
    last_job, last_request = last
    scored = [r for r in lines if "scored" in r["msg"] and r["logger"] == "app.verdicts.service"]
    assert scored, "the scoring step wrote no log line"
    assert scored[0]["request_id"] == last_request
    assert scored[0]["job_id"] == last_job
    # Each request id is the one the response echoed, and distinct per request.
    ids = [r["request_id"] for r in lines if r["logger"] == "reprise.access"]
    assert len(set(ids)) == len(ids)


async def test_a_client_request_id_is_kept_and_an_unsafe_one_replaced(
    json_app: tuple[FastAPI, io.StringIO],
) -> None:
    app, buffer = json_app
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        kept = await client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.1"})
        replaced = await client.get("/healthz", headers={"X-Request-ID": 'a b"}'})
    assert kept.headers["x-request-id"] == "lb-7f3a.1"
    assert replaced.headers["x-request-id"] != 'a b"}'
    ids = [r["request_id"] for r in _access(_lines(buffer), "/healthz")]
    assert ids == ["lb-7f3a.1", replaced.headers["x-request-id"]]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/worker/jobs/17/heartbeat", 17),
        ("/v1/worker/jobs/17", 17),
        ("/v1/jobs/9", 9),
        ("/v1/jobs/9/", 9),
        ("/v1/worker/lease", None),
        ("/v1/jobs/abc", None),
        ("/v1/jobs/17x", None),
        ("/v1/submissions/3/jobs/4", None),
    ],
)
def test_the_job_a_path_addresses(path: str, expected: int | None) -> None:
    assert job_id_of(path) == expected
