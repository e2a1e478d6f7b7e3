"""A seeded corpus of score_version inputs and a digest of every score, kept in snapshot.json.

    .venv/bin/python -m tests.scoring.corpus --write

regenerates the snapshot. Do that only together with a bump of SCORING_VERSION: a changed digest
means a stored verdict would change on `reprise rescore`, which is what the version is for.

The corpus mixes stored-looking claims (those of the scoring benchmark) with edge cases: bare
means, every spread kind with and without n, one or identical claimed values, failed, missing,
non-finite and bit-identical runs, lower-is-better and secondary metrics.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from pathlib import Path
from typing import Any

from app.scoring.quality import lint_checks
from app.scoring.version import (
    SCORING_VERSION,
    ClaimedMetric,
    MetricDefinition,
    RunRecord,
    VersionInputs,
    score_version,
)
from tests.perf.test_perf_scoring import FACTS, stored_claims

SNAPSHOT = Path(__file__).with_name("snapshot.json")
STORED, VARIED = 300, 300

DEFINITIONS = (
    MetricDefinition("a", "higher", 0.01, True, seed_sd=0.003),
    MetricDefinition("b", "lower", 0.05, True),
    MetricDefinition("c", "higher", 0.02, False),
)
CLAIM_FORMS = ("values", "sd", "sem", "ci95_half", "two_sd", "none", "one_value", "identical")


def _claim(rng: random.Random, mean: float) -> ClaimedMetric:
    form = rng.choice(CLAIM_FORMS)
    if form == "values":
        return ClaimedMetric(mean, values=tuple(round(rng.gauss(mean, 0.01), 4) for _ in range(5)))
    if form == "one_value":
        return ClaimedMetric(mean, values=(mean,))
    if form == "identical":
        return ClaimedMetric(mean, values=(mean,) * 5)
    if form == "none":
        return ClaimedMetric(mean)
    return ClaimedMetric(mean, spread=0.01, spread_kind=form, n=rng.choice([None, 3, 5]))  # type: ignore[arg-type]


def varied_inputs(count: int, seed: int = 5) -> list[VersionInputs]:
    """Edge-case inputs: every claim form, failures, non-finite values, bit-identical runs."""
    rng = random.Random(seed)
    checks = lint_checks(FACTS)
    inputs = []
    for _ in range(count):
        definitions = DEFINITIONS[: rng.choice([1, 2, 3])]
        claims = {d.name: _claim(rng, rng.choice([0.5, 1.0, 0.0, 100.0])) for d in definitions}
        seeds = rng.choice([0, 1, 2, 5])
        identical = rng.random() < 0.2
        runs: list[RunRecord] = []
        counts = (
            ("claimed", seeds),
            ("fresh", rng.choice([0, 1, 2, 5, 10])),
            ("probe", rng.choice([0, 1])),
        )
        for kind, n in counts:
            for j in range(n):
                outcome = rng.choice(["succeeded"] * 8 + ["timeout", "user_error"])
                metrics = {}
                for d in definitions:
                    mean = claims[d.name].mean
                    shift = rng.choice([0.0, 0.0, -0.03, 0.03])
                    value = mean if identical else rng.gauss(mean + shift, 0.01)
                    if rng.random() < 0.02:
                        value = rng.choice([float("nan"), float("inf")])
                    metrics[d.name] = value
                seed = 100 + j if kind == "fresh" else j
                kept = metrics if outcome == "succeeded" else {}
                runs.append(RunRecord(len(runs) + 1, kind, seed, outcome, kept))  # type: ignore[arg-type]
        inputs.append(
            VersionInputs(
                metrics=definitions,
                claims=claims,
                claimed_seeds=list(range(seeds)),
                runs=runs,
                checks=checks,
                variance_sources=("init", "data_order")[: rng.choice([0, 1, 2])],
            )
        )
    return inputs


def corpus() -> list[VersionInputs]:
    """The snapshot's inputs, in order."""
    return stored_claims(STORED, seed=11) + varied_inputs(VARIED)


def digest(score: dict[str, Any]) -> str:
    """A short digest of a score's canonical JSON (every number to the last bit)."""
    text = json.dumps(score, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def digests() -> list[str]:
    """The digest of every score of the corpus."""
    return [digest(score_version(x).to_dict()) for x in corpus()]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite {SNAPSHOT.name}")
    args = parser.parse_args()
    snapshot = {"scoring_version": SCORING_VERSION, "digests": digests()}
    if args.write:
        SNAPSHOT.write_text(json.dumps(snapshot, indent=0) + "\n")
    print(f"{len(snapshot['digests'])} scores, scoring version {SCORING_VERSION}")


if __name__ == "__main__":
    main()
