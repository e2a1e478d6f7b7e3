"""The docker backend: each phase in a hardened container (SECURITY.md, "The container").

One run uses three Docker objects, all named after ``spec.name`` and labelled with the run's
labels plus ``reprise.run``/``reprise.role``, so that ``reconcile`` finds every leftover:

    <name>-output   a volume on tmpfs, ``size=output_mb``: the only writable mount, capped while
                    the package writes (overlay2 on ext4 has no quota: storage_opt does not work)
    <name>-keeper   a hardened ``sleep`` container mounting that volume read-only. A tmpfs volume
                    is unmounted -- and emptied -- when its last container stops, so the keeper
                    holds it until the outputs are copied out with ``get_archive``
    <name>          the phase itself

Outputs leave through ``runners.archives.extract_tar_stream`` (links, special files, setuid bits,
too many entries or bytes are refused). Outcome facts come from the engine (``State.OOMKilled``,
``ExitCode``) and from the backend's own clock; none is inferred from an exit status.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import re
import tarfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
import urllib3.exceptions
from docker.types import LogConfig, Ulimit
from docker.types import Mount as DockerMount

from runners import hostinfo
from runners.archives import ArchiveError, ArchiveLimits, extract_tar_stream
from runners.backends.base import (
    BackendError,
    BackendUnavailable,
    EnvironmentSpec,
    Limits,
    Mount,
    PreparedEnvironment,
    RunResult,
    RunSpec,
)
from runners.sandbox import TailBuffer

log = logging.getLogger(__name__)

MIB = 1024 * 1024
SANDBOX_USER = "65534:65534"
DEFAULT_IMAGES: Mapping[str, str] = {"python-numpy": "reprise/python-numpy:bookworm"}
DEFAULT_BUILD_IMAGES: Mapping[str, str] = {"python-numpy": "reprise/python-numpy-build:bookworm"}
ENV_RECIPE = "reprise-env-1"  # bump when the derived-image Dockerfile changes
SITE_DIR = "/opt/reprise/site"
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KEEPER_LIMITS = Limits(cpus=0.1, memory_mb=32, pids=4, tmpfs_mb=1, nofile=64, output_mb=1)
KILL_STUCK_S = 30.0  # after SIGKILL, how long a container may take to die before we give up
_OVERFLOW_CODES = frozenset({"too_much_data", "entry_too_large", "too_many_entries"})
_STEP_IMAGE = re.compile(r" ---> ([0-9a-f]{12,64})\s*$")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_REQ = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?\s*==\s*[A-Za-z0-9.!+_-]+"
    r"(\s*;\s*[A-Za-z0-9_.<>=!~'\"() ]+?)?(\s+--hash=sha256:[0-9a-f]{64})*"
)


def hardening(limits: Limits) -> dict[str, Any]:
    """The SECURITY.md container controls, as ``containers.create`` keywords."""
    fsize = max(limits.output_mb, limits.tmpfs_mb) * MIB
    return {
        "user": SANDBOX_USER,
        "network_mode": "none",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],  # seccomp: the default, never unconfined
        "privileged": False,
        "read_only": True,
        "tmpfs": {  # the container's private, size-capped scratch
            "/tmp": f"rw,nosuid,nodev,noexec,size={limits.tmpfs_mb}m,nr_inodes=65536"  # noqa: S108
        },
        "mem_limit": limits.memory_mb * MIB,
        "memswap_limit": limits.memory_mb * MIB,  # = mem_limit: no swap
        "pids_limit": limits.pids,
        "nano_cpus": int(limits.cpus * 1e9),
        "ulimits": [
            Ulimit(name="nofile", soft=limits.nofile, hard=limits.nofile),
            Ulimit(name="fsize", soft=fsize, hard=fsize),
            Ulimit(name="core", soft=0, hard=0),
        ],
        "init": True,
        "ipc_mode": "private",
        "shm_size": min(64, limits.tmpfs_mb) * MIB,
        "oom_score_adj": 500,  # should the host itself run out of memory, a package goes first
        "log_config": LogConfig(
            type="json-file",
            config={"max-size": f"{max(1, 4 * limits.log_tail_bytes // MIB)}m", "max-file": "2"},
        ),
        "hostname": "sandbox",
    }


class DockerBackend:
    """Runs phases in hardened containers on a Docker engine (20.10+, API 1.41)."""

    name = "docker"

    def __init__(
        self,
        base_url: str | None = None,
        images: Mapping[str, str] | None = None,
        *,
        build_images: Mapping[str, str] | None = None,
        timeout_s: float = 60.0,
        ping_timeout_s: float = 3.0,
        grace_s: float = 2.0,
        reconnect_budget_s: float = 60.0,
        build_network_mode: str | None = None,
        pip_args: Sequence[str] = (),
        require_hashes: bool = False,
        build_timeout_s: float = 1800.0,
        max_output_entries: int = 10_000,
    ) -> None:
        """``base_url`` None: DOCKER_HOST or the local socket. ``pip_args`` are the operator's
        (e.g. ``--index-url`` of a mirror), never the package's."""
        self.base_url = base_url
        self.images = dict(DEFAULT_IMAGES if images is None else images)
        self.build_images = dict(DEFAULT_BUILD_IMAGES if build_images is None else build_images)
        self.timeout_s = timeout_s
        self.ping_timeout_s = ping_timeout_s
        self.grace_s = grace_s
        self.reconnect_budget_s = reconnect_budget_s
        self.build_network_mode = build_network_mode
        self.pip_args = list(pip_args)
        self.require_hashes = require_hashes
        self.build_timeout_s = build_timeout_s
        self.max_output_entries = max_output_entries
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()
        self._build_locks: dict[str, threading.Lock] = {}
        self._engine_facts: tuple[float, dict[str, str]] | None = None

    def client(self) -> docker.DockerClient:
        """The shared SDK client, created on first use (the daemon may be down at startup)."""
        with self._lock:
            if self._client is None:
                self._client = self._connect(self.timeout_s)
            return self._client

    def _connect(self, timeout: float) -> docker.DockerClient:
        seconds = int(max(1, timeout))
        with translate("connecting to the Docker daemon", unavailable=True):
            if self.base_url is None:
                return docker.from_env(timeout=seconds, max_pool_size=32)
            return docker.DockerClient(
                base_url=self.base_url, version="auto", timeout=seconds, max_pool_size=32
            )

    # ------------------------------------------------------------------ interface

    def visible_path(self, mount: Mount) -> str:
        return mount.target

    def prepare_environment(self, spec: EnvironmentSpec) -> PreparedEnvironment:
        """The approved base image, or a derived image with the pinned requirements (cached)."""
        base_tag = self.images.get(spec.base)
        if base_tag is None:
            approved = ", ".join(sorted(self.images)) or "none"
            raise BackendError(f"base {spec.base!r} is not approved here (approved: {approved})")
        requirements = pinned_requirements(spec.requirements)
        client = self.client()
        base = self._image(client, base_tag)
        if not requirements:
            return PreparedEnvironment(reference=base_tag, python="python3", digest=base.id)
        build_tag = self.build_images.get(spec.base)
        if build_tag is None:
            raise BackendError(f"base {spec.base!r} has no build image to install requirements")
        build = self._image(client, build_tag)
        recipe = [ENV_RECIPE, base.id, build.id, *self.pip_args, str(self.require_hashes)]
        key = hashlib.sha256("\n".join(map(str, [*recipe, *requirements])).encode()).hexdigest()
        name = spec.input_hash if re.fullmatch(r"[0-9a-f]{32,64}", spec.input_hash) else key
        tag = f"reprise/env:{name[:32]}"
        with self._build_lock(tag):
            with contextlib.suppress(BackendError):
                existing = self._image(client, tag)
                if existing.labels.get("reprise.env_key") == key:  # same inputs: reuse
                    return PreparedEnvironment(reference=tag, python="python3", digest=existing.id)
            self._build(client, tag, key, base_tag, build_tag, requirements)
            built = self._image(client, tag)
        return PreparedEnvironment(reference=tag, python="python3", digest=built.id)

    def run(self, spec: RunSpec, cancel: threading.Event | None = None) -> RunResult:
        validate_spec(spec)
        run = _Run(self, self.client(), spec, cancel or threading.Event())
        try:
            return run.execute()
        finally:
            run.cleanup()

    def reconcile(self, worker_id: str, keep: set[str]) -> list[str]:
        """Force-remove containers, then volumes, labelled with ``worker_id`` and not kept."""
        client = self.client()
        selector: dict[str, str | list[str] | bool] = {"label": f"reprise.worker={worker_id}"}
        removed: list[str] = []
        with translate("listing leftover containers"):
            containers = client.containers.list(all=True, filters=selector)
        for container in containers:
            if container.labels.get("reprise.run", container.name) not in keep:
                with translate(f"removing container {container.name}"):
                    container.remove(force=True)
                removed.append(str(container.name))
        with translate("listing leftover volumes"):
            volumes = client.volumes.list(filters=selector)
        for volume in volumes:
            labels = volume.attrs.get("Labels") or {}
            if labels.get("reprise.run", volume.name) not in keep:
                with translate(f"removing volume {volume.name}"):
                    volume.remove(force=True)
                removed.append(str(volume.name))
        return removed

    def healthy(self) -> bool:
        try:
            probe = self._connect(self.ping_timeout_s)
        except BackendError:
            return False
        try:
            return bool(probe.ping())
        except (requests.RequestException, docker.errors.DockerException):
            return False
        finally:
            probe.close()

    def describe(self) -> dict[str, str]:
        """Host facts plus the engine's (cached a minute); without the engine's when it is down."""
        facts = {"backend": "docker", **hostinfo.host_facts()}
        cached = self._engine_facts
        if cached is not None and time.monotonic() - cached[0] < 60:
            return {**facts, **cached[1]}
        try:
            client = self.client()
            with translate("describing the engine"):
                version, info = client.version(), client.info()
        except BackendError:
            return facts
        engine = {
            key: str(value)
            for key, value in (
                ("engine_version", version.get("Version")),
                ("api_version", version.get("ApiVersion")),
                ("cgroup_version", info.get("CgroupVersion")),
                ("cgroup_driver", info.get("CgroupDriver")),
                ("storage_driver", info.get("Driver")),
                ("engine_kernel", info.get("KernelVersion")),
                ("engine_cpus", info.get("NCPU")),
                ("engine_memory_bytes", info.get("MemTotal")),
            )
            if value not in (None, "")
        }
        self._engine_facts = (time.monotonic(), engine)
        return {**facts, **engine}

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # ------------------------------------------------------------------ images

    def _image(self, client: docker.DockerClient, tag: str) -> Any:
        try:
            with translate(f"inspecting image {tag}"):
                return client.images.get(tag)
        except BackendError as exc:
            if isinstance(exc.__cause__, docker.errors.ImageNotFound):
                raise BackendError(
                    f"image {tag} is not on this engine; build it with scripts/build-images.sh"
                ) from exc
            raise

    def _build_lock(self, tag: str) -> threading.Lock:
        with self._lock:
            return self._build_locks.setdefault(tag, threading.Lock())

    def _build(
        self,
        client: docker.DockerClient,
        tag: str,
        key: str,
        base_tag: str,
        build_tag: str,
        requirements: list[str],
    ) -> None:
        """Build ``tag``: pip (binary wheels only) in the build image, site copied onto the base."""
        pip = ["python3", "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check"]
        pip += ["--no-input", "--only-binary=:all:", "--target", SITE_DIR, *self.pip_args]
        pip += ["--require-hashes"] if self.require_hashes else []
        dockerfile = "\n".join(
            [
                f"FROM {build_tag} AS build",
                "COPY requirements.txt /reprise/requirements.txt",
                f"RUN {json.dumps([*pip, '-r', '/reprise/requirements.txt'])}",
                f"FROM {base_tag}",
                f"COPY --from=build {SITE_DIR} {SITE_DIR}",
                f"ENV PYTHONPATH={SITE_DIR} PATH={SITE_DIR}/bin:{IMAGE_PATH}",
                "",
            ]
        )
        context = _tar_of({"Dockerfile": dockerfile, "requirements.txt": "\n".join(requirements)})
        output = TailBuffer(8192)
        started = time.monotonic()
        api: Any = client.api
        log.info("building environment image %s (%d requirements)", tag, len(requirements))
        # The legacy builder keeps the pip stage as an untagged image (~20 MB over the build
        # image): remember its id from the build output and remove it afterwards.
        last_image: str | None = None
        stage_image: str | None = None
        try:
            with translate(f"building environment image {tag}"):
                for chunk in api.build(
                    fileobj=context,
                    custom_context=True,
                    tag=tag,
                    rm=True,
                    forcerm=True,
                    pull=False,
                    network_mode=self.build_network_mode,
                    decode=True,
                    timeout=self.build_timeout_s,
                    labels={"reprise.env_key": key, "reprise.recipe": ENV_RECIPE},
                ):
                    line = str(chunk.get("stream", ""))
                    output.feed(line.encode())
                    if found := _STEP_IMAGE.match(line):
                        last_image = found.group(1)
                    elif line.startswith("Step ") and line.rstrip().endswith(f"FROM {base_tag}"):
                        stage_image = last_image
                    if "error" in chunk:
                        detail = f"{chunk['error']}\n{output.text()}"
                        raise BackendError(f"building {tag} failed: {detail}")
        finally:
            leftover = stage_image or last_image  # the last step that worked, on a failure
            with contextlib.suppress(requests.RequestException, docker.errors.DockerException):
                if leftover and not api.inspect_image(leftover).get("RepoTags"):  # never a base
                    api.remove_image(leftover, noprune=False)
        log.info("built %s in %.1f s", tag, time.monotonic() - started)


class _Run:
    """The life of one phase: volume, keeper, container, wait, outputs; then ``cleanup``."""

    def __init__(
        self,
        backend: DockerBackend,
        client: docker.DockerClient,
        spec: RunSpec,
        cancel: threading.Event,
    ) -> None:
        self.backend = backend
        self.client = client
        self.api: Any = client.api  # the low-level API; it takes float timeouts
        self.spec = spec
        self.cancel = cancel
        self.volume_name = f"{spec.name}-output"
        self.keeper_name = f"{spec.name}-keeper"
        self.container_id = spec.name
        self.keeper_id = self.keeper_name
        self.tail = TailBuffer(spec.limits.log_tail_bytes)
        self.output_error: str | None = None
        self.log_complete = False
        self.stream: Any = None
        self.reader: threading.Thread | None = None
        self.sampler: _Sampler | None = None

    def execute(self) -> RunResult:
        spec = self.spec
        self.remove_leftovers()
        with translate("creating the output volume"):
            self.client.volumes.create(
                name=self.volume_name,
                driver="local",
                labels=self.labels("output"),
                driver_opts={"type": "tmpfs", "device": "tmpfs", "o": self.volume_options()},
            )
        self.keeper_id = self.create(
            self.keeper_name, ["sleep", "infinity"], KEEPER_LIMITS, {}, "/", [], read_only=True
        )
        with translate("starting the output keeper"):
            self.api.start(self.keeper_id)
        binds = [
            DockerMount(target=m.target, source=str(m.source), type="bind", read_only=True)
            for m in spec.mounts
        ]
        self.container_id = self.create(
            spec.name, spec.command, spec.limits, spec.env, spec.workdir, binds, read_only=False
        )
        with translate("attaching to the container"):
            self.stream = self.api.attach(
                self.container_id, stdout=True, stderr=True, stream=True, logs=True
            )
        self.reader = threading.Thread(target=self.read_logs, daemon=True, name=f"log-{spec.name}")
        self.reader.start()
        started = time.monotonic()
        with translate("starting the container"):
            self.api.start(self.container_id)
        self.sampler = _Sampler(self.api, self.container_id)
        timed_out, cancelled = self.wait(started)
        wall = time.monotonic() - started
        with translate("inspecting the finished container"):
            state = self.api.inspect_container(self.container_id)["State"]
        self.sampler.stop()
        self.reader.join(timeout=5)
        self.finish_log()
        overflow = self.collect_outputs()
        usage = self.sampler.usage()
        return RunResult(
            exit_code=state.get("ExitCode"),
            timed_out=timed_out,
            oom_killed=bool(state.get("OOMKilled")),
            cancelled=cancelled,
            wall_s=round(wall, 3),
            cpu_s=None if usage.cpu_ns is None else round(usage.cpu_ns / 1e9, 3),
            peak_memory_mb=(
                None if usage.peak_memory_bytes is None else round(usage.peak_memory_bytes / MIB, 1)
            ),
            log_tail=self.tail.text(),
            log_dropped_bytes=self.tail.dropped,
            output_overflow=overflow,
            output_error=self.output_error,
        )

    def labels(self, role: str) -> dict[str, str]:
        return {**self.spec.labels, "reprise.run": self.spec.name, "reprise.role": role}

    def volume_options(self) -> str:
        inodes = 4 * self.backend.max_output_entries
        return (
            f"size={self.spec.limits.output_mb}m,nr_inodes={inodes},"
            "uid=65534,gid=65534,mode=0700,nosuid,nodev,noexec"
        )

    def create(
        self,
        name: str,
        command: list[str],
        limits: Limits,
        env: dict[str, str],
        workdir: str,
        binds: list[DockerMount],
        *,
        read_only: bool,
    ) -> str:
        """Create a hardened container; a name still taken (409) is this run's: replace it."""
        output = DockerMount(
            target=self.spec.output.target,
            source=self.volume_name,
            type="volume",
            read_only=read_only,
            no_copy=True,
        )
        role = "keeper" if read_only else "phase"
        for attempt in (1, 2):
            try:
                with translate(f"creating container {name}"):
                    container = self.client.containers.create(
                        self.spec.environment.reference,
                        command,
                        name=name,
                        environment=env,
                        working_dir=workdir,
                        mounts=[*binds, output],
                        labels=self.labels(role),
                        detach=True,
                        stdin_open=False,
                        tty=False,
                        **hardening(limits),
                    )
                return str(container.id)
            except BackendError as exc:
                cause = exc.__cause__
                if attempt == 2 or not (
                    isinstance(cause, docker.errors.APIError) and cause.status_code == 409
                ):
                    raise
                log.warning("container name %s is taken by a leftover; replacing it", name)
                self.remove_container(name)
        raise AssertionError("unreachable")

    def read_logs(self) -> None:
        try:
            for chunk in self.stream:
                self.tail.feed(chunk)
            self.log_complete = True
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            log.warning("the log stream of %s broke: %s", self.spec.name, exc)
        except docker.errors.DockerException as exc:
            log.warning("the log stream of %s broke: %s", self.spec.name, exc)

    def finish_log(self) -> None:
        """When the attach stream broke, fall back to the engine's (size-capped) log file."""
        if self.log_complete:
            return
        with contextlib.suppress(BackendError), translate("reading the log tail"):
            lines = max(100, self.spec.limits.log_tail_bytes // 40)
            data = self.api.logs(self.container_id, stdout=True, stderr=True, tail=lines)
            seen = self.tail.total
            self.tail = TailBuffer(self.spec.limits.log_tail_bytes)
            self.tail.feed(data)
            self.tail.feed(
                b"\n[reprise] the log stream was interrupted: this tail comes from the engine's "
                b"log file, and the dropped byte count is a lower bound\n"
            )
            self.tail.total = max(self.tail.total, seen)

    def wait(self, started: float) -> tuple[bool, bool]:
        """Wait in short slices (cancel, deadline, SIGTERM then SIGKILL); survive a dropped
        daemon connection by reconnecting and finding the container again by name."""
        deadline = started + self.spec.limits.timeout_s
        timed_out = cancelled = False
        kill_at: float | None = None
        killed_at: float | None = None
        while True:
            now = time.monotonic()
            if kill_at is None:
                cancelled = self.cancel.is_set()
                timed_out = not cancelled and now >= deadline
                if cancelled or timed_out:
                    self.send_signal("SIGTERM")
                    kill_at = now + self.backend.grace_s
            if kill_at is not None and killed_at is None and now >= kill_at:
                self.send_signal("SIGKILL")
                killed_at = now
            if killed_at is not None and now - killed_at > KILL_STUCK_S:
                raise BackendError(f"container {self.spec.name} did not die after SIGKILL")
            step = 0.5 if kill_at is None else 0.2
            if kill_at is None:
                step = min(step, max(0.05, deadline - now))
            try:
                self.api.wait(self.container_id, timeout=step)
                return timed_out, cancelled
            except requests.RequestException as exc:
                if _is_read_timeout(exc):
                    continue  # still running
                log.warning(
                    "Docker connection dropped while waiting for %s: %s", self.spec.name, exc
                )
                if not self.reconnect():
                    return timed_out, cancelled
            except docker.errors.NotFound as exc:
                raise BackendError(f"container {self.spec.name} disappeared while running") from exc
            except docker.errors.DockerException as exc:
                raise BackendError(f"waiting for {self.spec.name}: {exc}") from exc

    def reconnect(self) -> bool:
        """Ping with backoff, then find the container by name: True while it still runs."""
        delay, give_up = 0.25, time.monotonic() + self.backend.reconnect_budget_s
        while True:
            try:
                self.api.ping()
                found = self.api.inspect_container(self.spec.name)
                self.container_id = str(found["Id"])
                log.info("reconnected to Docker; %s: %s", self.spec.name, found["State"]["Status"])
                return bool(found["State"]["Running"])
            except docker.errors.NotFound as exc:
                raise BackendError(
                    f"container {self.spec.name} disappeared while Docker was unreachable"
                ) from exc
            except (requests.RequestException, docker.errors.DockerException) as exc:
                if time.monotonic() + delay > give_up:
                    raise BackendUnavailable(
                        f"lost the Docker daemon while {self.spec.name} ran; its container is "
                        "left for reconcile"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def send_signal(self, sig: str) -> None:
        try:
            self.api.kill(self.container_id, signal=sig)
        except docker.errors.APIError as exc:
            if exc.status_code not in (404, 409):  # 409: it is not running any more
                raise BackendError(f"sending {sig} to {self.spec.name}: {exc.explanation}") from exc
        except (requests.RequestException, docker.errors.DockerException) as exc:
            log.warning(
                "sending %s to %s failed (the wait loop retries): %s", sig, self.spec.name, exc
            )

    def collect_outputs(self) -> bool:
        """Copy the output volume into ``spec.output.source``; True when it overflowed."""
        dest = self.spec.output.source
        dest.mkdir(parents=True, exist_ok=True)
        cap = self.spec.limits.output_mb * MIB
        limits = ArchiveLimits(
            max_total_bytes=cap, max_entry_bytes=cap, max_entries=self.backend.max_output_entries
        )
        staging = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}"  # same filesystem
        with translate("reading the outputs"):
            chunks, _ = self.api.get_archive(self.keeper_id, self.spec.output.target)
        try:
            result = extract_tar_stream(
                io.BufferedReader(_ChunkReader(chunks), 1 << 16), staging, limits, strip_top=True
            )
        except ArchiveError as exc:
            if exc.code == "disk_full":
                raise BackendError(f"the worker's disk is full: {exc.message}") from exc
            self.tail.feed(f"\n[reprise] outputs refused, none kept: {exc.message}\n".encode())
            self.output_error = exc.message
            return exc.code in _OVERFLOW_CODES
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise BackendError(f"copying the outputs of {self.spec.name}: {exc}") from exc
        for child in staging.iterdir():
            child.rename(dest / child.name)
        staging.rmdir()
        return result.byte_count >= cap - MIB and self.volume_full()

    def volume_full(self) -> bool:
        """Whether the output tmpfs has (almost) no blocks or inodes left."""
        command = ["stat", "-f", "-c", "%a %S %d", self.spec.output.target]
        with contextlib.suppress(BackendError, ValueError), translate("measuring the outputs"):
            exec_id = self.api.exec_create(self.keeper_id, command)["Id"]
            free_blocks, block_size, free_inodes = map(int, self.api.exec_start(exec_id).split())
            return free_blocks * block_size < 64 * 1024 or free_inodes == 0
        return False

    def remove_leftovers(self) -> None:
        self.remove_container(self.spec.name)
        self.remove_container(self.keeper_name)
        self.remove_volume()

    def remove_container(self, name: str) -> None:
        try:
            self.api.remove_container(name, force=True)
        except docker.errors.NotFound:
            pass
        except (docker.errors.DockerException, requests.RequestException) as exc:
            log.warning("could not remove container %s (reconcile will): %s", name, exc)

    def remove_volume(self) -> None:
        try:
            self.api.remove_volume(self.volume_name, force=True)
        except docker.errors.NotFound:
            pass
        except (docker.errors.DockerException, requests.RequestException) as exc:
            log.warning("could not remove volume %s (reconcile will): %s", self.volume_name, exc)

    def cleanup(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        if self.reader is not None and self.reader.is_alive():
            with contextlib.suppress(Exception):
                self.stream.close()
        self.remove_container(self.spec.name)
        self.remove_container(self.keeper_name)
        self.remove_volume()


class _Sampler:
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


class _ChunkReader(io.RawIOBase):
    """A binary file over an iterator of byte chunks (the body of ``get_archive``)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


@contextlib.contextmanager
def translate(what: str, *, unavailable: bool = False) -> Iterator[None]:
    """Turn SDK and transport exceptions into BackendError / BackendUnavailable."""
    try:
        yield
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise BackendUnavailable(f"{what}: the Docker daemon does not answer ({exc})") from exc
    except docker.errors.APIError as exc:
        raise BackendError(f"{what}: {exc.explanation or exc}") from exc
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise (BackendUnavailable if unavailable else BackendError)(f"{what}: {exc}") from exc


def _is_read_timeout(exc: requests.RequestException) -> bool:
    """A wait slice that ran out: docker-py reports it as ConnectionError(ReadTimeoutError)."""
    return isinstance(exc, requests.Timeout) or any(
        isinstance(arg, urllib3.exceptions.ReadTimeoutError) for arg in exc.args
    )


def _tar_of(files: dict[str, str]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def pinned_requirements(text: str | None) -> list[str]:
    """The requirement lines, each ``name==version`` (extras, markers and hashes allowed).

    Options (``--index-url``, ``--no-binary``, ``-e``, ``-r``, URLs...) are refused: they could
    turn the build, which has network access, into running code from an sdist or another index.
    """
    lines: list[str] = []
    for number, raw in enumerate((text or "").replace("\\\n", " ").splitlines(), start=1):
        line = "" if raw.lstrip().startswith("#") else raw.split(" #", 1)[0].strip()
        if line and not _REQ.fullmatch(line):
            raise BackendError(
                f"requirements line {number} is not a pinned requirement (name==version): "
                f"{line[:120]!r}"
            )
        if line:
            lines.append(line)
    return lines


def validate_spec(spec: RunSpec) -> None:
    """Refuse a spec that would weaken the sandbox, before touching the engine."""
    if not _NAME.fullmatch(spec.name):
        raise BackendError(f"run name {spec.name!r} is not a valid container name")
    reserved = ("", "/tmp", "/proc", "/dev", "/sys")  # noqa: S108 - paths inside the container
    for mount in [*spec.mounts, spec.output]:
        if not mount.target.startswith("/") or mount.target.rstrip("/") in reserved:
            raise BackendError(f"mount target {mount.target!r} is not allowed")
    for mount in spec.mounts:
        source = Path(mount.source)
        if not mount.read_only:
            raise BackendError(f"mount {mount.target} must be read-only; only the output is not")
        if not (source.is_dir() or source.is_file()):
            raise BackendError(f"mount source {source} is not a regular file or folder")
        if "docker.sock" in source.name or source.resolve() == Path("/"):
            raise BackendError(f"mount source {source} is never mounted into a run")
