"""Plain-language explanations of verdicts, generated from the numbers themselves."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence

from app.scoring._util import record
from app.scoring.comparison import Comparison, Lean, Verdict
from app.scoring.multiple import Adjusted
from app.scoring.reproducibility import Determinism, Exactness, SeedSelection
from app.scoring.runs import RunsSummary

MINUS = "\u2212"


@functools.lru_cache(maxsize=256)  # a benchmark's few margins
def decimals_for(tolerance: float) -> int:
    """Decimals that show differences one digit finer than the margin (δ = 0.006 → 4)."""
    if not (math.isfinite(tolerance) and tolerance > 0):
        return 4
    return max(0, min(12, 1 - math.floor(math.log10(tolerance))))


def fmt(x: float, decimals: int) -> str:
    """A number with fixed decimals and a real minus sign."""
    text = f"{x:.{decimals}f}"
    if text[0] != "-":  # fixed-point text has no other minus sign
        return text
    return text[1:] if float(text) == 0.0 else MINUS + text[1:]


def fmt_signed(x: float, decimals: int) -> str:
    """A difference with its sign always shown (+0.17, −0.33)."""
    text = fmt(x, decimals)
    return text if text.startswith(MINUS) else "+" + text


def fmt_given(x: float, decimals: int) -> str:
    """A number somebody wrote (a claimed mean): as written when short, else rounded."""
    short = f"{x:.12g}"
    if "e" not in short and len(short.partition(".")[2]) <= decimals:
        return short.replace("-", MINUS)
    return fmt(x, decimals)


def fmt_p(p: float) -> str:
    """A p-value with two significant digits (p < 0.0001 below that)."""
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.2g}"


def _seeds(n: int) -> str:
    return f"{n} fresh seed{'s' if n != 1 else ''}"


def _lean_text(lean: Lean | None) -> str:
    if lean == "worse":
        return "leaning worse (the whole interval lies below 0)"
    if lean == "better":
        return "leaning better (the whole interval lies above 0)"
    return "with no lean either way (the interval contains 0)"


def _failed_text(failed: Mapping[str, int]) -> str:
    total = sum(failed.values())
    if not total:
        return ""
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(failed.items()))
    return f" {total} fresh run(s) failed ({kinds}) and gave no value."


def _insufficient(c: Comparison) -> str:
    if c.n_non_finite:
        return (
            f"{c.n_non_finite} of the {c.n_reproduced} fresh values are not finite numbers "
            "(NaN or infinite, e.g. a diverged run), so no interval can be computed: "
            "insufficient data."
        )
    if c.n_reproduced >= 2:
        return "The claim holds a number that is not finite: insufficient data."
    if c.n_reproduced == 1:
        return "Only 1 fresh seed gave a value and at least 2 are needed: insufficient data."
    return "No fresh seed gave a value: insufficient data."


def _se_zero(c: Comparison, d: int) -> str:
    assert c.delta is not None
    assert c.reproduced_mean is not None
    side = "the claim gives no spread" if c.mode == "one_sample" else "so do the claim's seeds"
    rule = {
        "reproduced": f"is inside the ±{c.tolerance:g} margin: reproduced",
        "not_reproduced": f"is at or below {MINUS}{c.tolerance:g}: not reproduced",
        "exceeded": f"is at or above +{c.tolerance:g}: exceeded",
    }[c.verdict]
    return (
        f"{_seeds(c.n_reproduced).capitalize()} all gave exactly {fmt(c.reproduced_mean, d)} and "
        f"{side}, so there is no spread to test; the difference to the claimed "
        f"{fmt_given(c.claimed_mean, d)}, {fmt_signed(c.delta, d)}, {rule}."
    )


def explain_comparison(c: Comparison, *, fresh_failed: Mapping[str, int] | None = None) -> str:
    """One or two sentences that say why this verdict follows from these numbers."""
    failed = _failed_text(fresh_failed or {})
    if c.verdict == "insufficient_data":
        return _insufficient(c) + failed
    d = decimals_for(c.tolerance)
    if c.se_zero:
        return _se_zero(c, d) + failed
    assert c.ci_low is not None
    assert c.ci_high is not None
    assert c.delta is not None
    assert c.reproduced_mean is not None
    assert c.reproduced_sd is not None
    level = f"{100 * (1 - 2 * c.alpha):g}%"
    lower = " (lower is better, so a positive difference means better)"
    head = (
        f"{_seeds(c.n_reproduced)} gave {fmt(c.reproduced_mean, d)} ± {fmt(c.reproduced_sd, d)}; "
        f"the {level} interval of the difference to the claimed {fmt_given(c.claimed_mean, d)}"
        f"{lower if c.direction == 'lower' else ''}, "
        f"{fmt_signed(c.ci_low, d)} to {fmt_signed(c.ci_high, d)}, "
    )
    tol = f"{c.tolerance:g}"
    body = _verdict_body(c, tol, d)
    head = head[0].upper() + head[1:]
    mode = (
        f" Compared with the claim's {c.claimed_n} seeds (sd {fmt(c.claimed_sd or 0.0, d)}) by "
        "Welch's t-test."
        if c.mode == "two_sample"
        else " The claim gives no spread, so the fresh seeds alone carry the uncertainty."
    )
    return head + body + mode + failed


def _verdict_body(c: Comparison, tol: str, d: int) -> str:
    assert c.delta is not None
    if c.verdict == "reproduced":
        return f"lies inside the ±{tol} margin: reproduced."
    if c.verdict == "not_reproduced":
        assert c.p_worse is not None
        return (
            f"lies entirely below {MINUS}{tol}: the shortfall is larger than the margin "
            f"({fmt_p(c.p_worse)}): not reproduced."
        )
    if c.verdict == "exceeded":
        assert c.p_better is not None
        return (
            f"lies entirely above +{tol}: the reproduction did better than claimed by more than "
            f"the margin ({fmt_p(c.p_better)}): exceeded."
        )
    point = (
        f" The point estimate, {fmt_signed(c.delta, d)}, is inside the margin (the point rule "
        "is met), but the interval is too wide to confirm it; more fresh seeds would narrow it."
        if c.point_rule
        else f" The point estimate, {fmt_signed(c.delta, d)}, is outside the margin, but not "
        "by enough to conclude that the difference exceeds it."
    )
    return (
        f"is neither inside the ±{tol} margin nor entirely beyond it: inconclusive, "
        f"{_lean_text(c.lean)}.{point}"
    )


@record
class MetricOutline:
    """What the claim summary needs to know about one metric."""

    name: str
    primary: bool
    comparison: Comparison
    adjusted: Adjusted


VERDICT_WORDS: dict[Verdict, str] = {
    "reproduced": "reproduced",
    "not_reproduced": "not reproduced",
    "exceeded": "exceeded",
    "inconclusive": "inconclusive",
    "insufficient_data": "insufficient data",
}


def _names(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "none"


def claim_rule_text(verdict: Verdict, lean: Lean | None, primaries: Sequence[MetricOutline]) -> str:
    """The sentence that says which rule of STATISTICS.md §2 decided the claim verdict."""
    k = len(primaries)
    if k == 0:
        return "The claim has no primary metric to compare."
    one = k == 1
    if verdict == "reproduced":
        if one:
            return f"The primary metric, {primaries[0].name}, was reproduced within its margin."
        return f"All {k} primary metrics were reproduced within their margins (each must be)."
    if verdict == "not_reproduced":
        worse = [
            f"{m.name} ({fmt_p(m.adjusted.p_worse_holm)})"
            for m in primaries
            if m.adjusted.p_worse_holm is not None and m.adjusted.p_worse_holm < m.comparison.alpha
        ]
        adj = "" if one else f" after Holm's correction over {k} primary metrics"
        return f"The shortfall is larger than the margin{adj} for {_names(worse)}."
    if verdict == "insufficient_data":
        few = [m.name for m in primaries if m.comparison.verdict == "insufficient_data"]
        return f"Too few usable fresh results for {_names(few)}."
    if verdict == "exceeded":
        better = [
            m.name
            for m in primaries
            if m.adjusted.p_better_holm is not None
            and m.adjusted.p_better_holm < m.comparison.alpha
        ]
        adj = "" if one else " (Holm-adjusted)"
        return (
            "Every primary metric was reproduced or did better, and "
            f"{_names(better)} did better than claimed by more than the margin{adj}."
        )
    lean_text = {"worse": " It leans worse.", "better": " It leans better."}.get(lean or "", "")
    holm = "" if one else f", after Holm's correction over {k} primary metrics,"
    return (
        "Not every primary metric could be confirmed within its margin, and none was shown"
        f"{holm} to fall short by more than it.{lean_text}"
    )


def _runs_text(runs: RunsSummary) -> str:
    if runs.total == 0:
        return "No run was recorded."
    text = f"Of {runs.total} runs, {runs.succeeded} succeeded"
    if not runs.failed:
        return text + "."
    shown = "; ".join(f"{f.kind} seed {f.seed}: {f.outcome}" for f in runs.failed_runs[:5])
    more = f"; and {runs.failed - 5} more" if runs.failed > 5 else ""
    return f"{text} and {runs.failed} failed ({shown}{more})."


def explain_claim(
    *,
    verdict: Verdict,
    lean: Lean | None,
    metrics: Sequence[MetricOutline],
    runs: RunsSummary,
    exactness: Exactness,
    seed_selection: SeedSelection,
    determinism: Determinism,
    self_reported: bool,
) -> str:
    """A one-paragraph summary of the claim verdict and everything worth knowing beside it."""
    primaries = [m for m in metrics if m.primary]
    secondaries = [m for m in metrics if not m.primary]
    parts = [
        f"Claim verdict: {VERDICT_WORDS[verdict]}.",
        claim_rule_text(verdict, lean, primaries),
    ]
    if secondaries:
        listed = ", ".join(f"{m.name} {VERDICT_WORDS[m.comparison.verdict]}" for m in secondaries)
        parts.append(f"Secondary metrics, for information only: {listed}.")
    parts.append(_runs_text(runs))
    if runs.non_finite:
        parts.append(f"{len(runs.non_finite)} reported value(s) were not finite numbers.")
    if exactness.exactly_reproducible is not None or exactness.checks:
        parts.append(exactness.reason)
    s = seed_selection
    if s.flag and s.gap is not None and s.ci_low is not None and s.ci_high is not None:
        assert s.p is not None
        assert s.p_holm is not None
        d = 4 if s.metric is None else _metric_decimals(metrics, s.metric)
        parts.append(
            f"Seed selection flagged: on {s.metric} the claimed seeds did better than fresh seeds "
            f"by {fmt_signed(s.gap, d)} ({100 * (1 - 2 * _alpha(metrics)):g}% interval "
            f"{fmt_signed(s.ci_low, d)} to {fmt_signed(s.ci_high, d)}, one-sided {fmt_p(s.p)}), "
            "so the claimed seeds may not be typical."
        )
    elif s.p is not None:
        parts.append(f"No sign of seed selection (claimed versus fresh seeds, {fmt_p(s.p)}).")
    if determinism.seed is not None:
        parts.append(determinism.reason)
    if self_reported:
        parts.append("These results are self-reported: the package computed its own metric values.")
    return " ".join(parts)


def _metric_decimals(metrics: Sequence[MetricOutline], name: str) -> int:
    for m in metrics:
        if m.name == name:
            return decimals_for(m.comparison.tolerance)
    return 4


def _alpha(metrics: Sequence[MetricOutline]) -> float:
    return metrics[0].comparison.alpha if metrics else 0.05
