"""Challenge rules: opening one on a claim, and accepting attempts until the deadline.

A challenge is *open* while ``now < deadline`` and *closed* from the deadline on; nothing is
stored or scheduled for it. An attempt is accepted only while the challenge is open, checked
before the upload is read and again in the transaction that records it (an upload that
finishes after the deadline is refused). Attempts accepted in time are run and judged after
the deadline too, and count.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.benchmarks.manifest import BenchmarkManifest
from app.benchmarks.registry import Catalog, CatalogEntry
from app.challenges import repository
from app.challenges.models import Challenge
from app.challenges.schemas import ChallengeCreate
from app.core.db import utcnow
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.scoring.comparison import summarize_claim
from app.submissions import access
from app.submissions import repository as submissions
from app.submissions.manifest import ClaimedMetric, PackageManifest
from app.submissions.models import Submission, SubmissionStatus, SubmissionVersion
from app.users.models import User

CLAIM_FIELDS = ("mean", "values", "spread", "spread_kind", "n", "direction", "tolerance")


def metric_problems(bench: BenchmarkManifest, metrics: dict[str, ClaimedMetric]) -> list[str]:
    """What is wrong with claimed metrics for this benchmark (the rules of package intake)."""
    problems = []
    for name, metric in metrics.items():
        if bench.kind == "optimizer":
            if bench.metric(name) is None:
                defined = ", ".join(m.name for m in bench.metrics)
                problems.append(
                    f"benchmark {bench.id} has no metric {name!r} (it defines: {defined})"
                )
            elif metric.direction is not None or metric.tolerance is not None:
                problems.append(f"{name}: direction and tolerance come from the benchmark")
        elif metric.direction is None or metric.tolerance is None:
            problems.append(f"{name}: a command benchmark's claim declares direction and tolerance")
    primaries = [m.name for m in bench.metrics if m.primary]
    if bench.kind == "optimizer" and not problems and not any(p in metrics for p in primaries):
        problems.append(f"claim at least one primary metric of {bench.id}: {', '.join(primaries)}")
    return problems


def reference_metrics(claim_metrics: dict[str, Any]) -> dict[str, Any]:
    """The challenge's claim as an attempt is judged against it: per-seed values become their
    mean, sd and n, since an attempt's own seeds are not the claim's (no per-seed pairing)."""
    out: dict[str, Any] = {}
    for name, m in claim_metrics.items():
        ref = {k: m[k] for k in ("mean", "direction", "tolerance") if m.get(k) is not None}
        values = m.get("values")
        if values:
            summary = summarize_claim(float(m["mean"]), values=[float(v) for v in values])
            if summary.sd is not None and summary.n is not None and summary.n >= 2:
                ref.update(spread=summary.sd, spread_kind="sd", n=summary.n)
        elif m.get("spread") is not None:
            ref.update(spread=m["spread"], spread_kind=m["spread_kind"], n=m.get("n"))
        out[name] = ref
    return out


def claim_se(metric: dict[str, Any]) -> float:
    """The standard error of a claimed mean (0 for a point claim)."""
    summary = summarize_claim(
        float(metric["mean"]),
        values=metric.get("values"),
        spread=metric.get("spread"),
        spread_kind=metric.get("spread_kind"),
        n=metric.get("n"),
    )
    if summary.sd is None or not summary.n:
        return 0.0
    return summary.sd / math.sqrt(summary.n)


async def _from_submission(
    session: AsyncSession, *, actor: User, submission_id: int, catalog: Catalog
) -> tuple[CatalogEntry, dict[str, Any], int, str | None]:
    submission = await submissions.get_submission(session, submission_id)
    if submission is None or not access.can_read(submission, actor):
        raise NotFound(f"no submission {submission_id}")
    if submission.status != SubmissionStatus.active.value:
        raise Conflict(f"submission {submission_id} is withdrawn")
    if submission.challenge_id is not None:
        raise ValidationFailed(
            f"submission {submission_id} is an attempt at challenge {submission.challenge_id}; "
            "challenge the original claim instead",
            errors=[{"loc": "submission_id", "msg": "an attempt"}],
        )
    version = await submissions.get_version(session, submission.id, submission.latest_version)
    assert version is not None
    claim = version.manifest["claim"]
    metrics = {}
    for name, m in claim["metrics"].items():
        kept = {k: m[k] for k in CLAIM_FIELDS if m.get(k) is not None}
        if kept.get("spread") is not None and kept.get("n") is None:
            kept["n"] = len(claim["seeds"])  # a spread without n stands for the claimed seeds
        metrics[name] = kept
    paper = version.manifest.get("package", {}).get("paper")
    return catalog.by_id[version.benchmark_id], metrics, version.number, paper


async def create(
    session: AsyncSession, *, actor: User, body: ChallengeCreate, catalog: Catalog
) -> Challenge:
    """Open a challenge on a submission's claim or on a claim from a paper (maintainers)."""
    if body.deadline <= utcnow():
        raise ValidationFailed(
            "the deadline must be in the future", errors=[{"loc": "deadline", "msg": "in the past"}]
        )
    source_version = None
    source_url = body.source_url
    if body.submission_id is not None:
        entry, metrics, source_version, paper = await _from_submission(
            session, actor=actor, submission_id=body.submission_id, catalog=catalog
        )
        source_url = source_url or paper
    else:
        assert body.benchmark is not None and body.metrics is not None
        found = catalog.get(body.benchmark, body.benchmark_version)
        if found is None:
            raise ValidationFailed(
                f"no benchmark {body.benchmark} version {body.benchmark_version or '(latest)'}",
                errors=[{"loc": "benchmark", "msg": "unknown benchmark"}],
            )
        entry = found
        problems = metric_problems(entry.manifest, body.metrics)
        if problems:
            raise ValidationFailed(
                problems[0], errors=[{"loc": "metrics", "msg": p} for p in problems]
            )
        metrics = {n: m.model_dump(mode="json", exclude_none=True) for n, m in body.metrics.items()}
    challenge = Challenge(
        title=body.title,
        description=body.description,
        created_by_id=actor.id,
        submission_id=body.submission_id,
        source_version=source_version,
        source_url=source_url,
        benchmark_id=entry.id,
        benchmark_slug=entry.slug,
        claim={"metrics": metrics},
        deadline=body.deadline,
    )
    session.add(challenge)
    await session.flush()
    audit.record(
        session,
        actor_type="user",
        actor_id=actor.id,
        action="challenge.create",
        object_type="challenge",
        object_id=challenge.id,
        detail={"submission_id": body.submission_id, "benchmark": entry.slug},
    )
    return challenge


async def get(session: AsyncSession, challenge_id: int) -> Challenge:
    challenge = await repository.get_challenge(session, challenge_id)
    if challenge is None:
        raise NotFound(f"no challenge {challenge_id}")
    return challenge


async def open_challenge(session: AsyncSession, challenge_id: int) -> Challenge:
    """A challenge that still accepts attempts."""
    challenge = await get(session, challenge_id)
    if utcnow() >= challenge.deadline:
        raise Conflict(
            f"challenge {challenge_id} closed at {challenge.deadline.isoformat()}; "
            "it accepts no more attempts"
        )
    return challenge


def check_attempt(challenge: Challenge, manifest: PackageManifest, entry: CatalogEntry) -> None:
    """An attempt runs the challenge's benchmark version and reports the challenged metrics."""
    if entry.id != challenge.benchmark_id:
        raise ValidationFailed(
            f"challenge {challenge.id} is on benchmark {challenge.benchmark_slug} (the version in "
            f"GET /v1/challenges/{challenge.id}); this package targets {entry.slug} version "
            f"{entry.version}",
            errors=[{"loc": "benchmark", "msg": "not the challenge's benchmark"}],
        )
    missing = sorted(set(challenge.claim["metrics"]) - set(manifest.claim.metrics))
    if missing:
        raise ValidationFailed(
            "an attempt claims the challenged metrics too (its own numbers are kept, the verdict "
            f"compares with the challenge's): add {', '.join(missing)} to [claim.metrics]",
            errors=[{"loc": f"claim.metrics.{m}", "msg": "missing"} for m in missing],
        )


def link_attempt(
    session: AsyncSession,
    *,
    user: User,
    challenge: Challenge,
    submission: Submission,
    version: SubmissionVersion,
) -> None:
    """Mark a new submission as an attempt, judged against the challenge's claim."""
    submission.challenge_id = challenge.id
    version.reference_claim = {
        "challenge_id": challenge.id,
        "metrics": reference_metrics(challenge.claim["metrics"]),
    }
    audit.record(
        session,
        actor_type="user",
        actor_id=user.id,
        action="challenge.attempt",
        object_type="challenge",
        object_id=challenge.id,
        detail={"submission_id": submission.id},
    )
