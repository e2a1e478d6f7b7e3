"""The ingest phase never sees the hidden test data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from .benchkit import runlocal

AUDIT = Path(__file__).with_name("audit_open.py")
HIDDEN_DATA_BENCHMARKS = ["logreg-digits", "mlp-digits"]

# An optimizer that, while it is built, searches everything ingest hands it (and the folders
# around those) for the hidden test file, by name and by content, and reports what it saw.
SPY = """
import hashlib
import json
import os
from pathlib import Path

TEST_SHA = "{test_sha}"


def search():
    roots = set()
    for key, value in os.environ.items():
        if os.path.isdir(value):
            roots.add(Path(value))
            roots.add(Path(value).parent)
    roots.add(Path.cwd())
    by_name, by_hash, seen = [], [], 0
    for root in roots:
        for folder, _, files in os.walk(root):
            for name in files:
                path = Path(folder) / name
                seen += 1
                if name == "test.npz":
                    by_name.append(str(path))
                try:
                    if path.is_file() and path.stat().st_size < 50_000_000:
                        if hashlib.sha256(path.read_bytes()).hexdigest() == TEST_SHA:
                            by_hash.append(str(path))
                except OSError:
                    pass
    return {{"env": sorted(os.environ), "roots": sorted(map(str, roots)), "files_seen": seen,
            "by_name": by_name, "by_hash": by_hash}}


class Spy:
    def __init__(self, params, *, lr):
        self.params, self.lr = params, lr
        report = search()
        Path(os.environ["REPRISE_OUTPUT"], "spy.json").write_text(json.dumps(report))

    def step(self, grads):
        for p, g in zip(self.params, grads):
            p -= self.lr * g
"""


@pytest.mark.parametrize("bench_id", HIDDEN_DATA_BENCHMARKS)
def test_ingest_cannot_find_the_test_data(bench_id: str, tmp_path: Path, make_package) -> None:
    bench = runlocal.benchmark_dir(bench_id)
    manifest = runlocal.load_manifest(bench)
    test_file = bench / manifest["data"]["test"]["path"]
    test_sha = manifest["data"]["test"]["sha256"]
    assert hashlib.sha256(test_file.read_bytes()).hexdigest() == test_sha
    package = make_package(SPY.format(test_sha=test_sha), entry="opt:Spy", benchmark=bench_id)
    audit_log = tmp_path / "audit.jsonl"
    work = tmp_path / "work"
    config = runlocal.make_run_config(bench, 0, package=runlocal.load_package(package))

    result = runlocal.run_phase(
        bench,
        "ingest",
        0,
        work_dir=work,
        run_config=config,
        package_dir=package,
        command_prefix=[str(AUDIT)],
        extra_env={"REPRISE_TEST_AUDIT_LOG": str(audit_log)},
    )

    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((result.output_dir / "spy.json").read_text())
    assert "REPRISE_TEST_DIR" not in report["env"]
    assert "REPRISE_ARTIFACTS_DIR" not in report["env"]
    assert report["files_seen"] > 0  # it did look (the train file, the harness, itself)
    assert report["by_name"] == []
    assert report["by_hash"] == []

    # The harness's own ingest code path never opens or lists the test file, wherever it is.
    events = [json.loads(line) for line in audit_log.read_text().splitlines()]
    opened = [Path(e["path"]) for e in events if e["event"] == "open"]
    assert any(p.name == "train.npz" for p in opened)  # the hook saw the data being read
    assert not [p for p in opened if p.name == "test.npz"]
    assert not [e for e in events if "test" in Path(e["path"]).parts]
    assert not (work / "test").exists()


def test_score_gets_the_test_data(tmp_path: Path) -> None:
    """The counterpart: the score phase does read the hidden file (so the audit is meaningful)."""
    bench = runlocal.benchmark_dir("logreg-digits")
    example = runlocal.REPO / "examples" / "sgd-logreg"
    audit_log = tmp_path / "audit.jsonl"
    work = tmp_path / "work"
    config = runlocal.make_run_config(bench, 0, package=runlocal.load_package(example))
    ingest = runlocal.run_phase(
        bench, "ingest", 0, work_dir=work, run_config=config, package_dir=example
    )
    assert ingest.returncode == 0, ingest.stderr[-3000:]
    score = runlocal.run_phase(
        bench,
        "score",
        0,
        work_dir=work,
        run_config=config,
        artifacts_dir=ingest.output_dir,
        command_prefix=[str(AUDIT)],
        extra_env={"REPRISE_TEST_AUDIT_LOG": str(audit_log)},
    )
    assert score.returncode == 0, score.stderr[-3000:]
    opened = [Path(json.loads(line)["path"]) for line in audit_log.read_text().splitlines()]
    assert any(p.name == "test.npz" for p in opened)
