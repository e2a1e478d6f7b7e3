"""Score one submission version: the entry point the service calls when its last job ends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Literal

from app.scoring._util import finite_or_none, record
from app.scoring.comparison import (
    ClaimSummary,
    Comparison,
    Direction,
    Lean,
    Mode,
    SpreadKind,
    Verdict,
    compare,
    summarize_claim,
)
from app.scoring.explain import MetricOutline, explain_claim, explain_comparison
from app.scoring.multiple import Adjusted, claim_verdict
from app.scoring.power import power_warning
from app.scoring.quality import (
    CheckResult,
    ClaimKind,
    QualityScore,
    documentation_part,
    environment_part,
    quality_score,
    reproduction_part,
    rigor_part,
)
from app.scoring.reproducibility import (
    Determinism,
    Exactness,
    SeedGap,
    SeedSelection,
    check_determinism,
    check_exactness,
    seed_selection_gap,
    summarize_seed_selection,
)
from app.scoring.runs import RunRecord, RunsSummary, summarize_runs

__all__ = [
    "SCORING_VERSION",
    "ClaimedMetric",
    "MetricDefinition",
    "MetricResult",
    "RunRecord",
    "VersionInputs",
    "VersionScore",
    "score_version",
]

# Bump whenever a number or a verdict could change for the same inputs (`reprise rescore`).
SCORING_VERSION = "1.0"


@dataclass(frozen=True)
class MetricDefinition:
    """A benchmark metric: its direction, equivalence margin and whether it is primary."""

    name: str
    direction: Literal["higher", "lower"]
    tolerance: float
    primary: bool
    seed_sd: float | None = None
    reference_low: float | None = None
    reference_high: float | None = None


@dataclass(frozen=True)
class ClaimedMetric:
    """What the package claims for one metric: a mean, with per-seed values or a spread or not."""

    mean: float
    values: tuple[float, ...] | None = None
    spread: float | None = None
    spread_kind: Literal["sd", "sem", "ci95_half", "two_sd"] | None = None
    n: int | None = None


@dataclass(frozen=True)
class VersionInputs:
    """Everything score_version needs: definitions, claims, seeds, runs and the lint results."""

    metrics: Sequence[MetricDefinition]
    claims: Mapping[str, ClaimedMetric]
    claimed_seeds: Sequence[int]
    runs: Sequence[RunRecord]
    checks: Sequence[CheckResult]
    variance_sources: Sequence[str] = ()
    self_reported: bool = False
    alpha: float = 0.05


@record
class MetricResult:
    """Every number of one metric's comparison, the adjusted p-values and the explanation."""

    name: str
    direction: Direction
    tolerance: float
    primary: bool
    verdict: Verdict
    lean: Lean | None
    mode: Mode
    delta: float | None
    se: float | None
    df: float | None
    ci_low: float | None
    ci_high: float | None
    t_lower: float | None
    t_upper: float | None
    p_tost: float | None
    p_worse: float | None
    p_better: float | None
    p_worse_holm: float | None
    p_better_holm: float | None
    p_worse_bh: float | None
    p_better_bh: float | None
    t_difference: float | None
    p_difference: float | None
    cohens_d: float | None
    hedges_g: float | None
    prob_improvement: float | None
    point_rule: bool | None
    se_zero: bool
    n_reproduced: int
    n_non_finite: int
    n_failed: int
    reproduced_mean: float | None
    reproduced_sd: float | None
    ci95_low: float | None
    ci95_high: float | None
    claimed_mean: float
    claimed_sd: float | None
    claimed_n: int | None
    seed_gap: SeedGap
    warning: str | None
    explanation: str
    comparison: Comparison = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (the comparison object itself is flattened, not repeated)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            if name == "comparison":
                continue
            value = getattr(self, name)
            if name == "seed_gap":
                out[name] = value.to_dict()
            elif isinstance(value, float):
                out[name] = finite_or_none(value)
            else:
                out[name] = value
        return out


@record
class VersionScore:
    """The claim verdict, every metric, the quality score and the reproducibility checks."""

    scoring_version: str
    alpha: float
    claim_verdict: Verdict
    claim_lean: Lean | None
    point_rule: bool | None
    metrics: dict[str, MetricResult]
    quality: QualityScore
    exactness: Exactness
    seed_selection: SeedSelection
    determinism: Determinism
    runs: RunsSummary
    self_reported: bool
    warnings: tuple[str, ...]
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, deterministic dict: the same inputs always give the same dict."""
        return {
            "scoring_version": self.scoring_version,
            "alpha": self.alpha,
            "claim_verdict": self.claim_verdict,
            "claim_lean": self.claim_lean,
            "point_rule": self.point_rule,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "quality": self.quality.to_dict(),
            "exactness": self.exactness.to_dict(),
            "seed_selection": self.seed_selection.to_dict(),
            "determinism": self.determinism.to_dict(),
            "runs": self.runs.to_dict(),
            "self_reported": self.self_reported,
            "warnings": list(self.warnings),
            "explanation": self.explanation,
        }


def claim_summary(claim: ClaimedMetric, *, default_n: int | None = None) -> ClaimSummary:
    """The claim side of the comparison; a spread without n takes the number of claimed seeds."""
    kind: SpreadKind | None = claim.spread_kind
    n = claim.n if claim.n is not None else (default_n if claim.spread is not None else None)
    return summarize_claim(
        claim.mean, values=claim.values, spread=claim.spread, spread_kind=kind, n=n
    )


def claim_kind(claim: ClaimedMetric) -> ClaimKind:
    """'values' with per-seed values, 'spread' with a spread and its kind, else 'none'."""
    if claim.values:
        return "values"
    if claim.spread is not None and claim.spread_kind is not None:
        return "spread"
    return "none"


def _first_by_seed(runs: Sequence[RunRecord]) -> dict[int, RunRecord]:
    # Several runs of one seed (a retried job): the first success wins, else the first failure.
    # `runs` are in job_id order.
    chosen: dict[int, RunRecord] = {}
    for r in runs:
        current = chosen.get(r.seed)
        if current is None or (r.succeeded and not current.succeeded):
            chosen[r.seed] = r
    return chosen


def _values(runs: Sequence[RunRecord], metric: str) -> list[float]:
    return [float(r.metrics[metric]) for r in runs if r.succeeded and metric in r.metrics]


def _determinism(runs: Sequence[RunRecord]) -> Determinism:
    # `runs` are in job_id order: the first probe, against the first success of the same seed.
    probe = next((r for r in runs if r.kind == "probe"), None)
    if probe is None:
        return check_determinism(seed=None, first=None, second=None)
    others = [r for r in runs if r.kind != "probe" and r.seed == probe.seed]
    reference = next((r for r in others if r.succeeded), others[0] if others else None)
    first = reference.metrics if reference is not None and reference.succeeded else None
    second = probe.metrics if probe.succeeded else None
    return check_determinism(seed=probe.seed, first=first, second=second)


def score_version(inputs: VersionInputs) -> VersionScore:
    """Compare every claimed metric, decide the claim verdict, and score quality — all pure."""
    alpha = inputs.alpha
    definitions = {d.name: d for d in inputs.metrics if d.name in inputs.claims}
    unknown = sorted(set(inputs.claims) - set(definitions))
    if unknown:
        raise ValueError(f"claimed metric(s) without a definition: {', '.join(unknown)}")
    ordered = sorted(inputs.runs, key=attrgetter("job_id"))
    fresh = list(_first_by_seed([r for r in ordered if r.kind == "fresh"]).values())
    claimed_runs = list(_first_by_seed([r for r in ordered if r.kind == "claimed"]).values())
    fresh_failed: dict[str, int] = {}
    for r in fresh:
        if not r.succeeded:
            fresh_failed[r.outcome] = fresh_failed.get(r.outcome, 0) + 1
    seed_count = len(dict.fromkeys(inputs.claimed_seeds))

    comparisons: dict[str, Comparison] = {}
    gaps: dict[str, SeedGap] = {}
    for name, definition in definitions.items():
        claim = claim_summary(inputs.claims[name], default_n=seed_count or None)
        fresh_values = _values(fresh, name)
        comparisons[name] = compare(
            claim=claim,
            reproduced=fresh_values,
            direction=definition.direction,
            tolerance=definition.tolerance,
            alpha=alpha,
        )
        gaps[name] = seed_selection_gap(
            metric=name,
            claimed_seed_values=_values(claimed_runs, name),
            fresh_values=fresh_values,
            direction=definition.direction,
            alpha=alpha,
        )
    primary = {n: d.primary for n, d in definitions.items()}
    overall = claim_verdict(comparisons, primary, alpha)

    reruns = {r.seed: (r.outcome, r.metrics) for r in claimed_runs}
    per_seed = {n: c.values for n, c in inputs.claims.items() if c.values and n in definitions}
    exactness = check_exactness(
        claimed_seeds=list(inputs.claimed_seeds),
        claimed_values={n: list(v) for n, v in per_seed.items()},
        reruns=reruns,
    )
    seed_selection = summarize_seed_selection(gaps, primary, alpha)
    determinism = _determinism(ordered)
    runs = summarize_runs(ordered)

    metrics: dict[str, MetricResult] = {}
    warnings: list[str] = []
    for name, c in comparisons.items():
        definition = definitions[name]
        sd_hat = c.claimed_sd if c.claimed_sd is not None else definition.seed_sd
        warning = power_warning(sd=sd_hat, tolerance=definition.tolerance)
        if warning and definition.primary:
            warnings.append(f"{name}: {warning}")
        metrics[name] = _metric_result(
            definition, c, overall.adjusted[name], gaps[name], warning, fresh_failed
        )

    primary_comparisons = {n: c for n, c in comparisons.items() if primary[n]}
    quality = quality_score(
        reproduction=reproduction_part(primary_comparisons),
        rigor=rigor_part(
            claimed_seed_count=seed_count,
            claim_kinds={n: claim_kind(inputs.claims[n]) for n in definitions},
            variance_sources=list(inputs.variance_sources),
            exactly_reproducible=exactness.exactly_reproducible,
            exactness_detail=exactness.reason,
        ),
        documentation=documentation_part(inputs.checks),
        environment=environment_part(inputs.checks),
        not_reproduced=[n for n, c in primary_comparisons.items() if c.verdict == "not_reproduced"],
    )
    outlines = [
        MetricOutline(n, primary[n], comparisons[n], overall.adjusted[n]) for n in comparisons
    ]
    explanation = explain_claim(
        verdict=overall.verdict,
        lean=overall.lean,
        metrics=outlines,
        runs=runs,
        exactness=exactness,
        seed_selection=seed_selection,
        determinism=determinism,
        self_reported=inputs.self_reported,
    )
    return VersionScore(
        scoring_version=SCORING_VERSION,
        alpha=alpha,
        claim_verdict=overall.verdict,
        claim_lean=overall.lean,
        point_rule=overall.point_rule,
        metrics=metrics,
        quality=quality,
        exactness=exactness,
        seed_selection=seed_selection,
        determinism=determinism,
        runs=runs,
        self_reported=inputs.self_reported,
        warnings=tuple(warnings),
        explanation=explanation,
    )


def _metric_result(
    definition: MetricDefinition,
    c: Comparison,
    adjusted: Adjusted,
    gap: SeedGap,
    warning: str | None,
    fresh_failed: Mapping[str, int],
) -> MetricResult:
    return MetricResult(
        name=definition.name,
        direction=definition.direction,
        tolerance=definition.tolerance,
        primary=definition.primary,
        verdict=c.verdict,
        lean=c.lean,
        mode=c.mode,
        delta=c.delta,
        se=c.se,
        df=c.df,
        ci_low=c.ci_low,
        ci_high=c.ci_high,
        t_lower=c.t_lower,
        t_upper=c.t_upper,
        p_tost=c.p_tost,
        p_worse=c.p_worse,
        p_better=c.p_better,
        p_worse_holm=adjusted.p_worse_holm,
        p_better_holm=adjusted.p_better_holm,
        p_worse_bh=adjusted.p_worse_bh,
        p_better_bh=adjusted.p_better_bh,
        t_difference=c.t_difference,
        p_difference=c.p_difference,
        cohens_d=c.cohens_d,
        hedges_g=c.hedges_g,
        prob_improvement=c.prob_improvement,
        point_rule=c.point_rule,
        se_zero=c.se_zero,
        n_reproduced=c.n_reproduced,
        n_non_finite=c.n_non_finite,
        n_failed=sum(fresh_failed.values()),
        reproduced_mean=c.reproduced_mean,
        reproduced_sd=c.reproduced_sd,
        ci95_low=c.ci95_low,
        ci95_high=c.ci95_high,
        claimed_mean=c.claimed_mean,
        claimed_sd=c.claimed_sd,
        claimed_n=c.claimed_n,
        seed_gap=gap,
        warning=warning,
        explanation=explain_comparison(c, fresh_failed=fresh_failed),
        comparison=c,
    )
