"""The host-tmpfs output store, and the helpers for the worker's own tmpfs mounts.

A run's outputs live in one of two stores with one interface (``prepare``, ``phase_mount``,
``verify``, ``archive``, ``full``, ``cleanup``):

``HostTmpfsOutputs`` (here; the worker is root on the engine's host, in its mount namespace)
    a tmpfs mounted by the worker itself, ``size=output_mb``, beside the host output folder;
    its ``out/`` subfolder is bind-mounted into the phase. Nothing but the worker unmounts it,
    so the outputs cannot vanish when a container stops, and no second container is needed.
    A root-owned sentinel next to ``out/`` (invisible to the phase) proves, before and after
    the copy, that the folder read is still the tmpfs the phase wrote. The bind source exists
    only inside that tmpfs, so an engine that does not see the worker's mounts refuses to
    create the container instead of handing the phase an unrelated folder.

``KeeperOutputs`` (``_docker_keeper``; a remote engine, a worker without CAP_SYS_ADMIN)
    a tmpfs Docker volume held mounted by a ``sleep`` container.

Either way the copy is a tar stream read by ``runners.archives.extract_tar_stream``, which
refuses links, special files, setuid bits, too many entries or bytes.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import re
import shutil
import stat
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol

import requests
import urllib3.exceptions
from docker.types import Mount as DockerMount

from runners.archives import ArchiveError, ArchiveLimits, extract_tar_stream
from runners.backends._docker_common import MIB, OVERFLOW_CODES
from runners.backends.base import BackendError, RunSpec

log = logging.getLogger("runners.backends.docker")

MOUNT_PREFIX = "reprise-output:"  # the tmpfs "device" name: reprise-output:<worker>:<run>
SANDBOX_UID = SANDBOX_GID = 65534
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x2, 0x4, 0x8
_MNT_DETACH = 0x2
_OCTAL = re.compile(r"\\([0-7]{3})")
_libc: Any = None


class MountUnavailable(Exception):
    """The worker cannot mount a tmpfs here (not root, no CAP_SYS_ADMIN, not Linux...)."""


# ---------------------------------------------------------------------- host mounts


def _syscall(name: str, *args: object) -> None:
    global _libc  # loaded once, on first use
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if getattr(_libc, name)(*args) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def mount_tmpfs(source: str, target: Path, options: str) -> None:
    """``mount -t tmpfs -o nosuid,nodev,noexec,OPTIONS SOURCE TARGET``."""
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    _syscall("mount", source.encode(), os.fsencode(target), b"tmpfs", flags, options.encode())


def unmount(target: Path) -> None:
    """Unmount ``target``; lazily when it is busy; nothing when it is no mount (any more)."""
    try:
        _syscall("umount2", os.fsencode(target), 0)
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # not a mount point
            return
        if exc.errno != errno.EBUSY:
            raise
        _syscall("umount2", os.fsencode(target), _MNT_DETACH)


def mount_source(worker_id: str, run_name: str) -> str:
    return f"{MOUNT_PREFIX}{worker_id}:{run_name}"


def output_mounts(worker_id: str) -> list[tuple[str, Path]]:
    """(run name, mount point) of this worker's output tmpfs mounts, from mountinfo."""
    found: list[tuple[str, Path]] = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    prefix = mount_source(worker_id, "")
    for line in lines:
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        dash = fields.index("-", 6)
        if len(fields) < dash + 3 or fields[dash + 1] != "tmpfs":
            continue
        source = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), fields[dash + 2])
        if source.startswith(prefix):
            point = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), fields[4])
            found.append((source[len(prefix) :], Path(point)))
    return found


def remove_mount(point: Path) -> None:
    unmount(point)
    with contextlib.suppress(OSError):
        point.rmdir()


class HostTmpfsOutputs:
    """A tmpfs the worker mounts beside ``spec.output.source``; ``out/`` is the phase's."""

    kind = "host-tmpfs"

    def __init__(self, spec: RunSpec, max_entries: int) -> None:
        self.spec = spec
        dest = spec.output.source
        self.root = dest.parent / f".{dest.name}.tmpfs-{uuid.uuid4().hex[:8]}"
        self.out = self.root / "out"
        self.sentinel = self.root / ".reprise-sentinel"
        self.token = uuid.uuid4().hex
        self.source = mount_source(spec.labels.get("reprise.worker", ""), spec.name)
        self.inodes = 4 * max_entries + 2
        self.max_depth = 40
        self.mounted = False
        self.device = -1

    def prepare(self) -> None:
        try:
            self.spec.output.source.parent.mkdir(parents=True, exist_ok=True)
            self.root.mkdir(mode=0o700)
        except OSError as exc:
            raise BackendError(f"creating the output mount point {self.root}: {exc}") from exc
        options = f"size={self.spec.limits.output_mb}m,nr_inodes={self.inodes},mode=0700"
        try:
            mount_tmpfs(self.source, self.root, f"{options},uid=0,gid=0")
        except OSError as exc:
            self.root.rmdir()
            raise MountUnavailable(f"mounting a tmpfs on {self.root}: {exc}") from exc
        self.mounted = True
        try:
            self.device = self.root.stat().st_dev
            self.out.mkdir(mode=0o700)
            os.chown(self.out, SANDBOX_UID, SANDBOX_GID)
            self.sentinel.write_text(self.token)
        except OSError as exc:
            raise BackendError(f"preparing the output tmpfs {self.root}: {exc}") from exc

    def phase_mount(self) -> DockerMount:
        return DockerMount(
            target=self.spec.output.target, source=str(self.out), type="bind", read_only=False
        )

    def ready(self) -> None:
        """Nothing to check before the phase starts: only the worker unmounts this tmpfs."""

    def verify(self) -> None:
        try:
            intact = (
                self.mounted
                and os.path.ismount(self.root)
                and self.root.stat().st_dev == self.device
                and self.sentinel.read_text() == self.token
            )
        except OSError:
            intact = False
        if not intact:
            raise BackendError(
                f"the output tmpfs of {self.spec.name} ({self.root}) was unmounted or replaced "
                "during the run: its outputs are lost (an infrastructure fault, not the package's)"
            )

    @contextlib.contextmanager
    def archive(self) -> Iterator[BinaryIO]:
        """The output folder as a tar stream (``output/...``), written by a thread into a pipe."""
        read_fd, write_fd = os.pipe()
        reader = os.fdopen(read_fd, "rb", buffering=1 << 16)
        writer = _TreeTar(self.out, os.fdopen(write_fd, "wb", buffering=1 << 16), self.max_depth)
        writer.start()
        try:
            yield reader
        finally:
            reader.close()  # a writer still writing gets EPIPE and stops
            writer.join()
            if writer.error is not None:  # replaces the "corrupt" refusal a cut stream causes
                raise BackendError(
                    f"reading the outputs of {self.spec.name} from {self.out}: {writer.error}"
                ) from writer.error

    def full(self) -> bool:
        """Whether the tmpfs has (almost) no blocks or inodes left."""
        try:
            fs = os.statvfs(self.root)
        except OSError:
            return False
        return fs.f_bavail * fs.f_frsize < 64 * 1024 or fs.f_favail == 0

    def cleanup(self) -> None:
        if self.mounted:
            try:
                unmount(self.root)
                self.mounted = False
            except OSError as exc:
                log.warning("could not unmount %s (reconcile will, at stop): %s", self.root, exc)
                return
        with contextlib.suppress(OSError):
            self.root.rmdir()


class _TreeTar(threading.Thread):
    """Writes a folder as a tar stream without following anything: links and FIFOs become link
    and FIFO entries (which the extractor refuses), sockets are skipped (as Docker does), a
    second name of a hard-linked file is a hard-link entry. Runs only after the phase's
    container stopped, so nothing changes under it. Folders nested deeper than ``max_depth``
    are listed but not entered: the extractor refuses them long before."""

    def __init__(self, root: Path, sink: IO[bytes], max_depth: int) -> None:
        super().__init__(daemon=True, name=f"outputs-tar-{root.parent.name}")
        self.root = root
        self.sink = sink
        self.max_depth = max_depth
        self.error: Exception | None = None
        self._seen: dict[tuple[int, int], str] = {}

    def run(self) -> None:
        try:
            with (
                self.sink,
                tarfile.open(fileobj=self.sink, mode="w|", format=tarfile.GNU_FORMAT) as tar,
            ):
                fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
                try:
                    tar.addfile(_info("output", os.fstat(fd)))
                    self._add_folder(tar, fd, "output", 1)
                finally:
                    os.close(fd)
        except BrokenPipeError:
            pass  # the reader stopped early (a refusal): it has its own error to report
        except Exception as exc:  # reported by archive() as an infrastructure error
            self.error = exc

    def _add_folder(self, tar: tarfile.TarFile, dir_fd: int, prefix: str, depth: int) -> None:
        with os.scandir(dir_fd) as it:
            entries = sorted(it, key=lambda entry: entry.name)
        for entry in entries:
            name = f"{prefix}/{entry.name}"
            st = entry.stat(follow_symlinks=False)
            info = _info(name, st)
            if stat.S_ISREG(st.st_mode):
                first = self._seen.setdefault((st.st_dev, st.st_ino), name)
                if st.st_nlink > 1 and first != name:
                    info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
                    tar.addfile(info)
                    continue
                flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                with os.fdopen(os.open(entry.name, flags, dir_fd=dir_fd), "rb") as f:
                    tar.addfile(info, f)
            elif stat.S_ISDIR(st.st_mode):
                tar.addfile(info)
                if depth < self.max_depth:
                    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                    sub = os.open(entry.name, flags, dir_fd=dir_fd)
                    try:
                        self._add_folder(tar, sub, name, depth + 1)
                    finally:
                        os.close(sub)
            elif stat.S_ISLNK(st.st_mode):
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(entry.name, dir_fd=dir_fd)
                tar.addfile(info)
            elif not stat.S_ISSOCK(st.st_mode):  # FIFO or device: an entry the extractor refuses
                info.type = tarfile.FIFOTYPE if stat.S_ISFIFO(st.st_mode) else tarfile.CHRTYPE
                tar.addfile(info)


def _info(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid, info.mtime = st.st_uid, st.st_gid, int(st.st_mtime)
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISREG(st.st_mode):
        info.size = st.st_size
    return info


class OutputStore(Protocol):
    """What ``HostTmpfsOutputs`` and ``KeeperOutputs`` have in common."""

    def verify(self) -> None: ...

    def archive(self) -> contextlib.AbstractContextManager[BinaryIO]: ...

    def full(self) -> bool: ...


def collect(store: OutputStore, spec: RunSpec, max_entries: int) -> tuple[bool, str | None]:
    """Copy the store's outputs into ``spec.output.source``: (overflowed, refusal message).

    A refusal (links, special files, too much...) keeps nothing and is the package's; outputs
    that cannot be vouched for (their tmpfs went away) are a BackendError -- never an empty
    folder that the package would be blamed for.
    """
    dest = spec.output.source
    dest.mkdir(parents=True, exist_ok=True)
    cap = spec.limits.output_mb * MIB
    limits = ArchiveLimits(max_total_bytes=cap, max_entry_bytes=cap, max_entries=max_entries)
    staging = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}"  # same filesystem
    store.verify()
    try:
        with store.archive() as stream:
            result = extract_tar_stream(stream, staging, limits, strip_top=True)
        store.verify()  # what was copied is what the phase wrote
    except ArchiveError as exc:
        if exc.code == "disk_full":
            raise BackendError(f"the worker's disk is full: {exc.message}") from exc
        return exc.code in OVERFLOW_CODES, exc.message
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BackendError(f"copying the outputs of {spec.name}: {exc}") from exc
    except BackendError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for child in staging.iterdir():
        child.rename(dest / child.name)
    staging.rmdir()
    return result.byte_count >= cap - MIB and store.full(), None
