"""custom-command: run the package's own command and take its self-reported metrics.

``ingest`` runs ``[entry] command`` (an argv list, no shell) in the package directory with the
environment the harness was given (``REPRISE_SEED``, ``REPRISE_OUTPUT``, ``HOME``/``TMPDIR``,
thread limits); the command must write ``$REPRISE_OUTPUT/metrics.json`` as a flat JSON object
``{"metric_name": number}``. A first argument ``python`` or ``python3`` means the interpreter
running this harness. ``score`` validates that file strictly — exactly the metric names of the
claim (run.json ``claim_metrics``), finite numbers, no NaN/Infinity, no nesting, short number
literals, a size cap — and reports the numbers with ``"self_reported": true``.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from typing import Any

import _harnesslib as hl

MAX_METRICS_BYTES = 16 * 1024
MAX_NUMBER_CHARS = 40
MAX_DEPTH = 8
MAX_ARGS = 256
MAX_ARG_CHARS = 4096
PYTHON_ALIASES = {"python", "python3"}


def command_from(config: dict[str, Any]) -> list[str]:
    """The validated argv of ``entry.command``."""
    entry = config.get("entry")
    command = entry.get("command") if isinstance(entry, dict) else None
    if (
        not isinstance(command, list)
        or not command
        or len(command) > MAX_ARGS
        or not all(isinstance(arg, str) and arg and "\0" not in arg for arg in command)
        or any(len(arg) > MAX_ARG_CHARS for arg in command)
    ):
        hl.fail(
            "command_failed",
            '[entry] command must be a non-empty list of strings, e.g. ["python", "train.py"] '
            f"(got {command!r:.200}).",
        )
    argv = list(command)
    if argv[0] in PYTHON_ALIASES:
        argv[0] = sys.executable
    return argv


def ingest() -> None:
    config = hl.run_config()
    hl.run_seed()
    package_dir = hl.env_dir("REPRISE_PACKAGE_DIR")
    out = hl.output_dir()
    argv = command_from(config)
    shown = " ".join(config["entry"]["command"])
    sys.stdout.flush()
    try:
        completed = subprocess.run(argv, cwd=package_dir, env=dict(os.environ), check=False)
    except OSError as exc:
        hl.fail(
            "command_failed",
            f"The command '{shown}' could not be started ({exc.strerror}); check [entry] command "
            "and that the program exists in the base image or the package.",
        )
    if completed.returncode != 0:
        if completed.returncode < 0:
            how = f"was killed by signal {signal.Signals(-completed.returncode).name}"
        else:
            how = f"exited with status {completed.returncode}"
        hl.fail("command_failed", f"The command '{shown}' {how}; its output is in the log.")
    metrics_file = out / "metrics.json"
    if metrics_file.is_symlink() or not metrics_file.is_file():
        hl.fail(
            "command_failed",
            f"The command '{shown}' finished but did not write $REPRISE_OUTPUT/metrics.json "
            '(a JSON object such as {"val_mse": 0.123}).',
        )


def claimed_metric_names(config: dict[str, Any]) -> list[str]:
    claim_metrics = config.get("claim_metrics")
    if not isinstance(claim_metrics, dict) or not claim_metrics:
        raise RuntimeError("run.json names no claim_metrics; cannot validate metrics.json")
    return sorted(claim_metrics)


def validate_metrics(document: Any, names: list[str]) -> dict[str, float]:
    """The claimed metrics from the package's metrics.json, or ``ValueError`` saying why not."""
    if not isinstance(document, dict):
        raise ValueError('metrics.json must be a JSON object such as {"val_mse": 0.123}')
    unknown = sorted(set(document) - set(names))
    if unknown:
        raise ValueError(
            f"metrics.json reports {', '.join(map(repr, unknown))}, which the claim does not "
            f"name; report exactly {', '.join(map(repr, names))}"
        )
    missing = [name for name in names if name not in document]
    if missing:
        raise ValueError(
            f"metrics.json lacks the claimed metric(s) {', '.join(map(repr, missing))}"
        )
    values: dict[str, float] = {}
    for name in names:
        value = document[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(
                f"metric {name!r} is {type(value).__name__}, not a number; "
                "metrics.json must map each name directly to a number"
            )
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"metric {name!r} is not finite")
        values[name] = number
    return values


def score() -> None:
    config = hl.run_config()
    names = claimed_metric_names(config)
    path = hl.env_dir("REPRISE_ARTIFACTS_DIR") / "metrics.json"
    try:
        document = hl.read_json_strict(
            path,
            max_bytes=MAX_METRICS_BYTES,
            max_depth=MAX_DEPTH,
            max_number_chars=MAX_NUMBER_CHARS,
        )
        metrics = validate_metrics(document, names)
    except ValueError as exc:
        hl.fail("invalid_output", f"The package's metrics.json was rejected: {exc}.")
    hl.write_metrics(metrics, None, self_reported=True)


if __name__ == "__main__":
    hl.main(ingest, score)
