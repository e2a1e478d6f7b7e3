"""Exploit corpus for package archives: each hostile archive is refused, and nothing is written.

Layout of every test's scratch area: ``tmp_path/archives`` holds the inputs, extraction goes to
``tmp_path/dest``, and escaping entries aim at ``tmp_path`` itself; the whole scratch tree is
compared before and after, so an escape anywhere in it fails the test.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runners.archives import (
    ArchiveError,
    ArchiveLimits,
    detect_format,
    extract_archive,
    extract_tar_stream,
    inspect_archive,
    pack_directory,
    read_member,
)
from tests.runners import hostile

LIMITS = ArchiveLimits()
Builder = Callable[[Path, Path], Path]  # (archives dir, scratch root) -> archive


def tree(root: Path) -> set[str]:
    """Every path under ``root``, links not followed."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.add(os.path.relpath(os.path.join(dirpath, name), root))
    return found


def outside(tmp_path: Path) -> Path:
    """A folder beside the destination that link attacks aim at."""
    target = tmp_path / "outside"
    target.mkdir(exist_ok=True)
    return target


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    path = tmp_path / "archives"
    path.mkdir()
    return path


def refused(archive: Path, tmp_path: Path, code: str, limits: ArchiveLimits) -> ArchiveError:
    """Inspection and extraction both refuse with ``code``; the scratch tree is unchanged."""
    before = tree(tmp_path)
    dest = tmp_path / "dest"
    with pytest.raises(ArchiveError) as inspected:
        inspect_archive(archive, limits)
    with pytest.raises(ArchiveError) as extracted:
        extract_archive(archive, dest, limits)
    assert not dest.exists()
    assert not (tmp_path / hostile.ESCAPE_NAME).exists()
    assert tree(tmp_path) == before
    for exc in (inspected.value, extracted.value):
        assert exc.code == code, exc.message
        assert str(exc) == exc.message
        if exc.entry is not None:
            assert f"'{exc.entry}'" in exc.message
    return inspected.value


def _relaxed(**changes: float) -> ArchiveLimits:
    return ArchiveLimits(**changes)  # type: ignore[arg-type]


# (builder, code, the entry named, limits)
CASES: list[tuple[str, Builder, str, str | None, ArchiveLimits]] = [
    (
        "tar-traversal",
        lambda d, t: hostile.traversal_tar(d),
        "path_traversal",
        "../reprise-escape.txt",
        LIMITS,
    ),
    (
        "zip-traversal",
        lambda d, t: hostile.zip_traversal(d),
        "path_traversal",
        "../reprise-escape.txt",
        LIMITS,
    ),
    (
        "tar-absolute",
        lambda d, t: hostile.absolute_path_tar(d, t / "abs.txt"),
        "absolute_path",
        "{tmp}/abs.txt",
        LIMITS,
    ),
    (
        "zip-absolute",
        lambda d, t: hostile.absolute_path_tar(d, t / "abs.txt", fmt="zip"),
        "absolute_path",
        "{tmp}/abs.txt",
        LIMITS,
    ),
    (
        "tar-symlink",
        lambda d, t: hostile.symlink_tar(d, outside(t)),
        "link_entry",
        "escape",
        LIMITS,
    ),
    ("zip-symlink", lambda d, t: hostile.zip_symlink(d), "link_entry", "passwd", LIMITS),
    ("tar-hardlink", lambda d, t: hostile.hardlink_tar(d), "link_entry", "passwd", LIMITS),
    ("tar-device", lambda d, t: hostile.device_tar(d), "special_file", "null", LIMITS),
    ("zip-device", lambda d, t: hostile.device_tar(d, fmt="zip"), "special_file", "null", LIMITS),
    ("tar-fifo", lambda d, t: hostile.fifo_tar(d), "special_file", "pipe", LIMITS),
    (
        "tar-sparse-map",
        lambda d, t: hostile.sparse_map_bomb(d),
        "special_file",
        "sparse.bin",
        LIMITS,
    ),
    ("tar-setuid", lambda d, t: hostile.setuid_tar(d), "unsafe_mode", "run.sh", LIMITS),
    ("zip-setuid", lambda d, t: hostile.setuid_tar(d, fmt="zip"), "unsafe_mode", "run.sh", LIMITS),
    (
        "targz-bomb-declared",
        lambda d, t: hostile.targz_bomb(d),
        "entry_too_large",
        "zeros.bin",
        LIMITS,
    ),
    (
        "targz-bomb-real-ratio",
        lambda d, t: hostile.targz_bomb(d),
        "compression_ratio",
        "zeros.bin",
        _relaxed(max_entry_bytes=2 << 30, max_total_bytes=2 << 30),
    ),
    (
        "targz-bomb-lying-header",
        lambda d, t: hostile.targz_bomb(d, lie=True),
        "compression_ratio",
        "zeros.bin",
        LIMITS,
    ),
    (
        "targz-bomb-lying-header-real-total",
        lambda d, t: hostile.targz_bomb(d, lie=True),
        "too_much_data",
        "zeros.bin",
        _relaxed(max_ratio=1e12, max_total_bytes=16 << 20, max_entries=100),
    ),
    ("tar-pax-bomb", lambda d, t: hostile.pax_bomb(d), "entry_too_large", "././@PaxHeader", LIMITS),
    ("tar-pax-chain", lambda d, t: hostile.pax_chain(d), "corrupt", None, LIMITS),
    ("zip-bomb", lambda d, t: hostile.zip_bomb(d), "compression_ratio", "zeros.bin", LIMITS),
    (
        "zip-overlap-bomb",
        lambda d, t: hostile.zip_overlap_bomb(d),
        "compression_ratio",
        None,
        LIMITS,
    ),
    (
        "zip-entries",
        lambda d, t: hostile.entry_count_bomb(d, 1_001, fmt="zip"),
        "too_many_entries",
        None,
        _relaxed(max_entries=1_000),
    ),
    ("tar-deep", lambda d, t: hostile.deep_nesting(d), "too_deep", "d/" * 40 + "deep.txt", LIMITS),
    (
        "zip-deep",
        lambda d, t: hostile.deep_nesting(d, fmt="zip"),
        "too_deep",
        "d/" * 40 + "deep.txt",
        LIMITS,
    ),
    ("tar-long-name", lambda d, t: hostile.long_name(d), "bad_name", "n" * 199 + "/...", LIMITS),
    (
        "tar-invalid-utf8",
        lambda d, t: hostile.invalid_utf8_name(d),
        "bad_name",
        "bad\\xff.py",
        LIMITS,
    ),
    (
        "zip-invalid-utf8",
        lambda d, t: hostile.invalid_utf8_name(d, fmt="zip"),
        "bad_name",
        "bad\\xff.py",
        LIMITS,
    ),
    (
        "tar-control-chars",
        lambda d, t: hostile.control_char_name(d),
        "bad_name",
        "evil\\n\\x1b[31m.py",
        LIMITS,
    ),
    (
        "zip-backslash",
        lambda d, t: hostile.backslash_name(d),
        "bad_name",
        "..\\reprise-escape.txt",
        LIMITS,
    ),
    (
        "zip-drive-letter",
        lambda d, t: hostile.drive_letter_name(d),
        "bad_name",
        "C:/reprise-escape.txt",
        LIMITS,
    ),
    (
        "tar-duplicate",
        lambda d, t: hostile.duplicate_entry(d),
        "duplicate_entry",
        "reprise.toml",
        LIMITS,
    ),
    (
        "zip-duplicate",
        lambda d, t: hostile.duplicate_entry(d, fmt="zip"),
        "duplicate_entry",
        "reprise.toml",
        LIMITS,
    ),
    (
        "tar-file-folder-clash",
        lambda d, t: hostile.file_folder_clash(d),
        "duplicate_entry",
        "nesterov.py/x.py",
        LIMITS,
    ),
    (
        "zip-encrypted",
        lambda d, t: hostile.encrypted_zip(d),
        "unsupported_format",
        "secret.txt",
        LIMITS,
    ),
    (
        "tar-manifest-symlink",
        lambda d, t: hostile.manifest_symlink(d),
        "manifest_not_regular",
        "reprise.toml",
        LIMITS,
    ),
    (
        "zip-manifest-symlink",
        lambda d, t: hostile.manifest_symlink(d, fmt="zip"),
        "manifest_not_regular",
        "reprise.toml",
        LIMITS,
    ),
    (
        "tar-manifest-folder",
        lambda d, t: hostile.manifest_directory(d),
        "manifest_not_regular",
        "reprise.toml",
        LIMITS,
    ),
    (
        "tar-second-manifest",
        lambda d, t: hostile.second_manifest_deeper(d),
        "ambiguous_manifest",
        "vendor/other/reprise.toml",
        LIMITS,
    ),
    (
        "zip-second-manifest",
        lambda d, t: hostile.second_manifest_deeper(d, fmt="zip"),
        "ambiguous_manifest",
        "vendor/other/reprise.toml",
        LIMITS,
    ),
    (
        "tar-two-top-folders",
        lambda d, t: hostile.two_top_level_folders(d),
        "ambiguous_manifest",
        "a/reprise.toml",
        LIMITS,
    ),
    (
        "zip-two-top-folders",
        lambda d, t: hostile.two_top_level_folders(d, fmt="zip"),
        "ambiguous_manifest",
        "a/reprise.toml",
        LIMITS,
    ),
    ("tar-no-manifest", lambda d, t: hostile.no_manifest(d), "no_manifest", None, LIMITS),
    (
        "zip-no-manifest",
        lambda d, t: hostile.no_manifest(d, fmt="zip"),
        "no_manifest",
        None,
        LIMITS,
    ),
    (
        "tar-negative-size",
        lambda d, t: hostile.negative_size_tar(d),
        "corrupt",
        "negative.bin",
        LIMITS,
    ),
    ("targz-truncated", lambda d, t: hostile.truncated_targz(d), "corrupt", None, LIMITS),
    ("not-an-archive", lambda d, t: hostile.not_an_archive(d), "unsupported_format", None, LIMITS),
    (
        "plain-tar-package",
        lambda d, t: hostile.honest_package(d, fmt="tar"),
        "unsupported_format",
        None,
        LIMITS,
    ),
    (
        "archive-too-large",
        lambda d, t: hostile.honest_package(d),
        "too_large",
        None,
        _relaxed(max_archive_bytes=100),
    ),
    (
        "too-much-data-declared",
        lambda d, t: hostile.honest_package(d),
        "too_much_data",
        "data/notes.txt",
        _relaxed(max_total_bytes=20_000),
    ),
    (
        "entry-too-large-declared",
        lambda d, t: hostile.honest_package(d, fmt="zip"),
        "entry_too_large",
        "data/notes.txt",
        _relaxed(max_entry_bytes=10_000),
    ),
]


@pytest.mark.parametrize(
    ("build", "code", "entry", "limits"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_hostile_archive_is_refused(
    build: Builder,
    code: str,
    entry: str | None,
    limits: ArchiveLimits,
    inputs: Path,
    tmp_path: Path,
) -> None:
    archive = build(inputs, tmp_path)
    exc = refused(archive, tmp_path, code, limits)
    expected = entry.format(tmp=tmp_path) if entry is not None else None
    assert exc.entry == expected


def test_lying_zip_sizes_are_caught_while_reading(inputs: Path, tmp_path: Path) -> None:
    """Headers declare 1,000 bytes for 32 MiB: inspection cannot know, the capped read can."""
    archive = hostile.zip_bomb(inputs, lie=True)
    inspect_archive(archive, LIMITS)
    dest = tmp_path / "dest"
    with pytest.raises(ArchiveError) as caught:
        extract_archive(archive, dest, LIMITS)
    assert caught.value.code == "corrupt"
    assert not dest.exists()


def test_100k_tiny_files_are_refused_before_anything_is_written(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = hostile.entry_count_bomb(inputs)  # 100,000 empty files
    created: list[object] = []

    def refuse_creation(*args: object, **kwargs: object) -> int:
        created.append(args)
        raise AssertionError("nothing may be created before the archive is checked")

    with monkeypatch.context() as patch:
        patch.setattr(os, "open", refuse_creation)
        patch.setattr(os, "mkdir", refuse_creation)
        exc = refused(archive, tmp_path, "too_many_entries", LIMITS)
    assert exc.entry == "f/0009995"  # the 10,001st entry: the first over the limit
    assert created == []


# -- honest packages ------------------------------------------------------------------------

TOPS = [(None, ""), ("pkg", "pkg/"), (".", "")]


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
@pytest.mark.parametrize(("top", "prefix"), TOPS)
def test_honest_package_inspects(
    fmt: hostile.Fmt, top: str | None, prefix: str, inputs: Path
) -> None:
    layout = inspect_archive(hostile.honest_package(inputs, fmt=fmt, top=top), LIMITS)
    assert layout.prefix == prefix
    assert layout.manifest_name == prefix + "reprise.toml"
    files = {e.name: e.size for e in layout.entries if not e.is_dir}
    assert files == {prefix + name: len(data) for name, data in hostile.HONEST_FILES.items()}


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
@pytest.mark.parametrize(("top", "prefix"), TOPS)
def test_honest_package_extracts(
    fmt: hostile.Fmt, top: str | None, prefix: str, inputs: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    result = extract_archive(hostile.honest_package(inputs, fmt=fmt, top=top), dest, LIMITS)
    assert result.root == dest / prefix
    assert result.file_count == len(hostile.HONEST_FILES)
    assert result.byte_count == sum(map(len, hostile.HONEST_FILES.values()))
    for name, data in hostile.HONEST_FILES.items():
        path = result.root / name
        assert path.read_bytes() == data
        assert stat.S_IMODE(path.lstat().st_mode) == 0o644
    assert stat.S_IMODE((result.root / "data").stat().st_mode) == 0o755
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    written = {f"dest/{name}" for name in tree(dest)}
    assert tree(tmp_path) - written == {"dest", "archives"} | {
        f"archives/{p.name}" for p in inputs.iterdir()
    }


def test_finder_metadata_folder_does_not_count_as_a_second_top(inputs: Path) -> None:
    specs = [*hostile.honest_specs("pkg/"), hostile.Spec("__MACOSX/pkg/._reprise.toml", b"x")]
    layout = inspect_archive(hostile.build(inputs, "finder", specs, "zip"), LIMITS)
    assert layout.prefix == "pkg/"


def test_extraction_ignores_archive_modes_and_times(inputs: Path, tmp_path: Path) -> None:
    specs = [*hostile.honest_specs(), hostile.Spec("tool.sh", b"#!/bin/sh\n", mode=0o777)]
    result = extract_archive(hostile.build(inputs, "modes", specs), tmp_path / "dest", LIMITS)
    assert stat.S_IMODE((result.root / "tool.sh").stat().st_mode) == 0o644


def test_existing_destination_is_neither_used_nor_removed(inputs: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        extract_archive(hostile.honest_package(inputs), dest, LIMITS)
    assert (dest / "keep.txt").read_text() == "mine"


def test_disk_full_is_reported_and_cleaned_up(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = hostile.honest_package(inputs)
    real_write = os.write
    calls = []

    def write(fd: int, data: bytes) -> int:
        calls.append(fd)
        if len(calls) > 1:  # the first file lands, the second hits a full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    dest = tmp_path / "dest"
    with monkeypatch.context() as patch:
        patch.setattr(os, "write", write)
        with pytest.raises(ArchiveError) as caught:
            extract_archive(archive, dest, LIMITS)
    assert caught.value.code == "disk_full"
    assert caught.value.entry in hostile.HONEST_FILES
    assert f"'{caught.value.entry}'" in caught.value.message
    assert len(calls) == 2
    assert not dest.exists()


def test_detect_format_reads_content_not_names(inputs: Path) -> None:
    disguised = inputs / "really-a-targz.zip"
    disguised.write_bytes(hostile.honest_package(inputs).read_bytes())
    assert detect_format(disguised) == "tar.gz"
    assert detect_format(hostile.honest_package(inputs, fmt="zip")) == "zip"
    assert detect_format(hostile.honest_package(inputs, fmt="tar")) == "tar"
    with pytest.raises(ArchiveError) as caught:
        detect_format(hostile.not_an_archive(inputs))
    assert caught.value.code == "unsupported_format"


# -- read_member ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
@pytest.mark.parametrize("top", [None, "pkg", "."])
def test_read_member_reads_the_manifest(fmt: hostile.Fmt, top: str | None, inputs: Path) -> None:
    archive = hostile.honest_package(inputs, fmt=fmt, top=top)
    layout = inspect_archive(archive, LIMITS)
    assert read_member(archive, layout.manifest_name, 64 * 1024) == hostile.MANIFEST


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_read_member_is_capped(fmt: hostile.Fmt, inputs: Path) -> None:
    archive = hostile.honest_package(inputs, fmt=fmt)
    with pytest.raises(ArchiveError) as caught:
        read_member(archive, "reprise.toml", 10)
    assert (caught.value.code, caught.value.entry) == ("entry_too_large", "reprise.toml")


@pytest.mark.parametrize(
    ("name", "code"),
    [("nope.txt", "missing_entry"), ("data", "missing_entry"), ("../etc/passwd", "path_traversal")],
)
def test_read_member_refuses_what_is_not_a_member_file(name: str, code: str, inputs: Path) -> None:
    with pytest.raises(ArchiveError) as caught:
        read_member(hostile.honest_package(inputs), name, 1024)
    assert caught.value.code == code
    assert f"'{caught.value.entry}'" in caught.value.message


def test_read_member_refuses_a_hostile_archive(inputs: Path) -> None:
    with pytest.raises(ArchiveError) as caught:
        read_member(hostile.manifest_symlink(inputs), "reprise.toml", 1024)
    assert caught.value.code == "manifest_not_regular"


# -- tar streams from containers ------------------------------------------------------------


def stream(path: Path) -> io.BytesIO:
    return io.BytesIO(path.read_bytes())


def test_tar_stream_strips_the_top_folder(inputs: Path, tmp_path: Path) -> None:
    archive = hostile.honest_package(inputs, fmt="tar", top="output")
    dest = tmp_path / "dest"
    result = extract_tar_stream(stream(archive), dest, LIMITS, strip_top=True)
    assert result.root == dest
    assert (dest / "reprise.toml").read_bytes() == hostile.MANIFEST
    assert result.file_count == len(hostile.HONEST_FILES)


def test_tar_stream_keeps_the_top_folder_by_default(inputs: Path, tmp_path: Path) -> None:
    archive = hostile.honest_package(inputs, fmt="tar", top="output")
    result = extract_tar_stream(stream(archive), tmp_path / "dest", LIMITS)
    assert (result.root / "output" / "nesterov.py").read_bytes() == hostile.MODULE


STREAM_CASES: list[tuple[str, Builder, str, bool, ArchiveLimits]] = [
    (
        "symlink",
        lambda d, t: hostile.symlink_tar(d, outside(t), fmt="tar"),
        "link_entry",
        False,
        LIMITS,
    ),
    ("hardlink", lambda d, t: hostile.hardlink_tar(d, fmt="tar"), "link_entry", False, LIMITS),
    ("device", lambda d, t: hostile.device_tar(d, fmt="tar"), "special_file", False, LIMITS),
    ("fifo", lambda d, t: hostile.fifo_tar(d, fmt="tar"), "special_file", False, LIMITS),
    ("setuid", lambda d, t: hostile.setuid_tar(d, fmt="tar"), "unsafe_mode", False, LIMITS),
    (
        "traversal",
        lambda d, t: hostile.traversal_tar(d, fmt="tar"),
        "path_traversal",
        False,
        LIMITS,
    ),
    (
        "absolute",
        lambda d, t: hostile.absolute_path_tar(d, t / "abs.txt", fmt="tar"),
        "absolute_path",
        False,
        LIMITS,
    ),
    (
        "second-top-folder",
        lambda d, t: hostile.two_top_level_folders(d, fmt="tar"),
        "bad_name",
        True,
        LIMITS,
    ),
    (
        "entry-count",
        lambda d, t: hostile.entry_count_bomb(d, 2_000, fmt="tar"),
        "too_many_entries",
        False,
        _relaxed(max_entries=1_000),
    ),
    (
        "too-much-data",
        lambda d, t: hostile.honest_package(d, fmt="tar"),
        "too_much_data",
        False,
        _relaxed(max_total_bytes=20_000),
    ),
]


@pytest.mark.parametrize(
    ("build", "code", "strip", "limits"),
    [c[1:] for c in STREAM_CASES],
    ids=[c[0] for c in STREAM_CASES],
)
def test_hostile_tar_stream_is_refused_and_cleaned(
    build: Builder, code: str, strip: bool, limits: ArchiveLimits, inputs: Path, tmp_path: Path
) -> None:
    """The honest files come first, so they are on disk when the attack is met."""
    archive = build(inputs, tmp_path)
    before = tree(tmp_path)
    dest = tmp_path / "dest"
    with pytest.raises(ArchiveError) as caught:
        extract_tar_stream(stream(archive), dest, limits, strip_top=strip)
    assert caught.value.code == code
    if caught.value.entry is not None:
        assert f"'{caught.value.entry}'" in caught.value.message
    assert not dest.exists()
    assert tree(tmp_path) == before


# -- pack_directory -------------------------------------------------------------------------


def make_source(root: Path) -> Path:
    src = root / "src"
    for name, data in hostile.HONEST_FILES.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    (src / "empty").mkdir()
    for junk in (
        ".git/config",
        "__pycache__/nesterov.cpython-311.pyc",
        "stale.pyc",
        ".mypy_cache/x",
        ".pytest_cache/x",
        ".DS_Store",
        "data/.DS_Store",
    ):
        (src / junk).parent.mkdir(parents=True, exist_ok=True)
        (src / junk).write_bytes(b"junk")
    (src / ".venv").symlink_to(root)  # excluded by name, so never refused as a link
    return src


def test_pack_directory_is_deterministic(tmp_path: Path) -> None:
    src = make_source(tmp_path)
    first = pack_directory(src, tmp_path / "one.tar.gz")
    for path in src.rglob("*"):
        if not path.is_symlink():
            os.utime(path, (1_000_000, 1_000_000))
    second = pack_directory(src, tmp_path / "two.tar.gz")
    assert first == second
    assert (tmp_path / "one.tar.gz").read_bytes() == (tmp_path / "two.tar.gz").read_bytes()
    assert first.file_count == len(hostile.HONEST_FILES)
    assert first.byte_count == sum(map(len, hostile.HONEST_FILES.values()))


def test_pack_directory_normalises_and_excludes(tmp_path: Path) -> None:
    out = tmp_path / "pkg.tar.gz"
    pack_directory(make_source(tmp_path), out)
    with tarfile.open(out, "r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "README.md",
        "data",
        "data/notes.txt",
        "empty",
        "nesterov.py",
        "reprise.toml",
    ]
    for member in members:
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (
            0,
            0,
            0,
            "",
            "",
        )
        assert member.mode == (0o755 if member.isdir() else 0o644)
    with gzip.open(out) as raw:
        raw.read()
    assert out.read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime 0, and no file name stored


def test_pack_directory_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "pkg.tar.gz"
    pack_directory(make_source(tmp_path), out)
    result = extract_archive(out, tmp_path / "dest", LIMITS)
    assert result.root == tmp_path / "dest"
    for name, data in hostile.HONEST_FILES.items():
        assert (result.root / name).read_bytes() == data
    assert (result.root / "empty").is_dir()


@pytest.mark.parametrize(
    ("plant", "code", "entry"),
    [
        (
            lambda src: (src / "data" / "passwd").symlink_to("/etc/passwd"),
            "link_entry",
            "data/passwd",
        ),
        (lambda src: os.mkfifo(src / "pipe"), "special_file", "pipe"),
        (lambda src: (src / "reprise.toml").unlink(), "no_manifest", None),
    ],
)
def test_pack_directory_refuses(
    plant: Callable[[Path], object], code: str, entry: str | None, tmp_path: Path
) -> None:
    src = make_source(tmp_path)
    plant(src)
    out = tmp_path / "pkg.tar.gz"
    with pytest.raises(ArchiveError) as caught:
        pack_directory(src, out)
    assert (caught.value.code, caught.value.entry) == (code, entry)
    assert not out.exists()


@pytest.mark.parametrize(
    ("limits", "code"),
    [
        (_relaxed(max_entries=3), "too_many_entries"),
        (_relaxed(max_entry_bytes=1_000), "entry_too_large"),
        (_relaxed(max_archive_bytes=100), "too_large"),
    ],
)
def test_pack_directory_enforces_limits(limits: ArchiveLimits, code: str, tmp_path: Path) -> None:
    out = tmp_path / "pkg.tar.gz"
    with pytest.raises(ArchiveError) as caught:
        pack_directory(make_source(tmp_path), out, limits=limits)
    assert caught.value.code == code
    assert not out.exists()


# -- fuzzing: damaged archives fail as ArchiveError, never as anything else -----------------

_TAR = hostile._tar_bytes(hostile.honest_specs("pkg/"))


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    flips=st.lists(st.tuples(st.integers(0, len(_TAR) - 1), st.integers(0, 255)), max_size=8),
    as_zip=st.booleans(),
)
def test_mutated_archives_fail_cleanly(
    flips: list[tuple[int, int]], as_zip: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    scratch = tmp_path_factory.mktemp("fuzz")
    if as_zip:
        data = bytearray(hostile.honest_package(scratch, fmt="zip").read_bytes())
    else:
        data = bytearray(_TAR)
    for position, value in flips:
        data[position % len(data)] = value
    archive = scratch / "fuzzed"
    archive.write_bytes(bytes(data) if as_zip else gzip.compress(bytes(data), mtime=0))
    with contextlib.suppress(ArchiveError):
        inspect_archive(archive, LIMITS)
    try:
        extract_archive(archive, scratch / "dest", LIMITS)
    except ArchiveError:
        assert not (scratch / "dest").exists()


def test_inspection_captures_small_members_in_the_same_pass(tmp_path: Path) -> None:
    archive = hostile.honest_package(tmp_path)
    layout = inspect_archive(
        archive, ArchiveLimits(), capture=lambda name, size: name.endswith("reprise.toml")
    )
    assert layout.captured[layout.manifest_name] == hostile.MANIFEST
    assert list(layout.captured) == [layout.manifest_name]
    none = inspect_archive(
        archive, ArchiveLimits(), capture=lambda name, size: True, capture_budget=0
    )
    assert none.captured == {}
