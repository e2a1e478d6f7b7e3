"""Archive entries checked one at a time: names, kinds, sizes, and where reprise.toml sits.

The rules every reader (tar, zip, a directory being packed) applies to each entry, the refusal
type with its stable codes (listed in ``runners.archives``), and the limits.
"""

from __future__ import annotations

import errno
import gzip
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

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
