"""Peak memory and CPU time of a running phase container (``DockerBackend.run``)."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import docker.errors
import requests

from runners import hostinfo


class Sampler:
    """Polls the container's cgroup for peak memory and CPU time; the stats API as a fallback.

    The cgroup disappears when the container stops, so the last sample (at most ``interval``
    before the end) is what is reported: best effort, ``None`` when nothing could be read.
    """

    def __init__(self, api: Any, container_id: str, interval: float = 0.1) -> None:
        self.api = api
        self.container_id = container_id
        self.interval = interval
        self.peak: int | None = None
        self.cpu_ns: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="cgroup-sampler")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def usage(self) -> hostinfo.CgroupUsage:
        return hostinfo.CgroupUsage(self.peak, self.cpu_ns)

    def _record(self, peak: int | None, cpu_ns: int | None) -> None:
        if peak:  # 0 is what the stats API says about a container that already stopped
            self.peak = max(self.peak or 0, peak)
        if cpu_ns:
            self.cpu_ns = max(self.cpu_ns or 0, cpu_ns)

    def _loop(self) -> None:
        try:
            pid = self.api.inspect_container(self.container_id)["State"].get("Pid")
        except (requests.RequestException, docker.errors.DockerException):
            pid = None
        counters = hostinfo.CgroupCounters.for_docker(self.container_id, pid)
        while not self._stop.is_set():
            if counters is not None:
                usage = counters.read()
                self._record(usage.peak_memory_bytes, usage.cpu_ns)
                self._stop.wait(self.interval)
                continue
            with contextlib.suppress(
                requests.RequestException, docker.errors.DockerException, LookupError, TypeError
            ):
                stats = self.api.stats(self.container_id, stream=False, one_shot=True)
                memory = stats.get("memory_stats", {})
                cpu_ns = stats["cpu_stats"]["cpu_usage"]["total_usage"]
                self._record(memory.get("max_usage") or memory.get("usage"), cpu_ns)
            self._stop.wait(5 * self.interval)  # a stats call costs a few ms of daemon time
