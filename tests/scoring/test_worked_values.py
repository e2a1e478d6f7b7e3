"""STATISTICS.md §7: every worked value, to 1e-6 (the acceptance test)."""

import pytest
from scipy import stats

from app.scoring.aggregate import iqm, wilson_interval
from app.scoring.comparison import compare, hedges_g, summarize_claim
from app.scoring.multiple import benjamini_hochberg, holm
from tests.scoring.worked import ALPHA, DELTA, R1, R2, C

TOL = 1e-6


def _vs_claim(reproduced: list[float]):
    claim = summarize_claim(97.1, values=C)
    return compare(
        claim=claim, reproduced=reproduced, direction="higher", tolerance=DELTA, alpha=ALPHA
    )


def test_welch_from_summary_stats() -> None:
    claim = summarize_claim(97.1, spread=0.3, spread_kind="sd", n=5)
    c = compare(claim=claim, reproduced=R1, direction="higher", tolerance=DELTA)
    assert c.mode == "two_sample"
    assert c.reproduced_mean == pytest.approx(97.02, abs=TOL)
    assert c.reproduced_sd == pytest.approx(0.1923538406, abs=TOL)
    assert c.t_difference == pytest.approx(-0.5019646441, abs=TOL)
    assert c.df == pytest.approx(6.8133910656, abs=TOL)
    assert c.p_difference == pytest.approx(0.6315031311, abs=TOL)
    ref = stats.ttest_ind_from_stats(97.02, 0.1923538406, 5, 97.1, 0.3, 5, equal_var=False)
    assert c.t_difference == pytest.approx(ref.statistic, abs=TOL)
    assert c.p_difference == pytest.approx(ref.pvalue, abs=TOL)


def test_welch_r1_vs_c() -> None:
    c = _vs_claim(R1)
    assert c.t_difference == pytest.approx(-0.6064784349, abs=TOL)
    assert c.df == pytest.approx(7.8252778496, abs=TOL)
    assert c.p_difference == pytest.approx(0.5613742778, abs=TOL)


def test_tost_r1_vs_c() -> None:
    c = _vs_claim(R1)
    assert c.p_tost == pytest.approx(0.0066479475, abs=TOL)
    assert c.t_lower == pytest.approx(3.1840117830, abs=TOL)
    assert c.t_upper == pytest.approx(-4.3969686528, abs=TOL)


def test_verdict_r1_vs_c_reproduced() -> None:
    c = _vs_claim(R1)
    assert c.verdict == "reproduced"
    assert c.ci_low == pytest.approx(-0.3260031, abs=TOL)
    assert c.ci_high == pytest.approx(0.1660031, abs=TOL)
    assert c.point_rule is True


def test_verdict_r2_vs_c_not_reproduced() -> None:
    c = _vs_claim(R2)
    assert c.verdict == "not_reproduced"
    assert c.ci_high == pytest.approx(-0.8739970, abs=TOL)
    assert c.p_worse == pytest.approx(0.000817919, abs=TOL)


def test_hedges_g_r1_vs_c() -> None:
    c = _vs_claim(R1)
    assert c.cohens_d == pytest.approx(-0.3835706412, abs=TOL)
    assert c.hedges_g == pytest.approx(-0.3464509017, abs=TOL)
    d, g = hedges_g(97.02 - 97.1, 0.1923538406, 5, 0.2236067977, 5)
    assert d == pytest.approx(-0.3835706412, abs=TOL)
    assert g == pytest.approx(-0.3464509017, abs=TOL)


def test_holm() -> None:
    adjusted = holm([0.011, 0.041, 0.027, 0.004, 0.20])
    assert adjusted == pytest.approx([0.044, 0.082, 0.081, 0.020, 0.20], abs=TOL)


def test_benjamini_hochberg() -> None:
    adjusted = benjamini_hochberg([0.011, 0.041, 0.027, 0.004, 0.20])
    assert adjusted == pytest.approx([0.0275, 0.05125, 0.045, 0.020, 0.20], abs=TOL)


def test_wilson() -> None:
    interval = wilson_interval(162, 255)
    assert interval is not None
    assert interval == pytest.approx((0.5746124, 0.6919600), abs=TOL)


def test_iqm() -> None:
    assert iqm([1, 2, 3, 4, 5, 6, 7, 100]) == pytest.approx(4.5, abs=TOL)
