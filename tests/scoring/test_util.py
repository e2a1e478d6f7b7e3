"""The small numeric helpers of app/scoring and the result records (their fast paths included)."""

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special, stats

from app.scoring._util import mean, record, sample_sd, t_cdfs, t_ppf_975
from app.scoring.comparison import probability_better
from app.scoring.runs import FailedRun

NAN = float("nan")


def test_records_are_slotted_dataclasses_compared_by_value() -> None:
    a = FailedRun(1, "fresh", 101, "timeout")
    assert a == FailedRun(1, "fresh", 101, "timeout")
    assert a != FailedRun(2, "fresh", 101, "timeout")
    assert dataclasses.is_dataclass(a)
    assert not hasattr(a, "__dict__")  # slotted: no stray attributes
    with pytest.raises(AttributeError):
        a.extra = 1  # type: ignore[attr-defined]


def test_record_keeps_field_options() -> None:
    @record
    class Point:
        x: float
        label: str = dataclasses.field(default="", compare=False)

    assert Point(1.0, "a") == Point(1.0, "b")
    assert Point(1.0).label == ""


def test_identical_values_have_exactly_their_value_as_mean_and_sd_zero() -> None:
    for values in ([0.1] * 3, (0.7,) * 5, [1e308, 1e308]):
        assert mean(values) == values[0]
        assert sample_sd(values) == 0.0


def test_a_repeated_nan_object_is_not_a_run_of_identical_values() -> None:
    values = [NAN, NAN]  # the same object twice: list.count finds it by identity
    assert math.isnan(mean(values))
    assert math.isnan(sample_sd(values))
    assert math.isnan(mean([1.0, NAN]))
    assert math.isnan(mean([NAN, 1.0]))


def test_signed_zeros_count_as_identical() -> None:
    assert sample_sd([0.0, -0.0, 0.0]) == 0.0


@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=12))
def test_mean_and_sd_agree_with_their_definitions(values: list[float]) -> None:
    m = mean(values)
    assert m == pytest.approx(math.fsum(values) / len(values), rel=1e-12, abs=1e-12)
    assert sample_sd(values, m) == sample_sd(values) == sample_sd(tuple(values))
    expected = math.sqrt(math.fsum((v - m) ** 2 for v in values) / (len(values) - 1))
    assert sample_sd(values) == pytest.approx(expected, rel=1e-12, abs=1e-300)


def test_t_cdfs_equal_one_call_per_point() -> None:
    points = (-3.1, -0.2, 0.0, 0.7, 12.0)
    for df in (1.0, 4.0, 7.3, 1e4):
        assert t_cdfs(points, df) == [float(special.stdtr(df, x)) for x in points]
        assert t_cdfs(points, df) == pytest.approx(stats.t.cdf(points, df), rel=1e-12)


def test_t_ppf_975_is_the_t_quantile() -> None:
    for df in (1, 2, 4, 9, 29, 1000):
        assert t_ppf_975(df) == pytest.approx(stats.t.ppf(0.975, df), rel=1e-12)


def _pairs(x: list[float], y: list[float]) -> float:
    return sum((a > b) + 0.5 * (a == b) for a in x for b in y) / (len(x) * len(y))


finite = st.floats(-5, 5).map(lambda v: round(v, 1))  # rounding makes ties


@given(st.lists(finite, min_size=1, max_size=20), st.lists(finite, min_size=1, max_size=20))
def test_probability_better_counts_every_pair(x: list[float], y: list[float]) -> None:
    assert probability_better(x, y) == _pairs(x, y)


def test_probability_better_never_counts_a_nan_as_a_win_or_a_tie() -> None:
    assert probability_better([NAN, 2.0], [1.0, 2.0]) == _pairs([NAN, 2.0], [1.0, 2.0]) == 0.375
    assert probability_better([1.0], [NAN]) == 0.0


def test_probability_better_ties_equal_infinities() -> None:
    inf = float("inf")
    assert probability_better([inf, 1.0], [inf, -inf]) == _pairs([inf, 1.0], [inf, -inf]) == 0.625
