"""The worker's JSON log lines carry the job id of the thread that logged them."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator

import pytest

from runners import logs
from runners.config import ConfigError, WorkerConfig


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_job_and_worker_ids(
    restore_root_logger: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(level="INFO", log_format="json", worker_id="w-1")
    log = logging.getLogger("runners.test")

    def job_thread() -> None:
        with logs.bind_job(42):
            log.info("leased")
        log.info("after the job")

    thread = threading.Thread(target=job_thread, name="slot-0")
    thread.start()
    thread.join()
    log.info("idle")

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    by_msg = {line["msg"]: line for line in lines}
    assert by_msg["leased"]["job_id"] == 42
    assert by_msg["leased"]["worker_id"] == "w-1"
    assert by_msg["leased"]["thread"] == "slot-0"
    assert by_msg["after the job"]["job_id"] == "-"
    assert by_msg["idle"]["job_id"] == "-"
    assert {line["level"] for line in lines} == {"INFO"}


def test_configure_twice_keeps_one_handler(restore_root_logger: None) -> None:
    logs.configure(level="INFO", log_format="text", worker_id="w-1")
    logs.configure(level="DEBUG", log_format="json", worker_id="w-1")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_reprise_worker", False)]
    assert len(ours) == 1
    assert isinstance(ours[0].formatter, logs.JsonFormatter)


def test_log_format_from_flag_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRISE_WORKER_TOKEN", "rpw_x")
    monkeypatch.setenv("REPRISE_WORKER_LOG_FORMAT", "json")
    assert WorkerConfig.from_args(["--server", "http://127.0.0.1:1"]).log_format == "json"
    flagged = WorkerConfig.from_args(["--server", "http://127.0.0.1:1", "--log-format", "text"])
    assert flagged.log_format == "text"
    monkeypatch.setenv("REPRISE_WORKER_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="log format"):
        WorkerConfig.from_args(["--server", "http://127.0.0.1:1"])
