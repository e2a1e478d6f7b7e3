"""Reading what a sandboxed process wrote, on the host side, as hostile input.

A container can plant a symlink or a hard link where a file is expected, a FIFO that blocks a
reader forever, a file of gigabytes, or JSON with ``NaN``, 5,000-digit numbers and deep nesting.
Files are opened relative to their folder without following links and checked before reading;
JSON is parsed with every number and every level of nesting bounded.

Every refusal is an ``OutputError`` with a stable ``code``::

    missing          no such file (or no such folder)
    not_regular      a symlink, folder, FIFO, socket or device, or a file that cannot be opened
    hardlink         a regular file with more than one link (it may be a host file's twin)
    too_large        larger than the cap, before or while reading
    not_utf8         JSON that is not UTF-8
    bad_json         not JSON, or an object with a duplicate key
    non_finite       NaN, Infinity, -Infinity, or a number that overflows to infinity
    too_deep         nested deeper than allowed
    number_too_long  a number written with more characters than allowed
    not_a_number     a metric whose value is not a number (booleans included)
    unknown_metric   a metric name that is malformed or not one the benchmark defines
    not_an_object    metrics that are not a JSON object
    too_many_keys    an object with more keys than allowed
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import re
import stat
from collections.abc import Collection
from pathlib import Path
from typing import Any, NoReturn

log = logging.getLogger(__name__)

MIB = 1024 * 1024
METRICS_CAP = 1 * MIB  # metrics.json, curve.json and error.json: caps before reading
CURVE_CAP = 1 * MIB
ERROR_CAP = 64 * 1024
LOG_TAIL_MAX = 64 * 1024  # characters, as the server counts them
REASON_MAX = 500
MAX_METRICS = 64
MAX_CURVE_POINTS = 1000

_CHUNK = 1 << 16
_METRIC_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# A whole JSON string, or one bracket, or a lone quote (an unterminated string). Possessive
# quantifiers keep the scan linear even on '"\"\"\"...' with no closing quote.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{}"]', re.DOTALL)


class OutputError(Exception):
    """An output was refused; ``name`` is the file or metric at fault."""

    def __init__(self, code: str, name: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.name = name
        self.message = message

    def __reduce__(self) -> tuple[type[OutputError], tuple[str, str, str]]:
        return type(self), (self.code, self.name, self.message)  # survives a process pool


def _shown(value: object) -> str:
    """A name from the sandbox, safe to put in a message or a log line."""
    text = value if isinstance(value, str) and value.isprintable() else repr(value)
    return text if len(text) <= 80 else text[:80] + "..."


def read_output_file(directory: Path, name: str, max_bytes: int) -> bytes:
    """Read ``directory/name`` if it is a regular, singly-linked file of at most ``max_bytes``."""
    if not name or "/" in name or "\0" in name or name in (".", ".."):
        raise ValueError(f"{name!r} is not a plain file name")
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise OutputError("missing", name, f"the folder for {name} is missing") from None
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EACCES):
            raise
        raise OutputError("not_regular", name, f"the folder for {name} is not a folder") from None
    try:
        return _read_at(dir_fd, name, max_bytes)
    finally:
        os.close(dir_fd)


def _read_at(dir_fd: int, name: str, max_bytes: int) -> bytes:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO cannot block us
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        raise OutputError("missing", name, f"{name} was not written") from None
    except OSError as exc:  # ELOOP: a symlink; ENXIO: a socket; EACCES: chmod 000 by the package
        if exc.errno not in (errno.ELOOP, errno.ENXIO, errno.EACCES, errno.EPERM):
            raise
        raise OutputError("not_regular", name, f"{name} is not a readable regular file") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OutputError("not_regular", name, f"{name} is not a regular file")
        if st.st_nlink > 1:
            raise OutputError("hardlink", name, f"{name} has {st.st_nlink} hard links; expected 1")
        if st.st_size > max_bytes:
            raise OutputError("too_large", name, f"{name} is {st.st_size} B; cap {max_bytes} B")
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes and (chunk := os.read(fd, min(_CHUNK, max_bytes + 1 - total))):
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:  # it grew after fstat
            raise OutputError("too_large", name, f"{name} is over the cap of {max_bytes} B")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _check_depth(text: str, max_depth: int, name: str, label: str) -> None:
    """Refuse nesting deeper than ``max_depth`` before the recursive parser ever sees it."""
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        piece = match.group()
        if piece in ("[", "{"):
            depth += 1
            if depth > max_depth:
                raise OutputError("too_deep", name, f"{label} nests deeper than {max_depth} levels")
        elif piece in ("]", "}"):
            depth = max(depth - 1, 0)  # never undercount what follows a stray closer
        elif len(piece) == 1:  # an unterminated string: json.loads reports it precisely
            return


def parse_json_strict(
    raw: bytes,
    *,
    max_depth: int = 8,
    max_number_chars: int = 40,
    max_keys: int = 1000,
    name: str = "",
) -> Any:
    """Parse UTF-8 JSON with finite, short numbers, bounded nesting and unique keys.

    ``name`` (e.g. "metrics.json") goes into errors and their messages.
    """
    label = name or "the JSON"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OutputError("not_utf8", name, f"{label} is not UTF-8 (byte {exc.start})") from None
    _check_depth(text, max_depth, name, label)

    def refuse_constant(token: str) -> NoReturn:
        raise OutputError("non_finite", name, f"{label} holds {token}; numbers must be finite")

    def checked(token: str) -> str:
        if len(token) > max_number_chars:
            raise OutputError(
                "number_too_long",
                name,
                f"{label} holds a number of {len(token)} characters; at most {max_number_chars}",
            )
        return token

    def parse_float(token: str) -> float:
        value = float(checked(token))
        if not math.isfinite(value):
            refuse_constant(token)
        return value

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len(pairs) > max_keys:
            raise OutputError("too_many_keys", name, f"{label} has an object of >{max_keys} keys")
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise OutputError("bad_json", name, f"{label} repeats the key {_shown(key)}")
            result[key] = value
        return result

    try:
        return json.loads(
            text,
            parse_constant=refuse_constant,
            parse_int=lambda token: int(checked(token)),
            parse_float=parse_float,
            object_pairs_hook=unique,
        )
    except json.JSONDecodeError as exc:
        detail = f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
        raise OutputError("bad_json", name, f"{label} is not valid JSON: {detail}") from None
    except RecursionError:  # unreachable after _check_depth; kept so depth can never crash us
        raise OutputError("too_deep", name, f"{label} nests too deeply") from None


def parse_metrics(obj: Any, *, allowed: Collection[str] | None) -> dict[str, float]:
    """A flat ``{name: finite number}``; with ``allowed``, only those names."""
    if not isinstance(obj, dict):
        raise OutputError("not_an_object", "", "metrics must be a JSON object of name: number")
    result: dict[str, float] = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not _METRIC_NAME.fullmatch(key):
            raise OutputError(
                "unknown_metric",
                _shown(key),
                f"metric name {_shown(key)} is not 1-64 characters of A-Z a-z 0-9 _ . -",
            )
        if allowed is not None and key not in allowed:
            expected = ", ".join(sorted(allowed)[:20])
            raise OutputError(
                "unknown_metric", key, f"{key} is not a metric of this benchmark ({expected})"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OutputError("not_a_number", key, f"metric {key} is {_shown(value)}, not a number")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise OutputError("non_finite", key, f"metric {key} is not a finite number")
        result[key] = number
    return result


def directory_size(path: Path) -> int:
    """Total bytes of the regular files under ``path``; links are never followed.

    The walk holds one descriptor at a time and climbs back with ``..`` (checking it returns
    to the folder it left), so neither nesting thousands deep nor paths past PATH_MAX break it.
    Folders it may not open are skipped: the size-capped output mount is the real bound.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size if stat.S_ISREG(st.st_mode) else 0
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags)
    total = 0
    pending: list[tuple[tuple[int, int], list[str]]] = []  # per level: (dev, ino), subfolders
    try:
        while True:  # list the folder open as ``fd``, then move to the next one
            subfolders = []
            with os.scandir(fd) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            subfolders.append(entry.name)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except FileNotFoundError:
                        continue
            here = os.fstat(fd)
            pending.append(((here.st_dev, here.st_ino), subfolders))
            while True:
                remaining = pending[-1][1]
                child = _open_subfolder(fd, remaining.pop(), flags) if remaining else None
                if child is not None:
                    os.close(fd)
                    fd = child
                    break
                if remaining:
                    continue  # vanished, or not ours to open: skip it
                pending.pop()
                if not pending:
                    return total
                parent = os.open("..", flags, dir_fd=fd)
                os.close(fd)
                fd = parent
                here = os.fstat(fd)
                if (here.st_dev, here.st_ino) != pending[-1][0]:
                    return total  # the tree moved while it was walked: stop, never leave it
    finally:
        os.close(fd)


def _open_subfolder(fd: int, name: str, flags: int) -> int | None:
    try:
        return os.open(name, flags, dir_fd=fd)
    except OSError:  # vanished, replaced by a link, or chmod 000 by the package
        return None


# ---------------------------------------------------------------------------------- phase outputs


def read_metrics(
    output: Path, *, allowed: set[str] | None,
) -> tuple[dict[str, float], dict[str, list[float]] | None, bool]:
    """The score phase's metrics.json: ``(metrics, curve or None, self_reported)``."""
    doc = parse_json_strict(read_output_file(output, "metrics.json", METRICS_CAP),
                            name="metrics.json")
    if not isinstance(doc, dict) or "metrics" not in doc:
        raise OutputError("not_an_object", "metrics.json",
                          'metrics.json must be an object with a "metrics" object')
    metrics = parse_metrics(doc["metrics"], allowed=allowed)
    if len(metrics) > MAX_METRICS:
        raise OutputError("too_many_keys", "metrics.json",
                          f"metrics.json holds {len(metrics)} metrics; at most {MAX_METRICS}")
    curve = validate_curve(doc.get("curve")) if doc.get("curve") is not None else None
    return metrics, curve, doc.get("self_reported") is True


def read_curve(directory: Path) -> dict[str, list[float]] | None:
    """The ingest phase's curve.json, if present and valid (best effort: never fails a job)."""
    try:
        doc = parse_json_strict(read_output_file(directory, "curve.json", CURVE_CAP),
                                name="curve.json")
    except OutputError as exc:
        if exc.code != "missing":
            log.info("curve.json ignored: %s", exc.message)
        return None
    return validate_curve(doc)


def validate_curve(obj: Any) -> dict[str, list[float]] | None:
    """``{"step": [...], "loss": [...]}`` of equal length, finite numbers, at most 1,000 points
    (evenly thinned, last point kept); anything else is dropped (``None``)."""
    if not isinstance(obj, dict):
        return None
    step, loss = obj.get("step"), obj.get("loss")
    if not isinstance(step, list) or not isinstance(loss, list) or len(step) != len(loss):
        return None
    for value in (*step, *loss):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if not math.isfinite(float(value)):
            return None
    n = len(step)
    keep = range(n) if n <= MAX_CURVE_POINTS else sorted(
        {round(i * (n - 1) / (MAX_CURVE_POINTS - 1)) for i in range(MAX_CURVE_POINTS)})
    return {"step": [float(step[i]) for i in keep], "loss": [float(loss[i]) for i in keep]}


def error_reason(output: Path) -> str | None:
    """The ``message`` of a phase's error.json when it is present and valid."""
    try:
        doc = parse_json_strict(read_output_file(output, "error.json", ERROR_CAP),
                                name="error.json")
    except OutputError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("message"), str):
        return None
    message = one_line(doc["message"])
    return message or None


def last_line(log_tail: str) -> str | None:
    """The last non-blank line of a log, cleaned for a one-line reason."""
    for line in reversed(log_tail.splitlines()):
        cleaned = one_line(line)
        if cleaned:
            return cleaned
    return None


def clamp_tail(text: str, dropped: int) -> tuple[str, int]:
    """At most ``LOG_TAIL_MAX`` characters, the end kept; the cut is added to ``dropped``."""
    if len(text) <= LOG_TAIL_MAX:
        return text, dropped
    cut = text[:-LOG_TAIL_MAX]
    return text[-LOG_TAIL_MAX:], dropped + len(cut.encode("utf-8", errors="replace"))


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def one_line(text: str) -> str:
    """``text`` on one line: control characters and runs of blanks as one space, capped."""
    cleaned = " ".join(_CONTROL.sub(" ", text).split())
    return cleaned if len(cleaned) <= REASON_MAX else cleaned[: REASON_MAX - 3] + "..."
