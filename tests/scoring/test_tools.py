"""The researcher tools (app/tools): validation names the field; the service gives the numbers."""

import json
import math
from typing import Any

import pytest
from pydantic import ValidationError

from app.tools import compare, power
from app.tools.schemas import CompareRequest, PowerRequest
from tests.scoring.worked import R1, R2, C

SINGLE: dict[str, Any] = {
    "direction": "higher",
    "tolerance": 0.5,
    "alpha": 0.05,
    "claim": {"mean": 97.1, "values": C},
    "reproduced": R1,
}


def _with(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    payload = json.loads(json.dumps(base or SINGLE))
    *parents, last = path.split(".")
    node = payload
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return payload


_DELETE = object()


def _error(payload: dict[str, Any], model: type = CompareRequest) -> str:
    with pytest.raises(ValidationError) as info:
        model.model_validate(payload)
    return str(info.value)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("tolerance", 0.0, "tolerance"),
        ("tolerance", -0.5, "tolerance"),
        ("reproduced", [97.0], "reproduced"),
        ("reproduced", [97.0, float("nan")], "reproduced"),
        ("reproduced", [97.0, float("inf")], "reproduced"),
        ("claim.mean", float("nan"), "mean"),
        ("claim.values", [97.1, float("-inf")], "values"),
        ("claim.values", [98.0, 98.2, 98.1], "values"),  # mean disagrees
        ("alpha", 0.0, "alpha"),
        ("alpha", 0.5, "alpha"),
        ("alpha", 0.7, "alpha"),
        ("alpha", -0.1, "alpha"),
        ("direction", "up", "direction"),
        ("tolerance", _DELETE, "tolerance"),
        ("claim", _DELETE, "claim"),
        ("surprise", 1, "surprise"),
    ],
)
def test_single_form_rejections_name_the_field(path: str, value: Any, field: str) -> None:
    message = _error(_with(path, value))
    assert field in message


@pytest.mark.parametrize(
    ("claim", "field", "words"),
    [
        ({"mean": 97.1, "spread": 0.3, "n": 5}, "spread_kind", "spread_kind is required"),
        ({"mean": 97.1, "spread_kind": "sd", "n": 5}, "spread_kind", "spread is missing"),
        ({"mean": 97.1, "spread": 0.3, "spread_kind": "sd"}, "n", "n, the number of seeds"),
        (
            {"mean": 97.1, "values": C, "spread": 0.3, "spread_kind": "sd", "n": 5},
            "spread",
            "not both",
        ),
        (
            {"mean": 97.1, "spread": -0.3, "spread_kind": "sd", "n": 5},
            "spread",
            "greater than or equal",
        ),
        ({"mean": 97.1, "spread": 0.3, "spread_kind": "iqr", "n": 5}, "spread_kind", "sd"),
        ({"mean": 97.1, "values": [97.1]}, "values", "at least 2"),
        ({"mean": 97.5, "values": C}, "values", "disagrees with mean"),
    ],
)
def test_claim_rejections_name_the_field(claim: dict[str, Any], field: str, words: str) -> None:
    message = _error(_with("claim", claim))
    assert f"claim.{field}" in message
    assert words in message


def test_nan_from_python_json_is_rejected() -> None:
    text = json.dumps(_with("reproduced", [97.0, float("nan")]))
    assert "NaN" in text  # Python's json writes (and reads) it
    with pytest.raises(ValidationError) as info:
        CompareRequest.model_validate(json.loads(text))
    assert "reproduced" in str(info.value)
    with pytest.raises(ValidationError):
        CompareRequest.model_validate_json(text)


def test_multi_form_rejections() -> None:
    metric = {k: v for k, v in SINGLE.items() if k != "alpha"}
    multi = {"alpha": 0.05, "metrics": {"acc": metric}}
    assert "metrics.acc.tolerance" in _error(_with("metrics.acc.tolerance", 0, multi)).replace(
        "\n  ", "."
    )
    assert "reproduced" in _error(_with("metrics.acc.reproduced", [1.0], multi))
    mixed = {**multi, "tolerance": 0.5}
    assert "tolerance: not allowed together with metrics" in _error(mixed)
    assert "metrics" in _error({"metrics": {}})


def test_compare_single() -> None:
    response = compare(CompareRequest.model_validate(SINGLE))
    result = response.metrics["metric"]
    assert result.verdict == "reproduced"
    assert result.ci_low == pytest.approx(-0.3260031, abs=1e-6)
    assert result.p_tost == pytest.approx(0.0066479475, abs=1e-9)
    assert result.hedges_g == pytest.approx(-0.3464509017, abs=1e-9)
    assert result.t_difference == pytest.approx(-0.6064784349, abs=1e-9)
    assert result.point_rule is True
    assert "reproduced" in result.explanation
    assert response.claim_verdict == "reproduced"
    json.dumps(response.model_dump(), allow_nan=False)


def test_compare_single_with_spread_and_point_claim() -> None:
    spread = _with("claim", {"mean": 97.1, "spread": 0.3, "spread_kind": "sd", "n": 5})
    result = compare(CompareRequest.model_validate(spread)).metrics["metric"]
    assert result.t_difference == pytest.approx(-0.5019646441, abs=1e-9)
    assert result.df == pytest.approx(6.8133910656, abs=1e-9)
    point = compare(CompareRequest.model_validate(_with("claim", {"mean": 97.1}))).metrics["metric"]
    assert point.mode == "one_sample"
    assert point.hedges_g is None


def test_compare_multi_with_holm_and_bh() -> None:
    metric = {k: v for k, v in SINGLE.items() if k != "alpha"}
    payload = {
        "metrics": {
            "acc": metric,
            "acc_bad": {**metric, "reproduced": R2},
            "loss": {
                **metric,
                "direction": "lower",
                "primary": False,
                "claim": {"mean": 0.3},
                "reproduced": [0.31, 0.29, 0.30],
            },
        }
    }
    response = compare(CompareRequest.model_validate(payload))
    assert response.alpha == 0.05
    assert response.claim_verdict == "not_reproduced"
    bad = response.metrics["acc_bad"]
    assert bad.p_worse_holm == pytest.approx(min(1.0, 2 * bad.p_worse))
    assert response.metrics["loss"].p_worse_bh == pytest.approx(response.metrics["loss"].p_worse)
    assert response.metrics["loss"].p_worse_holm is None
    assert "Holm" in response.explanation


def test_power_tool_defaults_and_validation() -> None:
    request = PowerRequest.model_validate({"sd": 1.0, "tolerance": 2.5})
    assert (request.alpha, request.mode, request.seeds, request.target_power) == (
        0.05,
        "one_sample",
        5,
        0.8,
    )
    response = power(request)
    assert 0.99 < response.power < 1.0
    assert response.seeds_needed == 4  # power(3) = 0.75, power(4) ≈ 0.95
    assert response.warning is None
    two = power(
        PowerRequest.model_validate(
            {"sd": 1.0, "tolerance": 1.0, "mode": "two_sample", "claim_n": 5}
        )
    )
    assert two.mode == "two_sample"
    assert math.isfinite(two.power)
    warned = power(PowerRequest.model_validate({"sd": 1.0, "tolerance": 1.2}))
    assert warned.warning is not None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"sd": 0, "tolerance": 1}, "sd"),
        ({"sd": 1, "tolerance": -1}, "tolerance"),
        ({"sd": 1, "tolerance": 1, "alpha": 0.5}, "alpha"),
        ({"sd": 1, "tolerance": 1, "mode": "two_sample"}, "claim_n"),
        ({"sd": 1, "tolerance": 1, "seeds": 1}, "seeds"),
        ({"sd": 1, "tolerance": 1, "target_power": 1.0}, "target_power"),
        ({"sd": float("inf"), "tolerance": 1}, "sd"),
        ({"sd": 1, "tolerance": 1, "true_difference": float("nan")}, "true_difference"),
        ({"sd": 1, "tolerance": 1, "extra": True}, "extra"),
    ],
)
def test_power_rejections_name_the_field(payload: dict[str, Any], field: str) -> None:
    assert field in _error(payload, PowerRequest)
