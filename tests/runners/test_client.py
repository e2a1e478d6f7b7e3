"""ServerClient against a scripted API: retries, backoff, 4xx handling, downloads, the cache."""

from __future__ import annotations

import hashlib
import random
import threading
from pathlib import Path

import httpx
import pytest

from runners.client import (
    Backoff,
    BundleIntegrityError,
    Lease,
    LeaseLost,
    PackageIntegrityError,
    ProtocolError,
    ResultRejected,
    ServerClient,
    ServerUnavailable,
    Unauthorized,
    limits_from_json,
)
from tests.runners.workerkit import FakeServer


def test_backoff_doubles_to_the_cap_with_bounded_jitter() -> None:
    delays = Backoff(initial=0.5, maximum=30.0, rng=random.Random(7)).delays()
    nominal = [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30]
    for expected in nominal:
        got = next(delays)
        assert expected * 0.75 <= got <= expected * 1.25


def test_headers_and_timeouts() -> None:
    server = FakeServer()
    client = server.client(wait_s=20)
    assert client._http.headers["User-Agent"].startswith("reprise-worker/")
    assert client._http.headers["Authorization"] == "Bearer worker-token"
    assert client._http.timeout.connect == 5.0
    assert client._http.timeout.read == 30.0
    client.lease("w1", {}, wait_s=2)
    sent = server.requests[-1]
    assert sent.extensions["timeout"]["read"] == 12.0
    assert sent.headers["User-Agent"].startswith("reprise-worker/")


def test_lease_parses_and_204_is_none() -> None:
    server = FakeServer()
    client = server.client()
    lease = client.lease("w1", {"cpu": "x86_64"}, wait_s=1, backend="local")
    assert isinstance(lease, Lease)
    assert lease.job_id == server.job_id
    assert lease.benchmark.label == "toy@1"
    assert lease.benchmark.limits.memory_mb == 512
    assert lease.benchmark.limits.timeout_s == 30.0
    body = server.requests[-1].read()
    assert b'"worker_id":"w1"' in body.replace(b" ", b"")
    assert b'"backend":"local"' in body.replace(b" ", b"")
    assert client.lease("w1", {}, wait_s=1) is None


def test_limits_keep_defaults_for_missing_or_malformed_values() -> None:
    limits = limits_from_json({"cpus": 2, "memory_mb": "lots", "timeout_s": -1, "pids": True})
    assert limits.cpus == 2.0
    assert limits.memory_mb == 1024
    assert limits.timeout_s == 120.0
    assert limits.pids == 256


@pytest.mark.parametrize("failure", [
    503, 502, 500, 429,
    httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("eof"),
])
def test_transient_failures_are_retried(failure: int | Exception) -> None:
    server = FakeServer()
    server.fail_next["lease"] = [failure, failure]
    lease = server.client().lease("w1", {}, wait_s=0)
    assert lease is not None
    assert server.count("lease") == 3


@pytest.mark.parametrize("status", [400, 404, 405, 409, 410, 422])
def test_client_errors_are_not_retried(status: int) -> None:
    server = FakeServer()
    server.fail_next["lease"] = [status]
    with pytest.raises(ProtocolError) as caught:
        server.client().lease("w1", {}, wait_s=0)
    assert caught.value.status == status
    assert f"scripted {status}" in str(caught.value)
    assert server.count("lease") == 1


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_are_unauthorized(status: int) -> None:
    server = FakeServer()
    server.fail_next["lease"] = [status]
    with pytest.raises(Unauthorized):
        server.client().lease("w1", {}, wait_s=0)
    assert server.count("lease") == 1


def test_retry_budget_runs_out() -> None:
    server = FakeServer()
    server.fail_next["heartbeat"] = [503] * 1000
    lease = server.lease()
    with pytest.raises(ServerUnavailable):
        server.client().heartbeat(lease, phase="ingest", budget_s=0.05)


def test_abort_stops_retrying() -> None:
    server = FakeServer()
    server.fail_next["lease"] = [503] * 1000
    abort = threading.Event()
    abort.set()
    with pytest.raises(ServerUnavailable):
        server.client().lease("w1", {}, wait_s=0, abort=abort)
    assert server.count("lease") == 1


def test_heartbeat_cancel_and_lost() -> None:
    server = FakeServer()
    client, lease = server.client(), server.lease()
    answer = client.heartbeat(lease, phase="ingest", log_tail="x" * 70_000)
    assert not answer.cancel
    assert not answer.lease_lost
    assert server.heartbeats[-1]["phase"] == "ingest"
    assert len(server.heartbeats[-1]["log_tail"]) == 65536
    server.cancel = True
    assert client.heartbeat(lease).cancel
    server.stale = True
    assert client.heartbeat(lease).lease_lost


def test_result_is_retried_then_duplicate_is_fine() -> None:
    server = FakeServer()
    client, lease = server.client(), server.lease()
    server.fail_next["result"] = [503, httpx.ConnectError("down")]
    ack = client.post_result(lease, {"outcome": "succeeded"})
    assert ack.recorded
    assert not ack.duplicate
    again = client.post_result(lease, {"outcome": "succeeded"})
    assert again.duplicate
    assert not again.recorded
    assert len(server.results) == 1
    assert server.results[0]["attempt"] == lease.attempt


def test_stale_result_is_quiet() -> None:
    server = FakeServer()
    client, lease = server.client(), server.lease()
    server.stale = True
    ack = client.post_result(lease, {"outcome": "succeeded"})
    assert ack.lease_lost
    assert not ack.recorded
    assert server.count("result") == 1


def test_rejected_result_raises() -> None:
    server = FakeServer()
    server.fail_next["result"] = [422]
    with pytest.raises(ResultRejected):
        server.client().post_result(server.lease(), {"outcome": "succeeded"})


def test_release() -> None:
    server = FakeServer()
    client, lease = server.client(), server.lease()
    assert client.release(lease)
    assert server.releases == [{"lease_token": server.token, "attempt": 1}]
    server.stale = True
    assert not client.release(lease)


def test_download_package_verifies_and_sends_the_lease(tmp_path: Path) -> None:
    server = FakeServer()
    dest = server.client().download_package(server.lease(), tmp_path / "pkg")
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == server.package_sha256
    sent = next(r for r in server.requests if r.url.path.endswith("/package"))
    assert sent.url.params["lease_token"] == server.token
    assert sent.url.params["attempt"] == "1"


def test_download_package_refuses_a_mismatch(tmp_path: Path) -> None:
    server = FakeServer()
    lease = server.lease(package={"sha256": "0" * 64, "size": len(server.package),
                                  "url": f"/v1/worker/jobs/{server.job_id}/package"})
    with pytest.raises(PackageIntegrityError):
        server.client().download_package(lease, tmp_path / "pkg")
    assert not (tmp_path / "pkg").exists()


def test_download_package_refuses_more_bytes_than_announced(tmp_path: Path) -> None:
    server = FakeServer()
    lease = server.lease(package={"sha256": server.package_sha256, "size": 10,
                                  "url": f"/v1/worker/jobs/{server.job_id}/package"})
    with pytest.raises(PackageIntegrityError):
        server.client().download_package(lease, tmp_path / "pkg")
    assert not (tmp_path / "pkg").exists()


def test_download_package_stale_lease(tmp_path: Path) -> None:
    server = FakeServer()
    server.stale = True
    with pytest.raises(LeaseLost):
        server.client().download_package(server.lease(), tmp_path / "pkg")


def test_download_benchmark_caches_by_content_hash(tmp_path: Path) -> None:
    server = FakeServer()
    client, lease = server.client(), server.lease()
    cache = tmp_path / "bundles"
    ingest = client.download_benchmark(lease, "ingest", cache)
    assert ingest.name == f"{server.content_hash}-ingest"
    assert (ingest / "harness" / "harness.py").is_file()
    assert (ingest / "train" / "train.npz").is_file()
    assert not (ingest / "test").exists()  # hidden data never in the ingest bundle
    score = client.download_benchmark(lease, "score", cache)
    assert (score / "test" / "test.npz").is_file()
    assert client.download_benchmark(lease, "ingest", cache) == ingest
    assert server.count("benchmark") == 2
    assert sorted(p.name for p in cache.iterdir()) == sorted([ingest.name, score.name])


def test_download_benchmark_concurrently_downloads_once(tmp_path: Path) -> None:
    server = FakeServer()
    client, lease = server.client(), server.lease()
    cache = tmp_path / "bundles"
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(
        client.download_benchmark(lease, "score", cache))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1
    assert len(results) == 4
    assert server.count("benchmark") == 1
    assert [p.name for p in cache.iterdir()] == [results[0].name]


def test_download_benchmark_two_clients_race_safely(tmp_path: Path) -> None:
    """Two processes sharing a cache: the loser of the rename drops its copy."""
    server = FakeServer()
    lease, cache = server.lease(), tmp_path / "bundles"
    first = server.client().download_benchmark(lease, "ingest", cache)
    (first / "marker").write_text("first")
    other = server.client()
    other._bundle_locks.clear()
    # The second client saw no bundle when it started, so it downloads and loses the rename.
    original = Path.is_dir
    calls = {"n": 0}

    def not_yet(self: Path) -> bool:
        if self == first and calls["n"] == 0:
            calls["n"] += 1
            return False
        return original(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Path, "is_dir", not_yet)
        second = other.download_benchmark(lease, "ingest", cache)
    assert calls["n"] == 1
    assert server.count("benchmark") == 2
    assert second == first
    assert (first / "marker").read_text() == "first"
    assert [p.name for p in cache.iterdir()] == [first.name]


def test_download_benchmark_retries_a_broken_stream(tmp_path: Path) -> None:
    server = FakeServer()
    server.fail_next["benchmark"] = [httpx.ReadError("reset"), 503]
    path = server.client().download_benchmark(server.lease(), "ingest", tmp_path / "b")
    assert (path / "harness" / "harness.py").is_file()
    assert [p.name for p in (tmp_path / "b").iterdir()] == [path.name]


def test_download_benchmark_refuses_a_bundle_that_is_not_the_leased_one(tmp_path: Path) -> None:
    """The server's blob store (or anything between) serves other bytes than the catalog
    recorded: nothing is cached, and the job cannot run on it."""
    server = FakeServer()
    lease = server.lease()
    server.bundles["ingest"] = server.bundles["score"]  # a valid bundle, but the wrong one
    cache = tmp_path / "bundles"
    with pytest.raises(BundleIntegrityError, match="the lease says"):
        server.client().download_benchmark(lease, "ingest", cache)
    assert list(cache.iterdir()) == []
    assert server.count("benchmark") == 1  # final, not retried


def test_download_benchmark_from_an_older_server_is_unchecked(tmp_path: Path) -> None:
    server = FakeServer()
    bench = {k: v for k, v in server.lease_json()["benchmark"].items() if "sha256" not in k}
    lease = server.lease(benchmark=bench)
    assert lease.benchmark.ingest_sha256 is None
    path = server.client().download_benchmark(lease, "ingest", tmp_path / "b")
    assert (path / "harness" / "harness.py").is_file()


def test_malformed_lease_is_a_protocol_error() -> None:
    server = FakeServer()
    bad = server.lease_json()
    bad["package"]["sha256"] = "../../etc"
    with pytest.raises(ProtocolError):
        Lease.from_json(bad)
    with pytest.raises(ProtocolError):
        Lease.from_json({"job_id": "x"})


def test_client_is_a_context_manager() -> None:
    server = FakeServer()
    with ServerClient("http://x", "t", transport=httpx.MockTransport(server.handler)) as c:
        assert c.server == "http://x"
