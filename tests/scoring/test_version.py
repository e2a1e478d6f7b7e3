"""score_version end to end on synthetic runs."""

import json
import random

import pytest

from app.scoring.multiple import benjamini_hochberg
from app.scoring.quality import PackageFacts, lint_checks
from app.scoring.version import (
    SCORING_VERSION,
    ClaimedMetric,
    MetricDefinition,
    RunRecord,
    VersionInputs,
    score_version,
)
from tests.scoring.worked import R1, R2, C

FACTS = PackageFacts(
    has_readme=True,
    description_length=300,
    has_license_file=True,
    license="Apache-2.0",
    has_hyperparameters=True,
    has_paper=True,
    tag_count=1,
    all_claims_have_spread=True,
    variance_source_count=2,
    compute_described=True,
    requirements=("numpy==1.26.4 --hash=sha256:0123",),
    python_declared=True,
    base_approved=True,
)
ACC = MetricDefinition("acc", "higher", 0.5, True, seed_sd=0.2)
SEEDS = [0, 1, 2, 3, 4]
FRESH_SEEDS = [101, 102, 103, 104, 105]


def _runs(
    claimed: list[float] | None = None,
    fresh: list[float] | None = None,
    *,
    metric: str = "acc",
    extra: list[RunRecord] | None = None,
    probe: float | None = None,
) -> list[RunRecord]:
    runs: list[RunRecord] = []
    job = 1
    for seed, value in zip(SEEDS, claimed if claimed is not None else C, strict=False):
        runs.append(RunRecord(job, "claimed", seed, "succeeded", {metric: value}))
        job += 1
    fresh_values = fresh if fresh is not None else R1
    for seed, value in zip(FRESH_SEEDS, fresh_values, strict=False):
        runs.append(RunRecord(job, "fresh", seed, "succeeded", {metric: value}))
        job += 1
    if probe is not None:
        runs.append(RunRecord(job, "probe", FRESH_SEEDS[0], "succeeded", {metric: probe}))
    return runs + (extra or [])


def _inputs(runs: list[RunRecord], **kw: object) -> VersionInputs:
    defaults: dict[str, object] = {
        "metrics": [ACC],
        "claims": {"acc": ClaimedMetric(97.1, values=tuple(C))},
        "claimed_seeds": SEEDS,
        "runs": runs,
        "checks": lint_checks(FACTS),
        "variance_sources": ("init", "data_order"),
    }
    defaults.update(kw)
    return VersionInputs(**defaults)  # type: ignore[arg-type]


def _json(score) -> str:
    return json.dumps(score.to_dict(), allow_nan=False, sort_keys=True)


def test_honest_claim_is_reproduced_with_everything_reported() -> None:
    score = score_version(_inputs(_runs(probe=R1[0])))
    assert score.scoring_version == SCORING_VERSION
    assert score.claim_verdict == "reproduced"
    assert score.claim_lean is None
    assert score.point_rule is True
    acc = score.metrics["acc"]
    assert acc.verdict == "reproduced"
    assert acc.ci_low == pytest.approx(-0.3260031, abs=1e-6)
    assert acc.p_worse_holm == acc.p_worse
    assert acc.p_worse_bh is None
    assert acc.n_reproduced == 5
    assert acc.claimed_n == 5
    assert "reproduced" in acc.explanation
    assert score.exactness.exactly_reproducible is True
    assert score.determinism.deterministic is True
    assert score.determinism.max_difference == 0.0
    assert score.seed_selection.flag is False
    assert score.runs.total == 11
    assert score.runs.failed == 0
    assert score.quality.total == 100.0
    assert score.explanation.startswith("Claim verdict: reproduced.")
    assert score.warnings == ()


def test_to_dict_is_json_safe_and_deterministic() -> None:
    runs = _runs(probe=R1[0], extra=[RunRecord(50, "fresh", 106, "timeout", {})])
    a = _json(score_version(_inputs(runs)))
    shuffled = list(runs)
    random.Random(3).shuffle(shuffled)
    b = _json(score_version(_inputs(shuffled)))
    assert a == b
    assert json.loads(a)["runs"]["failed_runs"] == [
        {"job_id": 50, "kind": "fresh", "seed": 106, "outcome": "timeout"}
    ]


def test_failed_seeds_are_counted_listed_and_explained() -> None:
    extra = [
        RunRecord(60, "fresh", 201, "timeout", {}),
        RunRecord(61, "fresh", 202, "oom", {}),
        RunRecord(62, "claimed", 9, "user_error", {}),
    ]
    score = score_version(_inputs(_runs(fresh=R1[:3], extra=extra)))
    assert score.runs.failed == 3
    assert score.runs.failed_by_outcome == {"oom": 1, "timeout": 1, "user_error": 1}
    assert [f.job_id for f in score.runs.failed_runs] == [60, 61, 62]
    acc = score.metrics["acc"]
    assert acc.n_reproduced == 3
    assert acc.n_failed == 2
    assert "2 fresh run(s) failed (oom 1, timeout 1)" in acc.explanation
    assert "3 failed" in score.explanation


def test_too_few_fresh_results_is_insufficient_data() -> None:
    extra = [RunRecord(60 + i, "fresh", 300 + i, "timeout", {}) for i in range(4)]
    score = score_version(_inputs(_runs(fresh=R1[:1], extra=extra)))
    assert score.claim_verdict == "insufficient_data"
    assert score.metrics["acc"].verdict == "insufficient_data"
    assert score.quality.parts["R"].points == 0.0
    assert "Only 1 fresh seed" in score.metrics["acc"].explanation


def test_diverged_run_with_nan_is_shown_not_dropped() -> None:
    fresh = [*R1[:4], float("nan")]
    score = score_version(_inputs(_runs(fresh=fresh)))
    assert score.metrics["acc"].verdict == "insufficient_data"
    assert score.metrics["acc"].n_non_finite == 1
    assert score.runs.non_finite == ((10, "acc", "nan"),)
    d = json.loads(_json(score))
    assert d["metrics"]["acc"]["p_tost"] is None


def test_not_reproduced_caps_quality() -> None:
    score = score_version(_inputs(_runs(fresh=R2)))
    assert score.claim_verdict == "not_reproduced"
    assert score.quality.capped
    assert score.quality.total == 40.0
    assert score.quality.uncapped == 50.0
    assert "not reproduced" in score.explanation


def test_exactness_detects_drift() -> None:
    drifted = [*C[:4], C[4] + 0.01]
    score = score_version(_inputs(_runs(claimed=drifted)))
    assert score.exactness.exactly_reproducible is False
    assert score.exactness.max_difference == pytest.approx(0.01)
    bad = [c for c in score.exactness.checks if c.exact is False]
    assert [(c.seed, c.metric) for c in bad] == [(4, "acc")]
    items = {i.item: i for i in score.quality.parts["G"].items}
    assert items["exactness"].points == 0.0


def test_exactness_within_relative_tolerance() -> None:
    nudged = [c * (1 + 1e-12) for c in C]
    assert score_version(_inputs(_runs(claimed=nudged))).exactness.exactly_reproducible is True


def test_exactness_unknown_when_a_claimed_seed_failed() -> None:
    runs = [r for r in _runs() if not (r.kind == "claimed" and r.seed == 2)]
    runs.append(RunRecord(70, "claimed", 2, "infrastructure_error", {}))
    exactness = score_version(_inputs(runs)).exactness
    assert exactness.exactly_reproducible is None
    assert "2" in exactness.reason


def test_exactness_needs_per_seed_values() -> None:
    claims = {"acc": ClaimedMetric(97.1, spread=0.3, spread_kind="sd", n=5)}
    score = score_version(_inputs(_runs(), claims=claims))
    assert score.exactness.exactly_reproducible is None
    assert score.metrics["acc"].mode == "two_sample"


def test_spread_without_n_uses_the_claimed_seed_count() -> None:
    claims = {"acc": ClaimedMetric(97.1, spread=0.3, spread_kind="sd")}
    score = score_version(_inputs(_runs(), claims=claims))
    assert score.metrics["acc"].claimed_n == 5
    assert score.metrics["acc"].t_difference == pytest.approx(-0.5019646441, abs=1e-6)


def test_seed_selection_flag() -> None:
    cherry = [98.6, 98.4, 98.5, 98.7, 98.5]  # claimed seeds re-run far better than fresh ones
    claims = {"acc": ClaimedMetric(98.54, values=tuple(cherry))}
    score = score_version(_inputs(_runs(claimed=cherry), claims=claims))
    s = score.seed_selection
    assert s.flag is True
    assert s.metric == "acc"
    assert s.gap == pytest.approx(98.54 - 97.02)
    assert s.ci_low is not None
    assert s.ci_low > 0
    assert s.p is not None
    assert s.p < 0.05
    assert "Seed selection flagged" in score.explanation
    assert score.claim_verdict == "not_reproduced"


def test_seed_selection_uses_rerun_values_without_per_seed_claims() -> None:
    claims = {"acc": ClaimedMetric(98.54)}
    score = score_version(_inputs(_runs(claimed=[98.6, 98.4, 98.5, 98.7, 98.5]), claims=claims))
    assert score.seed_selection.flag is True
    assert score.exactness.exactly_reproducible is None


def test_determinism_probe() -> None:
    score = score_version(_inputs(_runs(probe=R1[0] + 1e-6)))
    assert score.determinism.deterministic is False
    assert score.determinism.max_difference == pytest.approx(1e-6)
    assert score.determinism.seed == FRESH_SEEDS[0]
    failed = [*_runs(), RunRecord(99, "probe", FRESH_SEEDS[0], "timeout", {})]
    assert score_version(_inputs(failed)).determinism.deterministic is None
    assert score_version(_inputs(_runs())).determinism.deterministic is None


def _multi(
    fresh: dict[str, list[float]], claims: dict[str, list[float]], defs: list[MetricDefinition]
):
    runs: list[RunRecord] = []
    for i, seed in enumerate(SEEDS):
        runs.append(
            RunRecord(1 + i, "claimed", seed, "succeeded", {k: v[i] for k, v in claims.items()})
        )
    for i, seed in enumerate(FRESH_SEEDS):
        runs.append(
            RunRecord(10 + i, "fresh", seed, "succeeded", {k: v[i] for k, v in fresh.items()})
        )
    claimed = {k: ClaimedMetric(sum(v) / len(v), values=tuple(v)) for k, v in claims.items()}
    return score_version(_inputs(runs, metrics=defs, claims=claimed))


def test_secondaries_get_bh_and_do_not_decide() -> None:
    defs = [
        ACC,
        MetricDefinition("loss", "lower", 0.05, False),
        MetricDefinition("f1", "higher", 0.01, False),
    ]
    loss_claim = [0.30, 0.31, 0.29, 0.30, 0.30]
    f1_claim = [0.90, 0.91, 0.89, 0.90, 0.90]
    score = _multi(
        {
            "acc": R1,
            "loss": [0.50, 0.52, 0.49, 0.51, 0.50],
            "f1": [0.899, 0.902, 0.897, 0.900, 0.901],
        },
        {"acc": C, "loss": loss_claim, "f1": f1_claim},
        defs,
    )
    assert score.claim_verdict == "reproduced"
    loss, f1 = score.metrics["loss"], score.metrics["f1"]
    assert loss.verdict == "not_reproduced"
    assert loss.p_worse_holm is None
    expected = benjamini_hochberg([loss.p_worse, f1.p_worse])
    assert [loss.p_worse_bh, f1.p_worse_bh] == pytest.approx(expected)
    assert "Secondary metrics" in score.explanation
    assert score.quality.total == 100.0  # secondaries do not enter R


def test_multi_primary_holm() -> None:
    defs = [ACC, MetricDefinition("acc5", "higher", 1.0, True)]
    acc5_claim = [10.0, 10.0, 10.0, 10.0, 10.0]
    borderline = [8.91, 9.01, 8.81, 8.86, 8.96]  # raw p_worse ≈ 0.032, Holm-adjusted ≈ 0.064
    score = _multi({"acc": R1, "acc5": borderline}, {"acc": C, "acc5": acc5_claim}, defs)
    acc5 = score.metrics["acc5"]
    assert acc5.verdict == "not_reproduced"
    assert acc5.p_worse_holm == pytest.approx(min(1.0, 2 * acc5.p_worse))
    assert score.claim_verdict == "inconclusive"
    assert score.claim_lean == "worse"
    # The per-metric verdict is what caps Q, as STATISTICS.md §5 says.
    assert score.quality.capped


def test_unknown_metric_raises() -> None:
    with pytest.raises(ValueError, match="nope"):
        score_version(_inputs(_runs(), claims={"nope": ClaimedMetric(1.0)}))


def test_self_reported_and_warning_are_mentioned() -> None:
    tight = MetricDefinition("acc", "higher", 0.2, True, seed_sd=0.2)
    score = score_version(_inputs(_runs(), metrics=[tight], self_reported=True))
    assert score.self_reported
    assert "self-reported" in score.explanation
    assert len(score.warnings) == 1
    assert score.metrics["acc"].warning is not None


def _plain(obj: object) -> bool:
    """Only JSON types, and plain floats (not numpy's float64) that are finite."""
    if isinstance(obj, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in obj.items())
    if isinstance(obj, list):
        return all(_plain(v) for v in obj)
    if isinstance(obj, float):
        return type(obj) is float and obj == obj and abs(obj) != float("inf")
    return obj is None or type(obj) in (str, int, bool)


def test_to_dict_has_only_plain_types_even_from_numpy_inputs() -> None:
    import numpy as np

    runs = [
        RunRecord(
            r.job_id, r.kind, r.seed, r.outcome, {k: np.float64(v) for k, v in r.metrics.items()}
        )
        for r in _runs(probe=R1[0] + 1e-3, fresh=[*R1[:4], float("inf")])
    ]
    for score in (score_version(_inputs(runs)), score_version(_inputs(_runs(probe=R1[0])))):
        assert _plain(score.to_dict())
