"""Quality score Q: each part with its reasons, the cap, rounding; the lint items; SPDX."""

import dataclasses

import pytest

from app.scoring.comparison import Comparison, compare, summarize_claim
from app.scoring.quality import (
    CheckResult,
    PackageFacts,
    documentation_part,
    environment_part,
    is_spdx_identifier,
    lint_checks,
    parse_requirements,
    quality_score,
    reproduction_credit,
    reproduction_part,
    rigor_part,
    round_score,
)

FULL = PackageFacts(
    has_readme=True,
    description_length=400,
    has_license_file=True,
    license="MIT",
    has_hyperparameters=True,
    has_paper=True,
    tag_count=2,
    all_claims_have_spread=True,
    variance_source_count=2,
    compute_described=True,
    requirements=("numpy==1.26.4 --hash=sha256:abc",),
    python_declared=True,
    base_approved=True,
)


def _c(reproduced: list[float], claim: float = 10.0, tol: float = 1.0) -> Comparison:
    return compare(
        claim=summarize_claim(claim), reproduced=reproduced, direction="higher", tolerance=tol
    )


def _by_id(checks: list[CheckResult]) -> dict[str, CheckResult]:
    return {c.id: c for c in checks}


# --- lint ---------------------------------------------------------------------------------


def test_full_package_passes_every_item() -> None:
    checks = lint_checks(FULL)
    assert [c.part for c in checks] == ["K"] * 10 + ["E"] * 4
    assert all(c.passed for c in checks)
    assert sum(c.points for c in checks if c.part == "K") == pytest.approx(15.0)
    assert sum(c.points for c in checks if c.part == "E") == pytest.approx(15.0)


@pytest.mark.parametrize(
    ("change", "item", "words"),
    [
        ({"has_readme": False}, "readme", "README"),
        ({"description_length": 120}, "description", "120 characters"),
        ({"has_license_file": False}, "license_file", "LICENSE"),
        ({"license": None}, "license_spdx", "missing"),
        ({"license": "MIT-ish"}, "license_spdx", "'MIT-ish' is not an SPDX identifier"),
        ({"has_hyperparameters": False}, "hyperparameters", "[hyperparameters]"),
        ({"has_paper": False}, "paper", "package.paper"),
        ({"tag_count": 0}, "tags", "tags"),
        ({"all_claims_have_spread": False}, "claim_spread", "values"),
        ({"variance_source_count": 0}, "variance_sources", "variance_sources"),
        ({"compute_described": False}, "compute", "claim.compute"),
        ({"python_declared": False}, "python", "environment.python"),
        ({"base_approved": False}, "base", "environment.base"),
    ],
)
def test_each_failing_item_says_what_to_do(
    change: dict[str, object], item: str, words: str
) -> None:
    checks = _by_id(lint_checks(dataclasses.replace(FULL, **change)))  # type: ignore[arg-type]
    failed = [c for c in checks.values() if not c.passed]
    assert [c.id for c in failed] == [item]
    assert words in checks[item].reason
    assert checks[item].points == 0.0


def test_description_of_exactly_200_characters_passes() -> None:
    assert _by_id(lint_checks(dataclasses.replace(FULL, description_length=200)))[
        "description"
    ].passed


def test_unpinned_requirement_is_named() -> None:
    facts = dataclasses.replace(FULL, requirements=("scipy==1.11.0", "numpy>=1.2"))
    checks = _by_id(lint_checks(facts))
    assert not checks["requirements_pinned"].passed
    assert (
        "requirement 2 ('numpy>=1.2') is not pinned with ==" in checks["requirements_pinned"].reason
    )
    assert checks["requirements_pinned"].max_points == 8.0
    assert not checks["requirements_hashed"].passed


def test_absent_requirements_earn_both_items() -> None:
    checks = _by_id(lint_checks(dataclasses.replace(FULL, requirements=None)))
    assert checks["requirements_pinned"].points == 8.0
    assert checks["requirements_hashed"].points == 3.0


def test_pinned_without_hashes() -> None:
    facts = dataclasses.replace(
        FULL, requirements=("numpy==1.26.4", "scipy[all]==1.11.0 ; python_version>'3.9'")
    )
    checks = _by_id(lint_checks(facts))
    assert checks["requirements_pinned"].passed
    assert not checks["requirements_hashed"].passed
    assert "missing --hash" in checks["requirements_hashed"].reason


def test_requirement_parsing() -> None:
    lines = (
        "numpy==1.26.4 \\",
        "    --hash=sha256:aaa \\",
        "    --hash=sha256:bbb",
        "--index-url https://example.org/simple",
        "torch==2.*",
        "-r more.txt",
        "pandas == 2.2.0  # the comment",
        "requests",
    )
    entries = parse_requirements(lines)
    assert [e.kind for e in entries] == [
        "requirement",
        "option",
        "requirement",
        "include",
        "requirement",
        "requirement",
    ]
    assert [e.pinned for e in entries] == [True, False, False, False, True, False]
    assert entries[0].hashed
    assert entries[0].number == 1
    facts = dataclasses.replace(FULL, requirements=lines)
    reason = _by_id(lint_checks(facts))["requirements_pinned"].reason
    assert "'torch==2.*'" in reason
    assert "'-r more.txt'" in reason
    assert "'requests'" in reason
    assert "cannot be checked" in reason


@pytest.mark.parametrize(
    ("expression", "valid"),
    [
        ("MIT", True),
        ("Apache-2.0", True),
        ("apache-2.0", True),
        ("BSD-3-Clause", True),
        ("GPL-3.0-or-later", True),
        ("GPL-2.0+", True),
        ("MIT OR Apache-2.0", True),
        ("MIT AND BSD-2-Clause", True),
        ("(MIT OR Apache-2.0) AND BSD-3-Clause", True),
        ("GPL-2.0-only WITH Classpath-exception-2.0", True),
        ("CC-BY-4.0", True),
        ("MPL-2.0", True),
        ("Unlicense", True),
        ("", False),
        ("MIT License", False),
        ("Apache 2.0", False),
        ("MIT OR", False),
        ("(MIT", False),
        ("MIT)", False),
        ("MIT WITH Apache-2.0", False),
        ("LicenseRef-custom", False),
        ("proprietary", False),
    ],
)
def test_spdx(expression: str, valid: bool) -> None:
    assert is_spdx_identifier(expression) is valid


# --- parts ---------------------------------------------------------------------------------


def test_reproduction_credits() -> None:
    assert reproduction_credit(_c([10.0, 10.1, 9.9, 10.0])) == 1.0
    assert reproduction_credit(_c([13.0, 13.1, 12.9, 13.0])) == 0.9
    assert reproduction_credit(_c([7.0, 7.1, 6.9, 7.0])) == 0.0
    assert reproduction_credit(_c([10.0])) == 0.0
    wide = _c([8.0, 12.0, 9.0, 10.2])  # Δ = −0.2 with δ = 1
    assert wide.verdict == "inconclusive"
    assert reproduction_credit(wide) == pytest.approx(0.5 * (1 - 0.2))
    better_wide = _c([8.0, 12.0, 11.0, 11.4])  # Δ > 0: no shortfall, half credit
    assert better_wide.verdict == "inconclusive"
    assert reproduction_credit(better_wide) == 0.5


def test_reproduction_part_averages_primaries_with_reasons() -> None:
    part = reproduction_part({"a": _c([10.0, 10.1, 9.9, 10.0]), "b": _c([13.0, 13.1, 12.9, 13.0])})
    assert part.points == pytest.approx(50 * 0.95)
    assert [i.item for i in part.items] == ["a", "b"]
    assert part.items[1].points == pytest.approx(22.5)
    assert "exceeded" in part.items[1].reason
    assert reproduction_part({}).points == 0.0


@pytest.mark.parametrize(
    ("seeds", "points"), [(7, 8), (5, 8), (4, 5), (3, 5), (2, 3), (1, 0), (0, 0)]
)
def test_rigor_seed_points(seeds: int, points: float) -> None:
    part = rigor_part(
        claimed_seed_count=seeds, claim_kinds={}, variance_sources=(), exactly_reproducible=None
    )
    assert part.items[0].points == points


def test_rigor_part_items() -> None:
    part = rigor_part(
        claimed_seed_count=5,
        claim_kinds={"acc": "values", "loss": "spread"},
        variance_sources=["init"],
        exactly_reproducible=True,
    )
    items = {i.item: i for i in part.items}
    assert items["claim_spread"].points == 4.0
    assert "loss" in items["claim_spread"].reason
    assert items["variance_sources"].points == 1.5
    assert items["exactness"].points == 3.0
    assert part.points == 8 + 4 + 1.5 + 3
    none = rigor_part(
        claimed_seed_count=5,
        claim_kinds={"acc": "values", "x": "none"},
        variance_sources=["a", "b"],
        exactly_reproducible=False,
    )
    items = {i.item: i for i in none.items}
    assert items["claim_spread"].points == 0.0
    assert items["variance_sources"].points == 3.0
    assert items["exactness"].points == 0.0
    assert none.max == 20.0


def _score(reproduced: list[float], facts: PackageFacts = FULL):
    c = _c(reproduced)
    checks = lint_checks(facts)
    return quality_score(
        reproduction=reproduction_part({"m": c}),
        rigor=rigor_part(
            claimed_seed_count=5,
            claim_kinds={"m": "values"},
            variance_sources=["a", "b"],
            exactly_reproducible=True,
        ),
        documentation=documentation_part(checks),
        environment=environment_part(checks),
        not_reproduced=["m"] if c.verdict == "not_reproduced" else [],
    )


def test_perfect_score_is_100() -> None:
    q = _score([10.0, 10.1, 9.9, 10.0])
    assert q.total == 100.0
    assert not q.capped
    assert set(q.parts) == {"R", "G", "K", "E"}


def test_cap_at_40_when_a_primary_is_not_reproduced() -> None:
    q = _score([7.0, 7.1, 6.9, 7.0])
    assert q.uncapped == 50.0
    assert q.total == 40.0
    assert q.capped
    assert q.cap_reason is not None
    assert "m" in q.cap_reason


def test_cap_does_not_raise_a_low_score() -> None:
    poor = dataclasses.replace(
        FULL,
        requirements=("numpy",),
        python_declared=False,
        base_approved=False,
        has_readme=False,
        has_paper=False,
    )
    c = _c([7.0, 7.1, 6.9, 7.0])
    checks = lint_checks(poor)
    q = quality_score(
        reproduction=reproduction_part({"m": c}),
        rigor=rigor_part(
            claimed_seed_count=1,
            claim_kinds={"m": "none"},
            variance_sources=(),
            exactly_reproducible=None,
        ),
        documentation=documentation_part(checks),
        environment=environment_part(checks),
        not_reproduced=["m"],
    )
    assert q.total == pytest.approx(12.0)
    assert not q.capped


def test_rounding_is_one_decimal_half_up() -> None:
    assert round_score(82.25) == 82.3
    assert round_score(82.2499) == 82.2
    assert round_score(84.94999999999999) == 85.0  # float noise is not a real digit
    assert round_score(0.05) == 0.1
    # Half credit at Δ = −0.3 of δ: 50·0.35 = 17.5, plus 8 + 6 + 3 + 3 + 15 + 15.
    q = _score([8.0, 12.0, 9.0, 10.0 - 0.3 + 1.0])
    assert q.total == round_score(q.parts["R"].points + 20 + 30)


def test_to_dict_is_plain() -> None:
    d = _score([10.0, 10.1, 9.9, 10.0]).to_dict()
    assert d["parts"]["K"]["items"][0] == {
        "item": "readme",
        "points": 1.5,
        "max": 1.5,
        "passed": True,
        "reason": "A README is present.",
    }
