"""Inspecting a package archive without extracting it: the safety checks, the manifest, the
cross-checks against the benchmark, and the reproducibility lint.

The same function serves the server's intake and ``reprise lint``, so a researcher sees exactly
what the server will say before uploading. It is blocking (archive I/O): the API calls it in a
worker thread.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.benchmarks.manifest import BenchmarkManifest
from app.core.text import NUL_MESSAGE, find_nul, has_nul
from app.core.validation import describe_errors
from app.scoring.quality import CheckResult, PackageFacts, lint_checks
from app.submissions.manifest import PackageManifest
from runners.archives import (
    ArchiveError,
    ArchiveLimits,
    PackageLayout,
    inspect_archive,
    read_member,
)

MANIFEST_MAX_BYTES = 256 * 1024
REQUIREMENTS_MAX_BYTES = 64 * 1024
_README = re.compile(r"^readme(\.(md|rst|txt|markdown))?$", re.IGNORECASE)
_LICENSE = re.compile(r"^(licen[sc]e|copying)(\.(md|txt|rst))?$", re.IGNORECASE)

BenchmarkLookup = Callable[[str, int], BenchmarkManifest | None]


@dataclass
class PackageReport:
    """What inspection found: the manifest when valid, every error, the lint checklist."""

    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    manifest: PackageManifest | None = None
    benchmark: BenchmarkManifest | None = None
    layout: PackageLayout | None = None
    archive_error: ArchiveError | None = None
    requirements_text: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors and self.archive_error is None

    def lint_report(self) -> dict[str, Any]:
        """The stored, JSON form of the lint (also printed by ``reprise lint``)."""
        return {
            "errors": self.errors,
            "warnings": self.warnings,
            "checks": [
                {
                    "id": c.id,
                    "part": c.part,
                    "passed": c.passed,
                    "reason": c.reason,
                    "points": c.points,
                    "max_points": c.max_points,
                }
                for c in self.checks
            ],
            "documentation_points": round(sum(c.points for c in self.checks if c.part == "K"), 4),
            "environment_points": round(sum(c.points for c in self.checks if c.part == "E"), 4),
        }


def _error(report: PackageReport, loc: str, msg: str) -> None:
    report.errors.append({"loc": loc, "msg": msg})


def _worth_capturing(name: str, size: int) -> bool:
    """Small files the lint reads: the manifest and likely requirements files."""
    base = name.rpartition("/")[2]
    if base == "reprise.toml":
        return size <= MANIFEST_MAX_BYTES
    return (
        size <= REQUIREMENTS_MAX_BYTES
        and name.count("/") <= 2
        and (base.endswith((".txt", ".in")) or "requirements" in base)
    )


def _root_files(layout: PackageLayout) -> set[str]:
    names = set()
    for entry in layout.entries:
        if entry.is_dir or not entry.name.startswith(layout.prefix):
            continue
        rel = entry.name[len(layout.prefix) :]
        names.add(rel)
    return names


def _entry_files(manifest: PackageManifest) -> list[list[str]]:
    """Alternatives of files that must exist for the entry to be importable or runnable."""
    if manifest.entry.optimizer is not None:
        module = manifest.entry.optimizer.split(":", 1)[0].replace(".", "/")
        return [[f"{module}.py", f"{module}/__init__.py"]]
    command = manifest.entry.command or []
    scripts = [a for a in command[1:2] if a.endswith(".py") and not a.startswith(("/", "-"))]
    return [[s.removeprefix("./")] for s in scripts]


def _claimed_sd(metric: Any, n_seeds: int) -> float | None:
    from app.scoring.comparison import summarize_claim

    if metric.values is None and metric.spread is None:
        return None
    summary = summarize_claim(
        metric.mean,
        values=metric.values,
        spread=metric.spread,
        spread_kind=metric.spread_kind,
        n=metric.n or n_seeds,
    )
    return summary.sd


def inspect_package(
    archive: Path,
    *,
    lookup: BenchmarkLookup,
    limits: ArchiveLimits,
    approved_bases: list[str],
) -> PackageReport:
    """Check an archive and its manifest; never raises for bad input, reports it instead."""
    report = PackageReport()
    try:
        layout = inspect_archive(archive, limits, capture=_worth_capturing)
        report.layout = layout
        raw_manifest = layout.captured.get(layout.manifest_name)
        if raw_manifest is None:  # larger than the capture allows: read it in a second pass
            raw_manifest = read_member(
                archive, layout.manifest_name, MANIFEST_MAX_BYTES, limits=limits
            )
    except ArchiveError as exc:
        report.archive_error = exc
        return report
    try:
        data = tomllib.loads(raw_manifest.decode("utf-8"))
    except UnicodeDecodeError:
        _error(report, "reprise.toml", "the manifest is not valid UTF-8")
        return report
    except tomllib.TOMLDecodeError as exc:
        _error(report, "reprise.toml", f"TOML syntax error: {exc}")
        return report
    where = find_nul(data)
    if where is not None:  # no database text column can hold one (PostgreSQL refuses it)
        _error(report, where or "reprise.toml", NUL_MESSAGE)
        return report
    try:
        manifest = PackageManifest.model_validate(data)
    except ValidationError as exc:
        report.errors.extend(describe_errors(exc))
        return report
    report.manifest = manifest
    _cross_check(report, manifest, layout, lookup, approved_bases)
    requirements = None
    if manifest.environment.requirements and not report.errors:
        try:
            name = layout.prefix + manifest.environment.requirements
            raw_req = layout.captured.get(name) or read_member(
                archive, name, REQUIREMENTS_MAX_BYTES, limits=limits
            )
            text = raw_req.decode("utf-8", "replace")
        except ArchiveError as exc:
            _error(report, "environment.requirements", exc.message)
        else:
            if has_nul(text):  # stored with the version: PostgreSQL cannot hold a NUL
                _error(report, "environment.requirements", "the file contains NUL characters")
            else:
                report.requirements_text = text
                requirements = tuple(
                    line.strip()
                    for line in text.splitlines()
                    if line.strip() and not line.strip().startswith("#")
                )
    if report.errors:
        return report
    files = _root_files(layout)
    base = manifest.environment.base
    facts = PackageFacts(
        has_readme=any(_README.match(f) for f in files),
        description_length=len(manifest.package.description.strip()),
        has_license_file=any(_LICENSE.match(f) for f in files),
        license=manifest.package.license,
        has_hyperparameters=bool(manifest.hyperparameters),
        has_paper=manifest.package.paper is not None,
        tag_count=len(manifest.package.tags),
        all_claims_have_spread=all(m.has_spread for m in manifest.claim.metrics.values()),
        variance_source_count=len(manifest.claim.variance_sources),
        compute_described=bool(manifest.claim.compute and manifest.claim.compute.strip()),
        requirements=requirements,
        python_declared=manifest.environment.python is not None,
        base_approved=base is not None and base in approved_bases,
    )
    report.checks = lint_checks(facts)
    _power_warnings(report, manifest)
    return report


def _cross_check(
    report: PackageReport,
    manifest: PackageManifest,
    layout: PackageLayout,
    lookup: BenchmarkLookup,
    approved_bases: list[str],
) -> None:
    bench = lookup(manifest.benchmark.id, manifest.benchmark.version)
    if bench is None:
        _error(
            report,
            "benchmark",
            f"no benchmark {manifest.benchmark.id!r} version "
            f"{manifest.benchmark.version} in this server's catalog",
        )
        return
    report.benchmark = bench
    if bench.kind == "optimizer" and manifest.entry.optimizer is None:
        _error(
            report,
            "entry.optimizer",
            f'benchmark {bench.id} is of kind optimizer: set entry.optimizer = "module:Class"',
        )
    if bench.kind == "command" and manifest.entry.command is None:
        _error(
            report,
            "entry.command",
            f'benchmark {bench.id} is of kind command: set entry.command = ["python", "train.py"]',
        )
    for name, metric in manifest.claim.metrics.items():
        loc = f"claim.metrics.{name}"
        if bench.kind == "optimizer":
            if bench.metric(name) is None:
                defined = ", ".join(m.name for m in bench.metrics)
                _error(
                    report,
                    loc,
                    f"benchmark {bench.id} has no metric {name!r} (it defines: {defined})",
                )
            elif metric.direction is not None or metric.tolerance is not None:
                _error(report, loc, "direction and tolerance come from the benchmark; remove them")
        else:
            if metric.direction is None or metric.tolerance is None:
                _error(
                    report,
                    loc,
                    "a command benchmark's claim declares direction "
                    '("higher" or "lower") and tolerance (> 0) for each metric',
                )
    if bench.kind == "optimizer" and not report.errors:
        primaries = [m.name for m in bench.metrics if m.primary]
        if not any(p in manifest.claim.metrics for p in primaries):
            _error(
                report,
                "claim.metrics",
                f"claim at least one primary metric of {bench.id}: " + ", ".join(primaries),
            )
    base = manifest.environment.base
    if base is not None and base not in approved_bases:
        _error(
            report,
            "environment.base",
            f"{base!r} is not an approved base image; approved: {', '.join(approved_bases)}",
        )
    files = _root_files(layout)
    for alternatives in _entry_files(manifest):
        if not any(a in files for a in alternatives):
            _error(report, "entry", f"the entry file {alternatives[0]} is not in the archive")
    req = manifest.environment.requirements
    if req is not None and req not in files:
        _error(report, "environment.requirements", f"{req} is not in the archive")


def _power_warnings(report: PackageReport, manifest: PackageManifest) -> None:
    from app.scoring.power import power_warning

    bench = report.benchmark
    for name, metric in manifest.claim.metrics.items():
        spec = bench.metric(name) if bench is not None else None
        tolerance = spec.tolerance if spec is not None else metric.tolerance
        sd = _claimed_sd(metric, len(manifest.claim.seeds))
        if sd is None and spec is not None:
            sd = spec.seed_sd
        warning = power_warning(sd=sd, tolerance=tolerance) if tolerance else None
        if warning:
            report.warnings.append(f"claim.metrics.{name}: {warning}")
