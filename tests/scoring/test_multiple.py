"""Several metrics: Holm and BH against statsmodels, and the intersection–union claim verdict."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from app.scoring.comparison import Comparison, compare, summarize_claim
from app.scoring.multiple import benjamini_hochberg, claim_verdict, holm


@pytest.mark.parametrize("k", [1, 3, 7, 40])
def test_holm_and_bh_match_statsmodels(k: int) -> None:
    rng = np.random.default_rng(k)
    for _ in range(5):  # multipletests runs gc.collect() on every call
        p = rng.uniform(0, 1, size=k) ** rng.uniform(0.5, 4)
        if k > 2:
            p[1] = p[0]  # ties
        assert holm(p.tolist()) == pytest.approx(multipletests(p, method="holm")[1].tolist())
        expected_bh = multipletests(p, method="fdr_bh")[1]
        assert benjamini_hochberg(p.tolist()) == pytest.approx(expected_bh.tolist())
        assert benjamini_hochberg(p.tolist()) == pytest.approx(
            np.atleast_1d(stats.false_discovery_control(p)).tolist()
        )


def test_empty_families() -> None:
    assert holm([]) == []
    assert benjamini_hochberg([]) == []


def _metric(reproduced: list[float], claim: float = 10.0, tol: float = 1.0) -> Comparison:
    return compare(
        claim=summarize_claim(claim), reproduced=reproduced, direction="higher", tolerance=tol
    )


GOOD = [10.0, 10.1, 9.9, 10.05, 9.95]  # reproduced
BAD = [7.0, 7.1, 6.9, 7.05, 6.95]  # not reproduced, p_worse tiny
BETTER = [13.0, 13.1, 12.9, 13.05, 12.95]  # exceeded
WIDE = [8.0, 12.0, 9.0, 11.0]  # inconclusive, no lean
SHORT = [10.0]  # insufficient data


def test_reproduced_needs_every_primary() -> None:
    comps = {"a": _metric(GOOD), "b": _metric(GOOD)}
    assert claim_verdict(comps, {"a": True, "b": True}).verdict == "reproduced"
    comps["b"] = _metric(WIDE)
    result = claim_verdict(comps, {"a": True, "b": True})
    assert result.verdict == "inconclusive"
    assert result.lean == "none"


def test_secondaries_do_not_decide() -> None:
    comps = {"a": _metric(GOOD), "s": _metric(BAD)}
    result = claim_verdict(comps, {"a": True, "s": False})
    assert result.verdict == "reproduced"
    assert result.adjusted["s"].p_worse_bh == pytest.approx(comps["s"].p_worse)
    assert result.adjusted["s"].p_worse_holm is None
    assert result.adjusted["a"].p_worse_bh is None


def test_not_reproduced_uses_holm() -> None:
    # p_worse just under α alone, but not after Holm over two primaries.
    borderline = [8.91, 9.01, 8.81, 8.86, 8.96]
    c = _metric(borderline)
    assert c.p_worse is not None
    assert 0.025 < c.p_worse < 0.05
    assert c.verdict == "not_reproduced"
    result = claim_verdict({"a": c, "b": _metric(WIDE)}, {"a": True, "b": True})
    assert result.adjusted["a"].p_worse_holm == pytest.approx(min(1.0, 2 * c.p_worse))
    assert result.verdict == "inconclusive"
    assert result.lean == "worse"
    assert claim_verdict({"a": c}, {"a": True}).verdict == "not_reproduced"


def test_not_reproduced_wins_over_missing_data() -> None:
    comps = {"a": _metric(BAD), "b": _metric(SHORT)}
    result = claim_verdict(comps, {"a": True, "b": True})
    assert result.verdict == "not_reproduced"
    # The metric without data still counts in Holm's family (conservative).
    assert result.adjusted["a"].p_worse_holm == pytest.approx(min(1.0, 2 * comps["a"].p_worse))
    assert result.adjusted["b"].p_worse_holm is None


def test_insufficient_data_when_a_primary_has_no_data() -> None:
    comps = {"a": _metric(GOOD), "b": _metric(SHORT)}
    assert claim_verdict(comps, {"a": True, "b": True}).verdict == "insufficient_data"
    assert claim_verdict({}, {}).verdict == "insufficient_data"


def test_exceeded_needs_all_reproduced_or_exceeded_and_one_significant() -> None:
    comps = {"a": _metric(GOOD), "b": _metric(BETTER)}
    result = claim_verdict(comps, {"a": True, "b": True})
    assert result.verdict == "exceeded"
    comps = {"a": _metric(WIDE), "b": _metric(BETTER)}
    result = claim_verdict(comps, {"a": True, "b": True})
    assert result.verdict == "inconclusive"
    assert result.lean == "better"


def test_point_rule_over_primaries() -> None:
    comps = {"a": _metric(GOOD), "b": _metric(BAD), "s": _metric(BAD)}
    assert claim_verdict(comps, {"a": True, "b": False, "s": False}).point_rule is True
    assert claim_verdict(comps, {"a": True, "b": True, "s": False}).point_rule is False
    assert claim_verdict({"a": _metric([])}, {"a": True}).point_rule is None


def test_to_dict() -> None:
    result = claim_verdict({"a": _metric(GOOD)}, {"a": True})
    d = result.to_dict()
    assert d["verdict"] == "reproduced"
    assert set(d["adjusted"]["a"]) == {"p_worse_holm", "p_better_holm", "p_worse_bh", "p_better_bh"}
