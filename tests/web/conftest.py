"""Fixtures for the page tests: a live server with scored submissions, and headless Chromium.

Chromium is Debian's (``scripts/test-deps.sh`` installs it), driven by the Python ``playwright``
package; Playwright's own browser download is not used. Without it the browser tests skip --
except under ``CI=true``, where they fail: CI must exercise the pages in a real browser.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from tests.helpers import ROOT
from tests.leaderboard.boardkit import package
from tests.runners.workerkit import Reprise, live_reprise

CHROMIUM = Path(os.environ.get("REPRISE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = ROOT / "test-artifacts"


def unavailable(reason: str) -> None:
    """Skip -- or fail, under CI=true -- a test that needs something this machine lacks."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run, not skip)")
    pytest.skip(reason)


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """Where a test saves its screenshots (``test-artifacts/``, ignored by git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def shot_name(request: pytest.FixtureRequest, what: str) -> str:
    node = request.node.name.replace("[", "-").replace("]", "")
    return f"{node}-{what}.png"


# ------------------------------------------------------------------------------ live server


@dataclass
class Scored:
    id: int
    title: str
    reproduced: float


@dataclass
class LiveBoard:
    reprise: Reprise
    submissions: list[Scored]

    @property
    def url(self) -> str:
        return self.reprise.url


def _register(http: httpx.Client, name: str) -> dict[str, str]:
    resp = http.post("/v1/users", json={"name": name})
    assert resp.status_code == 201, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']['token']}"}


def score_over_http(
    reprise: Reprise,
    headers: dict[str, str],
    *,
    title: str,
    fresh: Sequence[float],
    claimed: float = 2.0,
    path: str = "/v1/submissions",
) -> int:
    """Submit a toy package (to ``path``: a challenge's attempts too) and answer its leases as a
    worker would, with chosen values."""
    http = reprise.http
    claimed_values = [claimed - 0.05, claimed, claimed + 0.05]
    resp = http.post(
        path,
        headers=headers,
        files={
            "package": (
                "package.tar.gz",
                package(title=title, claimed=claimed, claimed_values=claimed_values),
                "application/octet-stream",
            )
        },
    )
    assert resp.status_code == 202, resp.text
    body = resp.json()
    seeds = body["version"]["seeds"]
    values = {("claimed", s): v for s, v in zip(seeds["claimed"], claimed_values, strict=True)}
    values.update({("fresh", s): v for s, v in zip(seeds["fresh"], fresh, strict=True)})
    values[("probe", seeds["fresh"][0])] = fresh[0]
    worker = {"Authorization": f"Bearer {reprise.worker_token}"}
    while True:
        lease = http.post(
            "/v1/worker/lease",
            headers=worker,
            json={"worker_id": "browser-test", "wait_s": 0, "backend": "fake"},
        )
        if lease.status_code == 204:
            break
        job = lease.json()
        value = values[(job["kind"], job["seed"])]
        done = http.post(
            f"/v1/worker/jobs/{job['job_id']}/result",
            headers=worker,
            json={
                "lease_token": job["lease_token"],
                "attempt": job["attempt"],
                "outcome": "succeeded",
                "metrics": {"score": value, "loss": 10**-value},
                "provenance": {"image_digest": "sha256:" + "ab" * 32, "cpu_model": "Test CPU"},
            },
        )
        assert done.status_code == 200, done.text
    return int(body["id"])


@pytest.fixture
def live_board(settings: Settings) -> Iterator[LiveBoard]:
    """A running server with three scored toy submissions (score: higher is better)."""
    with live_reprise(settings) as reprise:
        alice = {"Authorization": f"Bearer {reprise.member_token}"}
        bob = _register(reprise.http, "bob")
        plan = [
            (alice, "Momentum on toy", [1.95, 2.0, 2.05]),  # reproduced, middle
            (bob, "Adam on toy", [2.95, 3.0, 3.05]),  # exceeded, best
            (alice, "Broken schedule on toy", [0.95, 1.0, 1.05]),  # not reproduced, last
        ]
        scored = []
        for headers, title, fresh in plan:
            sid = score_over_http(reprise, headers, title=title, fresh=fresh)
            scored.append(Scored(sid, title, sum(fresh) / len(fresh)))
        yield LiveBoard(reprise, scored)


@dataclass
class LiveCommunity:
    board: LiveBoard
    submission_id: int
    review_id: int
    thread: list[int]  # a comment, a reply to it, and a reply to the reply
    challenge_id: int
    attempts: list[int]

    @property
    def url(self) -> str:
        return self.board.url


@pytest.fixture
def live_community(live_board: LiveBoard) -> LiveCommunity:
    """The live board plus a published review and a reply thread on its first submission, and a
    challenge with three judged attempts (the numbers of tests/challenges/test_pooling.py)."""
    reprise = live_board.reprise
    http = reprise.http
    maya = {"Authorization": f"Bearer {reprise.maintainer_token}"}
    people = [_register(http, name) for name in ("carol", "dan", "erin")]
    sid = live_board.submissions[0].id
    assigned = http.post(
        f"/v1/submissions/{sid}/assignments", headers=maya, json={"reviewer": "maya"}
    )
    assert assigned.status_code == 201, assigned.text
    criteria = ("clarity", "rigor", "documentation", "significance")
    body: dict[str, Any] = {c: {"score": 4, "comment": f"{c}: clear enough"} for c in criteria}
    body |= {"recommendation": "endorse", "summary": "A careful package.", "publish": True}
    made = http.post(f"/v1/submissions/{sid}/reviews", headers=maya, json=body)
    assert made.status_code == 201, made.text
    thread: list[int] = []
    for who, text in (
        (people[0], "Which **seed** failed?"),
        (reprise.member(), "None did."),
        (people[0], "Thanks!"),
    ):
        parent = {"parent_id": thread[-1]} if thread else {}
        resp = http.post(
            f"/v1/submissions/{sid}/comments", headers=who, json={"body": text, **parent}
        )
        assert resp.status_code == 201, resp.text
        thread.append(int(resp.json()["id"]))
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(days=7)
    challenge = http.post(
        "/v1/challenges",
        headers=maya,
        json={
            "title": "Does plain SGD reach 2.0 on toy?",
            "deadline": deadline.isoformat(),
            "benchmark": "toy",
            "metrics": {"score": {"mean": 2.0, "spread": 0.1, "spread_kind": "sd", "n": 5}},
            "source_url": "https://arxiv.org/abs/2501.00001",
        },
    )
    assert challenge.status_code == 201, challenge.text
    cid = int(challenge.json()["id"])
    fresh = ([2.0, 2.1, 2.2], [1.9, 2.0, 2.1], [1.7, 1.9, 2.1])
    attempts = [
        score_over_http(
            reprise, who, title=f"Attempt {n}", fresh=values, path=f"/v1/challenges/{cid}/attempts"
        )
        for n, (who, values) in enumerate(zip(people, fresh, strict=True), start=1)
    ]
    return LiveCommunity(live_board, sid, int(made.json()["id"]), thread, cid, attempts)


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium, checked before any server is started for a test that needs it."""
    if not CHROMIUM.is_file():
        unavailable(f"{CHROMIUM} is missing; run scripts/test-deps.sh (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
def browser(chromium: Path, live_board: LiveBoard) -> Iterator[Any]:
    """Chromium, started after the server: Playwright's sync API keeps an event loop running on
    this thread, and the database fixtures need ``asyncio.run`` before it starts."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - a dev dependency
        unavailable("the playwright package is not installed")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
