"""Sampling profiles of a running server for the perf suite: ``py-spy`` (pip-installable) records
collapsed stacks of a process while a benchmark loads it; ``summarize`` turns them into the
share of samples each function appears in (inclusive) or is on top of (self).

    .venv/bin/python -m tests.perf.profiling STACKS.txt [--top 30] [--match app/]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^():]+?)(?::(?P<line>\d+))?\)$")


def start(
    pid: int, seconds: float, out: Path, *, rate: int = 200
) -> subprocess.Popen[bytes] | None:
    """Start ``py-spy record`` on ``pid`` (collapsed stacks into ``out``); None without py-spy."""
    exe = shutil.which("py-spy")
    if exe is None:
        return None
    cmd = [exe, "record", "-p", str(pid), "-d", str(max(1, round(seconds))), "-r", str(rate),
           "-f", "raw", "-o", str(out), "--nonblocking"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _label(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    for marker in ("/site-packages/", "/work/main/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def summarize(
    stacks: Path, *, top: int = 30, match: str = ""
) -> dict[str, list[tuple[str, float]]]:
    """Inclusive and self shares (percent of samples) of the ``top`` functions whose label
    contains ``match``; idle samples (the event loop waiting) are counted apart."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = idle = 0
    for line in stacks.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_label(f) for f in stack.split(";") if f.strip()]
        total += count
        if frames and any(w in frames[-1] for w in ("select (", "poll (", "epoll", "run_once")):
            idle += count
        for label in set(frames):
            inclusive[label] += count
        if frames:
            own[frames[-1]] += count
    if total == 0:
        return {"inclusive": [], "self": [], "idle": []}

    def pick(counter: Counter[str]) -> list[tuple[str, float]]:
        rows = [(k, 100.0 * v / total) for k, v in counter.most_common() if match in k]
        return rows[:top]

    return {"inclusive": pick(inclusive), "self": pick(own),
            "idle": [("idle (event loop waiting)", 100.0 * idle / total)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("stacks", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--match", default="")
    args = parser.parse_args()
    summary = summarize(args.stacks, top=args.top, match=args.match)
    for kind, rows in summary.items():
        print(f"== {kind}")
        for label, share in rows:
            print(f"{share:6.1f}%  {label}")


if __name__ == "__main__":
    main()
