"""Package archives and container tar streams, handled as hostile input.

An archive is inspected in one streaming pass before anything is written: every entry's name,
type, mode and declared size is checked, and the bytes really decompressed are counted as they
are read, so a header that lies cannot smuggle a bomb past the declared-size checks. Extraction
repeats the same checks, writes only regular files and folders that it creates itself, counts
the bytes really written, and removes the destination on any failure.

Every refusal is an ``ArchiveError`` whose ``code`` is a stable slug::

    unsupported_format   not a .tar.gz/.zip by its magic bytes, an encrypted or exotic zip member
    corrupt              damaged, truncated, or changed between inspection and extraction
    too_large            the compressed archive exceeds max_archive_bytes
    too_much_data        the declared or real uncompressed total exceeds max_total_bytes
    entry_too_large      one member exceeds max_entry_bytes (or read_member's cap)
    too_many_entries     more than max_entries members
    compression_ratio    a member or the whole archive expands more than max_ratio times
    path_traversal       a '..' component
    absolute_path        a name starting with '/'
    link_entry           a symbolic or hard link
    special_file         a device, FIFO, sparse file or unknown member type
    unsafe_mode          setuid, setgid or sticky bits
    bad_name             invalid UTF-8, control characters, '\\', a drive letter, over-long
    too_deep             more than max_depth path components
    duplicate_entry      a name twice, or a name that is both a file and a folder
    no_manifest          no reprise.toml where a package keeps it
    ambiguous_manifest   a second reprise.toml, or several top-level folders and none at the root
    manifest_not_regular reprise.toml is a link or a folder
    missing_entry        read_member: no such file in the archive
    disk_full            ENOSPC/EDQUOT while writing: infrastructure, not the package's fault
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import IO, BinaryIO

from runners.archives._entries import (
    _CHUNK,
    _DISK_FULL,
    MANIFEST,
    ArchiveEntry,
    ArchiveError,
    ArchiveLimits,
    ExtractResult,
    PackageLayout,
    PackSummary,
    _layout,
    _normalise,
    _refuse,
    _Tally,
)
from runners.archives._formats import (
    _package_format,
    _tar_reader,
    _translated,
    _walk_package,
    _walk_tar,
    detect_format,
)
from runners.archives._pack import pack_directory

__all__ = [
    "MANIFEST",
    "ArchiveEntry",
    "ArchiveError",
    "ArchiveLimits",
    "ExtractResult",
    "PackSummary",
    "PackageLayout",
    "detect_format",
    "extract_archive",
    "extract_tar_stream",
    "inspect_archive",
    "pack_directory",
    "read_member",
]


class _Writer:
    """Creates folders and files under a fresh ``dest``, counting the bytes really written."""

    def __init__(self, dest: Path, limits: ArchiveLimits) -> None:
        self.dest = dest
        self.limits = limits
        self.made = {""}
        self.file_count = 0
        self.byte_count = 0
        self.current = ""

    def mkdir(self, name: str) -> None:
        if name in self.made:
            return
        self.mkdir(name.rpartition("/")[0])  # depth is bounded by max_depth
        self.current = name
        path = self.dest / name
        os.mkdir(path, 0o700)
        os.chmod(path, 0o755)  # noqa: S103 - a folder others (the sandbox user) may list
        self.made.add(name)

    def write(self, name: str, opener: Callable[[], IO[bytes] | None], declared: int) -> None:
        self.mkdir(name.rpartition("/")[0])
        self.current = name
        source = opener()
        if source is None:
            raise _refuse("corrupt", name, "cannot be read")
        cap = min(declared, self.limits.max_entry_bytes)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.dest / name, flags, 0o600)
        try:
            os.fchmod(fd, 0o644)
            written = 0
            while chunk := source.read(_CHUNK):
                written += len(chunk)
                self.byte_count += len(chunk)
                if written > cap:
                    raise _refuse("entry_too_large", name, f"unpacks to more than {cap} B")
                if self.byte_count > self.limits.max_total_bytes:
                    raise _refuse("too_much_data", name, "brings the unpacked total past the cap")
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
            source.close()
        self.file_count += 1


@contextmanager
def _extracting(dest: Path, limits: ArchiveLimits) -> Iterator[_Writer]:
    """A fresh ``dest`` (0o700) that is removed entirely if anything at all goes wrong."""
    os.mkdir(dest, 0o700)  # FileExistsError: not ours to write into, nor to remove
    writer = _Writer(dest, limits)
    try:
        os.chmod(dest, 0o700)
        with _translated():
            try:
                yield writer
            except OSError as exc:
                if exc.errno not in _DISK_FULL:
                    raise
                raise _refuse(
                    "disk_full", writer.current, "could not be written: the disk is full"
                ) from exc
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def inspect_archive(
    path: Path,
    limits: ArchiveLimits,
    *,
    capture: Callable[[str, int], bool] | None = None,
    capture_budget: int = 4 << 20,
) -> PackageLayout:
    """Check every entry in one streaming pass, without extracting, and locate reprise.toml.

    ``capture(name, size)`` picks small regular files to keep in ``layout.captured`` during the
    same pass (the manifest, a requirements file), so a caller does not decompress twice;
    at most ``capture_budget`` bytes are kept.
    """
    fmt = _package_format(path, limits)
    tally = _Tally(limits)
    captured: dict[str, bytes] = {}
    budget = capture_budget
    with _translated():
        for entry, opener in _walk_package(path, fmt, tally, None):
            # every entry is checked as it streams past; wanted small files are kept
            if capture is None or entry.is_dir or entry.size > budget:
                continue
            if not capture(entry.name, entry.size):
                continue
            data = opener()
            if data is None:
                continue
            with data:
                content = data.read(entry.size + 1)
            if len(content) == entry.size:
                captured[entry.name] = content
                budget -= entry.size
    layout = _layout(tally)
    return PackageLayout(layout.entries, layout.prefix, captured)


def read_member(
    path: Path, name: str, max_bytes: int, *, limits: ArchiveLimits | None = None
) -> bytes:
    """One regular file's content (e.g. reprise.toml), at most ``max_bytes``, without extracting."""
    limits = limits or ArchiveLimits()
    fmt = _package_format(path, limits)
    wanted = _normalise(name, limits)
    with _translated():
        for entry, opener in _walk_package(path, fmt, _Tally(limits), None):
            if entry.name != wanted:
                continue
            if entry.is_dir:
                raise _refuse("missing_entry", name, "is a folder, not a file")
            if entry.size > max_bytes:
                raise _refuse("entry_too_large", name, f"is larger than {max_bytes} B")
            data = opener()
            if data is None:
                raise _refuse("corrupt", name, "cannot be read")
            with data:
                content = data.read(max_bytes + 1)
            if len(content) > max_bytes:
                raise _refuse("entry_too_large", name, f"is larger than {max_bytes} B")
            return content
    raise _refuse("missing_entry", name, "is not in the archive")


def extract_archive(path: Path, dest: Path, limits: ArchiveLimits) -> ExtractResult:
    """Inspect, then extract into a new ``dest``; on any failure ``dest`` is removed."""
    layout = inspect_archive(path, limits)  # refuses before a single byte is written
    fmt = _package_format(path, limits)
    tally = _Tally(limits)
    with _extracting(dest, limits) as writer:
        for entry, opener in _walk_package(path, fmt, tally, str(dest)):
            if entry.is_dir:
                writer.mkdir(entry.name)
            elif entry.name:
                writer.write(entry.name, opener, entry.size)
        if tuple(tally.entries) != layout.entries:
            raise ArchiveError("corrupt", "the archive changed while it was being extracted")
    return ExtractResult(dest / layout.prefix, writer.file_count, writer.byte_count)


def extract_tar_stream(
    stream: BinaryIO, dest: Path, limits: ArchiveLimits, *, strip_top: bool = False
) -> ExtractResult:
    """Extract an uncompressed tar stream (docker ``get_archive``) into a new ``dest``.

    With ``strip_top`` every entry must sit under one top-level folder, which is dropped.
    """
    tally = _Tally(limits)
    with (
        _extracting(dest, limits) as writer,
        _tar_reader(stream, limits, compressed=False) as (tar, feed),
    ):
        top: str | None = None
        for member, entry in _walk_tar(tar, feed, tally, str(dest)):
            name = entry.name
            if strip_top and name:
                first, _, name = name.partition("/")
                top = first if top is None else top
                if first != top:
                    raise _refuse("bad_name", member.name, f"is outside the top folder '{top}'")
                if not name and not entry.is_dir:
                    raise _refuse("bad_name", member.name, "is a file where a folder was expected")
            if entry.is_dir:
                writer.mkdir(name)
            elif name:
                writer.write(name, partial(tar.extractfile, member), entry.size)
    return ExtractResult(dest, writer.file_count, writer.byte_count)
