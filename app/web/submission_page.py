"""What the submission page shows: the claim, a panel per metric, the verdict and its reasons,
the quality score in its parts, provenance, every job with its log tail, and the versions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.benchmarks.registry import Catalog
from app.core.errors import NotFound
from app.jobs.models import Job, RunResult
from app.jobs.repository import final_results
from app.leaderboard import repository as boards
from app.scoring.explain import decimals_for
from app.submissions import repository as submissions
from app.submissions.models import Submission, SubmissionStatus
from app.verdicts.models import Verdict
from app.verdicts.service import verdicts_for
from app.web.charts import seed_plot_url, seed_runs
from app.web.plots import SeedRun

PROVENANCE_KEYS = (
    "image_digest",
    "image",
    "harness_version",
    "backend",
    "cpu_model",
    "gpu_model",
    "gpu_driver",
    "engine_version",
    "worker_version",
)


@dataclass(frozen=True)
class MetricPanel:
    name: str
    doc: dict[str, Any]
    plot_url: str | None
    runs: list[SeedRun]
    claimed_values: dict[int, float]
    decimals: int


@dataclass(frozen=True)
class JobView:
    job: Job
    result: RunResult | None
    phases: list[dict[str, Any]]
    log_tail: str | None


def _panels(
    verdict: Verdict | None, claim: dict[str, Any], results: list[tuple[Job, RunResult | None]]
) -> list[MetricPanel]:
    if verdict is None:
        return []
    docs: dict[str, dict[str, Any]] = verdict.score.get("metrics", {})
    # Primary metrics first, otherwise in the claim's order (sorted() is stable).
    ordered = sorted(docs.items(), key=lambda kv: not kv[1].get("primary"))
    seeds = [int(s) for s in claim.get("seeds", [])]
    panels = []
    for name, doc in ordered:
        stated = (claim.get("metrics", {}).get(name) or {}).get("values") or []
        panels.append(
            MetricPanel(
                name=name,
                doc=doc,
                plot_url=seed_plot_url(verdict, name),
                runs=seed_runs(results, name),
                claimed_values={s: float(v) for s, v in zip(seeds, stated, strict=False)},
                decimals=decimals_for(float(doc.get("tolerance") or 0)),
            )
        )
    return panels


def _provenance(results: list[tuple[Job, RunResult | None]]) -> list[tuple[dict[str, str], int]]:
    """Distinct environments the runs reported, with how many runs each."""
    seen: Counter[tuple[tuple[str, str], ...]] = Counter()
    for _job, result in results:
        if result is None:
            continue
        facts = result.provenance or {}
        key = tuple((k, str(facts[k])) for k in PROVENANCE_KEYS if facts.get(k) not in (None, ""))
        seen[key] += 1
    return [(dict(k), n) for k, n in seen.most_common()]


def _jobs(results: list[tuple[Job, RunResult | None]]) -> list[JobView]:
    views = []
    for job, result in results:
        phases = list(result.phases) if result is not None and result.phases else []
        tail = job.log_tail or next(
            (p.get("log_tail") for p in reversed(phases) if p.get("log_tail")), None
        )
        views.append(JobView(job=job, result=result, phases=phases, log_tail=tail))
    return views


async def submission_context(
    session: AsyncSession, *, catalog: Catalog, submission: Submission, number: int | None
) -> dict[str, Any]:
    """Everything the template needs for one version of a submission (latest by default)."""
    versions = await submissions.versions_of(session, submission.id)
    wanted = number or submission.latest_version
    version = next((v for v in versions if v.number == wanted), None)
    if version is None:
        raise NotFound(f"submission {submission.id} has no version {wanted}")
    verdicts = await verdicts_for(session, [v.id for v in versions])
    verdict = verdicts.get(version.id)
    standing = await boards.entry_of(session, submission.id)
    results = await final_results(session, version.id)
    bench = catalog.by_id.get(version.benchmark_id)
    claim = version.manifest.get("claim", {})
    score = verdict.score if verdict is not None else {}
    done = sum(1 for j, _ in results if j.status not in ("queued", "running"))
    return {
        "submission": submission,
        "withdrawn": submission.status == SubmissionStatus.withdrawn.value,
        "owner": await submissions.owner_name(session, submission.owner_id),
        "version": version,
        "versions": [(v, verdicts.get(v.id)) for v in reversed(versions)],
        "verdict": verdict,
        "score": score,
        "standing": standing,
        "benchmark": bench,
        "package": version.manifest.get("package", {}),
        "claim": claim,
        "hyperparameters": version.manifest.get("hyperparameters") or {},
        "environment": {k: v for k, v in version.environment.items() if k != "requirements"},
        "panels": _panels(verdict, claim, results),
        "quality": score.get("quality"),
        "provenance": _provenance(results),
        "jobs": _jobs(results),
        "jobs_done": done,
        "badge_url": f"/badges/submissions/{submission.id}.svg",
    }
