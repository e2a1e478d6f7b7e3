"""rosenbrock: the extended Rosenbrock function in 10 dimensions (docs/harness-contract.md).

f(x) = sum over i = 1..5 of 100 (x[2i] - x[2i-1]^2)^2 + (1 - x[2i-1])^2 — Moré, Garbow and
Hillstrom's "extended Rosenbrock function" (problem 21, 1981): five independent 2-D Rosenbrock
valleys; minimum f* = 0 at x = (1, ..., 1). The optimizer gets ``params = [x]`` (10 float64)
and, for each of the ``STEPS`` iterations, the gradient plus ``NOISE_SD * xi`` (xi standard
normal). The seed drives the start, the standard point (-1.2, 1, -1.2, 1, ...) plus a uniform
perturbation in [-0.3, 0.3] per coordinate, and the gradient noise.

Metric: log10 of f(x_final), floored at 1e-30 (-30).
"""

from __future__ import annotations

import math

import _harnesslib as hl
import numpy as np

DIMENSION = 10
STEPS = 5000
NOISE_SD = 0.1
START_JITTER = 0.3
FLOOR = 1e-30
PARAMS = {"x": (DIMENSION,)}


def value_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
    odd, even = x[0::2], x[1::2]
    valley = 10.0 * (even - odd * odd)
    offset = 1.0 - odd
    grad = np.empty_like(x)
    grad[0::2] = -40.0 * odd * valley - 2.0 * offset
    grad[1::2] = 20.0 * valley
    return float(valley @ valley + offset @ offset), grad


def ingest() -> None:
    seed = hl.run_seed()
    config = hl.run_config()
    streams = hl.rng_streams(seed, ("init", "noise"))
    start = np.tile([-1.2, 1.0], DIMENSION // 2)
    x = start + streams["init"].uniform(-START_JITTER, START_JITTER, DIMENSION)
    params = [x]

    hl.seed_global_state(seed)
    factory = hl.load_entry(config)
    hl.seed_global_state(seed)
    optimizer = hl.build_optimizer(factory, params, config)
    guard = hl.StepGuard(list(PARAMS), params)

    curve = hl.Curve(STEPS)
    value, grad = value_and_grad(x)
    curve.start(value)
    noise = streams["noise"]
    for step in range(1, STEPS + 1):
        guard.step(optimizer, [grad + NOISE_SD * noise.standard_normal(DIMENSION)], step)
        value, grad = value_and_grad(x)
        hl.check_loss(value, step)
        curve.add(step, value)
    hl.write_ingest_outputs({"x": x}, curve)


def score() -> None:
    x = hl.load_params(PARAMS)["x"]
    value, _ = value_and_grad(x)
    metric = math.log10(max(value, FLOOR)) if math.isfinite(value) else value
    hl.write_metrics({"log10_final_value": metric}, hl.load_curve())


if __name__ == "__main__":
    hl.main(ingest, score)
