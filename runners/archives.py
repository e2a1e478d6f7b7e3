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

import errno
import gzip
import hashlib
import io
import os
import re
import shutil
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, BinaryIO, Literal

MANIFEST = "reprise.toml"

_CHUNK = 1 << 18  # 256 KiB reads; tarfile's default 10 KiB blocks cost more Python calls
_RATIO_FLOOR = 1 << 20  # below a MiB a high ratio is a file of blanks, not a bomb
_TAR_OVERHEAD = 4096  # per entry: its header, a long-name or PAX header, and padding
_METADATA_CAP = 1 << 20  # a long-name or PAX header is read into memory whole: bound it
_METADATA_TYPES = frozenset(
    {
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
    }
)
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_IGNORED_TOP = "__MACOSX"  # macOS Finder adds it beside the folder that was zipped
_ZIP_RECORD = b"PK\x01\x02"  # a central directory record: one per zip member
_ZIP_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DRIVE = re.compile(r"[A-Za-z]:")
_SKIP_DIRS = frozenset({".git", "__pycache__", ".venv", ".mypy_cache", ".pytest_cache"})
_SKIP_FILES = frozenset({".DS_Store"})
_CORRUPT = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    gzip.BadGzipFile,
    EOFError,
    zlib.error,
    struct.error,
    ValueError,  # tarfile and zipfile parse hostile fields with int() and split()
    RecursionError,  # tarfile follows chains of PAX / long-name headers recursively
)

Kind = Literal["file", "dir", "symlink", "hardlink", "special"]


class ArchiveError(Exception):
    """An archive was refused; ``code`` is stable, ``message`` tells a person what to fix."""

    def __init__(self, code: str, message: str, entry: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.entry = entry

    def __reduce__(self) -> tuple[type[ArchiveError], tuple[str, str, str | None]]:
        return type(self), (self.code, self.message, self.entry)  # survives a process pool


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps for one archive; the defaults are the service's package limits."""

    max_archive_bytes: int = 100 * 2**20
    max_total_bytes: int = 512 * 2**20
    max_entries: int = 10_000
    max_entry_bytes: int = 256 * 2**20
    max_ratio: float = 200.0
    max_depth: int = 32
    max_name_bytes: int = 1024


@dataclass(frozen=True)
class ArchiveEntry:
    """One member as it will be extracted: normalised name, declared size (0 for folders)."""

    name: str
    size: int
    is_dir: bool


@dataclass(frozen=True)
class PackageLayout:
    """What inspection found: every entry, and the folder (``""`` or ``"top/"``) of the manifest."""

    entries: tuple[ArchiveEntry, ...]
    prefix: str
    captured: dict[str, bytes] = field(default_factory=dict)  # small members read on the way

    @property
    def manifest_name(self) -> str:
        return self.prefix + MANIFEST


@dataclass(frozen=True)
class ExtractResult:
    """Where the package root landed (``dest/prefix``) and what was really written."""

    root: Path
    file_count: int
    byte_count: int


@dataclass(frozen=True)
class PackSummary:
    """A packed directory: regular files, their bytes, the archive's size and sha256 (hex)."""

    file_count: int
    byte_count: int
    archive_bytes: int
    sha256: str


def _printable(name: str) -> str:
    """An entry name safe to show: bytes escaped if not UTF-8, control characters escaped."""
    try:
        raw = name.encode("utf-8", "surrogateescape")
        text = raw.decode("utf-8")
    except UnicodeEncodeError:
        text = repr(name)[1:-1]
    except UnicodeDecodeError:
        text = repr(raw)[2:-1]
    else:
        if not text.isprintable():
            text = repr(text)[1:-1]
    return text if len(text) <= 200 else text[:200] + "..."


def _refuse(code: str, name: str, reason: str) -> ArchiveError:
    shown = _printable(name)
    return ArchiveError(code, f"entry '{shown}' {reason}", entry=shown)


def _normalise(raw: str, limits: ArchiveLimits) -> str:
    """The entry's path relative to the package root ('./' and '//' dropped), or a refusal."""
    try:
        size = len(raw.encode("utf-8"))
    except UnicodeEncodeError:
        raise _refuse("bad_name", raw, "is not valid UTF-8; rename it") from None
    if _CONTROL.search(raw):
        raise _refuse("bad_name", raw, "contains control characters; rename it")
    if size > limits.max_name_bytes:
        raise _refuse("bad_name", raw, f"is longer than {limits.max_name_bytes} bytes")
    if "\\" in raw:
        raise _refuse("bad_name", raw, "uses '\\' as a separator; archive paths use '/'")
    if raw.startswith("/"):
        raise _refuse("absolute_path", raw, "is an absolute path; use paths relative to the root")
    if _DRIVE.match(raw):
        raise _refuse("bad_name", raw, "starts with a drive letter; use relative paths")
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise _refuse("path_traversal", raw, "uses '..' to point outside the archive")
    if len(parts) > limits.max_depth:
        raise _refuse("too_deep", raw, f"is nested deeper than {limits.max_depth} folders")
    if any(len(part.encode("utf-8")) > 255 for part in parts):
        raise _refuse("bad_name", raw, "has a path component longer than 255 bytes")
    return "/".join(parts)


class _Tally:
    """Checks entries one at a time, in archive order, against the limits and each other."""

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.entries: list[ArchiveEntry] = []
        self.files: set[str] = set()
        self.dirs: set[str] = set()  # explicit and implied by deeper names
        self.names: set[str] = set()  # explicit entries only
        self.count = 0
        self.declared = 0

    def add(self, raw: str, kind: Kind, size: int, mode: int) -> ArchiveEntry:
        limits = self.limits
        self.count += 1
        if self.count > limits.max_entries:
            raise ArchiveError(
                "too_many_entries",
                f"the archive holds more than {limits.max_entries} entries "
                f"(refused at '{_printable(raw)}'); remove generated or vendored files",
                entry=_printable(raw),
            )
        name = _normalise(raw, limits)
        if kind in ("symlink", "hardlink"):
            if name.rpartition("/")[2] == MANIFEST:
                raise _refuse("manifest_not_regular", raw, "is a link; make it a regular file")
            raise _refuse("link_entry", raw, f"is a {kind}; packages may not contain links")
        if kind == "special":
            raise _refuse("special_file", raw, "is not a regular file or folder")
        if mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX):
            raise _refuse("unsafe_mode", raw, "has setuid, setgid or sticky bits; clear them")
        if size < 0:
            raise _refuse("corrupt", raw, "declares a negative size")
        if kind == "file":
            if not name:
                raise _refuse("bad_name", raw, "is a file without a name")
            if size > limits.max_entry_bytes:
                raise _refuse("entry_too_large", raw, f"is larger than {limits.max_entry_bytes} B")
            self.declared += size
            if self.declared > limits.max_total_bytes:
                raise _refuse(
                    "too_much_data", raw, f"brings the total past {limits.max_total_bytes} B"
                )
        entry = ArchiveEntry(name, size if kind == "file" else 0, is_dir=kind == "dir")
        if not name:  # './', the archive's own root
            return entry
        if name in self.names or (kind == "file" and name in self.dirs):
            raise _refuse("duplicate_entry", raw, "appears twice (or as a file and a folder)")
        parts = name.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent in self.files:
                raise _refuse("duplicate_entry", raw, f"sits inside '{parent}', which is a file")
            self.dirs.add(parent)
        (self.files if kind == "file" else self.dirs).add(name)
        self.names.add(name)
        self.entries.append(entry)
        return entry


def _layout(tally: _Tally) -> PackageLayout:
    """Find reprise.toml: at the root, or directly inside the single top-level folder."""
    candidates = sorted(n for n in tally.files | tally.dirs if n.rpartition("/")[2] == MANIFEST)
    if not candidates:
        raise ArchiveError(
            "no_manifest",
            f"the archive has no {MANIFEST}; put it at the root or in one top-level folder",
        )
    tops = {e.name.split("/")[0] for e in tally.entries} - {_IGNORED_TOP}
    if MANIFEST in candidates:
        prefix = ""
    elif len(tops) == 1 and next(iter(tops)) in tally.dirs:
        prefix = next(iter(tops)) + "/"
    elif len(tops) > 1:
        shown = ", ".join(sorted(_printable(t) for t in tops)[:5])
        raise ArchiveError(
            "ambiguous_manifest",
            f"the archive has several top-level entries ({shown}) and no {MANIFEST} at its "
            f"root (found '{_printable(candidates[0])}'); zip one folder, or the files themselves",
            entry=_printable(candidates[0]),
        )
    else:
        prefix = ""
    manifest = prefix + MANIFEST
    if manifest not in candidates:
        raise _refuse(
            "no_manifest",
            candidates[0],
            f"is the only {MANIFEST}, but it must sit at the root or directly inside the "
            "single top-level folder",
        )
    if manifest in tally.dirs:
        raise _refuse("manifest_not_regular", manifest, "is a folder; it must be a regular file")
    others = [n for n in candidates if n != manifest]
    if others:
        raise _refuse(
            "ambiguous_manifest",
            others[0],
            f"is a second {MANIFEST} besides '{_printable(manifest)}'; keep only one",
        )
    return PackageLayout(tuple(tally.entries), prefix)


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


def _source_entries(src: Path, rel: str, tally: _Tally) -> Iterator[tuple[str, Kind, int]]:
    """The files and folders to pack, sorted, checked as entries; links refused."""
    with os.scandir(src / rel if rel else src) as it:
        children = sorted(it, key=lambda child: child.name)
    for child in children:
        name = f"{rel}/{child.name}" if rel else child.name
        if child.name in _SKIP_DIRS or child.name in _SKIP_FILES or child.name.endswith(".pyc"):
            continue
        st = child.stat(follow_symlinks=False)
        kind: Kind = "special"
        if stat.S_ISLNK(st.st_mode):
            kind = "symlink"
        elif stat.S_ISDIR(st.st_mode):
            kind = "dir"
        elif stat.S_ISREG(st.st_mode):
            kind = "file"
        tally.add(name, kind, st.st_size if kind == "file" else 0, 0)
        yield name, kind, st.st_size
        if kind == "dir":
            yield from _source_entries(src, name, tally)


def pack_directory(src: Path, out: Path, *, limits: ArchiveLimits | None = None) -> PackSummary:
    """Pack ``src`` into a new deterministic .tar.gz at ``out`` (sorted, mtime 0, owner 0)."""
    limits = limits or ArchiveLimits()
    if src.is_symlink():
        raise _refuse("link_entry", str(src), "is a symbolic link; pack the folder itself")
    manifest = src / MANIFEST
    if not manifest.is_symlink() and not manifest.exists():
        raise ArchiveError("no_manifest", f"'{_printable(str(src))}' has no {MANIFEST}")
    tally = _Tally(limits)
    entries = list(_source_entries(src, "", tally))
    _layout(tally)  # the same manifest rules the server applies
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        with (
            os.fdopen(fd, "wb") as f,
            gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as gz,
            tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            for name, kind, size in entries:
                info = tarfile.TarInfo(name)
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                if kind == "dir":
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                    continue
                info.size, info.mode = size, 0o644
                with _open_source(src / name, size) as data:
                    tar.addfile(info, data)
        archive_bytes = out.stat().st_size
        if archive_bytes > limits.max_archive_bytes:
            raise ArchiveError(
                "too_large",
                f"the packed archive is {archive_bytes} B; the limit is "
                f"{limits.max_archive_bytes} B",
            )
        digest = hashlib.sha256()
        with out.open("rb") as packed:
            while chunk := packed.read(1 << 20):
                digest.update(chunk)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return PackSummary(len(tally.files), tally.declared, archive_bytes, digest.hexdigest())


@contextmanager
def _open_source(path: Path, size: int) -> Iterator[IO[bytes]]:
    """A file to pack, opened without following links and unchanged since it was listed."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            raise _refuse("corrupt", str(path), "changed while it was being packed; try again")
        yield f
