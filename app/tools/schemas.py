"""Request and response models of the researcher tools: POST /v1/tools/compare and /power.

Every float must be finite (Python's json accepts NaN and Infinity; these models do not), and
every validation error names the field it is about.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from app.scoring.comparison import claimed_mean_agrees

Direction = Literal["higher", "lower"]
SpreadKind = Literal["sd", "sem", "ci95_half", "two_sd"]
VerdictName = Literal[
    "reproduced", "not_reproduced", "exceeded", "inconclusive", "insufficient_data"
]
LeanName = Literal["worse", "better", "none"]

DEFAULT_ALPHA = 0.05
DEFAULT_SEEDS = 5
DEFAULT_TARGET_POWER = 0.8
DEFAULT_METRIC_NAME = "metric"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ClaimIn(_Strict):
    """The claim: a mean with per-seed values, or a spread with its kind and n, or neither."""

    mean: float = Field(description="The claimed mean.")
    values: list[float] | None = Field(
        default=None, min_length=2, description="Per-seed values behind the mean (preferred)."
    )
    spread: float | None = Field(
        default=None, ge=0, description="The claim's spread, read according to spread_kind."
    )
    spread_kind: SpreadKind | None = Field(
        default=None,
        validate_default=True,
        description="sd (ddof=1), sem, ci95_half (half-width of a 95% t-interval) or two_sd.",
    )
    n: int | None = Field(
        default=None, ge=2, validate_default=True, description="Seeds behind the spread."
    )

    @field_validator("values")
    @classmethod
    def _values_match_mean(
        cls, values: list[float] | None, info: ValidationInfo
    ) -> list[float] | None:
        mean = info.data.get("mean")
        if values is not None and mean is not None and not claimed_mean_agrees(mean, values):
            actual = sum(values) / len(values)
            raise ValueError(
                f"the mean of values is {actual:.6g}, which disagrees with mean = {mean:g}"
            )
        return values

    @field_validator("spread")
    @classmethod
    def _spread_or_values(cls, spread: float | None, info: ValidationInfo) -> float | None:
        if spread is not None and info.data.get("values") is not None:
            raise ValueError("give either values or spread (with spread_kind and n), not both")
        return spread

    @field_validator("spread_kind")
    @classmethod
    def _kind_with_spread(cls, kind: SpreadKind | None, info: ValidationInfo) -> SpreadKind | None:
        spread = info.data.get("spread")
        if spread is not None and kind is None:
            raise ValueError("spread_kind is required when spread is given (sd, sem, ...)")
        if kind is not None and spread is None and "spread" in info.data:
            raise ValueError("spread_kind is given but spread is missing")
        return kind

    @field_validator("n")
    @classmethod
    def _n_with_spread(cls, n: int | None, info: ValidationInfo) -> int | None:
        if info.data.get("spread") is not None and n is None:
            raise ValueError("n, the number of seeds behind the spread, is required with spread")
        return n


class MetricIn(_Strict):
    """One metric to compare: direction, margin, claim and the reproduced per-seed values."""

    direction: Direction = Field(description="'higher' or 'lower' is better.")
    tolerance: float = Field(gt=0, description="The equivalence margin δ, in metric units.")
    claim: ClaimIn
    reproduced: list[float] = Field(min_length=2, description="Reproduced per-seed values.")
    primary: bool = Field(default=True, description="Primary metrics decide the claim verdict.")


class CompareRequest(_Strict):
    """Either one metric (direction, tolerance, claim, reproduced) or several under `metrics`."""

    alpha: float = Field(default=DEFAULT_ALPHA, gt=0, lt=0.5, description="Test level α.")
    direction: Direction | None = None
    tolerance: float | None = Field(default=None, gt=0)
    claim: ClaimIn | None = None
    reproduced: list[float] | None = Field(default=None, min_length=2)
    metrics: dict[str, MetricIn] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_shape(self) -> Self:
        single = {
            "direction": self.direction,
            "tolerance": self.tolerance,
            "claim": self.claim,
            "reproduced": self.reproduced,
        }
        if self.metrics is not None:
            given = [k for k, v in single.items() if v is not None]
            if given:
                raise ValueError(
                    f"{', '.join(given)}: not allowed together with metrics; "
                    "put them inside each metric"
                )
            return self
        missing = [k for k, v in single.items() if v is None]
        if missing:
            raise ValueError(
                f"{', '.join(missing)}: required for a single-metric comparison "
                "(or give several under metrics)"
            )
        return self

    def metric_inputs(self) -> dict[str, MetricIn]:
        """The request as named metrics; a single metric is called 'metric'."""
        if self.metrics is not None:
            return dict(self.metrics)
        assert self.direction is not None
        assert self.tolerance is not None
        assert self.claim is not None
        assert self.reproduced is not None
        single = MetricIn(
            direction=self.direction,
            tolerance=self.tolerance,
            claim=self.claim,
            reproduced=self.reproduced,
        )
        return {DEFAULT_METRIC_NAME: single}


class MetricOut(_Strict):
    """Every number of one metric's comparison. Differences are in Δ space (positive = better)."""

    verdict: VerdictName
    lean: LeanName | None
    mode: Literal["two_sample", "one_sample"]
    primary: bool
    delta: float | None
    se: float | None
    df: float | None
    ci_low: float | None
    ci_high: float | None
    p_tost: float | None
    p_worse: float | None
    p_better: float | None
    p_worse_holm: float | None = None
    p_better_holm: float | None = None
    p_worse_bh: float | None = None
    p_better_bh: float | None = None
    t_difference: float | None
    p_difference: float | None
    hedges_g: float | None = Field(description="Two-sample mode only.")
    prob_improvement: float | None = Field(description="With per-seed values on both sides.")
    point_rule: bool | None
    n_reproduced: int
    reproduced_mean: float | None
    reproduced_sd: float | None
    explanation: str


class CompareResponse(_Strict):
    """Per-metric results and, over the primary metrics, the claim verdict."""

    alpha: float
    claim_verdict: VerdictName
    claim_lean: LeanName | None
    point_rule: bool | None
    metrics: dict[str, MetricOut]
    explanation: str


class PowerRequest(_Strict):
    """Plan an experiment: TOST power for `seeds` fresh seeds, and the seeds a target needs."""

    sd: float = Field(gt=0, description="Expected seed-to-seed standard deviation σ.")
    tolerance: float = Field(gt=0, description="The equivalence margin δ.")
    alpha: float = Field(default=DEFAULT_ALPHA, gt=0, lt=0.5)
    mode: Literal["one_sample", "two_sample"] = Field(
        default="one_sample",
        description="one_sample: a point claim; two_sample: the claim has claim_n seeds.",
    )
    claim_n: int | None = Field(
        default=None, ge=2, le=100_000, validate_default=True, description="two_sample only."
    )
    true_difference: float = Field(default=0.0, description="Assumed true difference Δ₀.")
    seeds: int = Field(default=DEFAULT_SEEDS, ge=2, le=1000, description="Fresh seeds m.")
    target_power: float = Field(default=DEFAULT_TARGET_POWER, gt=0, lt=1)

    @field_validator("claim_n")
    @classmethod
    def _claim_n_for_two_sample(cls, claim_n: int | None, info: ValidationInfo) -> int | None:
        if info.data.get("mode") == "two_sample" and claim_n is None:
            raise ValueError("claim_n, the number of claimed seeds, is required in two_sample mode")
        return claim_n


class PowerResponse(_Strict):
    """The power for the requested seeds and the smallest seed count reaching the target."""

    power: float
    seeds: int
    seeds_needed: int | None = Field(description="None when more than 1000 seeds would be needed.")
    target_power: float
    mode: Literal["one_sample", "two_sample"]
    warning: str | None
