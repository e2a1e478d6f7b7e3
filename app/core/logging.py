"""Structured logging: every record carries the request id and job id of its context."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from app.core.context import job_id_var, request_id_var


class ContextFilter(logging.Filter):
    """Attach ``request_id`` and ``job_id`` to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        job = job_id_var.get()
        record.job_id = job if job is not None else "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "job_id": getattr(record, "job_id", "-"),
        }
        for key in ("method", "path", "status", "duration_ms", "worker_id", "submission_id"):
            if hasattr(record, key):
                payload[key] = getattr(record, key)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [req=%(request_id)s job=%(job_id)s] %(message)s"


def configure_logging(*, level: str = "INFO", json_lines: bool = False) -> None:
    """Install one handler on the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_reprise", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._reprise = True  # type: ignore[attr-defined]
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
