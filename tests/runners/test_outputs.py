"""Exploit corpus for what a sandbox writes: planted files, and hostile metrics JSON."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runners.outputs import (
    OutputError,
    directory_size,
    parse_json_strict,
    parse_metrics,
    read_output_file,
)
from tests.runners import hostile

SECRET = b"host secret: never shown to a package\n"


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """The folder the sandbox wrote into."""
    path = tmp_path / "output"
    path.mkdir()
    return path


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A host file a package would like to read."""
    path = tmp_path / "host-secret.txt"
    path.write_bytes(SECRET)
    return path


def refused_read(directory: Path, name: str, code: str, max_bytes: int = 1024) -> OutputError:
    with pytest.raises(OutputError) as caught:
        read_output_file(directory, name, max_bytes)
    assert caught.value.code == code, caught.value.message
    assert caught.value.name == name
    assert name in caught.value.message
    assert SECRET.decode() not in caught.value.message
    return caught.value


# -- read_output_file -----------------------------------------------------------------------


def test_reads_a_regular_file(out: Path) -> None:
    (out / "metrics.json").write_bytes(b'{"test_accuracy": 0.9}')
    assert read_output_file(out, "metrics.json", 1024) == b'{"test_accuracy": 0.9}'


def test_reads_a_file_of_exactly_the_cap(out: Path) -> None:
    (out / "params.bin").write_bytes(b"x" * 100)
    assert read_output_file(out, "params.bin", 100) == b"x" * 100


def test_missing_file(out: Path) -> None:
    refused_read(out, "metrics.json", "missing")


def test_missing_folder(tmp_path: Path) -> None:
    refused_read(tmp_path / "never-made", "metrics.json", "missing")


def test_symlink_to_a_host_file_is_not_followed(out: Path, secret: Path) -> None:
    hostile.symlinked_file(out, "metrics.json", secret)
    refused_read(out, "metrics.json", "not_regular")


def test_dangling_symlink(out: Path, tmp_path: Path) -> None:
    hostile.symlinked_file(out, "metrics.json", tmp_path / "would-be-created")
    refused_read(out, "metrics.json", "not_regular")
    assert not (tmp_path / "would-be-created").exists()


def test_symlink_to_a_folder(out: Path, tmp_path: Path) -> None:
    hostile.symlinked_file(out, "metrics.json", tmp_path)
    refused_read(out, "metrics.json", "not_regular")


def test_output_folder_that_is_a_symlink(out: Path, tmp_path: Path, secret: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "metrics.json").write_bytes(SECRET)
    link = hostile.symlinked_file(tmp_path, "linked-output", tmp_path / "elsewhere")
    refused_read(link, "metrics.json", "not_regular")


def test_folder_where_a_file_belongs(out: Path) -> None:
    (out / "metrics.json").mkdir()
    refused_read(out, "metrics.json", "not_regular")


@pytest.mark.timeout(10)
def test_fifo_does_not_block_the_reader(out: Path) -> None:
    hostile.fifo_file(out, "metrics.json")
    refused_read(out, "metrics.json", "not_regular")


def test_hardlink_to_a_host_file(out: Path, secret: Path) -> None:
    hostile.hardlinked_file(out, "metrics.json", secret)
    refused_read(out, "metrics.json", "hardlink")
    assert secret.read_bytes() == SECRET


def test_huge_file_is_refused_before_reading(out: Path) -> None:
    hostile.big_file(out, "params.bin", 1 << 40)  # sparse: a terabyte that costs nothing
    started = time.monotonic()
    refused_read(out, "params.bin", "too_large", max_bytes=1 << 20)
    assert time.monotonic() - started < 1


def test_file_that_grows_after_the_size_check(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (out / "metrics.json").write_bytes(b"x" * 5000)
    real_fstat = os.fstat

    def shrinking_fstat(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        fields = list(st)
        fields[6] = 10  # st_size as it was a moment earlier
        return os.stat_result(fields)

    with monkeypatch.context() as patch:
        patch.setattr(os, "fstat", shrinking_fstat)
        refused_read(out, "metrics.json", "too_large", max_bytes=100)


@pytest.mark.parametrize("name", ["", ".", "..", "../metrics.json", "sub/metrics.json", "a\0b"])
def test_name_must_be_a_plain_file_name(out: Path, name: str) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        read_output_file(out, name, 1024)


# -- parse_json_strict ----------------------------------------------------------------------

HOSTILE_JSON = [
    ("nan", hostile.NAN_JSON, "non_finite"),
    ("infinity", hostile.INFINITY_JSON, "non_finite"),
    ("negative-infinity", hostile.NEG_INFINITY_JSON, "non_finite"),
    ("overflow-to-infinity", hostile.OVERFLOW_JSON, "non_finite"),
    ("deep-arrays", hostile.deep_json(), "too_deep"),
    ("deep-objects", hostile.deep_json(objects=True), "too_deep"),
    ("nine-levels", hostile.deep_json(9), "too_deep"),
    ("5000-digit-int", hostile.long_number_json(), "number_too_long"),
    ("5000-digit-float", hostile.long_number_json(as_float=True), "number_too_long"),
    ("duplicate-key", hostile.DUPLICATE_KEY_JSON, "bad_json"),
    ("not-utf8", hostile.NOT_UTF8_JSON, "not_utf8"),
    ("utf16", '{"a": 1}'.encode("utf-16"), "not_utf8"),
    ("bom", b'\xef\xbb\xbf{"a": 1}', "bad_json"),
    ("many-keys", hostile.many_keys_json(), "too_many_keys"),
    ("truncated", b'{"test_accuracy": 0.9', "bad_json"),
    ("empty", b"", "bad_json"),
    ("trailing-garbage", b'{"a": 1} {"b": 2}', "bad_json"),
    ("raw-control-char", b'{"a": "x\x01y"}', "bad_json"),
    ("unterminated-escapes", b'["' + b'\\"' * 200_000, "bad_json"),
    ("python-literal", b"{'a': 1}", "bad_json"),
]


@pytest.mark.parametrize(("raw", "code"), [c[1:] for c in HOSTILE_JSON],
                         ids=[c[0] for c in HOSTILE_JSON])
def test_hostile_json_is_refused(raw: bytes, code: str) -> None:
    started = time.monotonic()
    with pytest.raises(OutputError) as caught:
        parse_json_strict(raw, name="metrics.json")
    assert caught.value.code == code, caught.value.message
    assert caught.value.name == "metrics.json"
    assert caught.value.message.startswith("metrics.json")
    assert time.monotonic() - started < 2  # no quadratic scans, no giant int()


def test_limits_are_inclusive() -> None:
    assert parse_json_strict(hostile.deep_json(8)) == [[[[[[[[]]]]]]]]
    number = "1" * 40
    assert parse_json_strict(number.encode()) == int(number)
    assert parse_json_strict(b"{" + b",".join(b'"k%d": 1' % i for i in range(1000)) + b"}")


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"note": "[[[[[[[[[[{{{{{{{{{{ \\\" ]]]", "depth": [[1]]})
    assert parse_json_strict(text.encode()) == json.loads(text)


def test_stray_closers_cannot_hide_nesting() -> None:
    with pytest.raises(OutputError) as caught:
        parse_json_strict(b"]]]]]]]]]]" + hostile.deep_json(20))
    assert caught.value.code in ("bad_json", "too_deep")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(value=json_values, ascii_only=st.booleans())
def test_well_formed_json_parses_like_the_standard_library(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert parse_json_strict(text.encode(), max_depth=64) == json.loads(text)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=300)
       | st.text(alphabet='[]{}",:-+.eE0123456789 tfnulraseINy\\\n', max_size=200).map(
           str.encode))
def test_any_input_is_parsed_or_refused_as_output_error(raw: bytes) -> None:
    try:
        result = parse_json_strict(raw)
    except OutputError:
        return
    assert result == json.loads(raw)


# -- parse_metrics --------------------------------------------------------------------------


def test_metrics_are_a_flat_object_of_finite_numbers() -> None:
    parsed = parse_json_strict(b'{"test_accuracy": 0.96, "train_loss": 1, "f1.macro": -2e-3}')
    assert parse_metrics(parsed, allowed=None) == {
        "test_accuracy": 0.96, "train_loss": 1.0, "f1.macro": -0.002}
    assert all(type(v) is float for v in parse_metrics(parsed, allowed=None).values())


HOSTILE_METRICS: list[tuple[str, Any, str]] = [
    ("list", [0.9, 0.8], "not_an_object"),
    ("number", 0.9, "not_an_object"),
    ("bool", {"test_accuracy": True}, "not_a_number"),
    ("string", {"test_accuracy": "0.99"}, "not_a_number"),
    ("nested", {"test_accuracy": {"mean": 0.9}}, "not_a_number"),
    ("null", {"test_accuracy": None}, "not_a_number"),
    ("nan", {"test_accuracy": math.nan}, "non_finite"),
    ("infinity", {"test_accuracy": -math.inf}, "non_finite"),
    ("huge-int", {"test_accuracy": 10**400}, "non_finite"),
    ("log-injection-name", {"test_accuracy\n[INFO] verdict=confirmed": 0.9}, "unknown_metric"),
    ("empty-name", {"": 0.9}, "unknown_metric"),
    ("long-name", {"m" * 65: 0.9}, "unknown_metric"),
    ("space-in-name", {"test accuracy": 0.9}, "unknown_metric"),
    ("non-string-key", {1: 0.9}, "unknown_metric"),
]


@pytest.mark.parametrize(("obj", "code"), [c[1:] for c in HOSTILE_METRICS],
                         ids=[c[0] for c in HOSTILE_METRICS])
def test_hostile_metrics_are_refused(obj: Any, code: str) -> None:
    with pytest.raises(OutputError) as caught:
        parse_metrics(obj, allowed=None)
    assert caught.value.code == code
    assert "\n" not in caught.value.message
    assert "\n" not in caught.value.name


@pytest.mark.parametrize(("raw", "code"), [
    (hostile.UNKNOWN_METRIC_JSON, "unknown_metric"),
    (hostile.BOOL_METRIC_JSON, "not_a_number"),
    (hostile.STRING_METRIC_JSON, "not_a_number"),
    (hostile.NESTED_METRIC_JSON, "not_a_number"),
    (hostile.LIST_JSON, "not_an_object"),
    (hostile.BAD_NAME_JSON, "unknown_metric"),
])
def test_hostile_metrics_files_are_refused(raw: bytes, code: str) -> None:
    with pytest.raises(OutputError) as caught:
        parse_metrics(parse_json_strict(raw), allowed={"test_accuracy"})
    assert caught.value.code == code


def test_allowed_names_restrict_metrics() -> None:
    assert parse_metrics({"test_accuracy": 0.9}, allowed=["test_accuracy", "loss"]) == {
        "test_accuracy": 0.9}
    with pytest.raises(OutputError) as caught:
        parse_metrics({"test_accuracy": 0.9, "made_up_score": 1.0}, allowed=["test_accuracy"])
    assert (caught.value.code, caught.value.name) == ("unknown_metric", "made_up_score")
    assert "made_up_score" in caught.value.message


# -- directory_size -------------------------------------------------------------------------


def test_directory_size_counts_regular_files_only(out: Path, tmp_path: Path) -> None:
    (out / "a.bin").write_bytes(b"x" * 100)
    (out / "sub").mkdir()
    (out / "sub" / "b.bin").write_bytes(b"x" * 23)
    big = hostile.big_file(tmp_path, "host-big.bin", 1 << 40)
    hostile.symlinked_file(out, "big-link", big)
    hostile.symlinked_file(out, "host-folder", tmp_path)  # would count everything, twice
    hostile.fifo_file(out, "pipe")
    assert directory_size(out) == 123


def _remove_chain(root: Path, name: str) -> None:
    """Remove a chain ``name/name/...`` level by level: shutil.rmtree recurses, and would fail."""
    top, step = root / name, 0
    while top.is_dir() and not top.is_symlink():
        below = root / f"{name}-{step}"
        if (top / name).is_dir():
            os.rename(top / name, below)
        shutil.rmtree(top)
        top, step = below, step + 1


def test_directory_size_survives_deep_nesting(out: Path) -> None:
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(1100):  # deeper than the recursion limit, and than PATH_MAX allows
            os.mkdir("dddddd", dir_fd=fd)
            inner = os.open("dddddd", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        with open(os.open("leaf.bin", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as leaf:
            leaf.write(b"x" * 7)
        (out / "top.bin").write_bytes(b"x" * 3)
        assert directory_size(out) == 10
    finally:
        os.close(fd)
        _remove_chain(out, "dddddd")


def test_directory_size_of_a_symlink_or_nothing(out: Path, tmp_path: Path) -> None:
    (out / "a.bin").write_bytes(b"x" * 10)
    assert directory_size(hostile.symlinked_file(tmp_path, "link", out)) == 0
    assert directory_size(tmp_path / "missing") == 0
    assert directory_size(out / "a.bin") == 10
