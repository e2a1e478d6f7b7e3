"""benchmark.toml files: documented keys only, calibrated numbers, data that matches its sha256."""

from __future__ import annotations

import hashlib
import math
import re
import subprocess
import sys
import tomllib

import numpy as np
import pytest

from .benchkit import BENCHMARK_IDS, BENCHMARKS, TOOLS, runlocal

TOP_LEVEL = {
    "id",
    "version",
    "title",
    "kind",
    "description",
    "fresh_seeds",
    "limits",
    "data",
    "metrics",
}
LIMITS = {"cpus", "memory_mb", "timeout_s"}
METRIC_KEYS = {
    "name",
    "direction",
    "tolerance",
    "primary",
    "seed_sd",
    "reference_low",
    "reference_high",
}
# APIs that numpy 1.24 lacks or numpy 2.x removed; the harnesses must run on both.
NUMPY_TRAPS = [
    "np.float_",
    "np.complex_",
    "np.trapz",
    "np.trapezoid",
    "np.in1d",
    "np.row_stack",
    "np.product",
    "np.cumproduct",
    "np.alltrue",
    "np.sometrue",
    "np.NaN",
    "np.Inf",
    "np.bool8",
    "np.string_",
    "np.unicode_",
    "np.asfarray",
    "np.round_",
    "np.msort",
    "np.find_common_type",
    "np.core",
    "np._core",
    "np.lib.npyio",
]


def load(bench_id: str) -> dict:
    with (BENCHMARKS / bench_id / "benchmark.toml").open("rb") as handle:
        return tomllib.load(handle)


def test_every_benchmark_folder_is_tested() -> None:
    folders = sorted(p.parent.name for p in BENCHMARKS.glob("*/benchmark.toml"))
    assert folders == BENCHMARK_IDS
    assert not (TOOLS / "benchmark.toml").exists()


@pytest.mark.parametrize("bench_id", BENCHMARK_IDS)
def test_manifest_uses_documented_keys_only(bench_id: str) -> None:
    manifest = load(bench_id)
    assert set(manifest) <= TOP_LEVEL
    assert manifest["id"] == bench_id
    assert manifest["version"] == 1
    assert manifest["kind"] in ("optimizer", "command")
    assert manifest["fresh_seeds"] == 5
    assert set(manifest["limits"]) == LIMITS
    assert set(manifest.get("data", {})) <= {"train", "test"}
    for spec in manifest.get("data", {}).values():
        assert set(spec) == {"path", "sha256"}
    assert "(filled in" not in manifest["description"]
    if manifest["kind"] == "command":
        assert "metrics" not in manifest
        assert "data" not in manifest
        assert "direction" in manifest["description"]
        assert "tolerance" in manifest["description"]


@pytest.mark.parametrize("bench_id", BENCHMARK_IDS)
def test_data_files_match_their_sha256_and_hold_plain_arrays(bench_id: str) -> None:
    for spec in load(bench_id).get("data", {}).values():
        path = BENCHMARKS / bench_id / spec["path"]
        assert spec["path"].startswith("data/")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == spec["sha256"]
        with np.load(path, allow_pickle=False) as npz:
            assert all(not npz[name].dtype.hasobject for name in npz.files)


@pytest.mark.parametrize("bench_id", [b for b in BENCHMARK_IDS if b != "custom-command"])
def test_metrics_are_calibrated(bench_id: str) -> None:
    manifest = load(bench_id)
    metrics = manifest["metrics"]
    assert sum(1 for m in metrics if m["primary"]) == 1
    assert "**Calibration.**" in manifest["description"]
    for metric in metrics:
        assert set(metric) == METRIC_KEYS
        assert metric["direction"] in ("higher", "lower")
        values = [metric[k] for k in ("tolerance", "seed_sd", "reference_low", "reference_high")]
        assert all(isinstance(v, float) and math.isfinite(v) for v in values)
        assert metric["seed_sd"] > 0
        assert metric["tolerance"] >= 2.5 * metric["seed_sd"]
        sign = 1 if metric["direction"] == "higher" else -1
        assert sign * (metric["reference_high"] - metric["reference_low"]) > 0


def test_the_digits_benchmarks_share_one_split() -> None:
    assert load("logreg-digits")["data"] == load("mlp-digits")["data"]


@pytest.mark.parametrize("bench_id", BENCHMARK_IDS)
def test_harness_library_copy_is_current(bench_id: str) -> None:
    copy = BENCHMARKS / bench_id / "_harnesslib.py"
    assert copy.read_bytes() == (TOOLS / "harnesslib.py").read_bytes(), (
        "run python benchmarks/_tools/sync_harnesslib.py"
    )


def test_sync_check_passes() -> None:
    completed = subprocess.run(
        [sys.executable, str(TOOLS / "sync_harnesslib.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout


@pytest.mark.parametrize("bench_id", BENCHMARK_IDS)
def test_harness_avoids_numpy_version_traps_and_other_benchmarks(bench_id: str) -> None:
    folder = BENCHMARKS / bench_id
    for source in [folder / "harness.py", folder / "_harnesslib.py"]:
        text = source.read_text(encoding="utf-8")
        for trap in NUMPY_TRAPS:
            assert trap not in text, f"{source.name} uses {trap}"
        imports = re.findall(r"^\s*(?:import|from)\s+([\w.]+)", text, flags=re.MULTILINE)
        allowed = set(sys.stdlib_module_names) | {"numpy", "_harnesslib", "__future__"}
        assert {name.split(".")[0] for name in imports} <= allowed, imports


def test_staging_leaves_data_out_of_the_harness_dir(tmp_path) -> None:
    bench = runlocal.benchmark_dir("logreg-digits")
    dirs = runlocal.stage(bench, tmp_path, with_test=False)
    assert not (dirs["harness"] / "data").exists()
    assert (dirs["train"] / "train.npz").is_file()
    assert not dirs["test"].exists()
