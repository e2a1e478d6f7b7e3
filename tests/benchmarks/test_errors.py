"""Bad packages and bad artifacts end with exit status 2 and an error.json a person can act on."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from .benchkit import SGD_CODE, runlocal

LOGREG = "logreg-digits"


def run_ingest(package: Path, tmp_path: Path, bench_id: str = LOGREG) -> runlocal.PhaseResult:
    bench = runlocal.benchmark_dir(bench_id)
    config = runlocal.make_run_config(bench, 0, package=runlocal.load_package(package))
    return runlocal.run_phase(
        bench, "ingest", 0, work_dir=tmp_path / "work", run_config=config, package_dir=package
    )


def assert_user_error(result: runlocal.PhaseResult, kind: str, *fragments: str) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.error is not None, "no error.json"
    assert set(result.error) == {"kind", "message"}
    assert result.error["kind"] == kind, result.error
    message = result.error["message"]
    assert isinstance(message, str)
    assert 30 <= len(message) <= 600
    assert "\n" not in message
    assert "Traceback" not in message
    for fragment in fragments:
        assert fragment in message, message
    assert not (result.output_dir / "params.npz").exists()
    return message


IMPORT_CASES = {
    "missing dependency": (
        "import not_a_real_module_xyz\n" + textwrap.dedent(SGD_CODE),
        "opt:Opt",
        "not_a_real_module_xyz",
    ),
    "missing module": (SGD_CODE, "elsewhere:Opt", "elsewhere"),
    "missing attribute": (SGD_CODE, "opt:Adamm", "Adamm"),
    "syntax error": ("class Opt(:\n    pass\n", "opt:Opt", "SyntaxError"),
    "raises at import": ("raise RuntimeError('needs a GPU')\n", "opt:Opt", "needs a GPU"),
    "malformed entry": (SGD_CODE, "opt.Opt", "module:Attribute"),
    "no step method": (
        "class Opt:\n    def __init__(self, params, lr):\n        pass\n",
        "opt:Opt",
        "step",
    ),
}
# module file name per case (default opt.py): a package module named like a stdlib module
MODULE_FILE = {"shadows the standard library": "json"}
IMPORT_CASES["shadows the standard library"] = (SGD_CODE, "json:Opt", "clashes")


@pytest.mark.parametrize("case", sorted(IMPORT_CASES))
def test_entry_import_errors(case: str, tmp_path: Path, make_package) -> None:
    code, entry, fragment = IMPORT_CASES[case]
    module = MODULE_FILE.get(case, "opt")
    result = run_ingest(make_package(code, entry=entry, module=module), tmp_path)
    assert_user_error(result, "entry_import", fragment)


@pytest.mark.parametrize(
    ("hyperparameters", "fragment"),
    [("lr_typo = 0.1", "lr_typo"), ("lr = -1.0", "lr must be positive")],
)
def test_bad_hyperparameters(
    hyperparameters: str, fragment: str, tmp_path: Path, make_package
) -> None:
    code = SGD_CODE.replace(
        "self.params, self.lr = params, lr",
        "if lr <= 0:\n                raise ValueError('lr must be positive')\n"
        "            self.params, self.lr = params, lr",
    )
    result = run_ingest(make_package(code, hyperparameters=hyperparameters), tmp_path)
    assert_user_error(result, "bad_hyperparameters", fragment)


SHAPE_CASES = {
    "rebinds the array": "self.params[0] = self.params[0] - 0.1 * grads[0]",
    "changes the dtype": "self.params[1] = self.params[1].astype('float32')",
    "reshapes in place": "self.params[0].shape = (640,)",
    "grows the list": "self.params.append(grads[0])",
}


@pytest.mark.parametrize("case", sorted(SHAPE_CASES))
def test_shape_changed(case: str, tmp_path: Path, make_package) -> None:
    code = f"""
    class Opt:
        def __init__(self, params, *, lr):
            self.params = params

        def step(self, grads):
            {SHAPE_CASES[case]}
    """
    result = run_ingest(make_package(code), tmp_path)
    assert_user_error(result, "shape_changed", "step 1")


def test_nan_parameter_is_diverged(tmp_path: Path, make_package) -> None:
    code = """
    import numpy as np

    class Opt:
        def __init__(self, params, *, lr):
            self.params, self.t = params, 0

        def step(self, grads):
            self.t += 1
            if self.t == 3:
                self.params[1][0] = np.nan
    """
    message = assert_user_error(
        run_ingest(make_package(code), tmp_path), "diverged", "step 3", "'b'"
    )
    assert "failed seed" in message


@pytest.mark.parametrize("bench_id", ["quadratic-illcond", "rosenbrock"])
def test_too_large_learning_rate_diverges(bench_id: str, tmp_path: Path, make_package) -> None:
    package = make_package(SGD_CODE, benchmark=bench_id, hyperparameters="lr = 50.0")
    assert_user_error(run_ingest(package, tmp_path, bench_id), "diverged", "diverged")


def test_exception_in_step(tmp_path: Path, make_package) -> None:
    code = SGD_CODE.replace(
        "for p, g in zip(self.params, grads):",
        "raise ZeroDivisionError('oops')\n            for p, g in zip(self.params, grads):",
    )
    assert_user_error(run_ingest(make_package(code), tmp_path), "step_failed", "ZeroDivisionError")


def test_sys_exit_in_constructor_is_reported(tmp_path: Path, make_package) -> None:
    code = "import sys\nclass Opt:\n    def __init__(self, params, lr):\n        sys.exit(0)\n"
    assert_user_error(run_ingest(make_package(code), tmp_path), "bad_hyperparameters", "SystemExit")


# ----------------------------------------------------------------------------- score phase


def good_params() -> dict[str, np.ndarray]:
    return {"W": np.zeros((64, 10)), "b": np.zeros(10)}


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


def bad_npz_object(path: Path) -> None:
    arrays = good_params()
    arrays["W"] = np.array([{"evil": 1}] * 640, dtype=object).reshape(64, 10)
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


ARTIFACT_CASES = {
    "missing": (lambda p: None, "missing"),
    "wrong shape": (
        lambda p: write_npz(p, {"W": np.zeros((10, 64)), "b": np.zeros(10)}),
        "(64, 10)",
    ),
    "wrong dtype": (
        lambda p: write_npz(p, {"W": np.zeros((64, 10), np.float32), "b": np.zeros(10)}),
        "float32",
    ),
    "nan": (lambda p: write_npz(p, {"W": np.full((64, 10), np.nan), "b": np.zeros(10)}), "NaN"),
    "pickled object array": (bad_npz_object, "unpickling"),
    "extra array": (
        lambda p: write_npz(p, {**good_params(), "extra": np.zeros(1)}),
        "expected exactly",
    ),
    "missing array": (lambda p: write_npz(p, {"W": np.zeros((64, 10))}), "expected exactly"),
    "not a zip": (lambda p: p.write_bytes(b"not an npz at all"), "not a valid .npz"),
    "symlink": (lambda p: os.symlink("/etc/hostname", p), "regular file"),
    "oversized": (lambda p: p.write_bytes(b"\0" * 200_000), "cap"),
}


@pytest.mark.parametrize("case", sorted(ARTIFACT_CASES))
def test_score_refuses_invalid_artifacts(case: str, tmp_path: Path) -> None:
    make, fragment = ARTIFACT_CASES[case]
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    make(artifacts / "params.npz")
    bench = runlocal.benchmark_dir(LOGREG)
    config = runlocal.make_run_config(bench, 0, entry={"optimizer": "opt:Opt"})
    result = runlocal.run_phase(
        bench, "score", 0, work_dir=tmp_path / "work", run_config=config, artifacts_dir=artifacts
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.error is not None
    assert result.error["kind"] == "invalid_output"
    assert fragment in result.error["message"], result.error["message"]
    assert not (result.output_dir / "metrics.json").exists()


@pytest.mark.parametrize(
    "curve",
    [
        '{"step": [0, 1], "loss": [1.0, NaN]}',
        '{"step": [0], "loss": [1, 2]}',
        "[]",
        '{"step": [0], "loss": ["x"]}',
    ],
)
def test_score_drops_an_invalid_curve_but_scores(curve: str, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    write_npz(artifacts / "params.npz", good_params())
    (artifacts / "curve.json").write_text(curve)
    bench = runlocal.benchmark_dir(LOGREG)
    config = runlocal.make_run_config(bench, 0, entry={"optimizer": "opt:Opt"})
    result = runlocal.run_phase(
        bench, "score", 0, work_dir=tmp_path / "work", run_config=config, artifacts_dir=artifacts
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.document is not None
    assert "curve" not in result.document
    with np.load(bench / "data" / "test.npz", allow_pickle=False) as test:
        share_of_zeros = float(np.mean(test["y"] == 0))  # an all-zero model predicts class 0
    assert result.metrics["test_accuracy"] == share_of_zeros
    assert "curve.json ignored" in result.stderr
