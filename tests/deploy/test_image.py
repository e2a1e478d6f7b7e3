"""The service image (top-level Dockerfile): it builds from the locally built base, serves the API
on SQLite in a volume (migrations first) until Docker's own health check says ``healthy``, runs
as the unprivileged user, and its worker entry point reports healthy through its health file.

The build reuses the layer cache of earlier runs (only the source tree changes between them);
the tagged image, containers, volume and network are removed afterwards. Skips without an engine
or the base images -- except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.runners.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
BASE = os.environ.get("REPRISE_IMAGE_BASE", "reprise/python-numpy-build:bookworm")
RUNTIME_BASE = os.environ.get("REPRISE_IMAGE_RUNTIME_BASE", "reprise/python-numpy:bookworm")
# Locally added CAs (update-ca-certificates' folder): a TLS-inspecting proxy between the build
# container and PyPI signs with one of these; pip in the build stage must trust it too.
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
RUN = uuid.uuid4().hex[:8]
LABELS = {"reprise.test": f"image-{RUN}"}

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1200)]


def build_args() -> dict[str, str]:
    """The Dockerfile's build arguments for this machine."""
    args = {"BASE": BASE, "RUNTIME_BASE": RUNTIME_BASE}
    cas = sorted(LOCAL_CAS.glob("*.crt")) if LOCAL_CAS.is_dir() else []
    if cas:
        args["EXTRA_CA_CERTS"] = "\n".join(p.read_text().strip() for p in cas)
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        if os.environ.get(name, "").startswith(("http://", "https://")):
            args[name] = os.environ[name]
    return args


@pytest.fixture(scope="module")
def docker_client() -> Iterator[Any]:
    try:
        import docker

        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:
        unavailable(f"the Docker daemon does not answer: {exc}")
        raise
    for base in {BASE, RUNTIME_BASE}:
        try:
            client.images.get(base)
        except Exception:
            unavailable(f"the base image {base} is missing (scripts/build-images.sh)")
    yield client
    client.close()


@pytest.fixture(scope="module")
def image(docker_client: Any) -> Iterator[str]:
    tag = f"reprise/service:test-{RUN}"
    started = time.monotonic()
    log: list[str] = []
    for chunk in docker_client.api.build(
        path=str(ROOT), tag=tag, buildargs=build_args(), rm=True, forcerm=True, decode=True
    ):
        if "stream" in chunk:
            log.append(chunk["stream"])
        if "error" in chunk:
            pytest.fail(f"docker build failed: {chunk['error']}\n{''.join(log)[-4000:]}")
    print(f"image {tag} built in {time.monotonic() - started:.0f} s")  # shown with -s
    try:
        yield tag
    finally:
        docker_client.images.remove(tag, force=True)


@pytest.fixture(scope="module")
def network(docker_client: Any) -> Iterator[Any]:
    net = docker_client.networks.create(f"reprise-test-{RUN}", driver="bridge", labels=LABELS)
    try:
        yield net
    finally:
        net.remove()


@pytest.fixture(scope="module")
def api(docker_client: Any, image: str, network: Any) -> Iterator[Any]:
    """The API on SQLite in a fresh volume, published on a random loopback port."""
    volume = docker_client.volumes.create(f"reprise-test-{RUN}", labels=LABELS)
    container = docker_client.containers.run(
        image,
        name=f"reprise-test-api-{RUN}",
        detach=True,
        environment={"REPRISE_SECRET_KEY": secrets.token_hex(32)},
        volumes={volume.name: {"bind": "/var/lib/reprise", "mode": "rw"}},
        ports={"8000/tcp": ("127.0.0.1", None)},
        network=network.name,
        labels=LABELS,
    )
    try:
        yield container
    finally:
        container.remove(force=True, v=True)
        volume.remove(force=True)


def wait_healthy(container: Any, timeout_s: float = 150.0) -> dict[str, Any]:
    """Docker's health state once it is ``healthy``; fails on exit, ``unhealthy`` or timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        container.reload()
        state = container.attrs["State"]
        health: dict[str, Any] = state.get("Health") or {}
        if health.get("Status") == "healthy":
            return health
        if state["Status"] == "exited" or health.get("Status") == "unhealthy":
            break
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    logs = container.logs(tail=60).decode(errors="replace")
    pytest.fail(f"{container.name}: {state['Status']}, health {json.dumps(health)[-1500:]}\n{logs}")


def test_the_api_migrates_serves_and_turns_healthy(api: Any) -> None:
    health = wait_healthy(api)
    assert health["Log"][-1]["ExitCode"] == 0
    assert "/healthz: HTTP 200" in health["Log"][-1]["Output"]
    port = api.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/healthz", timeout=10).json() == {"status": "ok"}
    ready = httpx.get(f"{base}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["database"] == "ok"  # migrated: the catalog is in its tables
    assert "reprise_queue_jobs" in httpx.get(f"{base}/metrics", timeout=10).text
    # Not root, and the data directory (the volume) is its own.
    assert api.exec_run(["id", "-u"]).output.decode().strip() == "10001"
    listing = api.exec_run(["ls", "/var/lib/reprise"]).output.decode().split()
    assert "reprise.sqlite3" in listing
    assert "blobs" in listing
    # No compiler in the runtime image; JSON logs with request ids.
    assert api.exec_run(["sh", "-c", "command -v gcc || command -v cc"]).exit_code != 0
    lines = [json.loads(x) for x in api.logs().decode().splitlines() if x.startswith("{")]
    access = [r for r in lines if r["logger"] == "reprise.access" and r.get("path") == "/readyz"]
    assert access
    assert access[0]["request_id"] == ready.headers["x-request-id"]
    # matplotlib found the font cache built into the image (else: a warning and a rebuild).
    assert not [r for r in lines if r["logger"].startswith("matplotlib")]


def test_a_worker_container_reports_healthy_through_its_health_file(
    docker_client: Any, image: str, network: Any, api: Any
) -> None:
    wait_healthy(api)
    minted = api.exec_run(["reprise", "workers", "create", f"test-{RUN}"], demux=True)
    assert minted.exit_code == 0, minted.output
    token = minted.output[0].decode().strip().splitlines()[-1]
    assert token
    worker = docker_client.containers.run(
        image,
        ["worker", "--server", f"http://{api.name}:8000", "--backend", "fake", "--wait-s", "2"],
        name=f"reprise-test-worker-{RUN}",
        detach=True,
        environment={
            "REPRISE_WORKER_TOKEN": token,
            "REPRISE_WORKER_HEALTH_FILE": "/tmp/reprise-worker.json",
        },
        network=network.name,
        labels=LABELS,
    )
    try:
        health = wait_healthy(worker)
        assert "worker " in health["Log"][-1]["Output"]
        assert ": ok" in health["Log"][-1]["Output"]
    finally:
        worker.remove(force=True, v=True)
