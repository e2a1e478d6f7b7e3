"""Timing report for app/scoring (reports, never gates: no test here asserts a time).

    .venv/bin/python tests/perf/test_perf_scoring.py [--json PATH]

prints (and optionally writes) the time of one full comparison with a 10,000-resample bootstrap
(goal ≤ 5 ms) and of scoring 10,000 stored claims through score_version (goal ≤ 2 s), each with
a baseline measured in the same run, because this shared machine's speed moves by ~25% between
runs (PERFORMANCE.md): compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
from scipy import stats

from app.scoring.aggregate import stratified_bootstrap_iqm
from app.scoring.comparison import compare, summarize_claim
from app.scoring.explain import explain_comparison
from app.scoring.quality import PackageFacts, lint_checks
from app.scoring.version import (
    ClaimedMetric,
    MetricDefinition,
    RunRecord,
    VersionInputs,
    score_version,
)

FACTS = PackageFacts(
    has_readme=True,
    description_length=300,
    has_license_file=True,
    license="MIT",
    has_hyperparameters=True,
    has_paper=False,
    tag_count=2,
    all_claims_have_spread=True,
    variance_source_count=2,
    compute_described=True,
    requirements=("numpy==1.26.4",),
    python_declared=True,
    base_approved=True,
)


def _best_of(fn: Callable[[], object], *, number: int, repeats: int) -> float:
    """Seconds per call: the best of `repeats` rounds of `number` calls (least disturbed)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return min(times)


def full_comparison(resamples: int) -> None:
    """One comparison as the service shows it: the test, its explanation, the bootstrap."""
    claim = summarize_claim(0.962, values=[0.961, 0.958, 0.966, 0.963, 0.962])
    fresh = [0.960, 0.963, 0.958, 0.961, 0.964, 0.959, 0.962, 0.960, 0.961, 0.963]
    result = compare(claim=claim, reproduced=fresh, direction="higher", tolerance=0.006)
    explain_comparison(result)
    stratified_bootstrap_iqm([fresh], resamples=resamples)


def stored_claims(count: int, seed: int = 7) -> list[VersionInputs]:
    """Synthetic stored claims: 1–2 metrics, 5 claimed + 5 fresh seeds, a probe, some failures."""
    rng = random.Random(seed)
    checks = lint_checks(FACTS)
    acc = MetricDefinition("acc", "higher", 0.006, True, seed_sd=0.0022)
    loss = MetricDefinition("loss", "lower", 0.02, False, seed_sd=0.005)
    claims: list[VersionInputs] = []
    for i in range(count):
        two = i % 4 == 0
        shift = rng.choice([0.0, 0.0, 0.0, -0.012])
        claimed_acc = [round(rng.gauss(0.962, 0.0022), 4) for _ in range(5)]
        runs: list[RunRecord] = []
        for j, value in enumerate(claimed_acc):
            metrics = {"acc": value, "loss": 0.3 + 0.001 * j} if two else {"acc": value}
            runs.append(RunRecord(j + 1, "claimed", j, "succeeded", metrics))
        for j in range(5):
            outcome = "timeout" if rng.random() < 0.03 else "succeeded"
            value = rng.gauss(0.962 + shift, 0.0022)
            metrics = {"acc": value, "loss": rng.gauss(0.3, 0.005)} if two else {"acc": value}
            runs.append(
                RunRecord(
                    10 + j, "fresh", 100 + j, outcome, metrics if outcome == "succeeded" else {}
                )
            )
        runs.append(RunRecord(20, "probe", 100, "succeeded", dict(runs[5].metrics)))
        claim_map = {"acc": ClaimedMetric(sum(claimed_acc) / 5, values=tuple(claimed_acc))}
        if two:
            claim_map["loss"] = ClaimedMetric(0.302, spread=0.004, spread_kind="sd", n=5)
        claims.append(
            VersionInputs(
                metrics=[acc, loss] if two else [acc],
                claims=claim_map,
                claimed_seeds=list(range(5)),
                runs=runs,
                checks=checks,
                variance_sources=("init", "data_order"),
            )
        )
    return claims


def run(*, claims: int = 10_000, resamples: int = 10_000, repeats: int = 5) -> dict[str, float]:
    """Measure both goals and their same-run baselines; return seconds and ratios."""
    comparison = _best_of(lambda: full_comparison(resamples), number=20, repeats=repeats)
    ttest = _best_of(
        lambda: stats.ttest_ind_from_stats(0.961, 0.0018, 10, 0.962, 0.003, 5, equal_var=False),
        number=200,
        repeats=repeats,
    )
    inputs = stored_claims(claims)
    array = np.random.default_rng(0).normal(size=10)
    mean_call = _best_of(lambda: np.mean(array), number=2000, repeats=repeats)
    rounds = []
    with_dict = []
    for _ in range(max(1, repeats // 2)):
        start = time.perf_counter()
        scores = [score_version(x) for x in inputs]
        middle = time.perf_counter()
        for s in scores:
            s.to_dict()
        rounds.append(middle - start)
        with_dict.append(time.perf_counter() - start)
    score_s = min(rounds)
    return {
        "comparison_ms": comparison * 1e3,
        "comparison_goal_ms": 5.0,
        "baseline_ttest_ind_from_stats_ms": ttest * 1e3,
        "comparison_over_ttest": comparison / ttest,
        "claims": float(claims),
        "score_version_s": score_s,
        "score_version_with_to_dict_s": min(with_dict),
        "score_version_goal_s": 2.0 * claims / 10_000,
        "per_claim_us": score_s / claims * 1e6,
        "baseline_numpy_mean_us": mean_call * 1e6,
        "per_claim_over_numpy_mean": (score_s / claims) / mean_call,
        "score_version_median_s": statistics.median(rounds),
    }


def test_run_smoke() -> None:
    """The benchmark runs on tiny inputs and returns finite numbers (times are not asserted)."""
    result = run(claims=20, resamples=200, repeats=1)
    assert set(result) >= {"comparison_ms", "score_version_s", "per_claim_over_numpy_mean"}
    assert all(np.isfinite(v) and v >= 0 for v in result.values())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    parser.add_argument("--claims", type=int, default=10_000)
    args = parser.parse_args()
    result = run(claims=args.claims)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
