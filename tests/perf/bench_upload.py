"""Upload benchmark (reports, never gates): a large package through a real server process.

    .venv/bin/python -m tests.perf.bench_upload [--mb 200] [--reps 1] [--json PATH]

Starts ``reprise serve`` in its own process (SQLite, a scratch data dir, the toy benchmark),
uploads a package of the given size over loopback, and reports:

- the server's peak RSS growth during the upload (VmHWM after minus VmHWM before, after a warm-up
  upload), against the goal of at most 64 MB: the archive is never held in memory;
- upload throughput (bytes over the time of the whole request, inspection included) as a ratio
  to ``hashlib.sha256`` over the same file measured in the same run (goal at least 0.5), per
  repetition (``--reps``), each upload followed by its hash.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.helpers import free_port, stop, toy_files  # noqa: E402

MB = 1 << 20


def build_package(path: Path, size_mb: int) -> None:
    """A valid toy package with one incompressible file of ``size_mb`` MiB (gzip level 1)."""
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name, content in toy_files().items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("weights.bin")
        info.size = size_mb * MB
        reader = io.BufferedReader(_Random(info.size))
        tar.addfile(info, reader)


class _Random(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = os.urandom(n)
        self.left -= n
        return n



def _vm(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def _sha256_seconds(path: Path) -> float:
    started = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(MB):
            digest.update(chunk)
    return time.perf_counter() - started


def _upload(url: str, token: str, path: Path) -> tuple[float, int]:
    started = time.perf_counter()
    with path.open("rb") as fh, httpx.Client(timeout=600) as client:
        resp = client.post(
            f"{url}/v1/submissions",
            headers={"Authorization": f"Bearer {token}"},
            files={"package": (path.name, fh, "application/gzip")},
        )
    elapsed = time.perf_counter() - started
    if resp.status_code != 202:
        raise RuntimeError(f"upload refused: {resp.status_code} {resp.text[:500]}")
    return elapsed, resp.status_code


def run(size_mb: int = 200, reps: int = 1) -> dict[str, Any]:
    """One warm-up upload, then ``reps`` uploads of the big package, each followed by
    ``hashlib.sha256`` over the same file (the paired baseline of that repetition)."""
    from tests.perf.common import figure

    with tempfile.TemporaryDirectory(prefix="reprise-perf-upload-") as tmp:
        work = Path(tmp)
        env = {
            **os.environ,
            "REPRISE_DATA_DIR": str(work / "var"),
            "REPRISE_BENCHMARKS_DIR": str(ROOT / "tests" / "fixtures" / "benchmarks"),
            "REPRISE_UPLOADS__MAX_PACKAGE_BYTES": str((size_mb + 16) * MB),
            "REPRISE_UPLOADS__MAX_ENTRY_BYTES": str((size_mb + 16) * MB),
            "REPRISE_UPLOADS__MAX_EXTRACTED_BYTES": str((size_mb + 32) * MB),
            "REPRISE_QUOTAS__SUBMISSIONS_PER_DAY": "1000",
            "REPRISE_LOG_LEVEL": "WARNING",
        }
        cli = [sys.executable, "-m", "app.cli"]
        subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
        token = subprocess.run(
            [*cli, "users", "create", "perf"], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
        small, big = work / "small.tar.gz", work / "big.tar.gz"
        build_package(small, 1)
        build_package(big, size_mb)
        port = free_port()
        server = subprocess.Popen(
            [*cli, "serve", "--port", str(port), "--no-migrate"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        uploads, hashes, growth = [], [], []
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not become ready")
                time.sleep(0.2)
            _upload(url, token, small)  # warm-up: imports, first connections, caches
            for _ in range(reps):
                before = _vm(server.pid, "VmHWM")
                seconds, status = _upload(url, token, big)
                growth.append(_vm(server.pid, "VmHWM") - before)
                uploads.append(seconds)
                hashes.append(_sha256_seconds(big))
        finally:
            stop(server)
        size = big.stat().st_size
        return {
            "size_mb": round(size / MB, 1),
            "status": status,
            "upload_s": round(min(uploads), 3),
            "upload_mb_per_s": round(size / MB / min(uploads), 1),
            "sha256_s": round(min(hashes), 3),
            "throughput_ratio_to_sha256": round(min(hashes) / min(uploads), 3),
            # VmHWM only grows: the first big upload shows the whole peak.
            "peak_rss_growth_mb": round(max(growth) / MB, 1),
            "goals": {"peak_rss_growth_mb": "<= 64", "throughput_ratio_to_sha256": ">= 0.5"},
            "figures": [figure(
                "ingest.throughput", unit="MB/s",
                measured=[size / MB / s for s in uploads],
                baseline=[size / MB / s for s in hashes],
                measured_label=f"upload of a {size / MB:.0f} MB package, inspection included "
                               "(MB/s)",
                baseline_label="hashlib.sha256 over the same file (MB/s)",
                higher_is_better=True, goal=0.5,
                note=f"peak RSS growth of the server during the upload: "
                     f"{max(growth) / MB:.1f} MB (goal ≤ 64 MB: "
                     f"{'met' if max(growth) <= 64 * MB else 'missed'})")],
            "peak_rss_growth_met": max(growth) <= 64 * MB,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args.mb, args.reps)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
