"""Every benchmark, both phases, on an honest package: outputs, determinism, seed sensitivity."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from .benchkit import BENCHMARK_IDS, EXAMPLES, HONEST_EXAMPLE, run_many, runlocal

RUNS = {"first": 0, "again": 0, "other": 1}


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], runlocal.JobResult]:
    """Seed 0 twice and seed 1 once for every benchmark, run once for the whole module."""
    root = tmp_path_factory.mktemp("harness-runs")
    keys = [(bench, label) for bench in BENCHMARK_IDS for label in RUNS]

    def job(bench: str, label: str) -> runlocal.JobResult:
        return runlocal.run_job(
            runlocal.benchmark_dir(bench),
            RUNS[label],
            work_dir=root / bench / label,
            package_dir=EXAMPLES / HONEST_EXAMPLE[bench],
        )

    results = run_many([lambda b=b, lbl=lbl: job(b, lbl) for b, lbl in keys])
    return dict(zip(keys, results, strict=True))


@pytest.mark.parametrize("bench", BENCHMARK_IDS)
def test_both_phases_succeed_and_write_the_contract_outputs(bench: str, jobs) -> None:
    result = jobs[bench, "first"]
    assert result.ingest.returncode == 0, result.ingest.stderr[-3000:]
    assert result.score is not None
    assert result.score.returncode == 0, result.score.stderr[-3000:]
    manifest = runlocal.load_manifest(runlocal.benchmark_dir(bench))
    document = result.score.document
    assert document is not None
    assert set(document) <= {"metrics", "curve", "self_reported"}
    metrics = document["metrics"]
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    if manifest["kind"] == "optimizer":
        assert set(metrics) == {m["name"] for m in manifest["metrics"]}
        assert document["self_reported"] is False
        curve = document["curve"]
        assert 2 <= len(curve["step"]) == len(curve["loss"]) <= 1000
        assert curve["step"] == sorted(curve["step"])
        with np.load(result.ingest.output_dir / "params.npz", allow_pickle=False) as npz:
            assert all(npz[name].dtype == np.float64 for name in npz.files)
        ingest_curve = json.loads((result.ingest.output_dir / "curve.json").read_text())
        assert ingest_curve == curve
    else:
        assert set(metrics) == {"val_mse", "val_r2"}
        assert document["self_reported"] is True
    assert not (result.ingest.output_dir / "error.json").exists()


@pytest.mark.parametrize("bench", BENCHMARK_IDS)
def test_same_seed_gives_bit_identical_metrics(bench: str, jobs) -> None:
    first, again = jobs[bench, "first"], jobs[bench, "again"]
    assert first.score is not None
    assert again.score is not None
    a, b = first.score.metrics, again.score.metrics
    assert {k: v.hex() for k, v in a.items()} == {k: v.hex() for k, v in b.items()}
    params = Path("params.npz")
    if (first.ingest.output_dir / params).exists():
        assert (first.ingest.output_dir / params).read_bytes() == (
            again.ingest.output_dir / params
        ).read_bytes()


@pytest.mark.parametrize("bench", BENCHMARK_IDS)
def test_different_seeds_give_different_metrics(bench: str, jobs) -> None:
    first, other = jobs[bench, "first"], jobs[bench, "other"]
    assert first.score is not None
    assert other.score is not None
    assert first.score.metrics != other.score.metrics
