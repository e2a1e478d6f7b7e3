"""The keeper output store: a tmpfs Docker volume held mounted by a ``sleep`` container.

Used when the worker cannot mount a tmpfs the engine sees (``_docker_outputs``). A tmpfs volume
is unmounted -- and emptied -- when its last container stops, so the keeper must run from
before the phase starts until the outputs are copied out; ``verify`` checks that it did (same
``State.Pid`` and ``StartedAt`` as right after its start, still running). A keeper that died
is an infrastructure error, never an empty output folder.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

import docker.errors
import requests
from docker.types import Mount as DockerMount

from runners.backends._docker_common import KEEPER_LIMITS, ChunkReader, translate
from runners.backends.base import BackendError

if TYPE_CHECKING:
    from runners.backends._docker_run import _Run

log = logging.getLogger("runners.backends.docker")


class KeeperOutputs:
    """A tmpfs Docker volume, held mounted by a hardened ``sleep`` container (the keeper)."""

    kind = "keeper"

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.spec = run.spec
        self.volume_name = f"{run.spec.name}-output"
        self.keeper_name = f"{run.spec.name}-keeper"
        self.keeper_id = self.keeper_name
        self.identity: tuple[object, object] | None = None  # (State.Pid, State.StartedAt)

    def volume_options(self) -> str:
        inodes = 4 * self.run.backend.max_output_entries
        return (
            f"size={self.spec.limits.output_mb}m,nr_inodes={inodes},"
            "uid=65534,gid=65534,mode=0700,nosuid,nodev,noexec"
        )

    def prepare(self) -> None:
        with translate("creating the output volume"):
            self.run.client.volumes.create(
                name=self.volume_name,
                driver="local",
                labels=self.run.labels("output"),
                driver_opts={"type": "tmpfs", "device": "tmpfs", "o": self.volume_options()},
            )
        self.start_keeper()

    def start_keeper(self) -> None:
        """``sleep`` as the container's PID 1 (no docker-init: nothing left to fork once the
        command runs), started -- and restarted when it is found dead right away."""
        mount = self.volume_mount(read_only=True)
        self.keeper_id = self.run.start_container(
            self.keeper_name,
            lambda: self.run.create(
                self.keeper_name,
                ["sleep", "infinity"],
                KEEPER_LIMITS,
                {},
                "/",
                [mount],
                role="keeper",
                init=False,
            ),
            "the output keeper",
            check_started=self.check_started,
        )

    def check_started(self, keeper_id: str) -> str | None:
        """Why the keeper is not running, else None; when it runs, its identity is remembered
        for ``verify``."""
        self.keeper_id = keeper_id
        state = self.state()
        if not state.get("Running"):
            return self.describe(state)
        self.identity = (state.get("Pid"), state.get("StartedAt"))
        return None

    def ready(self) -> None:
        """Just before the phase starts: a keeper that died since its start (which the check
        right after it can miss by milliseconds) is replaced -- the volume holds nothing yet."""
        reason = self.check_started(self.keeper_id)
        if reason is not None:
            log.warning(
                "the output keeper %s died after its start (%s); replacing it",
                self.keeper_name,
                reason,
            )
            self.run.remove_container(self.keeper_name)
            self.start_keeper()

    def volume_mount(self, *, read_only: bool) -> DockerMount:
        return DockerMount(
            target=self.spec.output.target,
            source=self.volume_name,
            type="volume",
            read_only=read_only,
            no_copy=True,
        )

    def phase_mount(self) -> DockerMount:
        return self.volume_mount(read_only=False)

    def state(self) -> dict[str, Any]:
        with translate("inspecting the output keeper"):
            return dict(self.run.api.inspect_container(self.keeper_id)["State"])

    def describe(self, state: dict[str, Any]) -> str:
        text = f"exit code {state.get('ExitCode')}, OOM-killed {bool(state.get('OOMKilled'))}"
        if state.get("Error"):
            text += f", {state['Error']}"
        with contextlib.suppress(BackendError), translate("reading the keeper's log"):
            tail = self.run.api.logs(self.keeper_id, stdout=True, stderr=True, tail=5)
            if tail.strip():
                text += f", log: {tail.decode(errors='replace').strip()[-300:]}"
        return text

    def verify(self) -> None:
        """The keeper has run without a break since before the phase started: its tmpfs, the
        one the phase wrote, is the one ``get_archive`` reads (a stopped keeper would have
        the engine mount a fresh, empty tmpfs)."""
        state = self.state()
        if state.get("Running") and (state.get("Pid"), state.get("StartedAt")) == self.identity:
            return
        raise BackendError(
            f"the output keeper of {self.spec.name} stopped during the run ({self.describe(state)})"
            ": the phase's outputs are lost (an infrastructure fault, not the package's)"
        )

    @contextlib.contextmanager
    def archive(self) -> Iterator[BinaryIO]:
        with translate("reading the outputs"):
            chunks, _ = self.run.api.get_archive(self.keeper_id, self.spec.output.target)
        reader = io.BufferedReader(ChunkReader(chunks), 1 << 16)
        try:
            yield reader
        finally:
            with contextlib.suppress(Exception):
                chunks.close()

    def full(self) -> bool:
        """Whether the output tmpfs has (almost) no blocks or inodes left."""
        command = ["stat", "-f", "-c", "%a %S %d", self.spec.output.target]
        api = self.run.api
        with contextlib.suppress(BackendError, ValueError), translate("measuring the outputs"):
            exec_id = api.exec_create(self.keeper_id, command)["Id"]
            free_blocks, block_size, free_inodes = map(int, api.exec_start(exec_id).split())
            return free_blocks * block_size < 64 * 1024 or free_inodes == 0
        return False

    def cleanup(self) -> None:
        self.run.remove_container(self.keeper_name)
        try:
            self.run.api.remove_volume(self.volume_name, force=True)
        except docker.errors.NotFound:
            pass
        except (docker.errors.DockerException, requests.RequestException) as exc:
            log.warning("could not remove volume %s (reconcile will, at stop): %s",
                        self.volume_name, exc)
