"""Facts about the host for provenance (CPU, GPU, kernel, cgroups) and per-run cgroup counters.

Everything here is best effort: a fact that cannot be read is left out (or ``None``), never
guessed.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (``platform.processor()`` as a fallback)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@lru_cache(maxsize=1)
def gpu_info() -> dict[str, str]:
    """``{"gpu_model", "gpu_driver", "gpu_count"}`` from nvidia-smi when it exists, else ``{}``."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return {}
    try:
        out = subprocess.run(  # noqa: S603 - fixed arguments, absolute path from which()
            [smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    rows = [[c.strip() for c in line.split(",")] for line in out.splitlines() if line.strip()]
    rows = [r for r in rows if len(r) >= 2]
    if not rows:
        return {}
    return {"gpu_model": rows[0][0], "gpu_driver": rows[0][1], "gpu_count": str(len(rows))}


def cgroup_version() -> str:
    """``"2"`` on a unified hierarchy, ``"1"`` on legacy/hybrid, ``"unknown"`` otherwise."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return "2"
    if (CGROUP_ROOT / "memory").is_dir():
        return "1"
    return "unknown"


def host_facts() -> dict[str, str]:
    """Provenance facts shared by every backend."""
    facts = {
        "cpu_model": cpu_model(),
        "cpu_count": str(os.cpu_count() or 0),
        "machine": platform.machine(),
        "kernel": platform.release(),
        "host_cgroup_version": cgroup_version(),
    }
    facts.update(gpu_info())
    return facts


@dataclass(frozen=True)
class CgroupUsage:
    peak_memory_bytes: int | None
    cpu_ns: int | None


class CgroupCounters:
    """Peak memory and CPU time of one cgroup, read from the host's cgroupfs (v1 or v2)."""

    def __init__(self, memory_dir: Path | None, cpu_dir: Path | None, version: str) -> None:
        self.memory_dir = memory_dir
        self.cpu_dir = cpu_dir
        self.version = version
        self._max_current = 0

    @classmethod
    def for_pid(cls, pid: int) -> CgroupCounters | None:
        """The cgroup that ``pid`` lives in, if this process can see its counters."""
        try:
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        except OSError:
            return None
        version = cgroup_version()
        memory_dir = cpu_dir = None
        for line in lines:
            _, controllers, path = line.split(":", 2)
            rel = path.lstrip("/")
            if version == "2" and controllers == "":
                memory_dir = cpu_dir = CGROUP_ROOT / rel
            elif version == "1":
                names = controllers.split(",")
                if "memory" in names:
                    memory_dir = CGROUP_ROOT / controllers / rel
                if "cpuacct" in names:
                    cpu_dir = next(
                        (
                            d
                            for d in (
                                CGROUP_ROOT / controllers / rel,
                                CGROUP_ROOT / "cpuacct" / rel,
                            )
                            if d.is_dir()
                        ),
                        None,
                    )
        probe = cls(memory_dir, cpu_dir, version)
        return probe if probe.read() != CgroupUsage(None, None) else None

    @classmethod
    def for_docker(cls, container_id: str, pid: int | None) -> CgroupCounters | None:
        """A Docker container's cgroup: via its init pid, else the usual cgroupfs/systemd paths."""
        if pid:
            found = cls.for_pid(pid)
            if found is not None:
                return found
        version = cgroup_version()
        for rel in (f"docker/{container_id}", f"system.slice/docker-{container_id}.scope"):
            if version == "2":
                probe = cls(CGROUP_ROOT / rel, CGROUP_ROOT / rel, version)
            else:
                probe = cls(CGROUP_ROOT / "memory" / rel, CGROUP_ROOT / "cpuacct" / rel, version)
            if probe.read() != CgroupUsage(None, None):
                return probe
        return None

    def read(self) -> CgroupUsage:
        """Current counters; a counter that cannot be read (cgroup gone) is ``None``."""
        if self.version == "2":
            peak = _read_int(self.memory_dir, "memory.peak")
            current = _read_int(self.memory_dir, "memory.current")
            if current is not None:
                self._max_current = max(self._max_current, current)
                peak = max(peak or 0, self._max_current)
            usec = _read_stat(self.cpu_dir, "cpu.stat", "usage_usec")
            return CgroupUsage(peak, usec * 1000 if usec is not None else None)
        return CgroupUsage(
            _read_int(self.memory_dir, "memory.max_usage_in_bytes"),
            _read_int(self.cpu_dir, "cpuacct.usage"),
        )


def _read_int(directory: Path | None, name: str) -> int | None:
    if directory is None:
        return None
    try:
        return int((directory / name).read_text().strip())
    except (OSError, ValueError):
        return None


def _read_stat(directory: Path | None, name: str, key: str) -> int | None:
    if directory is None:
        return None
    try:
        for line in (directory / name).read_text().splitlines():
            k, _, v = line.partition(" ")
            if k == key:
                return int(v)
    except (OSError, ValueError):
        return None
    return None
