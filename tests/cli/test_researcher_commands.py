"""The researcher's commands: init writes a package the lint accepts; lint reports errors with
exit code 1; compare and power speak JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from tests.conftest import FIXTURE_BENCHMARKS
from tests.helpers import targz, toy_files, toy_manifest

runner = CliRunner()


def invoke(*args: str, input: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.output


def test_init_writes_a_skeleton_the_lint_accepts(tmp_path: Path) -> None:
    target = tmp_path / "my-technique"
    code, out = invoke(
        "init", str(target), "--benchmark", "toy", "--benchmarks-dir", str(FIXTURE_BENCHMARKS)
    )
    assert code == 0, out
    assert (target / "reprise.toml").is_file()
    assert (target / "my_optimizer.py").is_file()
    code, out = invoke(
        "lint",
        str(target),
        "--benchmarks-dir",
        str(FIXTURE_BENCHMARKS),
        "--server",
        "http://127.0.0.1:9",
    )
    assert code == 0, out
    assert "passes the server's checks" in out
    code, out = invoke(
        "init", str(target), "--benchmark", "toy", "--benchmarks-dir", str(FIXTURE_BENCHMARKS)
    )
    assert code == 1 or "not empty" in out


def test_lint_reports_errors_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(
        targz(toy_files(toy_manifest(metrics="[claim.metrics.accuracy]\nmean = 0.9\n")))
    )
    code, out = invoke(
        "lint",
        str(bad),
        "--benchmarks-dir",
        str(FIXTURE_BENCHMARKS),
        "--json",
        "--server",
        "http://127.0.0.1:9",
    )
    assert code == 1
    report = json.loads(out)
    assert report["errors"][0]["loc"] == "claim.metrics.accuracy"


def test_lint_of_a_directory_with_a_symlink_names_it(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    for name, content in toy_files().items():
        (pkg / name).write_text(content if isinstance(content, str) else content.decode())
    (pkg / "escape").symlink_to("/etc/passwd")
    code, out = invoke("lint", str(pkg), "--benchmarks-dir", str(FIXTURE_BENCHMARKS))
    assert code == 1
    assert "escape" in out


def test_compare_reads_json_from_stdin() -> None:
    payload = {
        "direction": "higher",
        "tolerance": 0.5,
        "claim": {"mean": 97.1, "values": [97.1, 96.8, 97.4, 97.0, 97.2]},
        "reproduced": [97.0, 96.9, 97.3, 96.8, 97.1],
    }
    code, out = invoke("compare", "-", input=json.dumps(payload))
    assert code == 0, out
    body = json.loads(out)
    metric = body["metrics"]["metric"]
    assert metric["verdict"] == "reproduced"
    assert metric["ci_low"] == pytest.approx(-0.3260031, abs=1e-6)


def test_compare_names_the_bad_field() -> None:
    code, out = invoke(
        "compare",
        "-",
        input=json.dumps(
            {"direction": "higher", "tolerance": -1, "claim": {"mean": 1}, "reproduced": [1, 2]}
        ),
    )
    assert code == 2
    assert "tolerance" in out


def test_power_answers_seeds_needed() -> None:
    code, out = invoke("power", "--sd", "0.2", "--tolerance", "0.5")
    assert code == 0, out
    body = json.loads(out)
    assert 0.8 <= body["power"] <= 1
    assert body["seeds_needed"] <= 5
