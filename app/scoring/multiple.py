"""Several metrics: Holm, Benjamini–Hochberg and the claim verdict of STATISTICS.md §2."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.scoring._util import json_fields, record
from app.scoring.comparison import Comparison, Lean, Verdict


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm (1979) step-down adjusted p-values, in the input order, capped at 1."""
    k = len(p_values)
    if k == 1:  # the usual family: one primary metric
        return [max(0.0, min(1.0, p_values[0]))]
    order = sorted(range(k), key=p_values.__getitem__)
    adjusted = [0.0] * k
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (k - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg (1995) step-up adjusted p-values, in the input order, capped at 1."""
    # Same numbers as scipy.stats.false_discovery_control(method="bh") (checked in the tests),
    # in plain Python because the families are tiny and scipy's call costs ~0.2 ms.
    k = len(p_values)
    if k == 1:
        return [min(1.0, p_values[0])]
    order = sorted(range(k), key=p_values.__getitem__, reverse=True)
    adjusted = [0.0] * k
    running = 1.0
    for position, i in enumerate(order):
        rank = k - position
        running = min(running, p_values[i] * k / rank)
        adjusted[i] = running
    return adjusted


@record
class Adjusted:
    """Multiplicity-adjusted p-values of one metric (Holm for primaries, BH for secondaries)."""

    p_worse_holm: float | None = None
    p_better_holm: float | None = None
    p_worse_bh: float | None = None
    p_better_bh: float | None = None


@record
class ClaimVerdict:
    """The claim-level verdict over the primary metrics, with the adjusted p-values per metric."""

    verdict: Verdict
    lean: Lean | None
    point_rule: bool | None
    adjusted: dict[str, Adjusted]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "verdict": self.verdict,
            "lean": self.lean,
            "point_rule": self.point_rule,
            "adjusted": {k: json_fields(v) for k, v in self.adjusted.items()},
        }


def _adjust(
    names: list[str], comparisons: dict[str, Comparison], method: str
) -> dict[str, tuple[float | None, float | None]]:
    # A metric without data enters the family with p = 1: it still counts towards the family
    # size (conservative) but can never be significant; its own adjusted values are None.
    if not names:
        return {}
    worse = [1.0 if (p := comparisons[n].p_worse) is None else p for n in names]
    better = [1.0 if (p := comparisons[n].p_better) is None else p for n in names]
    adjust = holm if method == "holm" else benjamini_hochberg
    adj_w, adj_b = adjust(worse), adjust(better)
    out: dict[str, tuple[float | None, float | None]] = {}
    for i, name in enumerate(names):
        has_data = comparisons[name].p_worse is not None
        out[name] = (adj_w[i], adj_b[i]) if has_data else (None, None)
    return out


def _leans(c: Comparison) -> Lean:
    if c.verdict == "not_reproduced" or c.lean == "worse":
        return "worse"
    if c.verdict == "exceeded" or c.lean == "better":
        return "better"
    return "none"


def claim_verdict(
    comparisons: dict[str, Comparison], primary: dict[str, bool], alpha: float = 0.05
) -> ClaimVerdict:
    """Intersection–union verdict over the primary metrics; Holm on primaries, BH on the rest."""
    primaries = [n for n in comparisons if primary.get(n, False)]
    secondaries = [n for n in comparisons if not primary.get(n, False)]
    adjusted: dict[str, Adjusted] = {}
    holm_adj = _adjust(primaries, comparisons, "holm")
    for name, (w, b) in holm_adj.items():
        adjusted[name] = Adjusted(p_worse_holm=w, p_better_holm=b)
    for name, (w, b) in _adjust(secondaries, comparisons, "bh").items():
        adjusted[name] = Adjusted(p_worse_bh=w, p_better_bh=b)
    adjusted = {n: adjusted[n] for n in comparisons}

    verdicts = [comparisons[n].verdict for n in primaries]
    verdict: Verdict
    lean: Lean | None = None
    if not primaries:
        verdict = "insufficient_data"
    elif all(v == "reproduced" for v in verdicts):
        verdict = "reproduced"
    elif any(w is not None and w < alpha for w, _ in holm_adj.values()):
        verdict = "not_reproduced"
    elif any(v == "insufficient_data" for v in verdicts):
        verdict = "insufficient_data"
    elif all(v in ("reproduced", "exceeded") for v in verdicts) and any(
        b is not None and b < alpha for _, b in holm_adj.values()
    ):
        verdict = "exceeded"
    else:
        verdict = "inconclusive"
        leans = {_leans(comparisons[n]) for n in primaries}
        if "worse" in leans and "better" not in leans:
            lean = "worse"
        elif "better" in leans and "worse" not in leans:
            lean = "better"
        else:
            lean = "none"
    points = [comparisons[n].point_rule for n in primaries]
    point_rule = None if not points or any(p is None for p in points) else all(points)
    return ClaimVerdict(verdict=verdict, lean=lean, point_rule=point_rule, adjusted=adjusted)
