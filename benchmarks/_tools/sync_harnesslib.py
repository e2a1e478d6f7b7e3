"""Copy the canonical ``harnesslib.py`` into every benchmark folder as ``_harnesslib.py``.

Each benchmark folder travels alone (the service ships it as a unit), so each carries its own
copy. ``--check`` exits 1 if a copy differs (the tests run the same check).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
BENCHMARKS = TOOLS.parent
CANONICAL = TOOLS / "harnesslib.py"
COPY_NAME = "_harnesslib.py"


def benchmark_dirs() -> list[Path]:
    """Every benchmark folder: a direct child of benchmarks/ holding benchmark.toml."""
    return sorted(p.parent for p in BENCHMARKS.glob("*/benchmark.toml"))


def stale_copies() -> list[Path]:
    source = CANONICAL.read_bytes()
    return [
        d / COPY_NAME
        for d in benchmark_dirs()
        if not (d / COPY_NAME).exists() or (d / COPY_NAME).read_bytes() != source
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale copies")
    args = parser.parse_args()
    stale = stale_copies()
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(BENCHMARKS)}")
        sys.exit(1 if stale else 0)
    for path in stale:
        path.write_bytes(CANONICAL.read_bytes())
        print(f"updated {path.relative_to(BENCHMARKS)}")


if __name__ == "__main__":
    main()
