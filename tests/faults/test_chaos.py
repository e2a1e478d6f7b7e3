"""Nothing lost, nothing twice: jobs run on Docker worker *processes* while a chaos loop
SIGKILLs workers (and restarts them), SIGKILLs and restarts the API process once, and cuts every
Docker connection once (``dockerproxy.DockerProxy``). Afterwards every job is final and recorded
exactly once, every verdict equals that of an undisturbed run of the same submissions (the same
server secret and submission ids give the same fresh seeds), and no container, volume, output
tmpfs or scratch folder is left.

The long runs (>= 200 jobs; PostgreSQL with 4 workers, SQLite with 2) are ``slow`` (CI runs
them); a short run on SQLite keeps the machinery honest in every ``make test``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.faults.chaoskit import Faults, Outcome, run_scenario
from tests.faults.databases import postgres_database
from tests.faults.workload import MSE, R2
from tests.runners.conftest import ready_docker_backend, unavailable

pytestmark = pytest.mark.docker

SECRET = "chaos-run-secret-0f3c9a7e5d1b2468"  # the same in every run: the same fresh seeds
MIN_JOBS = 200
SHORT_JOBS = 14
LONG_TIMEOUT_S = 3600  # the baseline (a module fixture) is set up inside the first long test


@pytest.fixture(scope="module")
def docker_ready() -> None:
    ready_docker_backend().close()


def _report(name: str, outcome: Outcome) -> None:
    # The figures docs/operations.md quotes (run with -s to see them).
    print("\n" + outcome.summary(name))


def _check_recorded_once(outcome: Outcome) -> None:
    """Every job final; results for attempts 1..n, one each; only the last one is final."""
    for job_id, job in outcome.jobs.items():
        assert job["status"] not in ("queued", "running"), job_id
        attempts = job["attempts"]
        numbers = [a["attempt"] for a in attempts]
        assert numbers == list(range(1, job["attempt"] + 1)), (job_id, numbers)
        assert attempts[-1]["outcome"] == job["status"], (job_id, attempts[-1], job["status"])
        assert job["result"] is not None
        assert job["result"]["attempt"] == job["attempt"]
        earlier = {a["outcome"] for a in attempts[:-1]}
        assert earlier <= {"infrastructure_error"}, (job_id, attempts)
        assert job["status"] != "infrastructure_error", (job_id, job["reason"])


def _check_no_leftovers(outcome: Outcome) -> None:
    assert {k: v for k, v in outcome.leftovers.items() if v} == {}
    assert outcome.worker_exit_codes == [0] * len(outcome.worker_exit_codes)


def _final_runs(outcome: Outcome) -> dict[int, tuple[str, str, int, dict[str, float]]]:
    return {
        job_id: (job["kind"], job["status"], job["seed"], job["result"]["metrics"])
        for job_id, job in outcome.jobs.items()
    }


def _check_faults(outcome: Outcome, faults: Faults) -> None:
    assert outcome.kills >= faults.min_kills, outcome.kills
    assert outcome.kills_mid_job >= 1
    assert outcome.api_restarts == 1
    assert outcome.docker_drops == 1
    assert outcome.dropped_connections >= 1


@pytest.fixture(scope="module")
def baseline(docker_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """The undisturbed run every chaos run must agree with (SQLite, 4 workers, no faults)."""
    root = tmp_path_factory.mktemp("chaos-baseline")
    outcome = run_scenario(
        database_url=f"sqlite+aiosqlite:///{root / 'reprise.sqlite3'}",
        root=root,
        secret=SECRET,
        workers=4,
        min_jobs=MIN_JOBS,
        faults=Faults(),
    )
    _report("baseline", outcome)
    _check_recorded_once(outcome)
    _check_no_leftovers(outcome)
    statuses = {j["status"] for j in outcome.jobs.values()}
    assert statuses == {"succeeded", "user_error"}, statuses
    verdicts = {v["claim_verdict"] if v else None for v in outcome.verdicts.values()}
    assert len(verdicts) >= 2, verdicts
    return outcome


def _compare(outcome: Outcome, baseline: Outcome) -> None:
    assert len(outcome.jobs) >= MIN_JOBS
    assert outcome.verdicts.keys() == baseline.verdicts.keys()
    for sid, verdict in baseline.verdicts.items():
        assert outcome.verdicts[sid] == verdict, sid
    assert _final_runs(outcome) == _final_runs(baseline)


CHAOS = Faults(kill_workers=True, restart_api=True, drop_docker=True, min_kills=4)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(LONG_TIMEOUT_S)
def test_chaos_on_postgresql_with_four_worker_processes(
    baseline: Outcome, tmp_path_factory: pytest.TempPathFactory
) -> None:
    admin = os.environ.get("REPRISE_TEST_POSTGRES_URL", "")
    if not admin:
        unavailable("REPRISE_TEST_POSTGRES_URL is not set")
    root = tmp_path_factory.mktemp("chaos-postgres")
    with postgres_database(admin, "reprise_chaos") as url:
        outcome = run_scenario(
            database_url=url, root=root, secret=SECRET, workers=4, min_jobs=MIN_JOBS, faults=CHAOS
        )
    _report("postgresql, 4 workers", outcome)
    _check_faults(outcome, CHAOS)
    _check_recorded_once(outcome)
    _check_no_leftovers(outcome)
    _compare(outcome, baseline)


@pytest.mark.slow
@pytest.mark.timeout(LONG_TIMEOUT_S)
def test_chaos_on_sqlite_with_two_worker_processes(
    baseline: Outcome, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("chaos-sqlite")
    outcome = run_scenario(
        database_url=f"sqlite+aiosqlite:///{root / 'reprise.sqlite3'}",
        root=root,
        secret=SECRET,
        workers=2,
        min_jobs=MIN_JOBS,
        faults=CHAOS,
    )
    _report("sqlite, 2 workers", outcome)
    _check_faults(outcome, CHAOS)
    _check_recorded_once(outcome)
    _check_no_leftovers(outcome)
    _compare(outcome, baseline)


def test_short_chaos_run_on_sqlite(docker_ready: None, tmp_path: Path) -> None:
    """Two submissions, two workers, every kind of fault (a few kills, one API restart, one
    Docker drop): recorded once, nothing left; the claimed seeds give the example's known
    numbers, the probe of each submission agrees with its fresh seed, the broken command is a
    ``user_error`` on every seed."""
    faults = Faults(
        kill_workers=True,
        restart_api=True,
        drop_docker=True,
        min_kills=1,
        max_kills=3,
        api_at=0.0,
        drop_at=0.1,
        interval_s=(2.0, 4.0),
    )
    outcome = run_scenario(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'reprise.sqlite3'}",
        root=tmp_path / "run",
        secret=SECRET,
        workers=2,
        min_jobs=SHORT_JOBS,
        faults=faults,
    )
    _report("short, sqlite, 2 workers", outcome)
    _check_faults(outcome, faults)
    _check_recorded_once(outcome)
    _check_no_leftovers(outcome)
    assert len(outcome.verdicts) == 2  # five-seed honest claim (11 jobs), one-seed claim (7)
    runs: dict[int, dict[str, dict[str, float]]] = {}
    for job in outcome.jobs.values():
        assert job["status"] == "succeeded", (job["id"], job["status"], job["reason"])
        metrics = job["result"]["metrics"]
        runs.setdefault(job["submission_id"], {})[f"{job['kind']}-{job['seed']}"] = metrics
        if job["kind"] == "claimed":
            seed = job["seed"]
            assert metrics == pytest.approx({"val_mse": MSE[seed], "val_r2": R2[seed]}, rel=1e-9)
    for by_run in runs.values():
        probe = next(k for k in by_run if k.startswith("probe-"))
        assert by_run[probe] == by_run[probe.replace("probe-", "fresh-")]
    assert all(v is not None for v in outcome.verdicts.values())
