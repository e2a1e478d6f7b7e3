"""Every number of 600 scores stays the same unless SCORING_VERSION says otherwise.

Speed work on app/scoring must not move a single bit: a stored verdict would then differ on
`reprise rescore`. The snapshot was written before that work and is checked after it.
"""

import json
from collections import Counter

from app.scoring.version import SCORING_VERSION, score_version
from tests.scoring.corpus import SNAPSHOT, corpus, digest


def test_the_corpus_reaches_every_verdict_mode_and_outcome() -> None:
    scores = [score_version(x) for x in corpus()]
    verdicts = Counter(m.verdict for s in scores for m in s.metrics.values())
    assert set(verdicts) == {
        "reproduced",
        "not_reproduced",
        "exceeded",
        "inconclusive",
        "insufficient_data",
    }
    metrics = [m for s in scores for m in s.metrics.values()]
    assert {m.mode for m in metrics} == {"one_sample", "two_sample"}
    assert any(m.se_zero for m in metrics)
    assert any(m.n_non_finite for m in metrics)
    assert {s.exactness.exactly_reproducible for s in scores} == {True, False, None}
    assert {s.determinism.deterministic for s in scores} == {True, False, None}
    assert any(s.seed_selection.flag for s in scores)
    assert any(s.quality.capped for s in scores)


def test_scores_match_the_snapshot_bit_for_bit() -> None:
    snapshot = json.loads(SNAPSHOT.read_text())
    assert snapshot["scoring_version"] == SCORING_VERSION, (
        "SCORING_VERSION changed: regenerate the snapshot (python -m tests.scoring.corpus --write)"
    )
    inputs = corpus()
    assert len(snapshot["digests"]) == len(inputs)
    changed = [
        i
        for i, (x, expected) in enumerate(zip(inputs, snapshot["digests"], strict=True))
        if digest(score_version(x).to_dict()) != expected
    ]
    assert not changed, (
        f"{len(changed)} of {len(inputs)} scores changed (first: input {changed[0]}). A change "
        "that moves a number or a verdict needs a SCORING_VERSION bump and a new snapshot."
    )
