"""A challenge as the API shows it: its attempts, which of them are independent, the pooled
estimate per metric and the consensus line.

*Independent* attempts are one per replicator — each person's latest attempt that has a
verdict — and never by an author of the challenged submission (matching.authors_of). The others
are listed with the reason they are left out of the pool.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from app.benchmarks.manifest import BenchmarkManifest
from app.challenges import pooling
from app.challenges.models import Challenge
from app.challenges.repository import AttemptRow
from app.challenges.schemas import (
    AttemptMetric,
    AttemptOut,
    ChallengeDetail,
    ChallengeOut,
    ConsensusOut,
    PooledMetric,
    Source,
)
from app.challenges.service import claim_se

HELD_UP = ("reproduced", "exceeded")


@dataclass(frozen=True)
class MetricSpec:
    name: str
    direction: Literal["higher", "lower"]
    tolerance: float
    primary: bool


@dataclass(frozen=True)
class Assessment:
    attempts: list[AttemptOut]
    pooled: list[PooledMetric]
    consensus: ConsensusOut
    judged: int


def status_of(challenge: Challenge, now: dt.datetime) -> Literal["open", "closed"]:
    return "open" if now < challenge.deadline else "closed"


def metric_specs(challenge: Challenge, bench: BenchmarkManifest) -> list[MetricSpec]:
    out = []
    for name, claimed in challenge.claim["metrics"].items():
        spec = bench.metric(name)
        if spec is not None:
            out.append(MetricSpec(name, spec.direction, spec.tolerance, spec.primary))
        else:  # a command benchmark: the claim carries direction and margin, all primary
            out.append(MetricSpec(name, claimed["direction"], float(claimed["tolerance"]), True))
    return out


def _exclusion(row: AttemptRow, latest_judged: dict[int, int], authors: set[int]) -> str | None:
    if row.submission.owner_id in authors:
        return "by an author of the challenged submission"
    if row.verdict is None:
        return f"not judged yet ({row.version.status})"
    if latest_judged.get(row.submission.owner_id) != row.submission.id:
        return "superseded by a later attempt of the same replicator"
    return None


def _numbers(row: AttemptRow, name: str) -> dict[str, Any]:
    if row.verdict is None:
        return {}
    metric: dict[str, Any] = row.verdict.score.get("metrics", {}).get(name) or {}
    return metric


def _estimate(row: AttemptRow, name: str) -> pooling.Estimate | None:
    m = _numbers(row, name)
    mean, sd, n = m.get("reproduced_mean"), m.get("reproduced_sd"), int(m.get("n_reproduced") or 0)
    if mean is None or sd is None or n < 2:
        return None
    return pooling.Estimate(key=row.submission.id, mean=float(mean), se=float(sd) / math.sqrt(n))


def assess(
    challenge: Challenge, rows: Sequence[AttemptRow], bench: BenchmarkManifest, authors: set[int]
) -> Assessment:
    """Classify attempts, pool the independent ones per metric, and reach a consensus."""
    latest_judged: dict[int, int] = {}
    for row in rows:
        if row.verdict is not None:
            latest_judged[row.submission.owner_id] = row.submission.id  # rows are in id order
    excluded = {r.submission.id: _exclusion(r, latest_judged, authors) for r in rows}
    independent = [r for r in rows if excluded[r.submission.id] is None]
    specs = metric_specs(challenge, bench)
    pooled_out: list[PooledMetric] = []
    judged: dict[str, pooling.MetricConsensus | None] = {}
    shown: dict[str, tuple[pooling.Pooled, pooling.MetricConsensus, float]] = {}
    weights: dict[str, dict[int, float]] = {}
    for spec in specs:
        claimed = challenge.claim["metrics"][spec.name]
        estimates = [e for r in independent if (e := _estimate(r, spec.name)) is not None]
        pooled = pooling.pool(estimates)
        consensus = None
        if pooled is not None and pooled.k >= pooling.MIN_ATTEMPTS:
            consensus = pooling.metric_consensus(
                pooled,
                claimed_mean=float(claimed["mean"]),
                claim_se=claim_se(claimed),
                direction=spec.direction,
                tolerance=spec.tolerance,
            )
            if spec.primary:
                shown[spec.name] = (pooled, consensus, float(claimed["mean"]))
        judged[spec.name] = consensus
        if pooled is None:
            continue
        weights[spec.name] = pooled.weights
        pooled_out.append(
            PooledMetric(
                metric=spec.name,
                primary=spec.primary,
                direction=spec.direction,
                tolerance=spec.tolerance,
                claimed_mean=float(claimed["mean"]),
                k=pooled.k,
                estimate=pooled.estimate,
                se=pooled.se,
                ci95_low=pooled.ci95_low,
                ci95_high=pooled.ci95_high,
                q=pooled.q,
                df=pooled.df,
                p_heterogeneity=pooled.p_heterogeneity,
                i2=pooled.i2,
                tau2=pooled.tau2,
                random_effects={"estimate": pooled.re_estimate, "se": pooled.re_se},
                difference=consensus.difference if consensus else None,
                difference_ci90=[consensus.ci_low, consensus.ci_high] if consensus else None,
                verdict=consensus.verdict if consensus else None,
            )
        )
    verdict = pooling.claim_consensus(
        judged, {s.name: s.primary for s in specs}, independent=len(independent)
    )
    held = sum(1 for r in independent if r.verdict and r.verdict.claim_verdict in HELD_UP)
    line = pooling.consensus_line(
        verdict, independent=len(independent), reproduced_individually=held, metrics=shown
    )
    attempts = [
        _attempt_out(r, specs, excluded[r.submission.id], weights, challenge.id) for r in rows
    ]
    return Assessment(
        attempts=attempts,
        pooled=pooled_out,
        consensus=ConsensusOut(
            verdict=verdict,
            line=line,
            independent_attempts=len(independent),
            reproduced_individually=held,
        ),
        judged=sum(1 for r in rows if r.verdict is not None),
    )


def _attempt_out(
    row: AttemptRow,
    specs: Sequence[MetricSpec],
    excluded: str | None,
    weights: dict[str, dict[int, float]],
    challenge_id: int,
) -> AttemptOut:
    metrics = {}
    for spec in specs:
        m = _numbers(row, spec.name)
        estimate = _estimate(row, spec.name)
        metrics[spec.name] = AttemptMetric(
            reproduced_mean=m.get("reproduced_mean"),
            reproduced_sd=m.get("reproduced_sd"),
            n=int(m.get("n_reproduced") or 0),
            se=estimate.se if estimate else None,
            weight=weights.get(spec.name, {}).get(row.submission.id) if excluded is None else None,
            verdict=m.get("verdict"),
        )
    return AttemptOut(
        submission_id=row.submission.id,
        owner=row.owner,
        created_at=row.submission.created_at,
        state=row.version.status,
        verdict=row.verdict.claim_verdict if row.verdict else None,
        quality=row.verdict.quality if row.verdict else None,
        independent=excluded is None,
        excluded_because=excluded,
        metrics=metrics,
        links={
            "submission": f"/v1/submissions/{row.submission.id}",
            "challenge": f"/v1/challenges/{challenge_id}",
        },
    )


def challenge_out(
    challenge: Challenge,
    *,
    creator: str,
    bench: BenchmarkManifest,
    assessment: Assessment,
    now: dt.datetime,
) -> dict[str, Any]:
    """The fields of ``ChallengeOut`` (the list item)."""
    return {
        "id": challenge.id,
        "title": challenge.title,
        "status": status_of(challenge, now),
        "deadline": challenge.deadline,
        "created_at": challenge.created_at,
        "created_by": creator,
        "benchmark": {"id": bench.id, "version": bench.version},
        "source": Source(
            kind="submission" if challenge.submission_id is not None else "paper",
            submission_id=challenge.submission_id,
            version=challenge.source_version,
            url=challenge.source_url,
        ),
        "attempt_count": len(assessment.attempts),
        "judged_count": assessment.judged,
        "consensus": assessment.consensus,
        "links": {
            "self": f"/v1/challenges/{challenge.id}",
            "attempts": f"/v1/challenges/{challenge.id}/attempts",
        },
    }


def summary(challenge: Challenge, **kw: Any) -> ChallengeOut:
    return ChallengeOut.model_validate(challenge_out(challenge, **kw))


def detail(challenge: Challenge, **kw: Any) -> ChallengeDetail:
    assessment: Assessment = kw["assessment"]
    return ChallengeDetail.model_validate(
        {
            **challenge_out(challenge, **kw),
            "description": challenge.description,
            "claim": challenge.claim,
            "attempts": assessment.attempts,
            "pooled": assessment.pooled,
        }
    )
