"""quadratic-illcond: a noisy, ill-conditioned quadratic in 100 dimensions (harness contract).

f(x) = 1/2 (x - x_star)^T A (x - x_star), A symmetric positive definite with eigenvalues
log-spaced from 1e-3 to 1 (condition number 1e3), fixed in ``data/problem.npz``; f* = 0. The
optimizer gets ``params = [x]`` (100 float64) and, for each of the ``STEPS`` iterations, the noisy
gradient ``A (x - x_star) + NOISE_SD * xi`` with xi standard normal. The seed drives the start,
``x_star + z`` with z standard normal, and the gradient noise.

Metric: log10 of the suboptimality f(x_final) - f*, floored at 1e-30 (-30).
"""

from __future__ import annotations

import math

import _harnesslib as hl
import numpy as np

DIMENSION = 100
STEPS = 1500
NOISE_SD = 3e-4
FLOOR = 1e-30
PARAMS = {"x": (DIMENSION,)}


def load_problem() -> tuple[np.ndarray, np.ndarray]:
    """The matrix A (100x100) and the minimiser x_star (100)."""
    f64 = np.dtype(np.float64)
    arrays = hl.load_data_npz(
        hl.data_path("train"), {"A": (f64, 2), "x_star": (f64, 1), "eigenvalues": (f64, 1)}
    )
    return arrays["A"], arrays["x_star"]


def suboptimality(a: np.ndarray, x_star: np.ndarray, x: np.ndarray) -> float:
    error = x - x_star
    return 0.5 * float(error @ (a @ error))


def ingest() -> None:
    seed = hl.run_seed()
    config = hl.run_config()
    a, x_star = load_problem()
    streams = hl.rng_streams(seed, ("init", "noise"))
    x = x_star + streams["init"].standard_normal(DIMENSION)
    params = [x]

    hl.seed_global_state(seed)
    factory = hl.load_entry(config)
    hl.seed_global_state(seed)
    optimizer = hl.build_optimizer(factory, params, config)
    guard = hl.StepGuard(list(PARAMS), params)

    curve = hl.Curve(STEPS)
    curve.start(suboptimality(a, x_star, x))
    noise = streams["noise"]
    for step in range(1, STEPS + 1):
        a_error = a @ (x - x_star)
        grad = a_error + NOISE_SD * noise.standard_normal(DIMENSION)
        guard.step(optimizer, [grad], step)
        value = suboptimality(a, x_star, x)
        hl.check_loss(value, step)
        curve.add(step, value)
    hl.write_ingest_outputs({"x": x}, curve)


def score() -> None:
    x = hl.load_params(PARAMS)["x"]
    a, x_star = load_problem()
    value = suboptimality(a, x_star, x)
    metric = math.log10(max(value, FLOOR)) if math.isfinite(value) else value
    hl.write_metrics({"log10_suboptimality": metric}, hl.load_curve())


if __name__ == "__main__":
    hl.main(ingest, score)
