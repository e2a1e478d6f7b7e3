"""The quality score Q (0–100) of STATISTICS.md §5, explained in its parts R, G, K and E."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from app.scoring._util import record
from app.scoring.comparison import Comparison
from app.scoring.lint import CheckResult, PackageFacts, lint_checks, parse_requirements
from app.scoring.spdx import is_spdx_identifier

__all__ = [
    "CAP_NOT_REPRODUCED",
    "CheckResult",
    "ClaimKind",
    "PackageFacts",
    "QualityItem",
    "QualityPart",
    "QualityScore",
    "documentation_part",
    "environment_part",
    "is_spdx_identifier",
    "lint_checks",
    "parse_requirements",
    "quality_score",
    "reproduction_credit",
    "reproduction_part",
    "rigor_part",
    "round_score",
]

CAP_NOT_REPRODUCED = 40.0
ClaimKind = Literal["values", "spread", "none"]
PartName = Literal["R", "G", "K", "E"]


@record
class QualityItem:
    """One line of a part: what was checked, the points it earned, and why."""

    item: str
    points: float
    max: float
    passed: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "item": self.item,
            "points": self.points,
            "max": self.max,
            "passed": self.passed,
            "reason": self.reason,
        }


@record
class QualityPart:
    """One of R, G, K, E: its points out of its maximum, with the items behind them."""

    name: PartName
    title: str
    points: float
    max: float
    items: tuple[QualityItem, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "name": self.name,
            "title": self.title,
            "points": self.points,
            "max": self.max,
            "items": [i.to_dict() for i in self.items],
        }


@record
class QualityScore:
    """Q = 50·R + G + 15·K + E, capped at 40 when a primary metric is not reproduced."""

    total: float
    uncapped: float
    capped: bool
    cap_reason: str | None
    parts: dict[str, QualityPart]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "total": self.total,
            "uncapped": self.uncapped,
            "capped": self.capped,
            "cap_reason": self.cap_reason,
            "parts": {k: v.to_dict() for k, v in self.parts.items()},
        }


def _clean(x: float) -> float:
    # Sums of tenths and thirds pick up float noise; 9 decimals keep the dict stable and readable.
    return round(float(x), 9) + 0.0


def round_score(x: float) -> float:
    """Round to one decimal, halves up (after removing float noise below 1e-9)."""
    return float(Decimal(repr(_clean(x))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def reproduction_credit(c: Comparison) -> float:
    """R credit of one primary metric: 1, 0.9, 0.5·max(0, 1 − max(0, −Δ)/δ), or 0."""
    if c.verdict == "reproduced":
        return 1.0
    if c.verdict == "exceeded":
        return 0.9
    if c.verdict == "inconclusive" and c.delta is not None:
        return 0.5 * max(0.0, 1.0 - max(0.0, -c.delta) / c.tolerance)
    return 0.0


def _credit_reason(name: str, c: Comparison, credit: float) -> str:
    if c.verdict == "reproduced":
        return f"{name}: reproduced, full credit."
    if c.verdict == "exceeded":
        return f"{name}: exceeded the claim, 0.9 of the credit."
    if c.verdict == "inconclusive" and c.delta is not None:
        shortfall = max(0.0, -c.delta)
        return (
            f"{name}: inconclusive; half credit reduced by the estimated shortfall "
            f"({shortfall:.4g} of the {c.tolerance:g} margin): {credit:.2f} of 1."
        )
    if c.verdict == "not_reproduced":
        return f"{name}: not reproduced, no credit."
    return f"{name}: too few fresh results to compare, no credit."


def reproduction_part(primary: Mapping[str, Comparison]) -> QualityPart:
    """R: the mean credit over the primary metrics, worth 50 points."""
    k = len(primary)
    items: list[QualityItem] = []
    credits: list[float] = []
    for name, c in primary.items():
        credit = reproduction_credit(c)
        credits.append(credit)
        items.append(
            QualityItem(
                item=name,
                points=_clean(50.0 * credit / k),
                max=_clean(50.0 / k),
                passed=c.verdict in ("reproduced", "exceeded"),
                reason=_credit_reason(name, c, credit),
            )
        )
    points = _clean(50.0 * math.fsum(credits) / k) if k else 0.0
    return QualityPart("R", "Reproduction", points, 50.0, tuple(items))


def _seed_item(count: int) -> QualityItem:
    points = 8.0 if count >= 5 else 5.0 if count >= 3 else 3.0 if count == 2 else 0.0
    advice = "" if points == 8.0 else " Claims over 5 or more seeds earn 8."
    return QualityItem(
        "claimed_seeds",
        points,
        8.0,
        points == 8.0,
        f"{count} claimed seed(s): {points:g} of 8.{advice}",
    )


def _spread_item(kinds: Mapping[str, ClaimKind]) -> QualityItem:
    weakest: ClaimKind = "values"
    for kind in kinds.values():
        if kind == "none" or (kind == "spread" and weakest == "values"):
            weakest = kind
    points = {"values": 6.0, "spread": 4.0, "none": 0.0}[weakest]
    if not kinds:
        return QualityItem("claim_spread", 0.0, 6.0, False, "No claimed metric.")
    if weakest == "values":
        reason = "Every claimed metric gives per-seed values: 6 of 6."
    else:
        names = ", ".join(n for n, k in kinds.items() if k == weakest)
        what = "only a spread" if weakest == "spread" else "a bare mean"
        reason = f"{names} give(s) {what}: {points:g} of 6. Per-seed values earn 6."
    return QualityItem("claim_spread", points, 6.0, weakest == "values", reason)


def _variance_item(sources: Sequence[str]) -> QualityItem:
    count = len(sources)
    points = 3.0 if count >= 2 else 1.5 if count == 1 else 0.0
    named = f" ({', '.join(sources)})" if sources else ""
    advice = "" if count >= 2 else " Declare at least two, e.g. init and data_order, for 3."
    return QualityItem(
        "variance_sources",
        points,
        3.0,
        count >= 2,
        f"{count} variance source(s) declared{named}: {points:g} of 3.{advice}",
    )


def _exact_item(exact: bool | None, detail: str) -> QualityItem:
    points = 3.0 if exact else 0.0
    head = {
        True: "Exactly reproducible on the claimed seeds: 3 of 3.",
        False: "Not exactly reproducible on the claimed seeds: 0 of 3.",
        None: "Exactness on the claimed seeds could not be established: 0 of 3.",
    }[exact]
    return QualityItem("exactness", points, 3.0, exact is True, f"{head} {detail}".strip())


def rigor_part(
    *,
    claimed_seed_count: int,
    claim_kinds: Mapping[str, ClaimKind],
    variance_sources: Sequence[str],
    exactly_reproducible: bool | None,
    exactness_detail: str = "",
) -> QualityPart:
    """G: rigor of the claim, out of 20 points."""
    items = (
        _seed_item(claimed_seed_count),
        _spread_item(claim_kinds),
        _variance_item(variance_sources),
        _exact_item(exactly_reproducible, exactness_detail),
    )
    return QualityPart("G", "Rigor", math.fsum([i.points for i in items]), 20.0, items)


def _checks_part(checks: Sequence[CheckResult], part: Literal["K", "E"], title: str) -> QualityPart:
    items = tuple(
        [
            QualityItem(c.id, c.points, c.max_points, c.passed, c.reason)
            for c in checks
            if c.part == part
        ]
    )
    return QualityPart(part, title, math.fsum([i.points for i in items]), 15.0, items)


def documentation_part(checks: Sequence[CheckResult]) -> QualityPart:
    """K: 15 × the fraction of the ten documentation items satisfied."""
    return _checks_part(checks, "K", "Documentation")


def environment_part(checks: Sequence[CheckResult]) -> QualityPart:
    """E: environment pinning, out of 15 points."""
    return _checks_part(checks, "E", "Environment")


def quality_score(
    *,
    reproduction: QualityPart,
    rigor: QualityPart,
    documentation: QualityPart,
    environment: QualityPart,
    not_reproduced: Sequence[str] = (),
) -> QualityScore:
    """Add the parts, cap at 40 when a primary metric is not reproduced, round to one decimal."""
    parts = {"R": reproduction, "G": rigor, "K": documentation, "E": environment}
    raw = math.fsum([p.points for p in parts.values()])
    uncapped = round_score(raw)
    capped = bool(not_reproduced) and raw > CAP_NOT_REPRODUCED
    cap_reason = None
    if not_reproduced:
        cap_reason = (
            f"Capped at {CAP_NOT_REPRODUCED:g} because primary metric(s) "
            f"{', '.join(not_reproduced)} were not reproduced."
        )
    total = round_score(min(raw, CAP_NOT_REPRODUCED)) if not_reproduced else uncapped
    return QualityScore(total, uncapped, capped, cap_reason, parts)
