"""Run a benchmark harness locally, phase by phase, the way the runner calls it.

Follows docs/harness-contract.md: the harness folder without ``data/``, the ``[data.train]``
files (and, for ``score`` only, the ``[data.test]`` files) staged into their own directories, a
copy of the package, ``run.json``, and only the contract's environment variables. No sandbox:
this is for development, calibration and tests, not for untrusted packages.

    python benchmarks/_tools/runlocal.py logreg-digits examples/sgd-logreg --seed 0 --seed 1

Used as a module by calibrate.py, make_example_claims.py and tests/benchmarks.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOOLS = Path(__file__).resolve().parent
BENCHMARKS = TOOLS.parent
REPO = BENCHMARKS.parent
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass
class PhaseResult:
    """What one phase did: exit status, its output directory and the parsed JSON outputs."""

    phase: str
    returncode: int
    output_dir: Path
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float = 0.0
    document: dict[str, Any] | None = None  # metrics.json (score) if written
    error: dict[str, Any] | None = None  # error.json if written

    @property
    def metrics(self) -> dict[str, float]:
        if self.document is None:
            raise AssertionError(f"{self.phase} wrote no metrics.json:\n{self.stderr[-2000:]}")
        return dict(self.document["metrics"])


@dataclass
class JobResult:
    ingest: PhaseResult
    score: PhaseResult | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.ingest.returncode == 0 and self.score is not None and self.score.returncode == 0

    @property
    def wall_s(self) -> float:
        return self.ingest.wall_s + (self.score.wall_s if self.score else 0.0)

    @property
    def cpu_s(self) -> float:
        return self.ingest.cpu_s + (self.score.cpu_s if self.score else 0.0)


def benchmark_dir(name_or_path: str | Path) -> Path:
    """A benchmark folder from its id (``logreg-digits``) or a path."""
    path = Path(name_or_path)
    if not (path / "benchmark.toml").exists():
        path = BENCHMARKS / str(name_or_path)
    if not (path / "benchmark.toml").exists():
        raise FileNotFoundError(f"no benchmark.toml in {name_or_path}")
    return path.resolve()


def load_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def load_manifest(bench: Path) -> dict[str, Any]:
    return load_toml(bench / "benchmark.toml")


def load_package(package_dir: Path) -> dict[str, Any]:
    return load_toml(package_dir / "reprise.toml")


def make_run_config(
    bench: Path,
    seed: int,
    *,
    package: dict[str, Any] | None = None,
    entry: dict[str, Any] | None = None,
    hyperparameters: dict[str, Any] | None = None,
    job_kind: str = "claimed",
) -> dict[str, Any]:
    """``run.json`` for a package (its reprise.toml) or for an explicit entry."""
    manifest = load_manifest(bench)
    if package is not None:
        entry = entry or dict(package.get("entry", {}))
        if hyperparameters is None:
            hyperparameters = dict(package.get("hyperparameters", {}))
        claimed = dict(package.get("claim", {}).get("metrics", {}))
    else:
        claimed = {}
    directions = {m["name"]: m["direction"] for m in manifest.get("metrics", [])}
    if manifest["kind"] == "command":
        claim_metrics = {
            name: {"direction": spec.get("direction")} for name, spec in claimed.items()
        }
    else:
        names = [name for name in claimed if name in directions] or list(directions)
        claim_metrics = {name: {"direction": directions[name]} for name in names}
    return {
        "format": 1,
        "job_id": 0,
        "seed": seed,
        "job_kind": job_kind,
        "benchmark": {"id": manifest["id"], "version": manifest["version"]},
        "entry": entry or {},
        "hyperparameters": hyperparameters or {},
        "claim_metrics": claim_metrics,
    }


def _copy_data(bench: Path, manifest: dict[str, Any], which: str, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    spec = manifest.get("data", {}).get(which)
    if spec is None:
        return
    relative = Path(spec["path"]).relative_to("data")
    (target / relative).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bench / spec["path"], target / relative)


def stage(bench: Path, work_dir: Path, *, with_test: bool) -> dict[str, Path]:
    """Harness (without data/), train and, if asked, test directories under ``work_dir``.

    The hidden test files are copied only when a score phase needs them, so nothing next to an
    ingest phase holds them.
    """
    manifest = load_manifest(bench)
    dirs = {name: work_dir / name for name in ("harness", "train", "test")}
    if not dirs["harness"].exists():
        shutil.copytree(
            bench,
            dirs["harness"],
            ignore=shutil.ignore_patterns("data", "__pycache__", "*.pyc"),
        )
        _copy_data(bench, manifest, "train", dirs["train"])
    if with_test and not dirs["test"].exists():
        _copy_data(bench, manifest, "test", dirs["test"])
    return dirs


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _execute(
    command: list[str], *, cwd: Path, env: dict[str, str], timeout: float
) -> tuple[int, str, str, float, float]:
    """Run to completion (killed after ``timeout`` s): status, stdout, stderr, wall s, CPU s."""
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out_file, stderr=err_file)
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            # wait4 rather than wait: it also reports the child's CPU time
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out_file.seek(0)
        err_file.seek(0)
        stdout = out_file.read().decode("utf-8", "replace")
        stderr = err_file.read().decode("utf-8", "replace")
    return process.returncode, stdout, stderr, wall, usage.ru_utime + usage.ru_stime


def run_phase(
    bench: Path,
    phase: str,
    seed: int,
    *,
    work_dir: Path,
    run_config: dict[str, Any],
    package_dir: Path | None = None,
    artifacts_dir: Path | None = None,
    python: str | None = None,
    timeout: float | None = None,
    extra_env: dict[str, str] | None = None,
    command_prefix: list[str] | None = None,
) -> PhaseResult:
    """Run ``harness.py <phase>`` once with the contract's environment; never raises on failure.

    The interpreter is ``python``, else ``$REPRISE_HARNESS_PYTHON`` (e.g. a numpy 1.24 venv), else
    this one.

    ``command_prefix`` goes between the interpreter and the harness path (tests use it to run
    the harness under an audit hook).
    """
    manifest = load_manifest(bench)
    dirs = stage(bench, work_dir, with_test=phase == "score")
    out = work_dir / f"{phase}-out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    scratch = work_dir / f"{phase}-tmp"
    scratch.mkdir(exist_ok=True)
    config_path = work_dir / "run.json"
    config_path.write_text(json.dumps(run_config, indent=1), encoding="utf-8")
    threads = str(math.ceil(float(manifest["limits"]["cpus"])))
    env = {
        "REPRISE_PHASE": phase,
        "REPRISE_SEED": str(seed),
        "REPRISE_RUN_CONFIG": str(config_path),
        "REPRISE_HARNESS_DIR": str(dirs["harness"]),
        "REPRISE_TRAIN_DIR": str(dirs["train"]),
        "REPRISE_OUTPUT": str(out),
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PATH": DEFAULT_PATH,
    }
    if phase == "ingest":
        if package_dir is None:
            raise ValueError("ingest needs a package directory")
        package_copy = work_dir / "package"
        if not package_copy.exists():
            shutil.copytree(package_dir, package_copy, ignore=shutil.ignore_patterns("__pycache__"))
        env["REPRISE_PACKAGE_DIR"] = str(package_copy)
        cwd = package_copy
    elif phase == "score":
        if artifacts_dir is None:
            raise ValueError("score needs the artifacts directory of ingest")
        env["REPRISE_TEST_DIR"] = str(dirs["test"])
        env["REPRISE_ARTIFACTS_DIR"] = str(artifacts_dir)
        cwd = dirs["harness"]
    else:
        raise ValueError(f"unknown phase {phase!r}")
    env.update(extra_env or {})
    python = python or os.environ.get("REPRISE_HARNESS_PYTHON") or sys.executable
    command = [python, *(command_prefix or []), str(dirs["harness"] / "harness.py"), phase]
    returncode, stdout, stderr, wall, cpu = _execute(
        command, cwd=cwd, env=env, timeout=timeout or float(manifest["limits"]["timeout_s"])
    )
    return PhaseResult(
        phase=phase,
        returncode=returncode,
        output_dir=out,
        stdout=stdout,
        stderr=stderr,
        wall_s=wall,
        cpu_s=cpu,
        document=_read_json(out / "metrics.json") if phase == "score" else None,
        error=_read_json(out / "error.json"),
    )


def run_job(
    bench: Path,
    seed: int,
    *,
    work_dir: Path,
    package_dir: Path,
    run_config: dict[str, Any] | None = None,
    **kwargs: Any,
) -> JobResult:
    """Ingest then, if it succeeded, score; ``run_config`` defaults to the package's own."""
    work_dir.mkdir(parents=True, exist_ok=True)
    if run_config is None:
        run_config = make_run_config(bench, seed, package=load_package(package_dir))
    ingest = run_phase(
        bench,
        "ingest",
        seed,
        work_dir=work_dir,
        run_config=run_config,
        package_dir=package_dir,
        **kwargs,
    )
    if ingest.returncode != 0:
        return JobResult(ingest)
    score = run_phase(
        bench,
        "score",
        seed,
        work_dir=work_dir,
        run_config=run_config,
        artifacts_dir=ingest.output_dir,
        **kwargs,
    )
    return JobResult(ingest, score)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run a benchmark's harness on a package locally.")
    parser.add_argument("benchmark", help="benchmark id or folder")
    parser.add_argument("package", type=Path, help="package folder (holds reprise.toml)")
    parser.add_argument(
        "--seed", type=int, action="append", help="repeatable; default: the claim's"
    )
    parser.add_argument("--work-dir", type=Path, help="keep outputs here (default: a temp dir)")
    args = parser.parse_args()

    bench = benchmark_dir(args.benchmark)
    package = load_package(args.package)
    seeds = args.seed or package.get("claim", {}).get("seeds", [0])
    root = args.work_dir or Path(tempfile.mkdtemp(prefix="reprise-run-"))
    failed = False
    for seed in seeds:
        result = run_job(bench, seed, work_dir=root / f"seed-{seed}", package_dir=args.package)
        if result.ok and result.score is not None:
            shown = json.dumps(result.score.metrics)
            print(f"seed {seed}: {shown}  ({result.wall_s:.2f} s, {result.cpu_s:.2f} s CPU)")
            continue
        failed = True
        last = result.score or result.ingest
        reason = last.error or last.stderr[-800:]
        print(f"seed {seed}: {last.phase} exited {last.returncode}: {reason}")
    print(f"outputs in {root}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    main()
