"""Render ``docs/performance.json`` as ``docs/performance.md`` (called by ``tests.perf.run``).

Everything in the document is generated except the text between the hand-written markers,
which is carried over from the document being replaced (the profile findings and what was
changed because of them). ``python -m tests.perf.report`` re-renders without measuring.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from tests.perf.common import ROOT

START = "<!-- hand-written:start (kept by tests/perf/report.py; edit freely) -->"
END = "<!-- hand-written:end -->"

METHODS = {
    "dispatch": "`bench_dispatch.py`: a live API (SQLite) and one idle reference worker with the "
    "docker backend; a `custom-command` package whose ingest records when it started, sleeps one "
    "second and writes a metric. Each measured round (after a warm-up round) is followed by its "
    "baseline: the same two phases as bare `docker run --rm --network none` on the same image.",
    "queue": "`bench_queue.py`: `reprise serve` (one uvicorn process) on its own database "
    "(PostgreSQL `reprise_perf_queue`, re-made each run; SQLite in a scratch file) with the toy "
    "benchmark; one toy submission cloned in SQL into thousands (seven jobs each, so versions "
    "finish and are scored as in real use). A cycle is lease → heartbeat → result through "
    "`runners.client.ServerClient`, 1/4/8 client threads. Baseline, measured just before each "
    "HTTP window on the same database: a bare claim loop with as many connections (PostgreSQL "
    "`UPDATE … (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1)`, SQLite the same in `BEGIN IMMEDIATE`), "
    "one claim per transaction; its claims are put back afterwards.",
    "api": "`bench_api.py`: `reprise serve` on the seeded 100,000-submission PostgreSQL database "
    "beside a bare FastAPI app (same uvicorn, one `async def` route answering the same bytes); "
    "both loaded alternately by a small keep-alive load generator (`common.hammer`).",
    "ingest": "`bench_upload.py`: `reprise serve` (SQLite), a warm-up upload, then uploads of a "
    "large valid package (one incompressible file) over loopback, each followed by "
    "`hashlib.sha256` over the same file; the server's peak RSS growth from `VmHWM`.",
    "statistics": "`bench_stats.py` (workloads of `test_perf_scoring.py`): a full comparison "
    "(test, explanation, 10,000-resample stratified bootstrap) over a vectorised numpy "
    "bootstrap of the mean with as many resamples; `score_version` over 10,000 stored claims "
    "over 10,000 `ttest_ind_from_stats` calls. Each repetition pairs workload and baseline.",
    "scaling": "`bench_scaling.py`: `reprise serve` (SQLite) and n reference workers (one slot "
    "each) whose fake backend sleeps in the ingest phase; with the workers idle, enough toy "
    "submissions for the same number of jobs per worker; the makespan is from the first job's "
    "start to the last one's end as the server recorded them. Baseline: n × the throughput of "
    "one worker (so the ratio is the parallel efficiency).",
    "seed": "`bench_leaderboard.seed` (COPY): reused when `reprise_perf` already holds a complete "
    "seed of the right size.",
    "leaderboard": "`bench_leaderboard.py`: sequential requests over loopback (unloaded latency), "
    "interleaved rounds over every scenario; the ratio is each p50 over the p50 of `/healthz` "
    "measured in the same rounds. A page that fails its warm-up (another feature's bug) is "
    "left out and listed.",
}

DEFAULT_HAND_WRITTEN = "(No profile findings recorded yet.)"


def _num(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}g}"


def _spread(block: dict[str, Any]) -> str:
    if "q1" in block:
        return f"IQR {_num(block['q1'])}–{_num(block['q3'])}"
    if block.get("n", 1) > 1:
        return f"{_num(block['min'])}–{_num(block['max'])}"
    return "one run"


def _met(flag: bool | None) -> str:
    return "–" if flag is None else ("**met**" if flag else "**missed**")


def _goal_and_met(f: dict[str, Any]) -> tuple[str, str]:
    """The figure's goals (the ratio's, and an absolute one in the measured unit) and verdicts."""
    goals, verdicts = [], []
    if f["goal_text"]:
        goals.append(f"ratio {f['goal_text']}")
        verdicts.append(_met(f["met"]))
    if f.get("absolute_goal"):
        goals.append(f["absolute_goal"]["text"])
        verdicts.append(_met(f["absolute_goal"]["met"]))
    return "; ".join(goals) or "–", "; ".join(verdicts) or "–"


def figure_rows(figures: list[dict[str, Any]]) -> list[str]:
    rows = ["| figure | measured (median, spread) | baseline (median, spread) | ratio | ratio "
            "spread | goal | |", "|---|---|---|---|---|---|---|"]
    for f in figures:
        m, b, r = f["measured"], f["baseline"], f["ratio"]
        goal, met = _goal_and_met(f)
        rows.append(
            f"| {f['measured_label']} | {_num(m['median'])} ({_spread(m)}) "
            f"| {f['baseline_label']}: {_num(b['median'])} ({_spread(b)}) "
            f"| **{_num(r['median'])}** | {_spread(r)} | {goal} | {met} |")
    return rows


def _leaderboard(result: dict[str, Any]) -> list[str]:
    ref = result.get("reference", {}).get("GET /healthz (tiny JSON)", {}).get("p50_ms")
    out = [f"Rows: {', '.join(f'{k} {v:,}' for k, v in result.get('rows', {}).items())}.", ""]
    for key, title in (("api_all", "all API requests"), ("html_all", "all HTML pages")):
        s = result.get(key, {})
        goal = 50.0 if key == "api_all" else 100.0
        if s.get("p95_ms") is not None:
            out.append(f"- {title}: p95 {_num(s['p95_ms'])} ms over a /healthz p50 of "
                       f"{_num(ref)} ms — goal p95 ≤ {goal:g} ms: "
                       f"{_met(s['p95_ms'] <= goal)}")
    out += ["", "| request | p50 ms | p95 ms | max ms | p50 / healthz p50 |",
            "|---|---|---|---|---|"]
    left_out = []
    for group in ("reference", "api", "html", "other"):
        for label, s in result.get(group, {}).items():
            if not s.get("n"):
                left_out.append(label)
                continue
            ratio = s["p50_ms"] / ref if ref else None
            out.append(f"| {label} | {_num(s['p50_ms'])} | {_num(s['p95_ms'])} | "
                       f"{_num(s['max_ms'])} | {_num(ratio)} |")
    cold = result.get("first request after a board change")
    if cold:
        out.append(f"| first board request after a board change (rank index reload) | "
                   f"{_num(cold['p50_ms'])} | {_num(cold['p95_ms'])} | {_num(cold['max_ms'])} "
                   f"| {_num(cold['p50_ms'] / ref if ref else None)} |")
    if left_out:
        out += ["", f"Left out (failed their warm-up in this run): {', '.join(left_out)}."]
    plans = result.get("plans") or {}
    if plans:
        out += ["", "<details><summary>Query plans (EXPLAIN ANALYZE, this run)</summary>", ""]
        for label, plan in plans.items():
            out += [f"#### {label}", "", "```", plan, "```", ""]
        out.append("</details>")
    return out


def _section(name: str, record: dict[str, Any]) -> list[str]:
    out = [f"## {record.get('title', name)}", "", METHODS.get(name, ""), ""]
    when = (f"Run {record.get('date', '?')} at commit {record.get('commit', '?')}"
            + (" (quick sizes)" if record.get("quick") else "")
            + f", {record.get('duration_s', 0):g} s")
    if record.get("load_before"):
        when += (f"; load average (1, 5, 15 min) {', '.join(map(str, record['load_before']))} "
                 f"before, {', '.join(map(str, record.get('load_after') or []))} after")
    out += [when + ".", ""]
    if record.get("status") != "ok":
        out += [f"**Not measured: {record.get('note', record.get('status'))}**", ""]
        return out
    result = record.get("result", {})
    if result.get("figures"):
        out += [*figure_rows(result["figures"]), ""]
        notes = sorted({f["note"] for f in result["figures"] if f.get("note")})
        out += [f"Note: {n}." for n in notes] + ([""] if notes else [])
    if name == "queue" and result.get("empty_leases"):
        out += [f"{result['empty_leases']} lease(s) came back empty (the queue ran dry).", ""]
    if name == "seed":
        out += [f"{'Reused' if result.get('reused') else 'Seeded'} "
                f"{result.get('submissions', 0):,} submissions"
                + (f" ({result['seeding_s']})" if result.get("seeding_s") else "") + ".", ""]
    if name == "leaderboard":
        out += [*_leaderboard(result), ""]
    return out


def render(data: dict[str, Any], hand_written: str) -> str:
    run = data.get("run", {})
    sections: dict[str, Any] = data.get("sections", {})
    order = [n for n in METHODS if n in sections]
    summary = ["| section | figure | ratio (median) | spread | goal | |",
               "|---|---|---|---|---|---|"]
    for name in order:
        record = sections[name]
        for f in (record.get("result") or {}).get("figures", []) if record.get("status") == "ok" \
                else []:
            goal, met = _goal_and_met(f)
            summary.append(f"| {record['title']} | {f['measured_label']} over "
                           f"{f['baseline_label']} | **{_num(f['ratio']['median'])}** | "
                           f"{_spread(f['ratio'])} | {goal} | {met} |")
        if record.get("status") != "ok" and name != "seed":
            summary.append(f"| {record.get('title', name)} | — | — | — | — | "
                           f"{record.get('note', '')} |")
    lines = [
        "# Performance",
        "",
        "<!-- Generated by `make perf` (tests/perf/run.py, tests/perf/report.py) from "
        "docs/performance.json. Only the hand-written section below survives the next run. -->",
        "",
        "Every figure is a ratio: the measured quantity over a baseline measured in the same run "
        "on the same machine, repetition by repetition (the ratio's median and its spread — "
        "min–max, or the interquartile range from four repetitions on). The machine is a "
        "2-core VM shared with other sessions, so absolute numbers move by tens of percent "
        "between runs (see `../shared/PERFORMANCE.md`); each section records the load average "
        "around it. Goals come from the performance issue; `met`/`missed` is judged on the "
        "median.",
        "",
        f"Last run: {run.get('date', '?')}, commit {run.get('commit', '?')}, "
        f"{run.get('cpus', '?')} CPUs, {run.get('duration_s', 0):g} s"
        + (f" (only: {run['only']})" if run.get("only") else "")
        + (" — quick sizes (a smoke run, not figures)" if run.get("quick") else "") + ". "
        "Reproduce with `make perf` (`--only NAME`, `--quick`: "
        "`.venv/bin/python -m tests.perf.run --help`).",
        "",
        "## Summary",
        "",
        *summary,
        "",
        "## Profile findings and what changed",
        "",
        START,
        hand_written.strip(),
        END,
        "",
    ]
    for name in order:
        lines += _section(name, sections[name])
    lines += ["Not run by `make perf`: `calibration_study.py` (a statistical calibration study "
              "of the verdicts, not a performance benchmark; run it by hand) and the pytest "
              "smoke test `test_perf_scoring.py::test_run_smoke`.", ""]
    return "\n".join(lines)


def hand_written_of(doc: Path) -> str:
    if not doc.exists():
        return DEFAULT_HAND_WRITTEN
    match = re.search(re.escape(START) + r"\n(.*?)\n?" + re.escape(END), doc.read_text(), re.S)
    return match.group(1) if match else DEFAULT_HAND_WRITTEN


def write_report(data: dict[str, Any], doc: Path) -> None:
    doc.write_text(render(data, hand_written_of(doc)))


def main() -> None:
    data = json.loads((ROOT / "docs" / "performance.json").read_text())
    write_report(data, ROOT / "docs" / "performance.md")


if __name__ == "__main__":
    main()
