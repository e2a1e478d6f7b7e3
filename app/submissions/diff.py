"""What changed between two versions of a submission: in the manifest (claim,
hyperparameters, environment, package, entry, benchmark) and in the outcome (state, verdict,
quality and its parts, per-metric numbers). Dicts are compared key by key; lists as a whole."""

from __future__ import annotations

from typing import Any

from app.submissions.models import SubmissionVersion
from app.submissions.schemas import Change, VersionDiff, VersionRef
from app.verdicts.models import Verdict

OUTCOME_METRIC_FIELDS = (
    "verdict",
    "lean",
    "claimed_mean",
    "reproduced_mean",
    "reproduced_sd",
    "n_reproduced",
    "delta",
    "ci_low",
    "ci_high",
    "p_tost",
)


def changes(before: Any, after: Any, path: str = "") -> list[Change]:
    """Every leaf that differs, with its dotted path; numbers carry ``after − before``."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[Change] = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            out.extend(changes(before.get(key), after.get(key), sub))
        return out
    if before == after:
        return []
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (before, after))
    return [
        Change(
            path=path,
            kind="added" if before is None else "removed" if after is None else "changed",
            before=before,
            after=after,
            change=round(after - before, 12) if numeric else None,
        )
    ]


def manifest_sections(version: SubmissionVersion) -> dict[str, Any]:
    m = version.manifest
    env = dict(m.get("environment") or {})
    env["base"] = version.environment.get("base", env.get("base"))
    requirements = version.environment.get("requirements")
    env["requirements"] = (
        [line.strip() for line in requirements.splitlines() if line.strip()]
        if isinstance(requirements, str)
        else None
    )
    env["input_hash"] = version.environment.get("input_hash")
    return {
        "claim": m.get("claim") or {},
        "hyperparameters": m.get("hyperparameters") or {},
        "environment": env,
        "package": m.get("package") or {},
        "entry": m.get("entry") or {},
        "benchmark": m.get("benchmark") or {},
    }


def outcome(version: SubmissionVersion, verdict: Verdict | None) -> dict[str, Any]:
    """The outcome of one version as plain values (null while it is not scored)."""
    score = verdict.score if verdict is not None else {}
    parts = (score.get("quality") or {}).get("parts") or {}
    return {
        "state": version.status,
        "verdict": verdict.claim_verdict if verdict else None,
        "lean": verdict.claim_lean if verdict else None,
        "quality": verdict.quality if verdict else None,
        "quality_parts": {
            name: part.get("points") if isinstance(part, dict) else part
            for name, part in parts.items()
        },
        "metrics": {
            name: {f: m.get(f) for f in OUTCOME_METRIC_FIELDS}
            for name, m in (score.get("metrics") or {}).items()
        },
    }


def _ref(version: SubmissionVersion) -> VersionRef:
    return VersionRef(
        number=version.number,
        created_at=version.created_at,
        package_sha256=version.package_sha256,
        status=version.status,
    )


def version_diff(
    submission_id: int,
    a: SubmissionVersion,
    b: SubmissionVersion,
    verdict_a: Verdict | None,
    verdict_b: Verdict | None,
) -> VersionDiff:
    """Version ``a`` → version ``b``."""
    sections_a, sections_b = manifest_sections(a), manifest_sections(b)
    outcome_a, outcome_b = outcome(a, verdict_a), outcome(b, verdict_b)
    return VersionDiff(
        submission_id=submission_id,
        base=_ref(a),
        target=_ref(b),
        same_package=a.package_sha256 == b.package_sha256,
        manifest={name: changes(sections_a[name], sections_b[name]) for name in sections_a},
        outcome=changes(outcome_a, outcome_b),
        outcome_before=outcome_a,
        outcome_after=outcome_b,
    )
