"""Reading tar and zip archives as streams, with every entry checked as it passes.

The bytes really decompressed are counted while they are read (``_Feed``), so a header that
lies cannot smuggle a bomb past the declared-size checks of ``_Tally``.
"""

from __future__ import annotations

import gzip
import io
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import IO, BinaryIO, Literal

from runners.archives._entries import (
    _CHUNK,
    _CORRUPT,
    _METADATA_CAP,
    _METADATA_TYPES,
    _RATIO_FLOOR,
    _TAR_OVERHEAD,
    _ZIP_METHODS,
    _ZIP_RECORD,
    ArchiveEntry,
    ArchiveError,
    ArchiveLimits,
    Kind,
    _printable,
    _refuse,
    _Tally,
)


class _Counter:
    """Counts the compressed bytes consumed from the archive file."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data

    def seek(self, offset: int, /) -> int:
        raise io.UnsupportedOperation("a package is read as a stream")


class _Feed:
    """What tarfile reads: counts the bytes really decompressed and stops a bomb mid-read.

    This sees metadata too (long-name and PAX headers, whose declared sizes no member check
    ever sees), so it is the protection against headers that lie.
    """

    def __init__(
        self, source: BinaryIO | gzip.GzipFile, limits: ArchiveLimits, compressed: _Counter | None
    ) -> None:
        self.source = source
        self.limits = limits
        self.compressed = compressed
        self.cap = limits.max_total_bytes + (limits.max_entries + 4) * _TAR_OVERHEAD
        self.count = 0
        self.last = ""  # the last entry name seen, for messages

    def read(self, size: int = -1, /) -> bytes:
        data = self.source.read(_CHUNK if size < 0 or size > _CHUNK else size)
        self.count += len(data)
        if self.count > self.cap:
            raise self._error("too_much_data", f"unpacks to more than {self.cap} B")
        if self.compressed is not None and self.count > max(
            _RATIO_FLOOR, self.limits.max_ratio * self.compressed.count
        ):
            raise self._error(
                "compression_ratio",
                f"expands more than {self.limits.max_ratio:g} times, like a compression bomb",
            )
        return data

    def _error(self, code: str, what: str) -> ArchiveError:
        if not self.last:
            return ArchiveError(code, f"the archive {what}")
        shown = _printable(self.last)
        return ArchiveError(code, f"the archive {what} (read after entry '{shown}')", shown)

    def write(self, data: bytes, /) -> int:
        raise io.UnsupportedOperation("read-only stream")

    def tell(self) -> int:
        return self.count

    def seek(self, offset: int, /) -> int:
        raise io.UnsupportedOperation("a package is read as a stream")

    def close(self) -> None:
        pass


@contextmanager
def _tar_reader(
    stream: BinaryIO, limits: ArchiveLimits, *, compressed: bool
) -> Iterator[tuple[tarfile.TarFile, _Feed]]:
    counter = _Counter(stream) if compressed else None
    opened = gzip.GzipFile(fileobj=counter, mode="rb") if counter else nullcontext(stream)
    with opened as source:
        feed = _Feed(source, limits, counter)
        with tarfile.open(
            fileobj=feed,
            mode="r|",
            bufsize=_CHUNK,
            tarinfo=_StrictTarInfo,
            encoding="utf-8",
            errors="surrogateescape",
        ) as tar:
            yield tar, feed


class _StrictTarInfo(tarfile.TarInfo):
    """Refuses headers whose processing tarfile would let an attacker inflate in memory."""

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> _StrictTarInfo:
        info = super().frombuf(buf, encoding, errors)
        if info.type == tarfile.GNUTYPE_SPARSE:  # its map can chain extension blocks forever
            raise _refuse("special_file", info.name, "is a sparse file")
        if info.type in _METADATA_TYPES and info.size > _METADATA_CAP:
            raise _refuse(
                "entry_too_large", info.name, f"is a metadata header over {_METADATA_CAP} B"
            )
        return info

    def _proc_gnusparse_10(self, member: tarfile.TarInfo, *args: object) -> None:
        # tarfile would read an attacker-sized sparse map from the data; packages need none
        raise _refuse("special_file", member.name, "is a sparse file")


def _tar_kind(member: tarfile.TarInfo) -> Kind:
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.isdir():
        return "dir"
    if member.isreg() and not member.issparse():
        return "file"
    return "special"


def _walk_tar(
    tar: tarfile.TarFile, feed: _Feed, tally: _Tally, root: str | None
) -> Iterator[tuple[tarfile.TarInfo, ArchiveEntry]]:
    """Check each member as it streams past; at the end, check what follows the end marker."""
    for member in tar:
        feed.last = member.name
        entry = tally.add(member.name, _tar_kind(member), member.size, member.mode)
        if root is not None:  # extracting: tarfile's "data" filter as a second opinion
            try:
                tarfile.data_filter(member, root)
            except tarfile.FilterError as exc:
                raise _refuse("path_traversal", member.name, f"is refused ({exc})") from None
        yield member, entry
    while chunk := feed.read(_CHUNK):  # counted too, so trailing bytes cannot hide a bomb
        if chunk.strip(b"\0"):
            raise ArchiveError("corrupt", "the archive holds data after its end-of-archive marker")


def _count_zip_records(path: Path) -> int:
    """An upper bound on the member count, before zipfile builds an object per member."""
    count, tail = 0, b""
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            block = tail + chunk
            count += block.count(_ZIP_RECORD)
            tail = block[-3:]
    return count


@contextmanager
def _zip_reader(path: Path, limits: ArchiveLimits) -> Iterator[zipfile.ZipFile]:
    if _count_zip_records(path) > limits.max_entries:
        raise ArchiveError(
            "too_many_entries",
            f"the archive holds more than {limits.max_entries} entries; "
            "remove generated or vendored files",
        )
    try:
        archive = zipfile.ZipFile(path)
    except UnicodeDecodeError as exc:  # flagged UTF-8 that is not
        raise _refuse(
            "bad_name", exc.object.decode("utf-8", "surrogateescape"), "is not valid UTF-8"
        ) from None
    with archive:
        yield archive


def _zip_name(info: zipfile.ZipInfo) -> str:
    """The raw name; without the UTF-8 flag zipfile decoded cp437, so recover bytes and redo."""
    if info.flag_bits & 0x800:
        return info.orig_filename
    return info.orig_filename.encode("cp437").decode("utf-8", "surrogateescape")


def _zip_kind(info: zipfile.ZipInfo, raw: str) -> Kind:
    mode = info.external_attr >> 16  # unix st_mode, when the archiver recorded one
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "special"
    return "dir" if raw.endswith("/") or stat.S_ISDIR(mode) else "file"


def _walk_zip(
    archive: zipfile.ZipFile, tally: _Tally, archive_bytes: int
) -> Iterator[tuple[zipfile.ZipInfo, ArchiveEntry]]:
    """Check the whole central directory first: nothing is yielded from a refused zip."""
    limits = tally.limits
    checked = []
    for info in archive.infolist():
        raw = _zip_name(info)
        kind = _zip_kind(info, raw)
        entry = tally.add(
            raw, kind, info.file_size if kind == "file" else 0, info.external_attr >> 16
        )
        if not 0 <= info.header_offset < archive_bytes or info.compress_size > archive_bytes:
            raise _refuse("corrupt", raw, "points outside the archive")
        if kind == "file":
            if info.flag_bits & 0x1:
                raise _refuse("unsupported_format", raw, "is encrypted; upload it unencrypted")
            if info.compress_type not in _ZIP_METHODS:
                raise _refuse("unsupported_format", raw, "is not stored or deflated")
            if info.file_size > max(_RATIO_FLOOR, limits.max_ratio * info.compress_size):
                raise _refuse(
                    "compression_ratio",
                    raw,
                    f"expands more than {limits.max_ratio:g} times; this looks like a zip bomb",
                )
        checked.append((info, entry))
    if tally.declared > max(_RATIO_FLOOR, limits.max_ratio * archive_bytes):
        raise ArchiveError(  # members that share compressed data (overlapping entries)
            "compression_ratio",
            f"the archive expands more than {limits.max_ratio:g} times; this looks like a zip bomb",
        )
    yield from checked


@contextmanager
def _translated() -> Iterator[None]:
    """Turn library exceptions about damaged input into ArchiveError("corrupt")."""
    try:
        yield
    except ArchiveError:
        raise
    except NotImplementedError as exc:  # zipfile: strong encryption, patched data
        detail = _printable(str(exc))
        raise ArchiveError("unsupported_format", f"the archive uses {detail}") from exc
    except _CORRUPT as exc:
        detail = _printable(str(exc))
        raise ArchiveError("corrupt", f"the archive is damaged or truncated ({detail})") from exc


def detect_format(path: Path) -> Literal["tar.gz", "zip", "tar"]:
    """The archive format by magic bytes; "tar" (uncompressed) is for internal streams only."""
    with path.open("rb") as f:
        head = f.read(512)
    if head.startswith(b"\x1f\x8b"):
        return "tar.gz"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[257:262] == b"ustar":
        return "tar"
    raise ArchiveError(
        "unsupported_format",
        "the file is not a .tar.gz, .tgz or .zip archive (judged by its content, not its name)",
    )


def _package_format(path: Path, limits: ArchiveLimits) -> Literal["tar.gz", "zip"]:
    size = path.stat().st_size
    if size > limits.max_archive_bytes:
        raise ArchiveError(
            "too_large", f"the archive is {size} B; the limit is {limits.max_archive_bytes} B"
        )
    fmt = detect_format(path)
    if fmt == "tar":
        raise ArchiveError(
            "unsupported_format", "an uncompressed .tar is not a package; use .tar.gz or .zip"
        )
    return fmt


def _walk_package(
    path: Path, fmt: Literal["tar.gz", "zip"], tally: _Tally, root: str | None
) -> Iterator[tuple[ArchiveEntry, Callable[[], IO[bytes] | None]]]:
    """Every checked entry of a package, with a way to open a regular file's data."""
    if fmt == "zip":
        with _zip_reader(path, tally.limits) as archive:
            size = path.stat().st_size
            for info, entry in _walk_zip(archive, tally, size):
                yield entry, partial(archive.open, info)
        return
    with path.open("rb") as raw, _tar_reader(raw, tally.limits, compressed=True) as (tar, feed):
        for member, entry in _walk_tar(tar, feed, tally, root):
            yield entry, partial(tar.extractfile, member)
