"""Pure statistics and quality scoring: numbers in, verdicts and explanations out.

No database, no HTTP, no I/O. The modules, each named for what it holds:

- ``comparison``: one claim, one metric (STATISTICS.md §1): modes, interval, TOST, verdict.
- ``multiple``: several metrics (§2): Holm, Benjamini–Hochberg, the claim verdict.
- ``reproducibility``: exactness, seed-selection gap, determinism probe (§3).
- ``power``: TOST power and seeds needed (§4).
- ``quality`` (with ``lint`` and ``spdx``): the quality score Q and the lint items (§5).
- ``aggregate``: leaderboards and cross-benchmark aggregates (§6).
- ``explain``: the plain-language explanations.
- ``runs``: run records and their summary.
- ``version``: ``score_version``, the entry point the service calls.
"""

from app.scoring.version import (
    SCORING_VERSION,
    ClaimedMetric,
    MetricDefinition,
    MetricResult,
    RunRecord,
    VersionInputs,
    VersionScore,
    score_version,
)

__all__ = [
    "SCORING_VERSION",
    "ClaimedMetric",
    "MetricDefinition",
    "MetricResult",
    "RunRecord",
    "VersionInputs",
    "VersionScore",
    "score_version",
]
