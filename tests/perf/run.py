"""``make perf``: every benchmark of ``tests/perf`` in sequence, then ``docs/performance.md``.

    .venv/bin/python -m tests.perf.run [--only NAME[,NAME]] [--quick] [--budget 840]

Each section runs in a child process of its own (``--child NAME``), so that one benchmark's
threads, servers and imports cannot disturb the next and a hung one is stopped at the budget.
The figures go to ``docs/performance.json``, committed beside the report, so that a partial run
(``--only``) on any clone keeps the other sections' previous figures, each marked with its own
date and commit; the report is regenerated from them by ``tests.perf.report``. The whole run
is budgeted (default 14 minutes on the 2-core machine, including seeding the 100,000-submission
database when it is missing): a section whose estimate no longer fits is skipped, with a note,
rather than overrunning.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.perf.common import ROOT, loadavg

FIGURES = ROOT / "docs" / "performance.json"
DOC = ROOT / "docs" / "performance.md"
SUBMISSIONS = 100_000
QUICK_SUBMISSIONS = 5_000
IMAGE = "reprise/python-numpy:bookworm"


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    estimate_s: float  # full run, on the 2-core machine under the usual shared load
    quick_estimate_s: float
    run: Callable[[bool], dict[str, Any]]


def _statistics(quick: bool) -> dict[str, Any]:
    from tests.perf import bench_stats

    return bench_stats.run(claims=1_000 if quick else 10_000, reps=3 if quick else 5)


def _ingest(quick: bool) -> dict[str, Any]:
    from tests.perf import bench_upload

    return bench_upload.run(20 if quick else 200, reps=2 if quick else 3)


def _scaling(quick: bool) -> dict[str, Any]:
    from tests.perf import bench_scaling

    if quick:
        return bench_scaling.run(sleep=0.2, waves=3, reps=1)
    return bench_scaling.run(sleep=0.5, waves=6, reps=2)


def _queue(quick: bool) -> dict[str, Any]:
    from tests.perf import bench_queue

    if quick:
        return bench_queue.run(seconds=1.0, reps=1, raw_seconds=0.5)
    return bench_queue.run(seconds=3.0, reps=3, raw_seconds=1.0)


def seeded_count() -> tuple[int, bool]:
    """(submissions in ``reprise_perf``, whether its seed is complete); (0, False) if absent."""
    import psycopg

    from tests.perf.bench_leaderboard import ADMIN_URL, DB, perf_url

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone():
            return 0, False
    with psycopg.connect(perf_url()) as conn:
        try:
            row = conn.execute("SELECT (SELECT count(*) FROM submission), "
                               "(SELECT count(*) FROM technique_score)").fetchone()
        except psycopg.errors.UndefinedTable:
            return 0, False
    assert row is not None
    return int(row[0]), int(row[1]) > 0


def _seed(quick: bool) -> dict[str, Any]:
    """Make sure ``reprise_perf`` holds a complete seed: 100,000 submissions (any size when
    ``quick``, seeding 5,000 if there is none); reuse it when it does."""
    from tests.perf import bench_leaderboard as lb

    count, complete = seeded_count()
    if complete and (count == SUBMISSIONS or (quick and count > 0)):
        return {"figures": [], "reused": True, "submissions": count}
    n = QUICK_SUBMISSIONS if quick else SUBMISSIONS
    lb.create_database(reuse=False)
    with lb.server():  # the server fills the benchmark catalog the seed refers to
        timings = lb.seed(n)
    return {"figures": [], "reused": False, "submissions": n, "seeding_s": timings}


def _api(quick: bool) -> dict[str, Any]:
    from tests.perf import bench_api

    if quick:
        return bench_api.run(seconds=1.0, reps=1, connections=8)
    return bench_api.run(seconds=3.0, reps=3, connections=16)


def _leaderboard(quick: bool) -> dict[str, Any]:
    from tests.perf import bench_leaderboard as lb

    count, _complete = seeded_count()
    return lb.run(count, requests=5 if quick else 30, reuse=True)


def docker_ready() -> str | None:
    """None when the docker benchmark can run, else why not."""
    if shutil.which("docker") is None:
        return "no docker client on this machine"
    probe = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True)
    if probe.returncode != 0:
        return f"the image {IMAGE} is not built (make images)"
    return None


def _dispatch(quick: bool) -> dict[str, Any]:
    from tests.perf import bench_dispatch

    return bench_dispatch.run("docker", rounds=2 if quick else 5)


SECTIONS = (
    Section("statistics", "Statistics", 45, 10, _statistics),
    Section("ingest", "Ingest (upload)", 40, 15, _ingest),
    Section("scaling", "Worker scaling", 75, 25, _scaling),
    Section("queue", "The job queue", 150, 40, _queue),
    Section("seed", "Seeding the 100,000-submission database", 330, 60, _seed),
    Section("api", "The leaderboard API under load", 40, 15, _api),
    Section("leaderboard", "Leaderboard latency at 100,000 submissions", 60, 20, _leaderboard),
    Section("dispatch", "Dispatch (Docker)", 90, 40, _dispatch),
)
BY_NAME = {s.name: s for s in SECTIONS}


def git_commit() -> str:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" + local changes" if git("status", "--porcelain", "--untracked-files=no")
                     else "")


def run_child(name: str, quick: bool, out: Path) -> None:
    result = BY_NAME[name].run(quick)
    out.write_text(json.dumps(result, indent=2, default=str))


def run_section(section: Section, *, quick: bool, timeout: float) -> dict[str, Any]:
    """Run one section in a child process; its record for docs/performance.json."""
    record: dict[str, Any] = {
        "title": section.title, "quick": quick, "commit": git_commit(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_before": loadavg(),
    }
    if section.name == "dispatch" and (why := docker_ready()) is not None:
        return {**record, "status": "skipped", "note": f"skipped: {why}", "duration_s": 0.0}
    out = ROOT / "var" / "perf" / f".{section.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    started = time.monotonic()
    cmd = [sys.executable, "-m", "tests.perf.run", "--child", section.name, "--out", str(out)]
    if quick:
        cmd.append("--quick")
    try:
        proc = subprocess.run(cmd, cwd=ROOT, timeout=timeout, capture_output=True, text=True)
        ok = proc.returncode == 0 and out.exists()
        note = "" if ok else f"failed (exit {proc.returncode}): {_last_lines(proc.stderr)}"
    except subprocess.TimeoutExpired:
        ok, note = False, f"stopped at the time budget ({timeout:.0f} s)"
    record.update(duration_s=round(time.monotonic() - started, 1), load_after=loadavg(),
                  status="ok" if ok else "failed", note=note)
    if ok:
        record["result"] = json.loads(out.read_text())
        out.unlink()
    return record


def _last_lines(text: str, n: int = 6) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-n:])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", help="comma-separated sections: " + ", ".join(BY_NAME))
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--budget", type=float, default=840.0, help="seconds for the whole run")
    parser.add_argument("--no-report", action="store_true", help="do not rewrite the doc")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        assert args.out is not None
        run_child(args.child, args.quick, args.out)
        return
    names = [n.strip() for n in args.only.split(",")] if args.only else list(BY_NAME)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
    if ("api" in names or "leaderboard" in names) and "seed" not in names:
        names.append("seed")  # they need the seeded database (a no-op when it is there)
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    sections: dict[str, Any] = data.get("sections", {})
    started = time.monotonic()
    for name in [s.name for s in SECTIONS if s.name in names]:
        section = BY_NAME[name]
        left = args.budget - (time.monotonic() - started)
        estimate = section.quick_estimate_s if args.quick else section.estimate_s
        if name == "seed":
            count, complete = seeded_count()
            if complete and (count == SUBMISSIONS or (args.quick and count > 0)):
                estimate = 1.0
        if estimate > left:
            sections[name] = {"title": section.title, "status": "skipped", "quick": args.quick,
                              "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "commit": git_commit(), "duration_s": 0.0,
                              "note": f"skipped: {left:.0f} s of the budget left, "
                                      f"estimate {estimate:.0f} s"}
            print(f"[perf] {name}: skipped (budget)", flush=True)
            continue
        print(f"[perf] {name} …", flush=True)
        sections[name] = run_section(section, quick=args.quick,
                                     timeout=max(60.0, left + 60.0))
        print(f"[perf] {name}: {sections[name]['status']} in {sections[name]['duration_s']} s"
              + (f" — {sections[name]['note']}" if sections[name].get("note") else ""),
              flush=True)
    data = {"run": {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "commit": git_commit(), "quick": args.quick, "only": args.only,
                    "duration_s": round(time.monotonic() - started, 1),
                    "cpus": os.cpu_count(), "budget_s": args.budget},
            "sections": sections}
    FIGURES.write_text(json.dumps(data, indent=2, default=str) + "\n")
    if not args.no_report:
        from tests.perf.report import write_report

        write_report(data, DOC)
    print(f"[perf] done in {data['run']['duration_s']} s: {FIGURES.relative_to(ROOT)}"
          + ("" if args.no_report else f", {DOC.relative_to(ROOT)}"), flush=True)


if __name__ == "__main__":
    main()
