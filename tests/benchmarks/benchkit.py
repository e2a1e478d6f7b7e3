"""Helpers for the benchmark tests: run harness phases like the runner does, make packages."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks"
TOOLS = BENCHMARKS / "_tools"
EXAMPLES = REPO / "examples"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

import runlocal  # noqa: E402  (benchmarks/_tools is not a package; tests re-export it)

__all__ = [
    "BENCHMARKS",
    "BENCHMARK_IDS",
    "EXAMPLES",
    "HONEST_EXAMPLE",
    "OPTIMIZER_BENCHMARKS",
    "REPO",
    "SGD_CODE",
    "TOOLS",
    "run_many",
    "runlocal",
    "write_package",
]

# An honest example package per benchmark, used to exercise each harness end to end.
HONEST_EXAMPLE = {
    "quadratic-illcond": "momentum-quadratic",
    "rosenbrock": "momentum-rosenbrock",
    "logreg-digits": "sgd-logreg",
    "mlp-digits": "adam-mlp",
    "custom-command": "custom-command-example",
}
BENCHMARK_IDS = sorted(HONEST_EXAMPLE)
OPTIMIZER_BENCHMARKS = sorted(b for b in BENCHMARK_IDS if b != "custom-command")


def run_many(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run callables two at a time (the machine has two cores), results in order."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return [future.result() for future in [pool.submit(job) for job in jobs]]


def write_package(
    root: Path,
    code: str,
    *,
    benchmark: str = "logreg-digits",
    entry: str = "opt:Opt",
    hyperparameters: str = "lr = 0.1",
    module: str = "opt",
) -> Path:
    """A minimal package folder with ``module``.py holding ``code``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(code), encoding="utf-8")
    (root / "reprise.toml").write_text(
        textwrap.dedent(
            f"""\
            format = 1
            [package]
            name = "test-package"
            version = "0.0.1"
            title = "test"
            description = "test"
            authors = ["t"]
            license = "MIT"
            [benchmark]
            id = "{benchmark}"
            version = 1
            [entry]
            optimizer = "{entry}"
            [hyperparameters]
            {hyperparameters}
            """
        ),
        encoding="utf-8",
    )
    return root


SGD_CODE = """
    class Opt:
        def __init__(self, params, *, lr):
            self.params, self.lr = params, lr

        def step(self, grads):
            for p, g in zip(self.params, grads):
                p -= self.lr * g
"""
