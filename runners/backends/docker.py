"""The docker backend: each phase in a hardened container (SECURITY.md, "The container").

One run is a phase container named ``spec.name`` and an output store for its size-capped output
folder (``runners/backends/_docker_outputs.py``), labelled with the run's labels plus
``reprise.run``/``reprise.role`` so that ``reconcile`` finds every leftover:

    host tmpfs      when the worker is root on the engine's host: a tmpfs the worker mounts
                    (``size=output_mb``; "device" ``reprise-output:<worker>:<run>``) and
                    bind-mounts into the phase -- the only writable mount, capped while the
                    package writes (overlay2 on ext4 has no quota: storage_opt does not work)
    keeper          elsewhere: ``<name>-output``, a tmpfs Docker volume, held mounted by
                    ``<name>-keeper``, a hardened ``sleep`` container, until the outputs are
                    copied out (a tmpfs volume is emptied when its last container stops)

Outputs leave through ``runners.archives.extract_tar_stream`` (links, special files, setuid bits,
too many entries or bytes are refused); outputs whose tmpfs went away during the run are a
``BackendError``, never an empty folder. Outcome facts come from the engine
(``State.OOMKilled``, ``ExitCode``) and from the backend's own clock; none is inferred from an
exit status. The module is split: ``_docker_common`` (hardening, errors, spec checks),
``_docker_outputs`` (the two stores), ``_docker_run`` (one phase), this file (the interface).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import docker
import docker.errors
import requests

from runners import hostinfo
from runners.backends._docker_common import (
    DEFAULT_BUILD_IMAGES,
    DEFAULT_IMAGES,
    ENV_RECIPE,
    IMAGE_PATH,
    KEEPER_LIMITS,
    KILL_STUCK_S,
    MIB,
    SANDBOX_USER,
    SITE_DIR,
    hardening,
    pinned_requirements,
    tar_of,
    translate,
    validate_spec,
)
from runners.backends._docker_outputs import output_mounts, remove_mount
from runners.backends._docker_run import _Run
from runners.backends.base import (
    BackendError,
    EnvironmentSpec,
    Mount,
    PreparedEnvironment,
    RunResult,
    RunSpec,
)
from runners.sandbox import TailBuffer

__all__ = [
    "DEFAULT_BUILD_IMAGES",
    "DEFAULT_IMAGES",
    "ENV_RECIPE",
    "KEEPER_LIMITS",
    "KILL_STUCK_S",
    "MIB",
    "OUTPUT_MODES",
    "SANDBOX_USER",
    "DockerBackend",
    "hardening",
    "pinned_requirements",
    "translate",
    "validate_spec",
]

log = logging.getLogger(__name__)

OUTPUT_MODES = ("auto", "host-tmpfs", "keeper")
_STEP_IMAGE = re.compile(r" ---> ([0-9a-f]{12,64})\s*$")


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
        outputs: str = "auto",
        runtime: str | None = None,
    ) -> None:
        """``base_url`` None: DOCKER_HOST or the local socket. ``pip_args`` are the operator's
        (e.g. ``--index-url`` of a mirror), never the package's. ``outputs``: where the output
        tmpfs lives -- ``host-tmpfs`` (mounted by the worker: root, local engine), ``keeper``
        (a Docker volume held by a keeper container), or ``auto`` (the first when it works,
        else the second). ``runtime``: the OCI runtime of every container (``runsc``: gVisor,
        where the engine has it); None is the engine's default (``runc``)."""
        if outputs not in OUTPUT_MODES:
            raise ValueError(f"outputs must be one of {', '.join(OUTPUT_MODES)}, not {outputs!r}")
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
        self.outputs = outputs
        self.runtime = runtime
        self._runtime_missing_logged = False
        self._host_tmpfs_ok: bool | None = None  # None: not known yet (auto)
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
        """Force-remove containers, then unmount output tmpfs mounts, then remove volumes,
        labelled (or, for mounts, named) with ``worker_id`` and not kept."""
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
        for run_name, point in output_mounts(worker_id):
            if run_name not in keep:
                try:
                    remove_mount(point)
                except OSError as exc:  # in the way of nothing: new runs mount elsewhere
                    log.warning("could not unmount the leftover output tmpfs %s: %s", point, exc)
                    continue
                removed.append(str(point))
        with translate("listing leftover volumes"):
            volumes = client.volumes.list(filters=selector)
        for volume in volumes:
            labels = volume.attrs.get("Labels") or {}
            if labels.get("reprise.run", volume.name) not in keep:
                with translate(f"removing volume {volume.name}"):
                    volume.remove(force=True)
                removed.append(str(volume.name))
        return removed

    def use_host_tmpfs(self) -> bool:
        """Whether a run should put its outputs on a tmpfs mounted by the worker."""
        if self.outputs != "auto":
            return self.outputs == "host-tmpfs"
        if self._host_tmpfs_ok is None:
            local = self.client().api.base_url == "http+docker://localhost"  # a unix socket
            root = sys.platform.startswith("linux") and os.geteuid() == 0
            self._host_tmpfs_ok = local and root
            log.info("docker outputs: %s", "host tmpfs" if self._host_tmpfs_ok else "keeper")
        return self._host_tmpfs_ok

    def host_tmpfs_unusable(self, reason: str) -> None:
        """``auto``: from now on, keepers (the worker cannot mount, or the engine does not
        see its mounts)."""
        if self._host_tmpfs_ok is not False:
            log.warning("docker outputs: host tmpfs unusable (%s); using keeper containers", reason)
        self._host_tmpfs_ok = False

    def healthy(self) -> bool:
        try:
            probe = self._connect(self.ping_timeout_s)
        except BackendError:
            return False
        try:
            if not probe.ping():
                return False
            return self.runtime is None or self._runtime_available(probe)
        except (requests.RequestException, docker.errors.DockerException):
            return False
        finally:
            probe.close()

    def _runtime_available(self, client: docker.DockerClient) -> bool:
        """Whether the engine has ``self.runtime``: without it every run would fail, so the
        worker reports unhealthy (and claims nothing) instead."""
        runtimes = client.info().get("Runtimes") or {}
        if self.runtime in runtimes:
            return True
        if not self._runtime_missing_logged:
            log.error("the Docker engine has no runtime %r (it has: %s); install it or drop "
                      "--docker-runtime", self.runtime, ", ".join(sorted(runtimes)) or "none")
            self._runtime_missing_logged = True
        return False

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
                ("runtime", self.runtime or info.get("DefaultRuntime")),
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
        context = tar_of({"Dockerfile": dockerfile, "requirements.txt": "\n".join(requirements)})
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
