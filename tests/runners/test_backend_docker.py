"""The docker backend against a real engine: each SECURITY.md control, attacked and resisted."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker
import pytest
import requests

from runners.backends.base import (
    BackendError,
    BackendUnavailable,
    EnvironmentSpec,
    Limits,
    Mount,
    PreparedEnvironment,
    RunSpec,
)
from runners.backends.docker import DockerBackend, hardening, pinned_requirements, validate_spec
from tests.runners.conftest import TEST_WORKER, Listener, live_pids_with, unavailable

MIB = 1024 * 1024
docker_only = pytest.mark.docker


def leftovers(backend: DockerBackend, run_name: str) -> list[str]:
    client = backend.client()
    selector = {"label": f"reprise.run={run_name}"}
    return [str(c.name) for c in client.containers.list(all=True, filters=selector)] + [
        str(v.name) for v in client.volumes.list(filters=selector)
    ]


# ---------------------------------------------------------------- no engine needed


def test_hardening_covers_every_control_of_the_table():
    config = hardening(
        Limits(
            cpus=1.5,
            memory_mb=512,
            pids=64,
            tmpfs_mb=32,
            output_mb=8,
            nofile=256,
            log_tail_bytes=64 * 1024,
        )
    )
    assert config["network_mode"] == "none"
    assert config["cap_drop"] == ["ALL"]
    assert config["security_opt"] == ["no-new-privileges:true"]
    assert config["user"] == "65534:65534"
    assert config["read_only"] is True
    assert config["privileged"] is False
    assert config["tmpfs"]["/tmp"].startswith("rw,nosuid,nodev,noexec,size=32m")
    assert config["mem_limit"] == config["memswap_limit"] == 512 * MIB
    assert config["pids_limit"] == 64
    assert config["nano_cpus"] == 1_500_000_000
    assert config["init"] is True
    assert config["shm_size"] == 32 * MIB
    assert config["log_config"].type == "json-file"
    assert set(config["log_config"].config) == {"max-size", "max-file"}
    ulimits = {u.name: (u.soft, u.hard) for u in config["ulimits"]}
    assert ulimits == {"nofile": (256, 256), "fsize": (32 * MIB, 32 * MIB), "core": (0, 0)}
    for forbidden in ("devices", "pid_mode", "ipc_mode_host", "volumes", "cap_add"):
        assert forbidden not in config


def test_pinned_requirements_accepts_pins_and_refuses_options():
    text = (
        "numpy==1.26.4  # pinned\nfoo[bar]==1.0 ; python_version >= '3.8'\n\n# c\n"
        "baz==2.0 \\\n    --hash=sha256:" + "a" * 64 + "\n"
    )
    assert pinned_requirements(text) == [
        "numpy==1.26.4",
        "foo[bar]==1.0 ; python_version >= '3.8'",
        "baz==2.0      --hash=sha256:" + "a" * 64,
    ]
    assert pinned_requirements(None) == []
    assert pinned_requirements("# only\n") == []
    for bad in (
        "numpy>=1.0",
        "--index-url http://evil/simple",
        "-e git+https://x/y",
        "--no-binary :all:",
        "-r other.txt",
        "numpy==1.0 --no-binary numpy",
        "https://example.org/pkg.whl",
    ):
        with pytest.raises(BackendError, match="not a pinned requirement"):
            pinned_requirements(bad)


def test_specs_that_would_weaken_the_sandbox_are_refused(tmp_path):
    (tmp_path / "docker.sock").touch()
    base = RunSpec(
        name="reprise-1-1-ingest",
        environment=PreparedEnvironment(reference="img", python="python3"),
        command=["python3"],
        env={},
        mounts=[],
        output=Mount(tmp_path / "out", "/reprise/output", read_only=False),
        limits=Limits(),
    )
    validate_spec(base)
    for bad in (
        replace(base, name="../evil"),
        replace(base, mounts=[Mount(tmp_path / "docker.sock", "/var/run/docker.sock")]),
        replace(base, mounts=[Mount(Path("/"), "/host")]),
        replace(base, mounts=[Mount(tmp_path, "/reprise/package", read_only=False)]),
        replace(base, mounts=[Mount(tmp_path / "missing", "/reprise/package")]),
        replace(base, mounts=[Mount(tmp_path, "/proc")]),
        replace(base, output=Mount(tmp_path / "out", "relative", read_only=False)),
    ):
        with pytest.raises(BackendError):
            validate_spec(bad)


def test_unreachable_daemon_is_unavailable(tmp_path):
    backend = DockerBackend(base_url=f"unix://{tmp_path}/no-docker.sock", ping_timeout_s=1)
    assert backend.healthy() is False
    with pytest.raises(BackendUnavailable):
        backend.prepare_environment(EnvironmentSpec(base="python-numpy"))
    with pytest.raises(BackendUnavailable):
        backend.reconcile("w", set())
    assert backend.describe()["backend"] == "docker"  # best effort, no exception


def test_unknown_base_is_refused():
    with pytest.raises(BackendError, match="not approved"):
        DockerBackend().prepare_environment(EnvironmentSpec(base="cuda-torch"))


# ---------------------------------------------------------------- against the engine


@docker_only
def test_normal_run(docker_backend, make_spec):
    spec = make_spec(
        docker_backend,
        """
        import json, os, numpy
        a = numpy.ones((300, 300))
        print("sum", float((a @ a).sum()), "uid", os.getuid(), flush=True)
        os.makedirs("/reprise/output/sub")
        with open("/reprise/output/metrics.json", "w") as f:
            json.dump({"x": 1}, f)
        with open("/reprise/output/sub/curve.json", "w") as f:
            f.write("[]")
    """,
    )
    result = docker_backend.run(spec)
    assert result.exit_code == 0, result.log_tail
    assert "sum 27000000.0 uid 65534" in result.log_tail
    assert not (result.timed_out)
    assert not (result.oom_killed)
    assert not (result.cancelled)
    assert not (result.output_overflow)
    assert result.log_dropped_bytes == 0
    assert result.cpu_s is not None
    assert result.cpu_s > 0
    assert result.peak_memory_mb is not None
    assert result.peak_memory_mb > 5
    assert json.loads((spec.output.source / "metrics.json").read_text()) == {"x": 1}
    assert (spec.output.source / "sub" / "curve.json").read_text() == "[]"
    assert leftovers(docker_backend, spec.name) == []


@docker_only
def test_applied_host_config(docker_backend, make_spec):
    spec = make_spec(
        docker_backend,
        "import time; time.sleep(3)",
        limits=Limits(cpus=1.0, memory_mb=256, pids=48, timeout_s=20),
    )
    seen: dict[str, Any] = {}

    def inspect() -> None:
        client = docker_backend.client()
        for _ in range(100):
            try:
                seen.update(client.api.inspect_container(spec.name)["HostConfig"])
                return
            except docker.errors.NotFound:
                time.sleep(0.05)

    probe = threading.Thread(target=inspect)
    probe.start()
    assert docker_backend.run(spec).exit_code == 0
    probe.join()
    assert seen["NetworkMode"] == "none"
    assert seen["CapDrop"] == ["ALL"]
    assert seen["SecurityOpt"] == ["no-new-privileges:true"]
    assert seen["ReadonlyRootfs"] is True
    assert seen["Privileged"] is False
    assert seen["Memory"] == seen["MemorySwap"] == 256 * MIB
    assert seen["PidsLimit"] == 48
    assert seen["NanoCpus"] == 1_000_000_000
    assert seen["Init"] is True
    assert seen["LogConfig"]["Type"] == "json-file"
    assert seen["PidMode"] == ""
    assert seen["IpcMode"] == "private"
    assert not seen["Devices"]
    writable = [m for m in seen["Mounts"] if not m.get("ReadOnly")]
    assert [m["Target"] for m in writable] == ["/reprise/output"]  # the only writable mount
    assert not any("docker.sock" in str(m.get("Source")) for m in seen["Mounts"])
    assert {u["Name"]: (u["Soft"], u["Hard"]) for u in seen["Ulimits"]} == {
        "nofile": (1024, 1024),
        "fsize": (256 * MIB, 256 * MIB),
        "core": (0, 0),
    }
    assert seen["ShmSize"] == 64 * MIB
    assert seen["Tmpfs"]["/tmp"].startswith("rw,nosuid,nodev,noexec,size=256m")


@docker_only
def test_nonzero_exit(docker_backend, make_spec):
    result = docker_backend.run(make_spec(docker_backend, "import sys; print('bye'); sys.exit(3)"))
    assert result.exit_code == 3
    assert "bye" in result.log_tail
    assert not (result.timed_out)
    assert not (result.oom_killed)


@docker_only
def test_timeout_kills_a_process_that_ignores_sigterm(docker_backend, make_spec):
    spec = make_spec(
        docker_backend,
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stubborn", flush=True)
        time.sleep(600)
    """,
        limits=Limits(timeout_s=1.5),
    )
    started = time.monotonic()
    result = docker_backend.run(spec)
    assert result.timed_out
    assert not result.cancelled
    assert not result.oom_killed
    assert result.exit_code == 137
    assert "stubborn" in result.log_tail
    assert time.monotonic() - started < 1.5 + docker_backend.grace_s + 6
    assert leftovers(docker_backend, spec.name) == []


@docker_only
def test_memory_past_the_limit_in_a_child_is_oom(docker_backend, make_spec):
    spec = make_spec(
        docker_backend,
        """
        import subprocess, sys
        child = subprocess.run([sys.executable, "-c",
            "import numpy; hog = [numpy.ones(2**20) for _ in range(400)]"])  # 3.2 GB
        print("child status", child.returncode, flush=True)
    """,
        limits=Limits(timeout_s=60, memory_mb=128),
    )
    result = docker_backend.run(spec)
    assert result.oom_killed is True
    assert result.exit_code == 0  # the main process survived: OOM comes from the engine's flag
    assert "child status -9" in result.log_tail
    assert result.peak_memory_mb is not None
    assert result.peak_memory_mb <= 129


@docker_only
def test_fork_bomb_is_stopped_by_pids_limit(docker_backend, make_spec):
    spec = make_spec(
        docker_backend,
        """
        import os, time
        made = 0
        try:
            while True:
                if os.fork() == 0:
                    time.sleep(60)
                    os._exit(0)
                made += 1
        except OSError as exc:
            print("fork refused after", made, "errno", exc.errno, flush=True)
    """,
        limits=Limits(timeout_s=30, pids=32),
    )
    result = docker_backend.run(spec)
    assert result.exit_code == 0
    assert not result.timed_out
    made = int(result.log_tail.split("fork refused after")[1].split()[0])
    assert made < 32
    assert subprocess.run(["true"], check=False).returncode == 0  # the host still forks


@docker_only
def test_log_flood_keeps_only_the_tail(docker_backend, make_spec):
    spec = make_spec(
        docker_backend,
        """
        import sys
        line = b"y" * 1023 + b"\\n"
        for _ in range(20 * 1024):
            sys.stdout.buffer.write(line)
        sys.stdout.buffer.write(b"THE END\\n")
    """,
        limits=Limits(timeout_s=60, log_tail_bytes=4096),
    )
    result = docker_backend.run(spec)
    assert result.exit_code == 0
    assert len(result.log_tail.encode()) <= 4096
    assert result.log_tail.endswith("THE END\n")
    assert result.log_dropped_bytes == 20 * MIB + len("THE END\n") - 4096


@docker_only
def test_network_egress_is_refused(docker_backend, make_spec, host_listener: Listener):
    spec = make_spec(
        docker_backend,
        f"""
        import socket
        print("interfaces", [name for _, name in socket.if_nameindex()])
        try:
            socket.getaddrinfo("reprise.invalid", 80)
            print("dns answered")
        except OSError as exc:
            print("dns failed", exc)
        try:
            socket.create_connection(("127.0.0.1", {host_listener.port}), timeout=2)
            print("host reached")
        except OSError as exc:
            print("host unreachable", exc)
    """,
    )
    result = docker_backend.run(spec)
    assert "interfaces ['lo']" in result.log_tail
    assert "dns failed" in result.log_tail
    assert "host unreachable" in result.log_tail
    time.sleep(0.3)
    assert host_listener.connections == 0


@docker_only
def test_writes_outside_tmp_and_output_fail(docker_backend, make_spec):
    spec = make_spec(
        docker_backend,
        """
        import os
        for path in ["/etc/evil", "/evil", "/usr/lib/evil", "/reprise/package/evil",
                     "/tmp/ok", "/reprise/output/ok"]:
            try:
                with open(path, "w") as f:
                    f.write("x")
                print("wrote", path)
            except OSError as exc:
                print("refused", path, exc.errno)
    """,
    )
    result = docker_backend.run(spec)
    assert result.exit_code == 0
    for path in ("/etc/evil", "/evil", "/usr/lib/evil", "/reprise/package/evil"):
        assert f"refused {path}" in result.log_tail
    assert "wrote /tmp/ok" in result.log_tail
    assert "wrote /reprise/output/ok" in result.log_tail
    assert not (spec.mounts[0].source / "evil").exists()


@docker_only
def test_tmp_is_noexec_and_seccomp_refuses_namespaces(docker_backend, make_spec):
    spec = make_spec(
        docker_backend,
        """
        import ctypes, os, shutil, subprocess
        shutil.copy("/usr/bin/id", "/tmp/id")
        os.chmod("/tmp/id", 0o755)
        try:
            subprocess.run(["/tmp/id"])
            print("exec from /tmp worked")
        except PermissionError:
            print("exec from /tmp refused")
        libc = ctypes.CDLL(None, use_errno=True)
        print("unshare", libc.unshare(0x10000000), ctypes.get_errno())  # CLONE_NEWUSER
        print("caps", [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")])
    """,
    )
    result = docker_backend.run(spec)
    assert "exec from /tmp refused" in result.log_tail
    assert "unshare -1 1" in result.log_tail  # EPERM
    assert "caps ['0000000000000000']" in result.log_tail


@docker_only
def test_output_cap_holds_while_the_container_runs(docker_backend, make_spec):
    spec = make_spec(
        docker_backend,
        """
        import errno
        written = 0
        try:
            with open("/reprise/output/big", "wb") as f:
                for _ in range(10):
                    f.write(b"z" * 2**20)
                    f.flush()
                    written += 1
        except OSError as exc:
            print("refused after", written, "MiB", errno.errorcode[exc.errno], flush=True)
    """,
        limits=Limits(timeout_s=30, output_mb=3),
    )
    result = docker_backend.run(spec)
    assert "ENOSPC" in result.log_tail
    assert result.output_overflow is True
    big = spec.output.source / "big"
    assert not big.exists() or big.stat().st_size <= 3 * MIB


@docker_only
def test_a_planted_symlink_is_refused_not_followed(docker_backend, make_spec):
    spec = make_spec(
        docker_backend,
        """
        import os
        os.symlink("/etc/shadow", "/reprise/output/metrics.json")
        with open("/reprise/output/curve.json", "w") as f:
            f.write("[]")
    """,
    )
    result = docker_backend.run(spec)
    assert result.exit_code == 0
    assert "outputs refused" in result.log_tail
    assert "metrics.json" in result.log_tail
    assert list(spec.output.source.iterdir()) == []  # nothing half-copied, nothing followed


@docker_only
def test_setuid_binary_does_not_gain_root(docker_backend, make_spec, tmp_path):
    tools = tmp_path / "suid"
    tools.mkdir()
    tools.chmod(0o755)
    shutil.copy("/usr/bin/id", tools / "id")
    os.chown(tools / "id", 0, 0)
    (tools / "id").chmod(0o4755)
    spec = make_spec(
        docker_backend,
        """
        import subprocess
        print("id:", subprocess.run(["/suid/id"], capture_output=True, text=True).stdout)
    """,
    )
    spec = replace(
        spec, mounts=[*spec.mounts, replace(spec.mounts[0], source=tools, target="/suid")]
    )
    result = docker_backend.run(spec)
    assert "uid=65534" in result.log_tail
    assert "euid=0" not in result.log_tail
    # the control: without no-new-privileges the same binary does gain root
    client = docker_backend.client()
    out = client.containers.run(
        spec.environment.reference,
        ["/suid/id"],
        user="65534:65534",
        network_mode="none",
        remove=True,
        volumes={str(tools): {"bind": "/suid", "mode": "ro"}},
    )
    assert b"euid=0" in out


@docker_only
def test_background_process_is_gone_after_run(docker_backend, make_spec):
    marker = f"reprise-bg-{os.getpid()}-{time.monotonic_ns()}"
    spec = make_spec(
        docker_backend,
        f"""
        import subprocess
        subprocess.Popen(["setsid", "sh", "-c", "exec -a {marker} sleep 300"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print("main exits", flush=True)
    """,
    )
    started = time.monotonic()
    result = docker_backend.run(spec)
    assert result.exit_code == 0
    assert "main exits" in result.log_tail
    assert time.monotonic() - started < 15
    assert live_pids_with(marker) == []
    assert leftovers(docker_backend, spec.name) == []


@docker_only
def test_a_taken_name_is_replaced(docker_backend, make_spec):
    spec = make_spec(docker_backend, "print('second')")
    client = docker_backend.client()
    client.containers.create(
        spec.environment.reference,
        ["sleep", "300"],
        name=spec.name,
        labels=spec.labels,
        network_mode="none",
    )
    result = docker_backend.run(spec)
    assert result.exit_code == 0
    assert "second" in result.log_tail
    assert leftovers(docker_backend, spec.name) == []
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(spec.name)


@docker_only
def test_cancel_stops_the_run_promptly(docker_backend, make_spec):
    spec = make_spec(docker_backend, "import time; print('up', flush=True); time.sleep(600)")
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    started = time.monotonic()
    result = docker_backend.run(spec, cancel)
    assert result.cancelled
    assert not result.timed_out
    assert time.monotonic() - started < 1.0 + docker_backend.grace_s + 5
    assert leftovers(docker_backend, spec.name) == []


@docker_only
def test_reconcile_removes_labelled_leftovers(docker_backend):
    client = docker_backend.client()
    worker = f"{TEST_WORKER}-reconcile"
    image = docker_backend.images["python-numpy"]
    for run in ("reprise-r-1-ingest", "reprise-r-2-ingest"):
        labels = {"reprise.worker": worker, "reprise.run": run}
        client.containers.create(
            image, ["sleep", "300"], name=run, labels=labels, network_mode="none"
        )
        client.volumes.create(name=f"{run}-output", labels=labels)
    client.containers.create(
        image,
        ["sleep", "300"],
        name="reprise-r-other",
        labels={"reprise.worker": f"{worker}-else"},
        network_mode="none",
    )
    try:
        removed = docker_backend.reconcile(worker, keep={"reprise-r-2-ingest"})
        assert sorted(removed) == ["reprise-r-1-ingest", "reprise-r-1-ingest-output"]
        assert client.containers.get("reprise-r-2-ingest")
        assert client.containers.get("reprise-r-other")
        assert docker_backend.reconcile(worker, keep=set()) == [
            "reprise-r-2-ingest",
            "reprise-r-2-ingest-output",
        ]
    finally:
        for name in ("reprise-r-1-ingest", "reprise-r-2-ingest", "reprise-r-other"):
            with contextlib.suppress(docker.errors.NotFound):
                client.containers.get(name).remove(force=True)
        for name in ("reprise-r-1-ingest-output", "reprise-r-2-ingest-output"):
            with contextlib.suppress(docker.errors.NotFound):
                client.volumes.get(name).remove(force=True)


@docker_only
def test_dropped_connection_during_wait_reattaches(docker_backend, make_spec, monkeypatch):
    api = docker_backend.client().api
    real_wait = api.wait
    calls = {"n": 0}

    def flaky_wait(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise requests.exceptions.ConnectionError("Connection aborted (simulated)")
        return real_wait(*args, **kwargs)

    monkeypatch.setattr(api, "wait", flaky_wait)
    spec = make_spec(docker_backend, "import time; time.sleep(1); print('finished', flush=True)")
    result = docker_backend.run(spec)
    assert calls["n"] >= 2
    assert result.exit_code == 0
    assert "finished" in result.log_tail
    assert leftovers(docker_backend, spec.name) == []


@docker_only
def test_daemon_lost_for_good_leaves_the_run_to_reconcile(docker_backend, make_spec, monkeypatch):
    backend = DockerBackend(grace_s=0.5, reconnect_budget_s=0.5)
    api = backend.client().api

    def down(*args: Any, **kwargs: Any) -> Any:
        raise requests.exceptions.ConnectionError("daemon gone (simulated)")

    monkeypatch.setattr(api, "wait", down)
    monkeypatch.setattr(api, "ping", down)
    spec = make_spec(backend, "import time; time.sleep(30)")
    with pytest.raises(BackendUnavailable, match="left for reconcile"):
        backend.run(spec)
    monkeypatch.undo()
    backend.reconcile(TEST_WORKER, keep=set())
    assert leftovers(backend, spec.name) == []
    backend.close()


@docker_only
def test_describe_and_health(docker_backend):
    facts = docker_backend.describe()
    assert facts["engine_version"]
    assert facts["cgroup_version"] in ("1", "2")
    assert facts["cpu_model"]
    assert docker_backend.healthy()


@docker_only
def test_base_environment_digest(docker_backend):
    prepared = docker_backend.prepare_environment(EnvironmentSpec(base="python-numpy"))
    assert prepared.reference == docker_backend.images["python-numpy"]
    assert prepared.digest
    assert prepared.digest.startswith("sha256:")
    assert prepared.python == "python3"


# ---------------------------------------------------------------- derived environments


def _wheel(directory: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel, built by hand (nothing is downloaded)."""
    dist = f"{name}-{version}"
    path = directory / f"{dist}-py3-none-any.whl"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n",
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: reprise-tests\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{n},,\n" for n in files) + f"{dist}.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for member, text in {**files, f"{dist}.dist-info/RECORD": record}.items():
            zf.writestr(member, text)
    return path


@pytest.fixture
def wheel_index(tmp_path: Path) -> Iterator[str]:
    """A find-links page on the host's loopback, serving one hand-made wheel."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "reprisedemo", "1.2.3")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(wheels), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@docker_only
def test_requirements_build_a_cached_derived_image(docker_backend, wheel_index, make_spec):
    backend = DockerBackend(
        build_network_mode="host",  # only to reach the loopback index
        pip_args=["--no-index", "--find-links", wheel_index],
    )
    if backend.build_images["python-numpy"] not in {
        t for image in backend.client().images.list() for t in image.tags
    }:
        unavailable("the build image is missing (scripts/build-images.sh)")
    env_spec = EnvironmentSpec(
        base="python-numpy", requirements="reprisedemo==1.2.3\n", input_hash=os.urandom(32).hex()
    )
    tag = f"reprise/env:{env_spec.input_hash[:32]}"
    try:
        started = time.monotonic()
        prepared = backend.prepare_environment(env_spec)
        first = time.monotonic() - started
        assert prepared.reference == tag
        assert prepared.digest.startswith("sha256:")
        started = time.monotonic()
        assert backend.prepare_environment(env_spec) == prepared  # reused, not rebuilt
        assert time.monotonic() - started < min(first, 2.0)
        spec: RunSpec = make_spec(
            backend,
            """
            import numpy, reprisedemo
            print("demo", reprisedemo.VERSION, "numpy", numpy.__version__)
            import subprocess
            print("pip", subprocess.run(["python3", "-m", "pip", "--version"]).returncode)
        """,
        )
        result = backend.run(replace(spec, environment=prepared))
        assert "demo 1.2.3 numpy" in result.log_tail, result.log_tail
        assert "No module named pip" in result.log_tail  # pip stays out of the run image
    finally:
        backend.client().images.remove(tag, force=True)
        backend.close()


@docker_only
def test_a_failed_build_is_a_backend_error_and_leaves_no_images(docker_backend, wheel_index):
    backend = DockerBackend(
        build_network_mode="host", pip_args=["--no-index", "--find-links", wheel_index]
    )
    client = backend.client()
    stages = {"label": "org.reprise.flavour=build"}  # what the pip stage inherits
    before = {image.id for image in client.images.list(all=True, filters=stages)}
    env_spec = EnvironmentSpec(
        base="python-numpy",
        requirements="reprisedemo==9.9.9\n",
        input_hash=os.urandom(32).hex(),
    )
    try:
        with pytest.raises(BackendError, match=r"reprisedemo==9\.9\.9"):
            backend.prepare_environment(env_spec)
        assert {image.id for image in client.images.list(all=True, filters=stages)} <= before
    finally:
        backend.close()


@docker_only
def test_usage_falls_back_to_the_stats_api(docker_backend, make_spec, monkeypatch):
    from runners import hostinfo

    monkeypatch.setattr(hostinfo.CgroupCounters, "for_docker", lambda *args: None)
    spec = make_spec(
        docker_backend,
        """
        import time
        hog = bytearray(40 * 2**20)
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            pass
        """,
    )
    result = docker_backend.run(spec)
    assert result.exit_code == 0
    assert result.cpu_s is not None
    assert result.cpu_s > 0
    assert result.peak_memory_mb is not None
    assert result.peak_memory_mb > 40


# ---------------------------------------------------------------- output stores


def test_output_mode_is_validated():
    with pytest.raises(ValueError, match="outputs must be one of"):
        DockerBackend(outputs="nfs")


def _keeper_backend() -> DockerBackend:
    return DockerBackend(grace_s=1.0, outputs="keeper")


def _needs_root() -> None:
    if os.geteuid() != 0:
        unavailable("mounting a host tmpfs needs root")


@pytest.fixture(params=["host-tmpfs", "keeper"])
def any_store_backend(request, docker_backend) -> Iterator[DockerBackend]:
    if request.param == "host-tmpfs":
        _needs_root()
    backend = DockerBackend(grace_s=1.0, outputs=request.param)
    yield backend
    backend.close()


@docker_only
def test_host_tmpfs_is_capped_hardened_and_needs_no_keeper(docker_backend, make_spec):
    _needs_root()
    assert docker_backend.use_host_tmpfs()
    spec = make_spec(
        docker_backend,
        """
        for line in open("/proc/self/mountinfo"):
            if " /reprise/output " in line:
                print("MOUNT", line.strip())
        open("/reprise/output/x", "w").write("y")
        """,
        limits=Limits(timeout_s=30, output_mb=5),
    )
    seen: list[str] = []

    def watch() -> None:  # which containers does the run use?
        client = docker_backend.client()
        for _ in range(100):
            found = client.containers.list(all=True, filters={"label": f"reprise.run={spec.name}"})
            seen.extend(str(c.name) for c in found)
            time.sleep(0.03)

    probe = threading.Thread(target=watch)
    probe.start()
    result = docker_backend.run(spec)
    probe.join()
    assert result.exit_code == 0, result.log_tail
    line = result.log_tail.split("MOUNT", 1)[1].splitlines()[0]
    assert " - tmpfs reprise-output:" in line
    assert "size=5120k" in line
    assert all(flag in line.split(" - ")[0] for flag in ("nosuid", "nodev", "noexec"))
    assert set(seen) == {spec.name}  # no keeper
    assert (spec.output.source / "x").read_text() == "y"
    assert not [p for p in spec.output.source.parent.iterdir() if ".tmpfs-" in p.name]
    assert all(spec.name not in line for line in Path("/proc/self/mounts").read_text().splitlines())


@docker_only
def test_hostile_output_entries_are_refused_alike_by_both_stores(any_store_backend, make_spec):
    def outputs(code: str) -> Any:
        spec = make_spec(any_store_backend, code)
        result = any_store_backend.run(spec)
        assert result.exit_code == 0, result.log_tail
        return result, sorted(p.name for p in spec.output.source.iterdir())

    fifo, kept = outputs(
        "import os; os.mkfifo('/reprise/output/pipe'); open('/reprise/output/a', 'w')"
    )
    assert fifo.output_error
    assert "pipe" in fifo.output_error
    assert kept == []
    hard, kept = outputs(
        "import os; open('/reprise/output/a', 'w').write('1'); "
        "os.link('/reprise/output/a', '/reprise/output/b')"
    )
    assert hard.output_error
    assert "link" in hard.output_error
    assert kept == []
    deep, kept = outputs("import os; os.makedirs('/reprise/output/' + '/'.join(['d'] * 60))")
    assert deep.output_error
    assert "deeper" in deep.output_error
    assert kept == []
    suid, kept = outputs(
        "import os; open('/reprise/output/s', 'w'); os.chmod('/reprise/output/s', 0o4755)"
    )
    assert suid.output_error
    assert kept == []
    fine, kept = outputs("open('/reprise/output/ok.json', 'w').write('{}')")
    assert fine.output_error is None
    assert kept == ["ok.json"]


@docker_only
def test_a_keeper_killed_during_the_phase_is_a_backend_error(docker_backend, make_spec):
    backend = _keeper_backend()
    spec = make_spec(
        backend,
        "import time; open('/reprise/output/params.npz', 'w').write('x'); time.sleep(2)",
    )

    def kill_keeper() -> None:
        api = backend.client().api
        for _ in range(200):
            with contextlib.suppress(docker.errors.NotFound):
                if api.inspect_container(spec.name)["State"]["Running"]:
                    api.kill(f"{spec.name}-keeper")
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_keeper)
    killer.start()
    try:
        with pytest.raises(BackendError, match=r"output keeper .* stopped during the run"):
            backend.run(spec)
    finally:
        killer.join()
        backend.close()
    assert list(spec.output.source.iterdir()) == []
    assert not [p for p in spec.output.source.parent.iterdir() if p.name.startswith(".out-")]
    assert leftovers(docker_backend, spec.name) == []


@docker_only
def test_an_unmounted_host_tmpfs_is_a_backend_error(docker_backend, make_spec):
    _needs_root()
    from runners.backends import _docker_outputs

    spec = make_spec(docker_backend, "import time; open('/reprise/output/a', 'w'); time.sleep(2)")

    def unmount_it() -> None:
        for _ in range(200):
            points = [
                p for run, p in _docker_outputs.output_mounts(TEST_WORKER) if run == spec.name
            ]
            if points:
                time.sleep(0.5)
                _docker_outputs.unmount(points[0])
                return
            time.sleep(0.02)

    thief = threading.Thread(target=unmount_it)
    thief.start()
    with pytest.raises(BackendError, match="unmounted or replaced during the run"):
        docker_backend.run(spec)
    thief.join()
    assert list(spec.output.source.iterdir()) == []
    assert leftovers(docker_backend, spec.name) == []


@docker_only
@pytest.mark.parametrize("mode", ["host-tmpfs", "keeper"])
def test_a_transient_start_failure_is_retried(docker_backend, make_spec, monkeypatch, mode, caplog):
    if mode == "host-tmpfs":
        _needs_root()
    backend = DockerBackend(grace_s=1.0, outputs=mode)
    api = backend.client().api
    real_start = api.start
    failed: list[str] = []

    def flaky_start(container: str, *args: Any, **kwargs: Any) -> Any:
        name = api.inspect_container(container)["Name"].lstrip("/")
        if name not in failed:  # the first start of each container fails like runc's did
            failed.append(name)
            response = requests.Response()
            response.status_code = 500
            raise docker.errors.APIError(
                "500 Server Error", response, explanation="cannot start a stopped process: unknown"
            )
        return real_start(container, *args, **kwargs)

    monkeypatch.setattr(api, "start", flaky_start)
    spec = make_spec(backend, "print('ran once', flush=True); open('/reprise/output/a', 'w')")
    try:
        result = backend.run(spec)
    finally:
        backend.close()
    assert result.exit_code == 0
    assert result.log_tail.count("ran once") == 1
    assert (spec.output.source / "a").exists()
    expected = {spec.name} | ({f"{spec.name}-keeper"} if mode == "keeper" else set())
    assert set(failed) == expected
    assert "failed transiently" in caplog.text
    assert leftovers(docker_backend, spec.name) == []


@docker_only
def test_a_permanent_start_failure_is_not_retried(docker_backend, make_spec, tmp_path, monkeypatch):
    api = docker_backend.client().api
    real_start = api.start
    starts: list[str] = []

    def counting_start(container: str, *args: Any, **kwargs: Any) -> Any:
        starts.append(api.inspect_container(container)["Name"])
        return real_start(container, *args, **kwargs)

    monkeypatch.setattr(api, "start", counting_start)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    spec = make_spec(docker_backend, "pass")
    spec = replace(spec, mounts=[*spec.mounts, Mount(a_file, "/etc")])  # a file onto a folder
    with pytest.raises(BackendError, match="starting the container"):
        docker_backend.run(spec)
    assert [name for name in starts if name == f"/{spec.name}"] == [f"/{spec.name}"]
    assert leftovers(docker_backend, spec.name) == []


@docker_only
def test_a_keeper_that_dies_at_start_is_recreated(docker_backend, make_spec, monkeypatch):
    """A keeper whose start "succeeds" but which dies at once (as when its process could not
    be started for the pids limit) is noticed and replaced before the phase starts."""
    from runners.backends import _docker_run

    backend = _keeper_backend()
    real_create = _docker_run._Run.create
    doomed: list[str] = []

    def create(self: Any, name: str, command: Any, *args: Any, **kw: Any) -> str:
        if kw.get("role") == "keeper" and not doomed:
            doomed.append(name)
            command = ["sh", "-c", "exit 3"]
        return real_create(self, name, command, *args, **kw)

    monkeypatch.setattr(_docker_run._Run, "create", create)
    spec = make_spec(backend, "open('/reprise/output/a', 'w').write('kept')")
    try:
        result = backend.run(spec)
    finally:
        backend.close()
    assert doomed == [f"{spec.name}-keeper"]
    assert result.exit_code == 0
    assert (spec.output.source / "a").read_text() == "kept"
    assert leftovers(docker_backend, spec.name) == []


@docker_only
def test_a_keeper_start_leaves_room_for_runcs_own_threads(docker_backend):
    """On cgroup v1 the pids controller counts threads, and ``runc init`` (Go, 5-10 threads)
    runs in the container's cgroup until it execs the command: the limit must cover it."""
    from runners.backends.docker import KEEPER_LIMITS

    client = docker_backend.client()
    image = docker_backend.images["python-numpy"]
    peaks = []
    for _ in range(3):
        container = client.containers.create(
            image, ["sleep", "infinity"], detach=True, **hardening(replace(KEEPER_LIMITS, pids=512))
        )
        try:
            container.start()
            candidates = [
                Path(f"/sys/fs/cgroup/pids/docker/{container.id}/pids.peak"),
                Path(f"/sys/fs/cgroup/system.slice/docker-{container.id}.scope/pids.peak"),
            ]
            found = [p for p in candidates if p.exists()]
            if not found:
                unavailable("this host's cgroupfs shows no pids.peak for containers")
            peaks.append(int(found[0].read_text()))
        finally:
            container.remove(force=True)
    assert max(peaks) >= 4  # runc's init alone: more than the old limit of 4 allowed
    assert KEEPER_LIMITS.pids >= 4 * max(peaks)


@docker_only
def test_auto_falls_back_to_keepers_when_the_mount_is_refused(
    docker_backend, make_spec, monkeypatch
):
    from runners.backends import _docker_outputs

    def refuse(*args: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(_docker_outputs, "mount_tmpfs", refuse)
    backend = DockerBackend(grace_s=1.0)
    backend._host_tmpfs_ok = True  # as if root on a local engine
    spec = make_spec(backend, "open('/reprise/output/a', 'w').write('via keeper')")
    try:
        result = backend.run(spec)
        assert result.exit_code == 0
        assert (spec.output.source / "a").read_text() == "via keeper"
        assert backend.use_host_tmpfs() is False  # remembered
    finally:
        backend.close()
    forced = DockerBackend(outputs="host-tmpfs")
    try:
        with pytest.raises(BackendError, match="mounting a tmpfs"):
            forced.run(make_spec(forced, "pass"))
    finally:
        forced.close()


@docker_only
def test_auto_falls_back_when_the_engine_does_not_see_the_mount(
    docker_backend, make_spec, monkeypatch
):
    _needs_root()
    from docker.types import Mount as DockerMount

    from runners.backends import _docker_outputs

    def elsewhere(self: Any) -> DockerMount:  # what an engine in another namespace sees
        return DockerMount(
            target=self.spec.output.target, source=f"{self.out}-elsewhere", type="bind"
        )

    monkeypatch.setattr(_docker_outputs.HostTmpfsOutputs, "phase_mount", elsewhere)
    backend = DockerBackend(grace_s=1.0)
    spec = make_spec(backend, "open('/reprise/output/a', 'w').write('via keeper')")
    try:
        result = backend.run(spec)
        assert result.exit_code == 0
        assert (spec.output.source / "a").read_text() == "via keeper"
        assert backend.use_host_tmpfs() is False
    finally:
        backend.close()
    assert not [p for p in spec.output.source.parent.iterdir() if ".tmpfs-" in p.name]
    assert leftovers(docker_backend, spec.name) == []


@docker_only
def test_reconcile_unmounts_leftover_output_tmpfs(docker_backend, tmp_path):
    _needs_root()
    from runners.backends import _docker_outputs

    worker = f"{TEST_WORKER}-mounts"
    points = {}
    for owner, run in (
        (worker, "reprise-m-1-ingest"),
        (worker, "reprise-m-2-ingest"),
        (f"{worker}-else", "reprise-m-3-ingest"),
    ):
        point = tmp_path / f".out-{run}.tmpfs-x"
        point.mkdir()
        _docker_outputs.mount_tmpfs(_docker_outputs.mount_source(owner, run), point, "size=1m")
        points[run] = point
    try:
        removed = docker_backend.reconcile(worker, keep={"reprise-m-2-ingest"})
        assert removed == [str(points["reprise-m-1-ingest"])]
        assert not points["reprise-m-1-ingest"].exists()
        assert os.path.ismount(points["reprise-m-2-ingest"])
        assert os.path.ismount(points["reprise-m-3-ingest"])
        assert docker_backend.reconcile(worker, keep=set()) == [str(points["reprise-m-2-ingest"])]
    finally:
        for point in points.values():
            with contextlib.suppress(OSError):
                _docker_outputs.remove_mount(point)
