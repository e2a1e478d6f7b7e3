"""Property tests: symmetries and monotonicity the verdicts must have, whatever the numbers."""

import math

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app.scoring.comparison import VERDICTS, ClaimSummary, Comparison, compare, summarize_claim

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)
values = st.lists(finite, min_size=2, max_size=8)
tolerances = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False)
alphas = st.sampled_from([0.01, 0.05, 0.1, 0.25])


@st.composite
def claims(draw: st.DrawFn) -> tuple[float, list[float] | None, float | None, int | None]:
    """(mean, values, sd, n): per-seed values, an sd with n, or a bare mean."""
    kind = draw(st.sampled_from(["values", "sd", "point"]))
    if kind == "values":
        vals = draw(values)
        return math.fsum(vals) / len(vals), vals, None, None
    mean = draw(finite)
    if kind == "sd":
        return mean, None, draw(st.floats(min_value=0, max_value=100)), draw(st.integers(2, 30))
    return mean, None, None, None


def _claim(mean: float, vals: list[float] | None, sd: float | None, n: int | None) -> ClaimSummary:
    if vals is not None:
        return summarize_claim(mean, values=vals)
    if sd is not None:
        return summarize_claim(mean, spread=sd, spread_kind="sd", n=n)
    return summarize_claim(mean)


def _run(
    claim: ClaimSummary, xs: list[float], direction: str, tol: float, alpha: float
) -> Comparison:
    return compare(claim=claim, reproduced=xs, direction=direction, tolerance=tol, alpha=alpha)  # type: ignore[arg-type]


def _near_boundary(c: Comparison) -> bool:
    """Whether a tiny rounding change could flip the verdict."""
    eps = 1e-7
    checks = [c.p_tost, c.p_worse, c.p_better]
    if any(p is not None and abs(p - c.alpha) < eps for p in checks):
        return True
    if c.ci_low is not None and c.ci_high is not None:
        edges = [c.ci_low, c.ci_high]
        scale = max(1.0, c.tolerance, *(abs(e) for e in edges))
        if any(abs(e) < eps * scale or abs(abs(e) - c.tolerance) < eps * scale for e in edges):
            return True
    # Nearly identical runs: SE = 0 may appear or vanish with rounding.
    return c.se is not None and c.se < 1e-9 * max(1.0, abs(c.claimed_mean))


@settings(max_examples=300, deadline=None)
@given(claim=claims(), xs=values, tol=tolerances, alpha=alphas)
def test_flipping_direction_and_negating_changes_nothing(claim, xs, tol, alpha) -> None:
    mean, vals, sd, n = claim
    up = _run(_claim(mean, vals, sd, n), xs, "higher", tol, alpha)
    negated = None if vals is None else [-v for v in vals]
    down = _run(_claim(-mean, negated, sd, n), [-x for x in xs], "lower", tol, alpha)
    for name in (
        "verdict",
        "lean",
        "delta",
        "se",
        "ci_low",
        "ci_high",
        "p_tost",
        "p_worse",
        "p_better",
        "point_rule",
        "hedges_g",
        "prob_improvement",
        "t_difference",
    ):
        assert getattr(up, name) == getattr(down, name), name


@settings(max_examples=300, deadline=None)
@given(
    claim=claims(),
    xs=values,
    tol=tolerances,
    alpha=alphas,
    shift=st.floats(min_value=-1e3, max_value=1e3, allow_nan=False),
)
def test_adding_a_constant_changes_nothing(claim, xs, tol, alpha, shift) -> None:
    mean, vals, sd, n = claim
    base = _run(_claim(mean, vals, sd, n), xs, "higher", tol, alpha)
    shifted_vals = None if vals is None else [v + shift for v in vals]
    moved = _run(
        _claim(mean + shift, shifted_vals, sd, n), [x + shift for x in xs], "higher", tol, alpha
    )
    if base.verdict != moved.verdict or base.lean != moved.lean:
        assert _near_boundary(base) or _near_boundary(moved)
        return
    if base.delta is not None and not base.se_zero and not moved.se_zero:
        assert moved.delta is not None
        scale = 1e-9 * max(1.0, abs(mean), abs(shift), *(abs(x) for x in xs))
        assert math.isclose(base.delta, moved.delta, abs_tol=1e3 * scale)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    claim=claims(),
    xs=values,
    tol=tolerances,
    alpha=alphas,
    factor=st.floats(min_value=1.0, max_value=100.0),
)
def test_widening_the_tolerance_keeps_reproduced(claim, xs, tol, alpha, factor) -> None:
    c = _claim(*claim)
    narrow = _run(c, xs, "higher", tol, alpha)
    assume(narrow.verdict == "reproduced")
    assert _run(c, xs, "higher", tol * factor, alpha).verdict == "reproduced"


@settings(max_examples=400, deadline=None)
@given(claim=claims(), xs=values, tol=tolerances, alpha=alphas)
def test_verdicts_partition_every_input(claim, xs, tol, alpha) -> None:
    c = _run(_claim(*claim), xs, "higher", tol, alpha)
    assert c.verdict in VERDICTS
    if c.verdict == "insufficient_data":
        return
    assert c.p_tost is not None
    assert c.p_worse is not None
    assert c.p_better is not None
    rules = [c.p_tost < alpha, c.p_worse < alpha, c.p_better < alpha]
    # With α < 0.5 the three rules exclude one another even without the order of evaluation.
    assert sum(rules) <= 1
    expected = ["reproduced", "not_reproduced", "exceeded"]
    chosen = [v for v, r in zip(expected, rules, strict=True) if r]
    assert c.verdict == (chosen[0] if chosen else "inconclusive")
    assert (c.lean is not None) == (c.verdict == "inconclusive")
    if not c.se_zero:
        assert c.ci_low is not None
        assert c.ci_high is not None
        if c.verdict == "reproduced":
            assert -tol < c.ci_low + 1e-9 * tol
            assert c.ci_high - 1e-9 * tol < tol
        if c.verdict == "not_reproduced":
            assert c.ci_high < -tol + 1e-9 * tol
        if c.verdict == "exceeded":
            assert c.ci_low > tol - 1e-9 * tol


@settings(max_examples=200, deadline=None)
@given(value=finite, m=st.integers(2, 8), claim_mean=finite, tol=tolerances, two=st.booleans())
def test_se_zero_follows_the_point_rule(value, m, claim_mean, tol, two) -> None:
    claim = (
        summarize_claim(claim_mean, values=[claim_mean] * 3) if two else summarize_claim(claim_mean)
    )
    c = _run(claim, [value] * m, "higher", tol, 0.05)
    assert c.se_zero
    delta = value - claim_mean
    assume(abs(abs(delta) - tol) > 1e-9 * max(abs(value), abs(claim_mean), tol))
    expected = (
        "reproduced" if abs(delta) < tol else "not_reproduced" if delta <= -tol else "exceeded"
    )
    assert c.verdict == expected
    assert c.point_rule == (abs(delta) <= tol)
