"""The runs of one submission version and their outcomes: nothing is dropped silently."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Literal

from app.scoring._util import all_finite, record

RunKind = Literal["claimed", "fresh", "probe"]
OUTCOMES = (
    "succeeded",
    "user_error",
    "timeout",
    "oom",
    "invalid_output",
    "infrastructure_error",
    "cancelled",
)


@dataclass(frozen=True)
class RunRecord:
    """One finished job: which seed, why it ran, how it ended, and its metrics if it succeeded."""

    job_id: int
    kind: RunKind
    seed: int
    outcome: str  # succeeded | user_error | timeout | oom | invalid_output | ...
    metrics: Mapping[str, float]  # empty unless succeeded

    @property
    def succeeded(self) -> bool:
        """Whether the run ended with metrics."""
        return self.outcome == "succeeded"


@record
class FailedRun:
    """A run that produced no metrics, listed so that the page can show it."""

    job_id: int
    kind: str
    seed: int
    outcome: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "seed": self.seed,
            "outcome": self.outcome,
        }


@record
class RunsSummary:
    """How many runs there were, how many succeeded, and every failure by outcome."""

    total: int
    succeeded: int
    failed: int
    by_kind: dict[str, int]
    failed_by_outcome: dict[str, int]
    failed_runs: tuple[FailedRun, ...]
    non_finite: tuple[tuple[int, str, str], ...]  # (job_id, metric, 'nan' | 'inf' | '-inf')

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "total": self.total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "by_kind": dict(self.by_kind),
            "failed_by_outcome": dict(self.failed_by_outcome),
            "failed_runs": [f.to_dict() for f in self.failed_runs],
            "non_finite": [{"job_id": j, "metric": m, "value": v} for j, m, v in self.non_finite],
        }


def summarize_runs(runs: Sequence[RunRecord]) -> RunsSummary:
    """Count the runs per kind and outcome; list the failed ones and any non-finite metric."""
    ordered = sorted(runs, key=attrgetter("job_id", "kind", "seed"))
    failed: list[RunRecord] = []
    diverged: list[RunRecord] = []
    by_outcome: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    for r in ordered:
        by_kind[r.kind] = by_kind.get(r.kind, 0) + 1
        if r.outcome != "succeeded":
            failed.append(r)
            by_outcome[r.outcome] = by_outcome.get(r.outcome, 0) + 1
        elif not all_finite(r.metrics.values()):
            diverged.append(r)
    non_finite = tuple(
        sorted(
            (r.job_id, name, str(float(value)))
            for r in diverged
            for name, value in r.metrics.items()
            if not math.isfinite(value)
        )
    )
    return RunsSummary(
        total=len(ordered),
        succeeded=len(ordered) - len(failed),
        failed=len(failed),
        by_kind=dict(sorted(by_kind.items())),
        failed_by_outcome=dict(sorted(by_outcome.items())),
        failed_runs=tuple(FailedRun(r.job_id, r.kind, r.seed, r.outcome) for r in failed),
        non_finite=non_finite,
    )
