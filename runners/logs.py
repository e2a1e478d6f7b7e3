"""The worker's logs: text for a terminal, or one JSON object per line for a log shipper.

Every record carries the worker id and the job id of the thread that logged it, so that a job's
lines can be found across the API's logs (which carry the same ``job_id``) and the worker's.
Threads do not inherit context variables: each job's slot and heartbeat thread set ``job_id_var``
themselves (``bind_job``).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

job_id_var: ContextVar[int | None] = ContextVar("worker_job_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s [job=%(job_id)s]: %(message)s"
LOG_FORMATS = ("text", "json")


@contextmanager
def bind_job(job_id: int) -> Iterator[None]:
    """Mark this thread's records with ``job_id`` while the block runs."""
    token = job_id_var.set(job_id)
    try:
        yield
    finally:
        job_id_var.reset(token)


class _ContextFilter(logging.Filter):
    def __init__(self, worker_id: str) -> None:
        super().__init__()
        self.worker_id = worker_id

    def filter(self, record: logging.LogRecord) -> bool:
        job = job_id_var.get()
        record.job_id = job if job is not None else "-"
        record.worker_id = self.worker_id
        return True


class JsonFormatter(logging.Formatter):
    """The same members as the API's JSON lines (``ts``, ``level``, ``logger``, ``msg``,
    ``job_id``), plus ``worker_id`` and ``thread``."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "job_id": getattr(record, "job_id", "-"),
            "worker_id": getattr(record, "worker_id", "-"),
            "thread": record.threadName,
        }
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure(*, level: str, log_format: str, worker_id: str) -> None:
    """Install one handler on the root logger (idempotent: a second call replaces it)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_reprise_worker", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._reprise_worker = True  # type: ignore[attr-defined]
    handler.addFilter(_ContextFilter(worker_id))
    json_lines = log_format == "json"
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
    quiet_http_client(level)


def quiet_http_client(level: str) -> None:
    """httpx logs every request at INFO: a line per heartbeat. The worker's client logs what
    matters (retries, refusals) itself, so httpx speaks only at DEBUG."""
    if level.upper() != "DEBUG":
        logging.getLogger("httpx").setLevel(logging.WARNING)
