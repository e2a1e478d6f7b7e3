"""Statistics benchmark (reports, never gates): one comparison, and scoring 10,000 claims.

    .venv/bin/python -m tests.perf.bench_stats [--claims 10000] [--reps 5]

Reuses the workloads of ``tests/perf/test_perf_scoring.py``; here every repetition measures the
workload and its baseline back to back, so the ratio is paired:

- one comparison as the service shows it (Welch/TOST test, its explanation, a 10,000-resample
  stratified bootstrap of the IQM) over a vectorised numpy bootstrap of the mean of the same ten
  values with as many resamples — the least any 10,000-resample bootstrap costs
  (PERFORMANCE.md: 1.0 ms; goal ≤ 5 ms, i.e. a ratio ≤ 5);
- scoring 10,000 stored claims with ``score_version`` over 10,000 calls of
  ``scipy.stats.ttest_ind_from_stats`` — the one test every claim needs at least
  (PERFORMANCE.md: 0.046 ms each; goal ≤ 2 s for the 10,000, i.e. a ratio ≤ 4.3).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from app.scoring.version import score_version
from tests.perf.common import figure, loadavg
from tests.perf.test_perf_scoring import full_comparison, stored_claims

FRESH = np.array([0.960, 0.963, 0.958, 0.961, 0.964, 0.959, 0.962, 0.960, 0.961, 0.963])


def numpy_bootstrap(resamples: int, rng: np.random.Generator) -> tuple[float, float]:
    """A percentile interval of the mean from ``resamples`` resamples (vectorised)."""
    means = rng.choice(FRESH, size=(resamples, FRESH.size)).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def _per_call(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def run(*, claims: int = 10_000, resamples: int = 10_000, reps: int = 5) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    inputs = stored_claims(claims)
    full_comparison(resamples)  # warm-up: imports, caches
    comparison, bootstrap, scoring, ttests = [], [], [], []
    for _ in range(reps):
        comparison.append(_per_call(lambda: full_comparison(resamples), 20) * 1e3)
        bootstrap.append(_per_call(lambda: numpy_bootstrap(resamples, rng), 20) * 1e3)
        start = time.perf_counter()
        for x in inputs:
            score_version(x)
        scoring.append(time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(claims):
            stats.ttest_ind_from_stats(0.961, 0.0018, 10, 0.962, 0.003, 5, equal_var=False)
        ttests.append(time.perf_counter() - start)
    figures = [
        figure("stats.comparison", measured=comparison, baseline=bootstrap, unit="ms",
               measured_label="one comparison with a 10,000-resample bootstrap (ms)",
               baseline_label="numpy bootstrap of the mean, 10,000 resamples, n = 10 (ms)",
               higher_is_better=False, goal=5.0,
               absolute_goal=("<=", 5.0, "≤ 5 ms")),
        figure("stats.scoring", measured=scoring, baseline=ttests, unit="s",
               measured_label=f"scoring {claims:,} claims with score_version (s)",
               baseline_label=f"{claims:,} × ttest_ind_from_stats (s)",
               higher_is_better=False, goal=4.3,
               absolute_goal=("<=", 2.0 * claims / 10_000, f"≤ {2.0 * claims / 10_000:g} s")),
    ]
    return {"figures": figures, "load": loadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--claims", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(claims=args.claims, reps=args.reps)
    for f in result["figures"]:
        print(f"{f['measured_label']}: {f['measured']['median']:.3f} over "
              f"{f['baseline']['median']:.3f}  ratio {f['ratio']['median']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
