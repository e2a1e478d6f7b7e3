"""The researcher tools: compare a claim with reproduced values, and plan seeds (pure)."""

from __future__ import annotations

from app.scoring.comparison import ClaimSummary, Comparison, summarize_claim
from app.scoring.comparison import compare as compare_metric
from app.scoring.explain import (
    VERDICT_WORDS,
    MetricOutline,
    claim_rule_text,
    explain_comparison,
)
from app.scoring.multiple import claim_verdict
from app.scoring.power import plan
from app.tools.schemas import (
    ClaimIn,
    CompareRequest,
    CompareResponse,
    MetricOut,
    PowerRequest,
    PowerResponse,
)


def _claim(claim: ClaimIn) -> ClaimSummary:
    return summarize_claim(
        claim.mean,
        values=claim.values,
        spread=claim.spread,
        spread_kind=claim.spread_kind,
        n=claim.n,
    )


def compare(payload: CompareRequest) -> CompareResponse:
    """Compare each metric's claim with its reproduced values and decide the claim verdict."""
    inputs = payload.metric_inputs()
    comparisons: dict[str, Comparison] = {}
    for name, metric in inputs.items():
        comparisons[name] = compare_metric(
            claim=_claim(metric.claim),
            reproduced=metric.reproduced,
            direction=metric.direction,
            tolerance=metric.tolerance,
            alpha=payload.alpha,
        )
    primary = {name: metric.primary for name, metric in inputs.items()}
    overall = claim_verdict(comparisons, primary, payload.alpha)
    metrics: dict[str, MetricOut] = {}
    for name, c in comparisons.items():
        adjusted = overall.adjusted[name]
        metrics[name] = MetricOut(
            verdict=c.verdict,
            lean=c.lean,
            mode=c.mode,
            primary=primary[name],
            delta=c.delta,
            se=c.se,
            df=c.df,
            ci_low=c.ci_low,
            ci_high=c.ci_high,
            p_tost=c.p_tost,
            p_worse=c.p_worse,
            p_better=c.p_better,
            p_worse_holm=adjusted.p_worse_holm,
            p_better_holm=adjusted.p_better_holm,
            p_worse_bh=adjusted.p_worse_bh,
            p_better_bh=adjusted.p_better_bh,
            t_difference=c.t_difference,
            p_difference=c.p_difference,
            hedges_g=c.hedges_g,
            prob_improvement=c.prob_improvement,
            point_rule=c.point_rule,
            n_reproduced=c.n_reproduced,
            reproduced_mean=c.reproduced_mean,
            reproduced_sd=c.reproduced_sd,
            explanation=explain_comparison(c),
        )
    outlines = [
        MetricOutline(n, primary[n], comparisons[n], overall.adjusted[n])
        for n in comparisons
        if primary[n]
    ]
    if payload.metrics is None:  # one metric: its own explanation says it all
        explanation = next(iter(metrics.values())).explanation
    else:
        explanation = (
            f"Claim verdict: {VERDICT_WORDS[overall.verdict]}. "
            f"{claim_rule_text(overall.verdict, overall.lean, outlines)}"
        )
    return CompareResponse(
        alpha=payload.alpha,
        claim_verdict=overall.verdict,
        claim_lean=overall.lean,
        point_rule=overall.point_rule,
        metrics=metrics,
        explanation=explanation,
    )


def power(payload: PowerRequest) -> PowerResponse:
    """TOST power for the requested seeds and the seeds needed for the target power."""
    result = plan(
        sd=payload.sd,
        tolerance=payload.tolerance,
        alpha=payload.alpha,
        mode=payload.mode,
        claim_n=payload.claim_n,
        true_difference=payload.true_difference,
        seeds=payload.seeds,
        target_power=payload.target_power,
    )
    return PowerResponse(
        power=result.power,
        seeds=result.seeds,
        seeds_needed=result.seeds_needed,
        target_power=result.target_power,
        mode=result.mode,
        warning=result.warning,
    )
