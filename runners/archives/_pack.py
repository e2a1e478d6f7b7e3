"""Packing a directory into a deterministic .tar.gz, under the same rules the server applies."""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from runners.archives._entries import (
    _SKIP_DIRS,
    _SKIP_FILES,
    MANIFEST,
    ArchiveError,
    ArchiveLimits,
    Kind,
    PackSummary,
    _layout,
    _printable,
    _refuse,
    _Tally,
)


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
