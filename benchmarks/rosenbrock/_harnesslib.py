"""Shared machinery of the Reprise benchmark harnesses (docs/harness-contract.md, format 1).

Every benchmark folder ships a byte-identical copy of this file as ``_harnesslib.py``, because a
benchmark folder travels as a unit and may not import from its siblings. The canonical source is
``benchmarks/_tools/harnesslib.py``; edit it there and run ``benchmarks/_tools/sync_harnesslib.py``
(a test fails while a copy differs). Standard library and numpy only; numpy 1.24 to 2.x.

A harness module defines ``ingest()`` and ``score()`` and ends with ``main(ingest, score)``.
Failures the package (ingest) or its artifacts (score) are to blame for are raised as
``HarnessError`` and end the process with status 2 and ``error.json``; anything else is a harness
or infrastructure failure and ends with a traceback and status 1.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import math
import os
import random
import re
import stat
import sys
import tomllib
import traceback
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

FORMAT = 1
EXIT_PACKAGE_FAULT = 2
MAX_CURVE_POINTS = 1000
MAX_MESSAGE_CHARS = 600
MAX_RUN_CONFIG_BYTES = 256 * 1024
MAX_CURVE_BYTES = 256 * 1024
ENTRY_PATTERN = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
)


class HarnessError(Exception):
    """A failure to report in ``error.json`` with exit status 2 (the package's fault)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def fail(kind: str, message: str) -> NoReturn:
    """Stop the phase with ``error.json`` of ``kind`` and exit status 2."""
    raise HarnessError(kind, message)


def describe_exception(exc: BaseException, limit: int = 240) -> str:
    """``ExcType: message`` on one line, shortened."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ----------------------------------------------------------------------------- environment


def env_dir(name: str) -> Path:
    """The directory named by environment variable ``name`` (a harness failure if unusable)."""
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"environment variable {name} is not set")
    path = Path(value)
    if not path.is_dir():
        raise RuntimeError(f"{name}={value} is not a directory")
    return path


def output_dir() -> Path:
    """``$REPRISE_OUTPUT``, the phase's only writable directory."""
    return env_dir("REPRISE_OUTPUT")


def run_seed() -> int:
    """The run's seed from ``$REPRISE_SEED``: a non-negative decimal integer."""
    value = os.environ.get("REPRISE_SEED", "")
    if not re.fullmatch(r"[0-9]{1,20}", value):
        raise RuntimeError(f"REPRISE_SEED must be a non-negative integer, got {value!r}")
    return int(value)


def run_config() -> dict[str, Any]:
    """``run.json`` from ``$REPRISE_RUN_CONFIG``, checked for the fields harnesses rely on."""
    path = os.environ.get("REPRISE_RUN_CONFIG")
    if not path:
        raise RuntimeError("environment variable REPRISE_RUN_CONFIG is not set")
    try:
        config = read_json_strict(Path(path), max_bytes=MAX_RUN_CONFIG_BYTES, max_depth=32)
    except ValueError as exc:
        raise RuntimeError(f"run.json: {exc}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise RuntimeError(f"{path}: not a run.json of format {FORMAT}")
    seed = config.get("seed")
    if seed is not None and seed != run_seed():
        raise RuntimeError(f"run.json seed {seed!r} differs from REPRISE_SEED {run_seed()}")
    return config


def manifest() -> dict[str, Any]:
    """The benchmark's own ``benchmark.toml`` (next to the harness)."""
    with (Path(__file__).resolve().parent / "benchmark.toml").open("rb") as handle:
        return tomllib.load(handle)


def data_path(which: str, *, verify: bool = True) -> Path:
    """The ``[data.<which>]`` file under ``$REPRISE_TRAIN_DIR`` / ``$REPRISE_TEST_DIR``.

    Its sha256 is checked against the manifest: a mismatch is an infrastructure failure.
    """
    entry = manifest()["data"][which]
    relative = Path(entry["path"])
    if relative.parts[0] == "data":
        relative = Path(*relative.parts[1:])
    path = env_dir(f"REPRISE_{which.upper()}_DIR") / relative
    if verify:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != entry["sha256"]:
            raise RuntimeError(f"{path}: sha256 {digest} does not match the manifest")
    return path


def load_data_npz(path: Path, spec: dict[str, tuple[np.dtype[Any], int]]) -> dict[str, np.ndarray]:
    """Arrays of a trusted data file: exact names, dtypes and numbers of dimensions."""
    with np.load(path, allow_pickle=False) as archive:
        if set(archive.files) != set(spec):
            raise RuntimeError(f"{path}: arrays {sorted(archive.files)}, expected {sorted(spec)}")
        arrays = {name: archive[name] for name in spec}
    for name, (dtype, ndim) in spec.items():
        if arrays[name].dtype != dtype or arrays[name].ndim != ndim:
            raise RuntimeError(f"{path}: {name} is {arrays[name].dtype}{arrays[name].shape}")
    return arrays


# ----------------------------------------------------------------------------- seeding


def rng_streams(seed: int, names: Sequence[str]) -> dict[str, np.random.Generator]:
    """Independent generators, one per source of randomness, all derived from ``seed``.

    Streams are spawned in the order of ``names``: append new names, never reorder.
    """
    children = np.random.SeedSequence(seed).spawn(len(names))
    return {name: np.random.default_rng(child) for name, child in zip(names, children, strict=True)}


def seed_global_state(seed: int) -> None:
    """Seed ``random`` and ``numpy.random``'s global state for code that uses them."""
    random.seed(seed)
    np.random.seed(seed % 2**32)


# ----------------------------------------------------------------------------- the package


def load_entry(config: dict[str, Any]) -> Callable[..., Any]:
    """Import ``entry.optimizer`` (``module:attribute``) from ``$REPRISE_PACKAGE_DIR``."""
    package_dir = env_dir("REPRISE_PACKAGE_DIR")
    entry = config.get("entry")
    spec = entry.get("optimizer") if isinstance(entry, dict) else None
    if not isinstance(spec, str) or not ENTRY_PATTERN.match(spec):
        fail(
            "entry_import",
            f"[entry] optimizer must look like 'module:Attribute' (got {spec!r}); "
            "name the module file without .py and the class in it.",
        )
    module_name, attribute = spec.split(":")
    sys.path.insert(0, str(package_dir))
    try:
        module = importlib.import_module(module_name)
    except BaseException as exc:  # the package's import-time code may raise anything
        if isinstance(exc, KeyboardInterrupt):
            raise
        traceback.print_exc()
        fail(
            "entry_import",
            f"Importing module '{module_name}' from the package failed "
            f"({describe_exception(exc)}); "
            "check [entry] optimizer in reprise.toml and that every import the module needs is "
            "in the base image (numpy and the standard library) or pinned in requirements.txt.",
        )
    origin = getattr(module, "__file__", None)
    if origin is None or not Path(origin).resolve().is_relative_to(package_dir.resolve()):
        fail(
            "entry_import",
            f"Module '{module_name}' resolved to {origin or 'a built-in module'} instead of a file "
            "of the package: its name clashes with a module of Python, numpy or the harness; "
            "rename it.",
        )
    factory = getattr(module, attribute, None)
    if factory is None:
        fail(
            "entry_import",
            f"Module '{module_name}' has no attribute '{attribute}'; "
            "check the name after the colon in [entry] optimizer.",
        )
    if not callable(factory):
        fail("entry_import", f"'{spec}' is not a class or function, so it cannot be called.")
    return factory


def build_optimizer(
    factory: Callable[..., Any], params: list[np.ndarray], config: dict[str, Any]
) -> Any:
    """``factory(params, **hyperparameters)``; rejections are ``bad_hyperparameters``."""
    hyperparameters = config.get("hyperparameters") or {}
    if not isinstance(hyperparameters, dict):
        fail("bad_hyperparameters", "[hyperparameters] must be a table of name = value pairs.")
    try:
        optimizer = factory(params, **hyperparameters)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        traceback.print_exc()
        shown = ", ".join(f"{k}={v!r}" for k, v in hyperparameters.items()) or "none"
        fail(
            "bad_hyperparameters",
            f"The optimizer's constructor rejected the hyperparameters ({shown}): "
            f"{describe_exception(exc)}; make [hyperparameters] match its keyword arguments.",
        )
    if not callable(getattr(optimizer, "step", None)):
        fail(
            "entry_import",
            f"The object built by [entry] optimizer ({type(optimizer).__name__}) has no "
            "step(grads) method.",
        )
    return optimizer


class StepGuard:
    """Calls ``optimizer.step`` and checks that every parameter stayed itself and finite."""

    def __init__(self, names: Sequence[str], params: list[np.ndarray]) -> None:
        self.names = list(names)
        self.params = params
        self.originals = tuple(params)
        self.layout = [(p.shape, p.dtype) for p in params]

    def step(self, optimizer: Any, grads: list[np.ndarray], step: int) -> None:
        """One update; ``step`` counts from 1 and only appears in messages."""
        try:
            optimizer.step(grads)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            traceback.print_exc()
            fail(
                "step_failed",
                f"optimizer.step raised at step {step}: {describe_exception(exc)}.",
            )
        self.check(step)

    def check(self, step: int) -> None:
        """Raise ``shape_changed`` or ``diverged`` if an update broke a parameter."""
        if len(self.params) != len(self.originals):
            fail(
                "shape_changed",
                f"At step {step} the params list changed length from {len(self.originals)} to "
                f"{len(self.params)}; update the given arrays in place and leave the list alone.",
            )
        for name, current, original, (shape, dtype) in zip(
            self.names, self.params, self.originals, self.layout, strict=True
        ):
            if current is not original:
                fail(
                    "shape_changed",
                    f"At step {step} parameter '{name}' was replaced by a new object; update it "
                    "in place (p -= lr * g, or p[...] = new_value) instead of rebinding it.",
                )
            if current.shape != shape or current.dtype != dtype:
                fail(
                    "shape_changed",
                    f"At step {step} parameter '{name}' changed from {dtype}{shape} to "
                    f"{current.dtype}{current.shape}; keep its shape and dtype.",
                )
            if not np.isfinite(current).all():
                fail(
                    "diverged",
                    f"At step {step} parameter '{name}' became NaN or infinite: the run diverged "
                    "(try a smaller learning rate); it counts as a failed seed.",
                )


def check_loss(loss: float, step: int) -> None:
    """``diverged`` when the training loss is no longer a finite number."""
    if not math.isfinite(loss):
        fail(
            "diverged",
            f"At step {step} the training loss became {loss} although the parameters are finite "
            "(they grew too large): the run diverged and counts as a failed seed.",
        )


# ----------------------------------------------------------------------------- artifacts


class Curve:
    """A training curve of at most ``MAX_CURVE_POINTS`` points: means over equal step intervals."""

    def __init__(self, total_steps: int) -> None:
        self.every = max(1, math.ceil(total_steps / (MAX_CURVE_POINTS - 1)))
        self.total_steps = total_steps
        self.steps: list[int] = []
        self.losses: list[float] = []
        self._sum = 0.0
        self._count = 0

    def start(self, loss: float) -> None:
        """The loss before the first update, recorded as step 0."""
        self.steps.append(0)
        self.losses.append(float(loss))

    def add(self, step: int, loss: float) -> None:
        """The loss seen at ``step`` (1-based); one point per ``every`` steps and at the end."""
        self._sum += float(loss)
        self._count += 1
        if step % self.every == 0 or step == self.total_steps:
            self.steps.append(step)
            self.losses.append(self._sum / self._count)
            self._sum, self._count = 0.0, 0

    def as_json(self) -> dict[str, list[Any]]:
        return {"step": self.steps[:MAX_CURVE_POINTS], "loss": self.losses[:MAX_CURVE_POINTS]}


def write_json(path: Path, document: Any) -> None:
    """Strict JSON (no NaN/Infinity), written in one go."""
    path.write_text(json.dumps(document, allow_nan=False, indent=1) + "\n", encoding="utf-8")


def write_ingest_outputs(params: dict[str, np.ndarray], curve: Curve) -> None:
    """``params.npz`` (plain float arrays) and ``curve.json`` into ``$REPRISE_OUTPUT``."""
    out = output_dir()
    with (out / "params.npz").open("wb") as handle:
        np.savez(handle, **{name: np.ascontiguousarray(value) for name, value in params.items()})
    write_json(out / "curve.json", curve.as_json())


def _read_regular_file(path: Path, max_bytes: int) -> bytes:
    """A regular file's bytes; ``ValueError`` for links, devices, absence or over ``max_bytes``."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ValueError(f"{path.name} is missing") from None
    except OSError as exc:
        raise ValueError(
            f"{path.name} cannot be opened as a regular file ({exc.strerror})"
        ) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{path.name} is not a regular file")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"{path.name} is larger than the {max_bytes}-byte cap")
    return data


def load_params(spec: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """The final parameters from ``$REPRISE_ARTIFACTS_DIR/params.npz``, strictly checked.

    Exactly the arrays of ``spec``, float64 of the given shapes, finite; no pickles, no extra
    members, no member larger than its array needs.
    """
    path = env_dir("REPRISE_ARTIFACTS_DIR") / "params.npz"
    expected_bytes = {name: 8 * math.prod(shape) for name, shape in spec.items()}
    try:
        data = _read_regular_file(path, sum(expected_bytes.values()) + 64 * 1024)
    except ValueError as exc:
        fail("invalid_output", f"{exc}: ingest must leave params.npz as a plain file.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        fail(
            "invalid_output", f"params.npz is not a valid .npz archive ({describe_exception(exc)})."
        )
    names = [member.filename for member in members]
    wanted = {f"{name}.npy" for name in spec}
    if len(names) != len(set(names)) or set(names) != wanted:
        fail(
            "invalid_output",
            f"params.npz holds {sorted(names)}; expected exactly {sorted(wanted)}.",
        )
    for member in members:
        limit = expected_bytes[member.filename[:-4]] + 4096
        if member.file_size > limit:
            fail("invalid_output", f"params.npz member {member.filename} is too large.")
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            for name in spec:
                arrays[name] = npz[name]
    except ValueError as exc:
        fail(
            "invalid_output",
            f"params.npz cannot be read without unpickling ({describe_exception(exc)}); "
            "parameters must be plain float arrays.",
        )
    except Exception as exc:
        fail("invalid_output", f"params.npz is corrupt ({describe_exception(exc)}).")
    for name, shape in spec.items():
        array = arrays[name]
        if array.dtype != np.float64 or array.shape != tuple(shape):
            fail(
                "invalid_output",
                f"params.npz array '{name}' is {array.dtype}{array.shape}; "
                f"expected float64{tuple(shape)}.",
            )
        if not np.isfinite(array).all():
            fail("invalid_output", f"params.npz array '{name}' contains NaN or infinite values.")
        arrays[name] = np.ascontiguousarray(array)
    return arrays


def load_curve() -> dict[str, list[Any]] | None:
    """The ingest curve, validated; ``None`` (and a note on stderr) if absent or malformed."""
    path = env_dir("REPRISE_ARTIFACTS_DIR") / "curve.json"
    if not path.exists() and not path.is_symlink():
        return None
    try:
        document = read_json_strict(path, max_bytes=MAX_CURVE_BYTES, max_depth=3)
        if not isinstance(document, dict) or set(document) != {"step", "loss"}:
            raise ValueError('expected exactly the keys "step" and "loss"')
        steps, losses = document["step"], document["loss"]
        if not isinstance(steps, list) or not isinstance(losses, list) or len(steps) != len(losses):
            raise ValueError('"step" and "loss" must be lists of equal length')
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in steps):
            raise ValueError("steps must be non-negative integers")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in losses):
            raise ValueError("losses must be numbers")
    except ValueError as exc:
        print(f"curve.json ignored: {exc}", file=sys.stderr)
        return None
    return {
        "step": steps[:MAX_CURVE_POINTS],
        "loss": [float(v) for v in losses[:MAX_CURVE_POINTS]],
    }


def write_metrics(
    metrics: dict[str, float], curve: dict[str, list[Any]] | None, *, self_reported: bool = False
) -> None:
    """``$REPRISE_OUTPUT/metrics.json``; every metric must be a finite number."""
    values: dict[str, float] = {}
    for name, value in metrics.items():
        number = float(value)
        if not math.isfinite(number):
            fail(
                "invalid_output",
                f"Metric {name} evaluates to {number}: the parameters are finite but too large "
                "to evaluate the model.",
            )
        values[name] = number
    document: dict[str, Any] = {"metrics": values}
    if curve is not None:
        document["curve"] = curve
    document["self_reported"] = self_reported
    write_json(output_dir() / "metrics.json", document)


# ----------------------------------------------------------------------------- strict JSON


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number; write finite numbers only")


def _json_depth(text: str) -> int:
    """The deepest nesting of arrays/objects in ``text`` (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def read_json_strict(
    path: Path, *, max_bytes: int, max_depth: int, max_number_chars: int = 64
) -> Any:
    """Parse a regular file of at most ``max_bytes`` as strict JSON.

    Refuses NaN/Infinity, duplicate keys, nesting deeper than ``max_depth``, number literals
    longer than ``max_number_chars`` and numbers that overflow to infinity, each with a
    ``ValueError`` whose message says what is wrong.
    """
    data = _read_regular_file(path, max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path.name} is not UTF-8 ({exc.reason})") from None
    if _json_depth(text) > max_depth:
        raise ValueError(f"{path.name} is nested more than {max_depth} levels deep")

    def number(literal: str) -> float | int:
        if len(literal) > max_number_chars:
            raise ValueError(f"a number literal of {len(literal)} characters is too long")
        value = float(literal) if any(c in literal for c in ".eE") else int(literal)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"the number {literal[:20]} overflows to infinity")
        return value

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise ValueError(f"duplicate key {key!r}")
            result[key] = value
        return result

    try:
        return json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=number,
            parse_int=number,
            object_pairs_hook=no_duplicates,
        )
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path.name} is not valid JSON ({exc.msg} at line {exc.lineno})"
        ) from None
    except RecursionError:
        raise ValueError(f"{path.name} is nested too deeply") from None


# ----------------------------------------------------------------------------- entry point


def main(ingest: Callable[[], None], score: Callable[[], None]) -> None:
    """Dispatch ``harness.py ingest|score``; report ``HarnessError`` as error.json + exit 2."""
    phases = {"ingest": ingest, "score": score}
    phase = sys.argv[1] if len(sys.argv) == 2 else None
    if phase not in phases:
        print("usage: harness.py ingest|score", file=sys.stderr)
        sys.exit(1)
    declared = os.environ.get("REPRISE_PHASE")
    if declared and declared != phase:
        print(f"REPRISE_PHASE={declared} but the harness was called for {phase}", file=sys.stderr)
        sys.exit(1)
    try:
        phases[phase]()
    except HarnessError as error:
        message = error.message
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 1] + "…"
        write_json(output_dir() / "error.json", {"kind": error.kind, "message": message})
        print(f"{phase} failed ({error.kind}): {message}", file=sys.stderr)
        sys.stdout.flush()
        sys.exit(EXIT_PACKAGE_FAULT)
