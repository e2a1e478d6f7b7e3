"""WorkerConfig from flags, options and the environment; the CLI entry's error paths."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from runners import cli
from runners.backends.base import Limits, Mount, PreparedEnvironment, RunSpec
from runners.backends.fake import FakeBackend
from runners.config import ConfigError, WorkerConfig, default_worker_id, parse_labels


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REPRISE_SERVER", "REPRISE_WORKER_TOKEN", "REPRISE_TOKEN",
                 "REPRISE_WORKER_BACKEND", "REPRISE_WORKER_ID", "REPRISE_WORKER_CONCURRENCY",
                 "REPRISE_WORKER_LABELS", "REPRISE_WORKER_DIR", "REPRISE_WORKER_HEALTH_FILE"):
        monkeypatch.delenv(name, raising=False)


def test_from_args(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REPRISE_WORKER_TOKEN", "rpw_secret")
    config = WorkerConfig.from_args([
        "--server", "https://reprise.example/", "--backend", "local", "--concurrency", "3",
        "--labels", "cpu=x86_64,gpu=none", "--worker-id", "lab-a-box-3",
        "--workdir", str(tmp_path), "--wait", "5", "--health-file", str(tmp_path / "h.json"),
        "--grace", "12", "--docker-images", "python-numpy=me/img:1", "--local-python", "/py",
    ])
    assert config.token == "rpw_secret"
    assert config.base_url == "https://reprise.example"
    assert config.backend == "local"
    assert config.concurrency == 3
    assert config.labels == {"cpu": "x86_64", "gpu": "none"}
    assert config.worker_id == "lab-a-box-3"
    assert config.workdir == tmp_path
    assert config.wait_s == 5.0
    assert config.health_file == tmp_path / "h.json"
    assert config.grace_s == 12.0
    assert config.docker_images == {"python-numpy": "me/img:1"}
    assert config.local_python == "/py"


def test_env_and_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REPRISE_SERVER", "http://api:8000")
    monkeypatch.setenv("REPRISE_TOKEN", "rpw_fallback")
    monkeypatch.setenv("REPRISE_WORKER_DIR", str(tmp_path))
    config = WorkerConfig.from_env()
    assert config.server == "http://api:8000"
    assert config.token == "rpw_fallback"
    assert config.backend == "docker"
    assert config.concurrency == 1
    assert config.grace_s == 60.0
    assert config.worker_id == default_worker_id(tmp_path)
    monkeypatch.setenv("REPRISE_WORKER_TOKEN", "rpw_preferred")
    assert WorkerConfig.from_env().token == "rpw_preferred"


def test_from_options_as_the_project_cli_calls_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRISE_WORKER_LABELS", "cpu=arm64")
    config = WorkerConfig.from_options(
        server="http://127.0.0.1:8000", token="rpw_x", backend="local", concurrency=2,
        labels={}, worker_id=None, health_file=None,
    )
    assert config.labels == {}  # an explicit option wins over the environment
    assert config.worker_id
    assert config.health_file is None


def test_default_worker_id_is_stable_and_per_workdir(tmp_path: Path) -> None:
    first = default_worker_id(tmp_path / "a")
    assert first == default_worker_id(tmp_path / "a")
    assert first != default_worker_id(tmp_path / "b")
    assert len(first) <= 64
    WorkerConfig(server="http://x", token="t", worker_id=first)  # valid


@pytest.mark.parametrize("changes", [
    {"server": "ftp://x"},
    {"token": ""},
    {"backend": "kubernetes"},
    {"concurrency": 0},
    {"concurrency": 65},
    {"worker_id": "has space"},
    {"worker_id": "x" * 65},
    {"labels": {"gpu": "a 100"}},
    {"wait_s": -1},
    {"backoff_initial_s": 0},
])
def test_invalid_settings_are_refused(changes: dict[str, object]) -> None:
    values: dict[str, object] = {"server": "http://x", "token": "t", "worker_id": "w"}
    values.update(changes)
    with pytest.raises(ConfigError):
        WorkerConfig(**values)  # type: ignore[arg-type]


def test_parse_labels() -> None:
    assert parse_labels(" cpu=x86_64 , gpu=a100,") == {"cpu": "x86_64", "gpu": "a100"}
    with pytest.raises(ConfigError):
        parse_labels("gpu")


def test_main_without_a_token_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--server", "http://127.0.0.1:9"]) == 2
    assert "worker token" in capsys.readouterr().err


def test_fake_backend_from_the_cli_reports_empty_metrics(tmp_path: Path) -> None:
    backend = cli.build_backend(WorkerConfig(server="http://x", token="t", backend="fake",
                                             worker_id="w"))
    assert isinstance(backend, FakeBackend)
    out = tmp_path / "out"
    spec = RunSpec(name="reprise-1-1-score", environment=PreparedEnvironment("r", "python3"),
                   command=["x"], env={}, mounts=[], output=Mount(out, "/reprise/output", False),
                   limits=Limits(), labels={"reprise.phase": "score"})
    assert backend.run(spec).exit_code == 0
    assert (out / "metrics.json").read_text().startswith('{"metrics": {}')


def test_local_backend_is_announced_loudly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    backend = cli.build_backend(WorkerConfig(server="http://x", token="t", backend="local",
                                             worker_id="w"))
    try:
        assert backend.name == "local"
        assert "NOT A SANDBOX" in caplog.text
    finally:
        backend.close()
