"""The reproducibility lint shared with the intake: the K and E items of STATISTICS.md §5."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from app.scoring._util import json_fields
from app.scoring.spdx import is_spdx_identifier

K_ITEM_POINTS = 1.5  # 15 points over ten items
MIN_DESCRIPTION = 200
E_POINTS = {"requirements_pinned": 8.0, "requirements_hashed": 3.0, "python": 2.0, "base": 2.0}

_PINNED = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?\s*(?:\[[^\]]*\])?\s*===?\s*[^\s,;*<>=!~]+\s*(?:;.*)?$"
)
_INCLUDES = ("-r", "--requirement", "-c", "--constraint", "-e", "--editable")
_HASH = re.compile(r"(?:^|\s)--hash[=\s]")


@dataclass(frozen=True)
class PackageFacts:
    """What the intake found in a package, as the lint needs it."""

    has_readme: bool
    description_length: int
    has_license_file: bool
    license: str | None
    has_hyperparameters: bool
    has_paper: bool
    tag_count: int
    all_claims_have_spread: bool
    variance_source_count: int
    compute_described: bool
    requirements: tuple[str, ...] | None  # non-empty, non-comment lines; None when absent
    python_declared: bool
    base_approved: bool


@dataclass(frozen=True)
class CheckResult:
    """One lint item: whether it passed, why, and the points it earns."""

    id: str
    part: Literal["K", "E"]
    passed: bool
    reason: str
    points: float
    max_points: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return json_fields(self)


@dataclass(frozen=True)
class Requirement:
    """One logical requirements line (continuations joined) and its position among the entries."""

    number: int
    text: str
    spec: str
    kind: Literal["requirement", "include", "option"]
    hashed: bool

    @property
    def pinned(self) -> bool:
        """Whether it is a requirement pinned to one exact version with ==."""
        return self.kind == "requirement" and bool(_PINNED.match(self.spec))


def parse_requirements(lines: tuple[str, ...]) -> list[Requirement]:
    """Join backslash continuations, drop inline comments, and classify each entry."""
    logical: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(lines, start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        continued = line.endswith("\\")
        line = line.rstrip("\\").strip()
        pending = (pending[0], f"{pending[1]} {line}") if pending else (number, line)
        if not continued:
            if pending[1]:
                logical.append(pending)
            pending = None
    if pending and pending[1]:
        logical.append(pending)
    out: list[Requirement] = []
    for number, text in logical:
        first = text.split()[0]
        kind: Literal["requirement", "include", "option"]
        attached = first[:2] in ("-r", "-c", "-e") and not first.startswith("--")
        if attached or any(first == p or first.startswith(p + "=") for p in _INCLUDES):
            kind = "include"
        elif text.startswith("-"):
            kind = "option"
        else:
            kind = "requirement"
        spec = re.split(r"\s--", text, maxsplit=1)[0].strip()
        out.append(Requirement(number, text, spec, kind, bool(_HASH.search(text))))
    return out


def _list(entries: list[Requirement]) -> str:
    parts = [f"{e.number} ('{e.text}')" for e in entries[:3]]
    if len(entries) > 3:
        parts.append(f"{len(entries) - 3} more")
    if len(parts) == 1:
        return f"requirement {parts[0]} is"
    return f"requirements {', '.join(parts[:-1])} and {parts[-1]} are"


def _include_note(entries: list[Requirement]) -> str:
    if any(e.kind == "include" for e in entries):
        return " Included files (-r, -c) and editable installs (-e) cannot be checked."
    return ""


def _k(check_id: str, passed: bool, ok: str, fix: str) -> CheckResult:
    return CheckResult(
        id=check_id,
        part="K",
        passed=passed,
        reason=ok if passed else fix,
        points=K_ITEM_POINTS if passed else 0.0,
        max_points=K_ITEM_POINTS,
    )


def _e(check_id: str, passed: bool, reason: str, max_points: float) -> CheckResult:
    return CheckResult(check_id, "E", passed, reason, max_points if passed else 0.0, max_points)


def documentation_checks(f: PackageFacts) -> list[CheckResult]:
    """The ten K items: documentation a reader needs to reuse the package."""
    lic = f.license
    spdx_ok = lic is not None and is_spdx_identifier(lic)
    if lic is None:
        spdx_fix = "package.license is missing: set it to an SPDX identifier such as 'MIT'."
    else:
        spdx_fix = (
            f"package.license '{lic}' is not an SPDX identifier; use one from spdx.org/licenses, "
            "such as 'MIT', 'Apache-2.0' or 'BSD-3-Clause'."
        )
    n = f.description_length
    return [
        _k(
            "readme",
            f.has_readme,
            "A README is present.",
            "Add a README at the package root: what it does and how to run it.",
        ),
        _k(
            "description",
            n >= MIN_DESCRIPTION,
            f"The description has {n} characters.",
            f"The description has {n} characters; write at least {MIN_DESCRIPTION}: what the "
            "technique is and why it should work.",
        ),
        _k(
            "license_file",
            f.has_license_file,
            "A LICENSE file is present.",
            "Add a LICENSE file with the full license text.",
        ),
        _k(
            "license_spdx",
            spdx_ok,
            f"package.license '{lic}' is a valid SPDX identifier.",
            spdx_fix,
        ),
        _k(
            "hyperparameters",
            f.has_hyperparameters,
            "[hyperparameters] is present.",
            "Add a [hyperparameters] table with every value the optimizer is built with.",
        ),
        _k(
            "paper",
            f.has_paper,
            "package.paper links the paper.",
            "Add package.paper: a link to the paper, preprint or write-up.",
        ),
        _k(
            "tags",
            f.tag_count >= 1,
            f"{f.tag_count} tag(s) are given.",
            "Add at least one entry to package.tags so that matching reviewers can find it.",
        ),
        _k(
            "claim_spread",
            f.all_claims_have_spread,
            "Every claimed metric gives per-seed values or a spread.",
            "Give every claimed metric its per-seed `values` (or a spread with spread_kind and n).",
        ),
        _k(
            "variance_sources",
            f.variance_source_count >= 1,
            f"{f.variance_source_count} variance source(s) are declared.",
            "Declare claim.variance_sources: what the seed randomizes (e.g. init, data_order).",
        ),
        _k(
            "compute",
            f.compute_described,
            "The compute is described (claim.compute).",
            "Describe the compute in claim.compute, e.g. '1 CPU core, 40 s per seed'.",
        ),
    ]


def environment_checks(f: PackageFacts) -> list[CheckResult]:
    """The four E items: how precisely the environment is pinned."""
    pts = E_POINTS
    if f.requirements is None:
        pinned = _e(
            "requirements_pinned",
            True,
            "No requirements file: the approved base image defines the environment.",
            pts["requirements_pinned"],
        )
        hashed = _e(
            "requirements_hashed",
            True,
            "No requirements file, so there is nothing to hash.",
            pts["requirements_hashed"],
        )
    else:
        entries = parse_requirements(f.requirements)
        unpinned = [e for e in entries if e.kind != "option" and not e.pinned]
        unhashed = [e for e in entries if e.kind != "option" and not e.hashed]
        pinned = _e(
            "requirements_pinned",
            not unpinned,
            "Every requirement is pinned with ==."
            if not unpinned
            else f"requirements.txt: {_list(unpinned)} not pinned with ==; write each as "
            f"name==version.{_include_note(unpinned)}",
            pts["requirements_pinned"],
        )
        hashed = _e(
            "requirements_hashed",
            not unhashed,
            "Every requirement carries --hash."
            if not unhashed
            else f"requirements.txt: {_list(unhashed)} missing --hash; generate the file with "
            "`pip-compile --generate-hashes` or `uv pip compile --generate-hashes`.",
            pts["requirements_hashed"],
        )
    python = _e(
        "python",
        f.python_declared,
        "environment.python is declared."
        if f.python_declared
        else 'Declare environment.python, e.g. python = "3.11".',
        pts["python"],
    )
    base = _e(
        "base",
        f.base_approved,
        "environment.base is an approved base image."
        if f.base_approved
        else "environment.base is not an approved base image; pick one the service lists.",
        pts["base"],
    )
    return [pinned, hashed, python, base]


def lint_checks(facts: PackageFacts) -> list[CheckResult]:
    """The ten K items and the four E items of STATISTICS.md §5, each with a reason to act on."""
    return documentation_checks(facts) + environment_checks(facts)
