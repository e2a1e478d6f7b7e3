"""Leaderboard benchmark (reports, never gates): 100,000 submissions in PostgreSQL.

    .venv/bin/python -m tests.perf.bench_leaderboard [--submissions 100000] [--requests 100]
        [--reuse] [--json PATH] [--plans PATH]

Makes a database ``reprise_perf`` next to ``REPRISE_PERF_POSTGRES_URL`` (default the test
server), migrates it, starts ``reprise serve`` on it with the real catalog, and seeds with COPY:
2,000 authors; 100,000 submissions (half on rosenbrock, the rest on the three other optimizer
benchmarks; 1% withdrawn, 10% with a second version still running); 1,000,000 run results (four
claimed seeds, five fresh seeds and a probe per scored version); their verdicts, board entries,
tags and technique aggregates (computed with the service's own ``technique_aggregate``). The
per-seed numbers are drawn so that the verdicts mix like real ones; the statistics behind each
verdict are simplified (the score documents are templates), which the leaderboard never reads.

It then times sequential requests over loopback (unloaded latency, as a user sees it) for the
board API in several orders and filters and for the HTML pages, the first request after a board
changed (rank index reload), and writes ``EXPLAIN (ANALYZE, BUFFERS)`` of the board queries.
``run()`` returns the figures; the goals are p95 ≤ 50 ms (API) and ≤ 100 ms (HTML page).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app.leaderboard.ranking import normalized_group, rank_space, technique_aggregate  # noqa: E402
from app.leaderboard.repository import (  # noqa: E402
    BoardQuery,
    board_count_stmt,
    board_page_stmt,
    board_ranks_stmt,
)
from app.scoring.aggregate import iqm  # noqa: E402
from tests.helpers import free_port, migrate, stop  # noqa: E402

ADMIN_URL = os.environ.get("REPRISE_PERF_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
DB = "reprise_perf"
SHARE = {"rosenbrock": 0.5, "logreg-digits": 0.2, "mlp-digits": 0.15, "quadratic-illcond": 0.15}
TECHNIQUES = ("momentum", "adam", "adamw", "lion", "sgd", "nesterov", "rmsprop", "adagrad",
              "lamb", "shampoo", "sophia", "adafactor")
TAGS = tuple(f"tag-{i:02d}" for i in range(40))
AUTHORS = 2_000
T95_4, T90_4 = 2.7764451051977987, 2.1318467863266504  # t quantiles with 4 degrees of freedom
EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
COLUMNS = {  # COPY column lists; everything else is NULL or has a server default
    "user": "id name role created_at",
    "submission": "id owner_id benchmark_slug name title status latest_version created_at "
                  "updated_at withdrawn_at",
    "submission_version": "id submission_id number benchmark_id package_sha256 package_size "
                          "manifest lint_report environment fresh_seeds status created_at",
    "job": "id version_id owner_id kind seed status requires attempt max_attempts "
           "cancel_requested created_at updated_at",
    "run_result": "id job_id attempt outcome metrics self_reported phases provenance recorded_at",
    "verdict": "id version_id submission_id benchmark_id claim_verdict claim_lean quality "
               "primary_metric reproduced_mean ci95_low ci95_high claimed_mean "
               "seed_selection_flag deterministic self_reported failed_runs scoring_version "
               "explanation score scored_at",
    "leaderboard_entry": "submission_id verdict_id version_id benchmark_id owner_id "
                         "version_number name title author metric direction tolerance "
                         "claimed_mean reproduced_mean ci95_low ci95_high rank_key band_low "
                         "band_high claim_verdict claim_lean quality seed_selection_flag "
                         "deterministic self_reported fresh_values scored_at",
    "submission_tag": "submission_id tag",
    "leaderboard_entry_tag": "submission_id tag benchmark_id metric rank_key",
    "leaderboard_board": "benchmark_id generation updated_at",
    "technique_score": "owner_id name author benchmarks runs iqm ci95_low ci95_high rank_key "
                       "band_low band_high profile breakdown updated_at",
}


def perf_url() -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{DB}"


def create_database(reuse: bool) -> bool:
    """Make (or keep) the perf database; True when it must be seeded."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        if reuse and conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone():
            return False
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    migrate(perf_url())
    return True


@contextmanager
def server() -> Iterator[str]:
    """``reprise serve`` (one uvicorn process) on the perf database and the real catalog."""
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "REPRISE_DATABASE_URL": perf_url(), "REPRISE_DATA_DIR": data,
               "REPRISE_BENCHMARKS_DIR": str(ROOT / "benchmarks"), "REPRISE_LOG_LEVEL": "WARNING"}
        cli = [str(ROOT / ".venv/bin/reprise"), "serve", "--port", str(port), "--no-migrate"]
        proc = subprocess.Popen(cli, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while not _ready(base):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the server did not become ready")
                time.sleep(0.2)
            yield base
        finally:
            stop(proc)


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _copy(conn: psycopg.Connection[Any], table: str, rows: Iterable[tuple[Any, ...]]) -> None:
    columns = ", ".join(COLUMNS[table].split())
    with conn.cursor() as cur, cur.copy(f'COPY "{table}" ({columns}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)


def _score_docs() -> dict[str, str]:
    """A real score document per verdict, used as the template for every verdict row."""
    from app.scoring.runs import RunRecord
    from app.scoring.version import ClaimedMetric, MetricDefinition, VersionInputs, score_version

    docs = {}
    for verdict, shift in (("reproduced", 0.0), ("exceeded", -2.0), ("not_reproduced", 2.0),
                           ("inconclusive", 0.6), ("insufficient_data", 0.0)):
        runs = [RunRecord(i, "claimed", i, "succeeded", {"m": -3.5 + 0.01 * i}) for i in range(4)]
        runs += [RunRecord(10 + i, "fresh", 100 + i, "succeeded", {"m": -3.5 + shift + 0.1 * i})
                 for i in range(5)]
        runs.append(RunRecord(20, "probe", 100, "succeeded", {"m": -3.5 + shift}))
        inputs = VersionInputs(
            metrics=[MetricDefinition("m", "lower", 0.8, True, 0.14, -1.725, -3.594)],
            claims={"m": ClaimedMetric(-3.5, values=(-3.5, -3.49, -3.48, -3.47))},
            claimed_seeds=[0, 1, 2, 3], runs=runs, checks=[])
        docs[verdict] = json.dumps(score_version(inputs).to_dict())
    return docs


class Population:
    """Every row of the seed, drawn from one fixed random stream."""

    def __init__(self, n: int, benches: dict[str, tuple[int, dict[str, Any]]]) -> None:
        self.rng = np.random.default_rng(20261127)
        self.benches = benches
        self.docs = _score_docs()
        self.rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self.members: dict[tuple[int, str], list[tuple[str, list[float], dt.datetime]]] = {}
        self.job_id = self.version_id = 0
        rng, slugs = self.rng, list(SHARE)
        owners = rng.zipf(1.3, n) % AUTHORS + 1  # a few prolific authors, a long tail
        benches_of = rng.choice(len(slugs), n, p=[SHARE[s] for s in slugs])
        for i in range(n):
            self.submission(i + 1, int(owners[i]), slugs[benches_of[i]])

    def submission(self, sid: int, owner: int, slug: str) -> None:
        rng = self.rng
        bid, manifest = self.benches[slug]
        spec = next(m for m in manifest["metrics"] if m["primary"])
        name = TECHNIQUES[int(rng.integers(len(TECHNIQUES)))]
        title = f"{name.title()} on {slug}, run {sid}"
        when = EPOCH + dt.timedelta(minutes=int(rng.integers(0, 700 * 1440)))
        withdrawn, second = bool(rng.random() < 0.01), bool(rng.random() < 0.10)
        self.rows["submission"].append((sid, owner, slug, name, title,
                                        "withdrawn" if withdrawn else "active", 2 if second else 1,
                                        when, when, when if withdrawn else None))
        tags = [str(t) for t in rng.choice(TAGS, int(rng.integers(1, 4)), replace=False)]
        self.rows["submission_tag"] += [(sid, t) for t in tags]
        delta = spec["tolerance"]
        claimed = spec["reference_low"] + (spec["reference_high"] - spec["reference_low"]) * \
            rng.uniform(0.2, 1.3)
        s = 1 if spec["direction"] == "higher" else -1
        shift = rng.choice([0.0, 2.5, -2.5, 1.0], p=[0.55, 0.15, 0.15, 0.15]) * delta
        sd = delta * rng.uniform(0.05, 0.5)
        fresh = (claimed + s * shift + rng.normal(0, sd, 5)).tolist()
        manifest_doc = json.dumps({"package": {"name": name, "title": title, "tags": []}, "claim": {
            "seeds": [0, 1, 2, 3], "metrics": {spec["name"]: {"mean": claimed}}}})
        for number in (1, 2) if second else (1,):
            self.version_id += 1
            self.rows["submission_version"].append((
                self.version_id, sid, number, bid, f"{self.version_id:064x}", 4096, manifest_doc,
                '{"checks": []}', '{"base": "python-numpy", "input_hash": "x"}',
                "[11, 12, 13, 14, 15]", "finished" if number == 1 else "running",
                when + dt.timedelta(hours=number)))
            self.jobs(owner, spec["name"], when, claimed, sd, fresh if number == 1 else None)
        scored = when + dt.timedelta(hours=1)
        self.verdict(sid, owner, bid, spec, name, title, claimed, fresh, scored, withdrawn, tags)

    def jobs(self, owner: int, metric: str, when: dt.datetime, claimed: float, sd: float,
             fresh: list[float] | None) -> None:
        plan = [("claimed", k) for k in range(4)] + [("fresh", 11 + k) for k in range(5)]
        for k, (kind, seed) in enumerate([*plan, ("probe", 11)]):
            self.job_id += 1
            done = fresh is not None
            self.rows["job"].append((self.job_id, self.version_id, owner, kind, seed,
                                     "succeeded" if done else "queued", "", int(done), 3, False,
                                     when, when))
            if fresh is None:
                continue
            value = (fresh[k - 4] if kind == "fresh" else fresh[0] if kind == "probe"
                     else claimed + self.rng.normal(0, sd))
            self.rows["run_result"].append((
                self.job_id, self.job_id, 1, "succeeded", json.dumps({metric: value}), False, "[]",
                '{"image_digest": "sha256:ab", "cpu_model": "perf"}', when))

    def verdict(self, sid: int, owner: int, bid: int, spec: dict[str, Any], name: str, title: str,
                claimed: float, fresh: list[float], scored: dt.datetime, withdrawn: bool,
                tags: list[str]) -> None:
        rng, delta = self.rng, spec["tolerance"]
        s = 1 if spec["direction"] == "higher" else -1
        mean, sd = float(np.mean(fresh)), float(np.std(fresh, ddof=1))
        d, half90, half95 = s * (mean - claimed), T90_4 * sd / 5**0.5, T95_4 * sd / 5**0.5
        low_d, high_d = d - half90, d + half90
        missing = bool(rng.random() < 0.02)
        verdict = ("insufficient_data" if missing else "reproduced" if -delta < low_d and
                   high_d < delta else "not_reproduced" if high_d < -delta else
                   "exceeded" if low_d > delta else "inconclusive")
        lean = None if verdict != "inconclusive" else \
            "worse" if high_d < 0 else "better" if low_d > 0 else "none"
        quality = round(float(rng.uniform(20, 95)), 1)
        quality = min(quality, 40.0) if verdict == "not_reproduced" else quality
        m, lo, hi = (None, None, None) if missing else (mean, mean - half95, mean + half95)
        vid = self.version_id - (1 if self.rows["submission"][-1][6] == 2 else 0)
        self.rows["verdict"].append((sid, vid, sid, bid, verdict, lean, quality, spec["name"], m,
                                     lo, hi, claimed, False, True, False, 0, "1.0", verdict,
                                     self.docs[verdict], scored))
        if withdrawn:  # the steady state: a read has already taken it off the board
            return
        rs = rank_space(spec["direction"], m, lo, hi)
        self.rows["leaderboard_entry"].append((
            sid, sid, vid, bid, owner, 1, name, title, f"author{owner:04d}", spec["name"],
            spec["direction"], delta, claimed, m, lo, hi, rs.key, rs.low, rs.high, verdict, lean,
            quality, bool(rng.random() < 0.05), bool(rng.random() < 0.9), False,
            json.dumps(fresh), scored))
        self.rows["leaderboard_entry_tag"] += [(sid, t, bid, spec["name"], rs.key) for t in tags]
        self.members.setdefault((owner, name), []).append((self.slug_of(bid), fresh, scored))

    def slug_of(self, bid: int) -> str:
        return next(slug for slug, (b, _m) in self.benches.items() if b == bid)

    def techniques(self) -> Iterator[tuple[Any, ...]]:
        specs = {slug: next(m for m in man["metrics"] if m["primary"])
                 for slug, (_b, man) in self.benches.items() if man.get("metrics")}
        for (owner, name), rows in self.members.items():
            newest: dict[str, list[float]] = {}
            for slug, fresh, _when in sorted(rows, key=lambda r: r[2], reverse=True):
                newest.setdefault(slug, fresh)
            groups = [g for slug, fresh in newest.items() if (g := normalized_group(
                slug, fresh, reference_low=specs[slug]["reference_low"],
                reference_high=specs[slug]["reference_high"])) is not None]
            agg = technique_aggregate(groups)
            if agg is None:
                continue
            breakdown = [{"benchmark": g.benchmark, "version": 1, "submission_id": 0,
                          "runs": len(g.values), "iqm": iqm(g.values)} for g in groups]
            yield (owner, name, f"author{owner:04d}", agg.benchmarks, agg.runs, agg.iqm,
                   agg.ci95_low, agg.ci95_high, -agg.iqm, -agg.ci95_high, -agg.ci95_low,
                   json.dumps(agg.profile), json.dumps(breakdown), EPOCH)


def seed(n: int) -> dict[str, float]:
    """COPY the population into the perf database; returns seconds per step."""
    timings, t0 = {}, time.perf_counter()
    with psycopg.connect(perf_url()) as conn:
        benches = {slug: (bid, man) for bid, slug, man in
                   conn.execute("SELECT id, slug, manifest FROM benchmark") if slug in SHARE}
        people = Population(n, benches)
        timings["generate_s"] = time.perf_counter() - t0
        t = time.perf_counter()
        _copy(conn, "user", ((i, f"author{i:04d}", "member", EPOCH) for i in range(1, AUTHORS + 1)))
        for table in ("submission", "submission_version", "job", "run_result", "verdict",
                      "leaderboard_entry", "leaderboard_entry_tag", "submission_tag"):
            _copy(conn, table, people.rows.pop(table))
        _copy(conn, "leaderboard_board", ((bid, 1, EPOCH) for bid, _m in benches.values()))
        timings["copy_s"] = time.perf_counter() - t
        t = time.perf_counter()
        _copy(conn, "technique_score", people.techniques())
        timings["techniques_s"] = time.perf_counter() - t
        for table in ("user", "submission", "submission_version", "job", "run_result", "verdict"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                         f"(SELECT max(id) FROM \"{table}\"))")
    with psycopg.connect(perf_url(), autocommit=True) as conn:
        t = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        timings["vacuum_analyze_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    return {k: round(v, 1) for k, v in timings.items()}


BOARD = "/v1/benchmarks/rosenbrock/leaderboard"
API = {
    "default (rank order, 50 rows)": BOARD,
    "page 101 (offset 5,000)": f"{BOARD}?offset=5000",
    "deep page (offset 40,000)": f"{BOARD}?offset=40000",
    "verdict=not_reproduced": f"{BOARD}?verdict=not_reproduced",
    "min_quality=80": f"{BOARD}?min_quality=80",
    "tag=tag-07": f"{BOARD}?tag=tag-07",
    "author=author0002": f"{BOARD}?author=author0002",
    "sort=-quality": f"{BOARD}?sort=-quality",
    "sort=-date": f"{BOARD}?sort=-date",
    "sort=title": f"{BOARD}?sort=title",
    "format=csv": f"{BOARD}?format=csv",
    "smaller board (mlp-digits)": "/v1/benchmarks/mlp-digits/leaderboard",
}
HTML = {
    "benchmark page": "/benchmarks/rosenbrock",
    "benchmark page, filtered + sorted": "/benchmarks/rosenbrock?verdict=reproduced&sort=-quality",
    "benchmark page, offset 40,000": "/benchmarks/rosenbrock?offset=40000",
}
OTHER = {
    "GET /v1/leaderboard (techniques)": "/v1/leaderboard",
    "GET /v1/stats": "/v1/stats",
    "home page": "/",
    "author page": "/users/author0002",
    "submission page": "/submissions/2",
}


def _interleaved(http: httpx.Client, paths: dict[str, str], n: int) -> dict[str, list[float]]:
    """``n`` rounds over every path, so that load from outside falls on all of them alike.

    A path that fails its warm-up is left out (its label maps to an empty list) rather than
    failing the run: the pages of other features may be broken while this one is measured."""
    working = {}
    for label, path in paths.items():  # warm-up: connections, caches, prepared statements
        if all(http.get(path).status_code == 200 for _ in range(3)):
            working[label] = path
    out: dict[str, list[float]] = {label: [] for label in paths}
    for _ in range(n):
        for label, path in working.items():
            t = time.perf_counter()
            http.get(path).raise_for_status()
            out[label].append((time.perf_counter() - t) * 1000)
    return out


def _summary(ms: list[float]) -> dict[str, Any]:
    if not ms:  # left out: it failed its warm-up
        return {"p50_ms": None, "p95_ms": None, "max_ms": None, "n": 0}
    q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(q[94], 1),
            "max_ms": round(max(ms), 1), "n": len(ms)}


REFERENCE = {"GET /healthz (tiny JSON)": "/healthz",
             "GET /v1/benchmarks (the catalog list)": "/v1/benchmarks"}


def measure(base: str, requests: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    groups = {"reference": REFERENCE, "api": API, "html": HTML, "other": OTHER}
    with httpx.Client(base_url=base, timeout=60) as http:
        every = {label: path for g in groups.values() for label, path in g.items()}
        timings = _interleaved(http, every, requests)
        for group, paths in groups.items():
            figures[group] = {label: _summary(timings[label]) for label in paths}
        for group in ("api", "html"):
            figures[f"{group}_all"] = _summary([t for k in groups[group] for t in timings[k]])
        cold = []
        with psycopg.connect(perf_url(), autocommit=True) as conn:
            for _ in range(10):  # a verdict landed: the next request reloads the rank index
                conn.execute("UPDATE leaderboard_board SET generation = generation + 1 WHERE "
                             "benchmark_id = (SELECT id FROM benchmark WHERE slug = 'rosenbrock')")
                t = time.perf_counter()
                http.get(BOARD).raise_for_status()
                cold.append((time.perf_counter() - t) * 1000)
        figures["first request after a board change"] = _summary(cold)
    return figures


def explain() -> dict[str, str]:
    from sqlalchemy.dialects import postgresql

    with psycopg.connect(perf_url()) as conn:
        row = conn.execute("SELECT id FROM benchmark WHERE slug = 'rosenbrock'").fetchone()
        assert row is not None
        board = {"benchmark_id": row[0], "metric": "log10_final_value"}
        q = BoardQuery(**board)
        statements = {
            "board page, rank order": board_page_stmt(q, limit=50, offset=0),
            "board page, offset 40,000": board_page_stmt(q, limit=50, offset=40_000),
            "board page, verdict filter": board_page_stmt(
                BoardQuery(**board, verdicts=("not_reproduced",)), limit=50, offset=0),
            "board page, tag filter": board_page_stmt(
                BoardQuery(**board, tag="tag-07"), limit=50, offset=0),
            "board page, sort=-quality": board_page_stmt(
                BoardQuery(**board, sort="quality", descending=True), limit=50, offset=0),
            "board page, sort=title": board_page_stmt(
                BoardQuery(**board, sort="title"), limit=50, offset=0),
            "filtered count (verdict)": board_count_stmt(
                BoardQuery(**board, verdicts=("not_reproduced",))),
            "rank index load (once per board generation)": board_ranks_stmt(**board),
        }
        plans = {}
        for label, stmt in statements.items():
            sql = stmt.compile(dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
                               compile_kwargs={"literal_binds": True})
            query = f"EXPLAIN (ANALYZE, BUFFERS) {sql}"
            rows = conn.execute(query).fetchall()
            plans[label] = "\n".join(r[0] for r in rows)
    return plans


def run(submissions: int = 100_000, requests: int = 100, reuse: bool = False) -> dict[str, Any]:
    """Seed (unless reusing a seeded database), measure, explain; returns the figures."""
    fresh = create_database(reuse)
    figures: dict[str, Any] = {"submissions": submissions}
    with server() as base:
        if fresh:
            figures["seeding_s"] = seed(submissions)
        with psycopg.connect(perf_url()) as conn:
            count = "SELECT count(*) FROM {}"
            figures["rows"] = {t: conn.execute(count.format(t)).fetchone()[0]  # type: ignore[index]
                               for t in ("submission", "run_result", "leaderboard_entry",
                                         "technique_score")}
            figures["rows"]["rosenbrock board"] = conn.execute(
                "SELECT count(*) FROM leaderboard_entry e JOIN benchmark b ON b.id = "
                "e.benchmark_id WHERE b.slug = 'rosenbrock'").fetchone()[0]  # type: ignore[index]
        figures["load_average_before"] = os.getloadavg()
        figures.update(measure(base, requests))
        figures["load_average_after"] = os.getloadavg()
    figures["plans"] = explain()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--submissions", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plans", type=Path, help="write the query plans as Markdown")
    args = parser.parse_args()
    figures = run(args.submissions, args.requests, args.reuse)
    plans = figures.pop("plans")
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps({**figures, "plans": plans}, indent=2))
    if args.plans:
        args.plans.write_text("".join(f"#### {k}\n\n```\n{v}\n```\n\n" for k, v in plans.items()))


if __name__ == "__main__":
    main()
