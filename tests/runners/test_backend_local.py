"""The local backend: supervised subprocesses with rlimits, timeouts and no leftovers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from runners.backends.base import BackendError, EnvironmentSpec, Limits
from runners.backends.local import LocalBackend
from runners.sandbox import TailBuffer, process_start_time
from tests.runners.conftest import Listener, live_pids_with, with_limits

MIB = 1024 * 1024


def test_normal_run_reports_log_cpu_memory_and_outputs(local_backend, make_spec):
    spec = make_spec(
        local_backend,
        """
        import json, os, numpy
        a = numpy.ones((300, 300))
        print("sum", float((a @ a).sum()))
        with open(os.path.join(os.environ["REPRISE_OUTPUT"], "metrics.json"), "w") as f:
            json.dump({"x": 1}, f)
    """,
    )
    result = local_backend.run(spec)
    assert result.exit_code == 0, result.log_tail
    assert "sum 27000000.0" in result.log_tail
    assert not (result.timed_out)
    assert not (result.oom_killed)
    assert not (result.cancelled)
    assert not (result.output_overflow)
    assert result.cpu_s is not None
    assert result.cpu_s > 0
    assert result.peak_memory_mb is not None
    assert result.peak_memory_mb > 10
    assert result.wall_s > 0
    assert json.loads((spec.output.source / "metrics.json").read_text()) == {"x": 1}


def test_environment_is_scrubbed_and_scratch_is_private(local_backend, make_spec, monkeypatch):
    monkeypatch.setenv("REPRISE_HOST_SECRET", "do-not-leak")
    spec = make_spec(
        local_backend,
        """
        import json, os, tempfile
        print(json.dumps({"env": dict(os.environ), "cwd": os.getcwd(),
                          "tmp": tempfile.gettempdir()}))
    """,
    )
    result = local_backend.run(spec)
    seen = json.loads(result.log_tail)
    assert set(seen["env"]) == set(spec.env) | {"PATH", "LANG", "HOME", "TMPDIR", "TMP"}
    assert "do-not-leak" not in result.log_tail
    assert seen["env"]["HOME"] == seen["tmp"] != "/tmp"  # a fresh scratch, not the shared /tmp
    assert seen["cwd"] == spec.workdir
    assert not Path(seen["tmp"]).exists()  # removed after the run


def test_a_scratch_named_by_the_worker_is_respected(local_backend, make_spec, tmp_path):
    mine = tmp_path / "worker-tmp"
    mine.mkdir()
    spec = make_spec(
        local_backend,
        "import os, tempfile; print(os.environ['HOME'], tempfile.gettempdir())",
        env={"HOME": str(mine), "TMPDIR": str(mine)},
    )
    assert local_backend.run(spec).log_tail.split() == [str(mine), str(mine)]


def test_nonzero_exit(local_backend, make_spec):
    result = local_backend.run(make_spec(local_backend, "import sys; print('bye'); sys.exit(3)"))
    assert result.exit_code == 3
    assert "bye" in result.log_tail
    assert not result.timed_out


def test_timeout_kills_a_process_that_ignores_sigterm(local_backend, make_spec):
    spec = make_spec(
        local_backend,
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stubborn", flush=True)
        time.sleep(600)
    """,
        limits=Limits(timeout_s=1.0),
    )
    started = time.monotonic()
    result = local_backend.run(spec)
    assert result.timed_out
    assert not result.cancelled
    assert result.exit_code == 137  # SIGKILL after the grace
    assert "stubborn" in result.log_tail
    assert time.monotonic() - started < 1.0 + local_backend.grace_s + 3


def test_background_processes_do_not_outlive_the_run(local_backend, make_spec):
    marker = f"reprise-orphan-{os.getpid()}-{time.monotonic_ns()}"
    spec = make_spec(
        local_backend,
        f"""
        import os, subprocess
        # one in the process group, one that escapes it with setsid (a classic daemon)
        subprocess.Popen(["sh", "-c", "exec -a {marker}-a sleep 300"])
        subprocess.Popen(["setsid", "sh", "-c", "exec -a {marker}-b sleep 300"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print("main exits", flush=True)
    """,
    )
    started = time.monotonic()
    result = local_backend.run(spec)
    assert result.exit_code == 0
    assert "main exits" in result.log_tail
    assert time.monotonic() - started < 10
    assert live_pids_with(marker) == []


def test_rlimits_are_applied(local_backend, make_spec):
    limits = Limits(timeout_s=20, memory_mb=300, output_mb=3, nofile=64, tmpfs_mb=2)
    spec = make_spec(
        local_backend,
        """
        import json, resource
        names = ["RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_CORE"]
        print(json.dumps({n: resource.getrlimit(getattr(resource, n)) for n in names}))
    """,
        limits=limits,
    )
    seen = json.loads(local_backend.run(spec).log_tail)
    assert seen["RLIMIT_NOFILE"] == [64, 64]
    assert seen["RLIMIT_CORE"] == [0, 0]
    assert seen["RLIMIT_FSIZE"] == [3 * MIB, 3 * MIB]
    assert seen["RLIMIT_CPU"][0] == 21  # ≈ the timeout (one BLAS thread per cpu)
    assert 300 * MIB < seen["RLIMIT_AS"][0] <= 1024 * MIB


def test_memory_past_the_limit_fails_without_claiming_oom(local_backend, make_spec):
    spec = make_spec(
        local_backend,
        """
        import numpy
        hog = numpy.ones(900 * 2**20 // 8)   # 900 MB against a 200 MB limit
        print("should not get here")
    """,
        limits=Limits(timeout_s=20, memory_mb=200),
    )
    result = local_backend.run(spec)
    assert result.exit_code not in (0, None)
    assert "MemoryError" in result.log_tail
    assert result.oom_killed is False  # no cgroup fact on this backend


def test_file_size_limit(local_backend, make_spec):
    spec = make_spec(
        local_backend,
        """
        import os
        with open(os.path.join(os.environ["REPRISE_OUTPUT"], "big"), "wb") as f:
            f.write(b"x" * (5 * 2**20))
    """,
        limits=Limits(timeout_s=20, output_mb=1, tmpfs_mb=1),
    )
    result = local_backend.run(spec)
    assert result.exit_code != 0
    assert "File too large" in result.log_tail
    assert (spec.output.source / "big").stat().st_size <= MIB


def test_output_overflow_is_reported(local_backend, make_spec):
    spec = make_spec(
        local_backend,
        """
        import os
        for i in range(3):
            with open(os.path.join(os.environ["REPRISE_OUTPUT"], f"part{i}"), "wb") as f:
                f.write(b"x" * 2**20)
    """,
        limits=Limits(timeout_s=20, output_mb=2, tmpfs_mb=2),
    )
    result = local_backend.run(spec)
    assert result.exit_code == 0
    assert result.output_overflow


def test_log_flood_keeps_only_the_tail(local_backend, make_spec):
    spec = make_spec(
        local_backend,
        """
        import sys
        line = b"x" * 1023 + b"\\n"
        for _ in range(5 * 1024):
            sys.stdout.buffer.write(line)
        sys.stdout.buffer.write(b"THE END\\n")
    """,
        limits=Limits(timeout_s=30, log_tail_bytes=1000),
    )
    result = local_backend.run(spec)
    assert result.exit_code == 0
    assert len(result.log_tail.encode()) <= 1000
    assert result.log_tail.endswith("THE END\n")
    assert result.log_dropped_bytes == 5 * 1024 * 1024 + len("THE END\n") - 1000


def test_cancel_stops_the_run_promptly(local_backend, make_spec):
    spec = make_spec(local_backend, "import time; print('up', flush=True); time.sleep(600)")
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    result = local_backend.run(spec, cancel)
    assert result.cancelled
    assert not result.timed_out
    assert time.monotonic() - started < 0.5 + local_backend.grace_s + 3


def test_network_is_cut_when_a_namespace_can_be_made(local_backend, make_spec, host_listener):
    if not local_backend.network_isolated:
        assert local_backend.describe()["network_isolated"] == "false"
        pytest.skip("no network namespace on this machine (recorded in provenance)")
    spec = make_spec(
        local_backend,
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
    result = local_backend.run(spec)
    assert "interfaces ['lo']" in result.log_tail
    assert "dns failed" in result.log_tail
    assert "host unreachable" in result.log_tail
    time.sleep(0.3)
    assert host_listener.connections == 0
    assert local_backend.describe()["network_isolated"] == "true"


def test_a_command_that_cannot_be_executed(local_backend, make_spec):
    spec = replace(make_spec(local_backend, ""), command=["/nonexistent/reprise-binary"])
    result = local_backend.run(spec)
    assert result.exit_code == 127
    assert "cannot execute" in result.log_tail


def test_python_on_path_is_the_environment_interpreter(local_backend, make_spec):
    spec = replace(
        make_spec(local_backend, ""), command=["python", "-c", "import sys; print(sys.executable)"]
    )
    result = local_backend.run(spec)
    assert result.exit_code == 0
    assert os.path.realpath(result.log_tail.strip()) == os.path.realpath(sys.executable)


def test_requirements_are_refused_with_a_clear_message(local_backend):
    with pytest.raises(BackendError, match="does not install requirements"):
        local_backend.prepare_environment(
            EnvironmentSpec(base="python-numpy", requirements="scipy==1.11.4\n", input_hash="ab")
        )
    # comments and blank lines are not requirements
    prepared = local_backend.prepare_environment(
        EnvironmentSpec(base="python-numpy", requirements="# nothing\n\n")
    )
    assert prepared.digest is None
    assert prepared.python == sys.executable


def test_unknown_base_is_refused(local_backend):
    with pytest.raises(BackendError, match="not configured"):
        local_backend.prepare_environment(EnvironmentSpec(base="cuda-torch"))


def test_reconcile_stops_leftovers_of_this_worker_only(tmp_path):
    backend = LocalBackend(scratch_root=tmp_path / "scratch", isolate_network=False, grace_s=0.2)
    procs = {}
    for name, worker in (("mine-gone", "w1"), ("mine-kept", "w1"), ("other", "w2")):
        proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
        procs[name] = proc
        run_dir = backend.scratch_root / f"{name}.x"
        run_dir.mkdir()
        (run_dir / "run.json").write_text(
            json.dumps(
                {
                    "name": name,
                    "labels": {"reprise.worker": worker},
                    "pid": proc.pid,
                    "start_time": process_start_time(proc.pid),
                }
            )
        )
    try:
        assert backend.reconcile("w1", keep={"mine-kept"}) == ["mine-gone"]
        assert procs["mine-gone"].wait(timeout=5) is not None
        assert procs["mine-kept"].poll() is None
        assert procs["other"].poll() is None
        assert sorted(p.name for p in backend.scratch_root.iterdir()) == ["mine-kept.x", "other.x"]
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()


def test_describe_and_health(local_backend):
    facts = local_backend.describe()
    assert facts["backend"] == "local"
    assert facts["security_boundary"] == "false"
    assert facts["cpu_model"]
    assert local_backend.healthy()


def test_tail_buffer_counts_what_it_drops():
    tail = TailBuffer(10)
    for _ in range(1000):
        tail.feed(b"0123456789abc")
    assert tail.text() == "3456789abc"
    assert tail.dropped == 13000 - 10
    assert TailBuffer(10).dropped == 0


def test_listener_helper_sees_a_real_connection(host_listener: Listener):
    import socket

    socket.create_connection(("127.0.0.1", host_listener.port), timeout=2).close()
    deadline = time.monotonic() + 2
    while host_listener.connections == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host_listener.connections == 1


def test_limits_with_helper_keeps_other_fields(local_backend, make_spec):
    spec = with_limits(make_spec(local_backend, "pass"), timeout_s=5)
    assert spec.limits.timeout_s == 5
    assert spec.limits.memory_mb == Limits().memory_mb


def test_a_signal_death_is_reported_like_docker(local_backend, make_spec):
    spec = make_spec(local_backend, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    result = local_backend.run(spec)
    assert result.exit_code == 128 + 11
    assert not result.timed_out
    assert not list(Path(spec.workdir).glob("core*"))
