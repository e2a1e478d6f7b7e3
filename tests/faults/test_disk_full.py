"""The worker's disk fills up while it unpacks a package: the attempt ends
``infrastructure_error`` ("the worker's disk is full"), its scratch is removed, the job goes back
to the queue, and a worker with room finishes it. Nothing is blamed on the package.

As root the worker's workdir is a real 1 MiB tmpfs (a genuine ENOSPC from the kernel, mid-file);
otherwise the extractor's writes are made to fail with ENOSPC.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.config import Settings
from runners import archives
from runners.backends.local import LocalBackend
from tests.helpers import toy_files
from tests.runners.workerkit import Reprise, live_reprise, start_worker, wait_for


@pytest.fixture
def reprise(settings: Settings) -> Iterator[Reprise]:
    settings.queue.max_attempts = 6
    with live_reprise(settings) as live:
        yield live


@contextlib.contextmanager
def tiny_disk(path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[bool]:
    """``path`` as a 1 MiB tmpfs (True), or extraction writes that fail with ENOSPC (False)."""
    path.mkdir(parents=True)
    mounted = False
    if os.geteuid() == 0:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "reprise-tiny-disk", str(path)],
            capture_output=True,
            check=False,
        )
        mounted = done.returncode == 0
    if not mounted:
        real = archives._Writer.write

        def full(self: Any, *args: Any, **kwargs: Any) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(archives._Writer, "write", full)
        assert real is not full
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)


def test_disk_full_while_extracting_is_an_infrastructure_error_and_is_cleaned_up(
    reprise: Reprise, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    incompressible = os.urandom(700 * 1024)  # the download fits in 1 MiB, a second copy not
    submission = reprise.submit(toy_files(**{"weights.bin": incompressible}))
    first_job = submission["jobs"][0]["id"]
    small = tmp_path / "small-disk"
    with tiny_disk(small, monkeypatch) as real_disk:
        worker = start_worker(
            reprise.config(small, worker_id="tiny-disk", grace_s=2.0),
            LocalBackend(scratch_root=tmp_path / "local-scratch", grace_s=0.5),
        )
        try:
            failed = reprise.wait_job(
                first_job, lambda j: bool(j["attempts"]), timeout=60, what="a first attempt"
            )
        finally:
            worker.stop()
        attempt = failed["attempts"][0]
        assert attempt["outcome"] == "infrastructure_error"
        # extraction, not the download: the entry that did not fit is named
        assert "could not be written: the disk is full" in (attempt["reason"] or ""), attempt

        assert failed["status"] in ("queued", "running"), "an infrastructure error is retried"
        assert [p.name for p in (small / "jobs").iterdir()] == []
        if real_disk:
            fs = os.statvfs(small)
            used = (fs.f_blocks - fs.f_bfree) * fs.f_frsize
            assert used < 64 * 1024, f"{used} bytes of scratch left on the full disk"
    monkeypatch.undo()
    roomy = start_worker(
        reprise.config(tmp_path / "roomy", worker_id="roomy"),
        LocalBackend(scratch_root=tmp_path / "local-scratch-2", grace_s=0.5),
    )
    try:
        detail = reprise.wait_finished(submission["id"], timeout=120)
    finally:
        roomy.stop()
    assert {j["status"] for j in detail["jobs"]} == {"succeeded"}
    job = reprise.job(first_job)
    assert job["attempt"] >= 2
    assert job["result"]["outcome"] == "succeeded"
    assert [a["outcome"] for a in job["attempts"][:-1]] == ["infrastructure_error"] * (
        job["attempt"] - 1
    )
    wait_for(
        lambda: not list((tmp_path / "roomy" / "jobs").iterdir()),
        timeout=10,
        what="the scratch to be removed",
    )
