"""``reprise init``: a package skeleton that passes the lint, with comments teaching the format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.benchmarks.manifest import BenchmarkManifest

OPTIMIZER_TEMPLATE = '''"""{title}: the update rule (the benchmark owns the loop)."""

import numpy as np


class MyOptimizer:
    def __init__(self, params, *, lr=0.1, momentum=0.9):
        # params: the model's numpy arrays; update them IN PLACE (never rebind or reshape).
        self.params = params
        self.lr = lr
        self.momentum = momentum
        self.velocity = [np.zeros_like(p) for p in params]

    def step(self, grads):
        for p, g, v in zip(self.params, grads, self.velocity):
            v *= self.momentum
            v += g
            p -= self.lr * v
'''

COMMAND_TEMPLATE = '''"""Kind "command": compute your metric, write $REPRISE_OUTPUT/metrics.json."""

import json
import os

import numpy as np

seed = int(os.environ["REPRISE_SEED"])
rng = np.random.default_rng(seed)
value = float(rng.normal(0.5, 0.01))  # replace with your pipeline
with open(os.path.join(os.environ["REPRISE_OUTPUT"], "metrics.json"), "w") as fh:
    json.dump({"my_metric": value}, fh)
'''


def _manifest(bench: BenchmarkManifest, name: str) -> str:
    if bench.kind == "optimizer":
        entry = (
            'optimizer = "my_optimizer:MyOptimizer"  # module:Class, the file is my_optimizer.py'
        )
        metrics = "\n".join(
            f"[claim.metrics.{m.name}]   # {m.direction} is better; margin ±{m.tolerance:g}\n"
            f"mean = 0.0                     # replace: the mean over your seeds\n"
            f"values = [0.0, 0.0, 0.0, 0.0, 0.0]   # one value per seed, in the order of seeds\n"
            for m in bench.metrics
            if m.primary
        )
    else:
        entry = (
            'command = ["python3", "train.py"]   # runs with REPRISE_SEED and REPRISE_OUTPUT set'
        )
        metrics = (
            "[claim.metrics.my_metric]\nmean = 0.5\nvalues = [0.5, 0.5, 0.5, 0.5, 0.5]\n"
            'direction = "higher"          # kind command: the claim declares these two\n'
            "tolerance = 0.02\n"
        )
    return f'''# reprise.toml, format 1 — see docs/package-format.md. Unknown keys are errors.
format = 1

[package]
name = "{name}"              # [a-z0-9][a-z0-9-]{{2,63}}
version = "0.1.0"
title = "My technique on {bench.id}"
description = """
What the technique is and why it should work (Markdown, at least 200 characters earns a
documentation point).
"""
authors = ["Your Name <you@example.org>"]
license = "MIT"              # an SPDX identifier (required)
# paper = "https://arxiv.org/abs/..."   # optional; shown, never fetched
tags = ["optimizer"]

[benchmark]
id = "{bench.id}"
version = {bench.version}

[entry]
{entry}

[hyperparameters]            # passed to your optimizer as keyword arguments
lr = 0.1
momentum = 0.9

[claim]
seeds = [0, 1, 2, 3, 4]      # the seeds behind your numbers; Reprise re-runs them and fresh ones
variance_sources = ["init", "data_order"]
compute = "1 CPU core, a few seconds per seed"

{metrics}
[environment]
base = "python-numpy"        # an approved base image
python = "3.11"
# requirements = "requirements.txt"   # every line pinned with ==
'''


def write_skeleton(
    directory: Path, *, benchmark: str, lookup: Callable[[str, int], BenchmarkManifest | None]
) -> list[Path]:
    """Write reprise.toml, the entry module, README.md and LICENSE; refuse to overwrite."""
    bench = None
    for version in range(50, 0, -1):
        bench = lookup(benchmark, version)
        if bench is not None:
            break
    if bench is None:
        raise ValueError(f"unknown benchmark {benchmark!r}")
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(f"{directory} exists and is not empty")
    directory.mkdir(parents=True, exist_ok=True)
    name = "".join(c if c.isalnum() else "-" for c in directory.resolve().name.lower()).strip("-")
    name = name if len(name) >= 3 else f"my-{name or 'package'}"
    files = {
        "reprise.toml": _manifest(bench, name[:64]),
        "README.md": f"# {name}\n\nHow to reproduce: `reprise submit .`\n",
        "LICENSE": "MIT License\n\nReplace with your licence text.\n",
    }
    if bench.kind == "optimizer":
        files["my_optimizer.py"] = OPTIMIZER_TEMPLATE.format(title=name)
    else:
        files["train.py"] = COMMAND_TEMPLATE
    written = []
    for rel, text in files.items():
        path = directory / rel
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
