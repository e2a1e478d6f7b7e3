"""custom-command: the package's command, and strict validation of its metrics.json."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from .benchkit import runlocal

BENCH = "custom-command"
CLAIM = {"val_mse": {"direction": "lower"}, "val_r2": {"direction": "higher"}}


def config(command: object = ("python", "train.py")) -> dict:
    bench = runlocal.benchmark_dir(BENCH)
    entry = {"command": list(command) if isinstance(command, tuple) else command}
    run_config = runlocal.make_run_config(bench, 0, entry=entry)
    run_config["claim_metrics"] = CLAIM
    return run_config


def score(tmp_path: Path, content: str | bytes | None) -> runlocal.PhaseResult:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    if isinstance(content, str):
        (artifacts / "metrics.json").write_text(content, encoding="utf-8")
    elif isinstance(content, bytes):
        (artifacts / "metrics.json").write_bytes(content)
    return runlocal.run_phase(
        runlocal.benchmark_dir(BENCH),
        "score",
        0,
        work_dir=tmp_path / "work",
        run_config=config(),
        artifacts_dir=artifacts,
    )


def test_valid_metrics_are_copied_as_self_reported(tmp_path: Path) -> None:
    result = score(tmp_path, '{"val_mse": 0.25, "val_r2": 1}')
    assert result.returncode == 0, result.stderr
    assert result.document == {"metrics": {"val_mse": 0.25, "val_r2": 1.0}, "self_reported": True}


INVALID = {
    "NaN": ('{"val_mse": NaN, "val_r2": 0.9}', "NaN"),
    "Infinity": ('{"val_mse": Infinity, "val_r2": 0.9}', "Infinity"),
    "overflow": ('{"val_mse": 1e999, "val_r2": 0.9}', "infinity"),
    "unknown metric": ('{"val_mse": 0.2, "val_r2": 0.9, "accuracy": 0.99}', "'accuracy'"),
    "missing metric": ('{"val_mse": 0.2}', "'val_r2'"),
    "nested": ('{"val_mse": {"mean": 0.2}, "val_r2": 0.9}', "not a number"),
    "deeply nested": ('{"val_mse": ' + "[" * 50 + "]" * 50 + ', "val_r2": 0.9}', "nested"),
    "huge number": ('{"val_mse": ' + "1" * 5000 + ', "val_r2": 0.9}', "too long"),
    "long fraction": ('{"val_mse": 0.' + "1" * 60 + ', "val_r2": 0.9}', "too long"),
    "oversize": ('{"val_mse": 0.2, "val_r2": 0.9}' + " " * 20_000, "cap"),
    "boolean": ('{"val_mse": true, "val_r2": 0.9}', "not a number"),
    "string": ('{"val_mse": "0.2", "val_r2": 0.9}', "not a number"),
    "duplicate key": ('{"val_mse": 0.2, "val_mse": 0.1, "val_r2": 0.9}', "duplicate"),
    "not an object": ("[0.2, 0.9]", "JSON object"),
    "not json": ("val_mse=0.2", "not valid JSON"),
    "not utf-8": (b'{"val_mse": 0.2, "val_r2": 0.9, "\xff": 1}', "UTF-8"),
    "missing file": (None, "missing"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_metrics_are_refused(case: str, tmp_path: Path) -> None:
    content, fragment = INVALID[case]
    result = score(tmp_path, content)
    assert result.returncode == 2, result.stderr
    assert result.error is not None
    assert result.error["kind"] == "invalid_output"
    assert fragment in result.error["message"], result.error["message"]
    assert not (result.output_dir / "metrics.json").exists()


def test_symlinked_metrics_are_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text('{"val_mse": 0.2, "val_r2": 0.9}')
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    os.symlink(target, artifacts / "metrics.json")
    result = runlocal.run_phase(
        runlocal.benchmark_dir(BENCH),
        "score",
        0,
        work_dir=tmp_path / "work",
        run_config=config(),
        artifacts_dir=artifacts,
    )
    assert result.returncode == 2
    assert result.error is not None
    assert "regular file" in result.error["message"]


def command_package(tmp_path: Path, script: str) -> Path:
    package = tmp_path / "package"
    package.mkdir()
    (package / "run.py").write_text(textwrap.dedent(script), encoding="utf-8")
    return package


def ingest(
    tmp_path: Path, package: Path, command: object = ("python", "run.py")
) -> runlocal.PhaseResult:
    return runlocal.run_phase(
        runlocal.benchmark_dir(BENCH),
        "ingest",
        7,
        work_dir=tmp_path / "work",
        run_config={**config(command), "seed": 7},
        package_dir=package,
    )


def test_command_sees_seed_and_output(tmp_path: Path) -> None:
    package = command_package(
        tmp_path,
        """
        import json, os, pathlib
        out = pathlib.Path(os.environ["REPRISE_OUTPUT"])
        seed = int(os.environ["REPRISE_SEED"])
        (out / "metrics.json").write_text(json.dumps({"val_mse": seed / 10, "val_r2": 0.5}))
        """,
    )
    result = ingest(tmp_path, package)
    assert result.returncode == 0, result.stderr
    assert json.loads((result.output_dir / "metrics.json").read_text())["val_mse"] == 0.7


@pytest.mark.parametrize(
    ("script", "command", "fragment"),
    [
        ("import sys; sys.exit(3)", ("python", "run.py"), "exited with status 3"),
        ("print('forgot to write metrics')", ("python", "run.py"), "did not write"),
        ("", ("no-such-program-xyz",), "could not be started"),
        ("", "python run.py", "list of strings"),
        (
            "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
            ("python", "run.py"),
            "SIGKILL",
        ),
    ],
)
def test_command_failures(tmp_path: Path, script: str, command: object, fragment: str) -> None:
    result = ingest(tmp_path, command_package(tmp_path, script), command)
    assert result.returncode == 2, result.stderr
    assert result.error is not None
    assert result.error["kind"] == "command_failed"
    assert fragment in result.error["message"], result.error["message"]
