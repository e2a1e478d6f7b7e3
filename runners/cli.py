"""Entry points of the worker process: ``run_worker(config)`` (what ``reprise worker`` calls) and
``main(argv)`` (``python -m runners.cli --server ... --backend docker``)."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from runners import logs
from runners.backends.base import Backend, BackendError, RunResult, RunSpec
from runners.config import ConfigError, WorkerConfig
from runners.worker import EXIT_FATAL, Worker

log = logging.getLogger("runners")


def build_backend(config: WorkerConfig) -> Backend:
    """The execution backend ``config.backend`` names, configured from ``config``."""
    if config.backend == "docker":
        from runners.backends.docker import DockerBackend

        return DockerBackend(
            base_url=config.docker_url,
            images=config.docker_images or None,
            runtime=config.docker_runtime,
        )
    if config.backend == "local":
        from runners.backends.local import LocalBackend

        log.warning(
            "=" * 78 + "\n"
            "  THE LOCAL BACKEND IS NOT A SANDBOX. Packages run as this user (uid %s) with\n"
            "  this host's files, and the server gives it work only if it allows unsandboxed\n"
            "  runs. Use it for trusted code only; strangers' packages need --backend docker.\n"
            + "=" * 78,
            os.getuid(),
        )
        interpreters = {"python-numpy": config.local_python} if config.local_python else None
        return LocalBackend(interpreters=interpreters)
    from runners.backends.fake import FakeBackend

    log.warning("the fake backend runs nothing: every job reports empty metrics")
    return FakeBackend(_succeed_empty, write_outputs=_empty_metrics)


def run_worker(config: WorkerConfig) -> int:
    """Build the backend and run a worker until SIGTERM/SIGINT; returns the exit status."""
    try:
        backend = build_backend(config)
    except BackendError as exc:
        log.error("cannot start the %s backend: %s", config.backend, exc)
        return EXIT_FATAL
    worker = Worker(config, backend=backend)
    if threading.current_thread() is threading.main_thread():
        worker.install_signal_handlers()
    try:
        return worker.run()
    finally:
        backend.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``reprise-worker`` flags (see ``runners.config.build_parser``); token from the env."""
    try:
        config = WorkerConfig.from_args(sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        print(f"reprise-worker: {exc}", file=sys.stderr)
        return EXIT_FATAL
    logs.configure(level=config.log_level, log_format=config.log_format, worker_id=config.worker_id)
    return run_worker(config)


def _succeed_empty(spec: RunSpec) -> RunResult:
    return RunResult(exit_code=0, log_tail=f"[fake] {spec.name}\n")


def _empty_metrics(spec: RunSpec, output: Path) -> None:
    if spec.labels.get("reprise.phase") == "score":
        (output / "metrics.json").write_text('{"metrics": {}, "self_reported": false}\n')


if __name__ == "__main__":
    sys.exit(main())
