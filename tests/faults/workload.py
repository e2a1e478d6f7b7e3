"""The chaos runs' workload: custom-command packages whose per-seed results are known.

Each package is the custom-command example (ridge regression on a synthetic data set drawn from
the seed) with a claim written here: honest five-seed and one-seed claims, an inflated claim
(not reproduced) and a broken command (every run a ``user_error``). A submission has one job
per claimed seed, five fresh seeds and one determinism probe.
"""

from __future__ import annotations

from app.core.config import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "custom-command-example"
JOBS_BEYOND_CLAIMED = 6  # 5 fresh seeds + 1 probe

# Per-seed values of the example's claim (benchmarks/_tools/make_example_claims.py, real runs).
MSE = [
    0.25605736711450106,
    0.21754183248007955,
    0.23036695623142783,
    0.21434882985101542,
    0.2513794729372984,
]
R2 = [
    0.9898752653277708,
    0.9905217036594303,
    0.990623471860211,
    0.9917749943306584,
    0.9885811651075977,
]
BROKEN_TRAIN = "import sys\nprint('no data here')\nsys.exit(1)\n"


def _claim(seeds: list[int], r2_shift: float = 0.0) -> str:
    mse = [MSE[s] for s in seeds]
    r2 = [R2[s] + r2_shift for s in seeds]
    return (
        f'[claim]\nseeds = {seeds}\nvariance_sources = ["data"]\n'
        'compute = "1 CPU core, well under 1 s per seed"\n\n'
        f'[claim.metrics.val_mse]\ndirection = "lower"\ntolerance = 0.08\n'
        f"mean = {sum(mse) / len(mse)!r}\nvalues = {mse!r}\n\n"
        f'[claim.metrics.val_r2]\ndirection = "higher"\ntolerance = 0.005\n'
        f"mean = {sum(r2) / len(r2)!r}\nvalues = {r2!r}\n"
    )


def _example(seeds: list[int], *, r2_shift: float = 0.0, broken: bool = False) -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in EXAMPLE.iterdir() if p.is_file()}
    head = files["reprise.toml"].decode().split("[claim]")[0]
    files["reprise.toml"] = (head + _claim(seeds, r2_shift)).encode()
    if broken:
        files["train.py"] = BROKEN_TRAIN.encode()
    return files


KINDS: list[tuple[list[int], float, bool]] = [  # (claimed seeds, r2 shift, broken command)
    ([0, 1, 2, 3, 4], 0.0, False),
    ([1], 0.0, False),
    ([0, 1, 2], 0.02, False),
    ([3], 0.0, False),
    ([2], 0.0, True),
]


def workload(min_jobs: int) -> list[dict[str, bytes]]:
    """Packages in submission order, cycling through ``KINDS``, with at least ``min_jobs`` jobs."""
    packages: list[dict[str, bytes]] = []
    jobs = 0
    while jobs < min_jobs:
        seeds, shift, broken = KINDS[len(packages) % len(KINDS)]
        packages.append(_example(seeds, r2_shift=shift, broken=broken))
        jobs += len(seeds) + JOBS_BEYOND_CLAIMED
    return packages
