"""schemathesis against the live OpenAPI document of a running server, authenticated as the
route needs (a member; a maintainer on maintainer routes; a worker token on /v1/worker routes),
with valid and invalid inputs: no response is a 5xx, none contradicts the published schema.

A fixed budget (``EXAMPLES`` per operation and mode) and a derandomised Hypothesis run keep it
reproducible and CI-sized. Failures are collected across all operations and reported together.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from app.core.config import Settings
from app.core.db import Database
from app.core.deps import current_maintainer
from app.main import create_app
from tests.conftest import FIXTURE_BENCHMARKS
from tests.exploits.test_api_authz import _walk
from tests.faults.databases import own_database
from tests.helpers import targz, toy_files
from tests.runners.workerkit import LiveServer

EXAMPLES = 25  # per operation and generation mode: ≈ 1.5 min per database here
FUZZ_DATABASE = "reprise_fuzz"
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
WORKER_PREFIX = "/v1/worker/"


@dataclass
class Fuzzed:
    url: str
    settings: Settings
    maintainer_routes: set[tuple[str, str]]


async def _issue(settings: Settings, name: str, role: str) -> str:
    from app.users.models import Role
    from app.users.repository import get_user_by_name
    from app.users.service import create_user, create_worker_token, issue_token

    db = Database(settings.effective_database_url)
    try:
        async with db.session(write=True) as session:
            user = await get_user_by_name(session, name)
            if role == "worker":
                actor = await get_user_by_name(session, "maya")
                assert actor is not None
                issued = await create_worker_token(session, actor=actor, name="fuzz", labels={})
                return issued.plaintext
            if user is None:
                created = await create_user(session, name=name, role=Role(role))
                return created.plaintext
            issued = await issue_token(session, user=user, name="fuzz")
            return issued.plaintext
    finally:
        await db.dispose()


def _databases() -> list[Any]:
    params: list[Any] = ["sqlite"]
    if os.environ.get("REPRISE_TEST_POSTGRES_URL"):
        params.append(pytest.param("postgresql", marks=pytest.mark.postgres))
    return params


@pytest.fixture(scope="module", params=_databases())
def live(
    request: pytest.FixtureRequest,
    sqlite_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fuzzed]:
    root = tmp_path_factory.mktemp("fuzz")
    with own_database(request.param, FUZZ_DATABASE, root, sqlite_template) as database_url:
        settings = Settings(
            environment="test",
            database_url=database_url,
            data_dir=root / "var",
            benchmarks_dir=FIXTURE_BENCHMARKS,
            allow_unsandboxed=True,
            log_level="CRITICAL",
        )
        # A fuzzed lease may ask for a 300 s long poll: answer 204 within a second instead of
        # holding the request up to the default 30 s cap (the client's read timeout).
        settings.queue.long_poll_cap_s = 1.0
        server = LiveServer(settings)
        server.start()
        try:
            member = asyncio.run(_issue(settings, "alice", "member"))
            asyncio.run(_issue(settings, "maya", "maintainer"))
            with httpx.Client(base_url=server.url, timeout=30) as http:
                resp = http.post(
                    "/v1/submissions",
                    headers={"Authorization": f"Bearer {member}"},
                    files={"package": ("p.tar.gz", targz(toy_files()), "application/gzip")},
                )
                assert resp.status_code == 202, resp.text
            routes = set()
            for path, route in _walk(list(create_app(settings).routes)):
                if isinstance(route, APIRoute) and _needs_maintainer(route):
                    routes.update((m, path) for m in route.methods)
            yield Fuzzed(server.url, settings, routes)
        finally:
            server.stop()


def _needs_maintainer(route: APIRoute) -> bool:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if dep.call is current_maintainer:
            return True
        stack.extend(dep.dependencies)
    return False


def _fuzz_operation(
    operation: Any, mode: GenerationMode, url: str, headers: dict[str, str]
) -> list[str]:
    failures: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(base_url=url, headers=headers, timeout=30)
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, FailureGroup) as exc:  # collected: one report for all operations
            detail = " ".join(str(exc).split())[:600]
            failures.append(f"{operation.label} [{mode.value}]: {detail}")

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid (an operation without inputs)
        assert mode is GenerationMode.NEGATIVE, operation.label
    return failures


def test_fuzz_every_operation(live: Fuzzed) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    tokens = {
        role: asyncio.run(_issue(live.settings, name, role))
        for role, name in (("member", "alice"), ("maintainer", "maya"), ("worker", "w"))
    }
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        path, method = operation.path, operation.method.upper()
        if path.startswith(WORKER_PREFIX):
            role = "worker"
        elif (method, path) in live.maintainer_routes:
            role = "maintainer"
        else:
            role = "member"
        # A fresh token per operation: an earlier one may have revoked its own.
        tokens[role] = asyncio.run(_issue(live.settings, _name(role), role))
        headers = {"Authorization": f"Bearer {tokens[role]}"}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures += _fuzz_operation(operation, mode, live.url, headers)
        operations += 1
    assert operations >= 40
    assert failures == [], "\n".join(failures[:40])


def _name(role: str) -> str:
    return {"member": "alice", "maintainer": "maya", "worker": "w"}[role]
