"""Calibrate the optimizer benchmarks: seed-to-seed spread, reference levels and tolerances.

For every benchmark of kind ``optimizer`` this runs three reference optimizers (``refopt/``:
plain SGD, SGD with heavy-ball momentum, Adam; hyperparameters in ``REFERENCES``) over
``--seeds`` seeds (default 30: 1000–1029, disjoint from the small seeds examples claim) through
the real harness, both phases, two processes at a time, and derives for each metric:

- ``reference_low``: plain SGD's mean (normalised score 0, docs STATISTICS.md §6);
- ``reference_high``: the best reference optimizer's mean for that metric (normalised score 1);
- ``seed_sd``: the sample sd (ddof=1) of the *designated* reference, the one best on the
  benchmark's primary metric;
- ``tolerance``: 2.5 × the largest sd among the three references, never below the metric's
  floor (``MIN_TOLERANCE``: a metric where seeds barely matter must still get a meaningful margin),
  rounded up to a clean number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten).

It rewrites those four numbers and the description's "**Calibration.**" paragraph in each
``benchmark.toml`` (``--write``) and the tables between the calibration markers of
docs/benchmarks.md (``--docs``), and prints the markdown tables. A diverged or failed reference
run aborts the calibration. Run it after any change of a benchmark, then bump its version and
rerun make_example_claims.py.

    python benchmarks/_tools/calibrate.py --write --docs
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import runlocal

REFOPT = runlocal.TOOLS / "refopt"
DOCS = runlocal.REPO / "docs" / "benchmarks.md"
FIRST_SEED = 1000
TOLERANCE_FACTOR = 2.5
CLEAN_STEPS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)

# (label, class in refopt.py, hyperparameters); the first is plain SGD. Learning rates were picked
# from a coarse sweep (factors of about 3) on seeds outside the calibration range; SGD's is
# 1/L for the two functions with known smoothness L and the conventional 0.1 for the networks.
REFERENCES: dict[str, list[tuple[str, str, dict[str, float]]]] = {
    "quadratic-illcond": [
        ("SGD", "SGD", {"lr": 1.0}),
        ("SGD+momentum", "Momentum", {"lr": 0.02, "momentum": 0.99}),
        ("Adam", "Adam", {"lr": 0.03, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}),
    ],
    "rosenbrock": [
        ("SGD", "SGD", {"lr": 1e-3}),
        ("SGD+momentum", "Momentum", {"lr": 1e-4, "momentum": 0.95}),
        ("Adam", "Adam", {"lr": 0.03, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}),
    ],
    "logreg-digits": [
        ("SGD", "SGD", {"lr": 0.1}),
        ("SGD+momentum", "Momentum", {"lr": 0.05, "momentum": 0.9}),
        ("Adam", "Adam", {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}),
    ],
    "mlp-digits": [
        ("SGD", "SGD", {"lr": 0.1}),
        ("SGD+momentum", "Momentum", {"lr": 0.03, "momentum": 0.9}),
        ("Adam", "Adam", {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}),
    ],
}

# The smallest margin that still means something for each metric: about one test image for an
# accuracy on 539 images, a twentieth of a decade for a log10 metric, 0.001 nats for a loss.
MIN_TOLERANCE = {
    "test_accuracy": 0.002,
    "train_loss": 0.001,
    "test_loss": 0.001,
    "log10_suboptimality": 0.05,
    "log10_final_value": 0.05,
}


@dataclass
class Summary:
    label: str
    hyperparameters: dict[str, float]
    values: dict[str, list[float]]  # metric -> per-seed values
    wall_s: list[float]
    cpu_s: list[float]

    def mean(self, metric: str) -> float:
        return statistics.fmean(self.values[metric])

    def sd(self, metric: str) -> float:
        return statistics.stdev(self.values[metric])


def clean_ceil(value: float) -> float:
    """The smallest clean number (CLEAN_STEPS × 10^k) at or above ``value``."""
    exponent = math.floor(math.log10(value))
    for step in CLEAN_STEPS:
        candidate = float(Decimal(str(step)).scaleb(exponent))
        if candidate >= value * (1 - 1e-12):
            return candidate
    raise AssertionError("unreachable")


def significant(value: float, digits: int) -> float:
    return float(f"{value:.{digits}g}")


def format_hp(hyperparameters: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in hyperparameters.items())


def run_reference(
    bench: Path, label: str, cls: str, hp: dict[str, float], seed: int, root: Path
) -> runlocal.JobResult:
    config = runlocal.make_run_config(
        bench, seed, entry={"optimizer": f"refopt:{cls}"}, hyperparameters=hp, job_kind="probe"
    )
    work = root / bench.name / label / str(seed)
    result = runlocal.run_job(bench, seed, work_dir=work, package_dir=REFOPT, run_config=config)
    if not result.ok:
        last = result.score or result.ingest
        raise SystemExit(
            f"{bench.name} / {label} / seed {seed}: {last.phase} failed ({last.returncode}): "
            f"{last.error or last.stderr[-1500:]}"
        )
    return result


def calibrate(bench: Path, seeds: list[int], workers: int) -> list[Summary]:
    summaries = []
    with (
        tempfile.TemporaryDirectory(prefix="reprise-calibrate-") as tmp,
        ThreadPoolExecutor(workers) as pool,
    ):
        for label, cls, hp in REFERENCES[bench.name]:
            jobs = [
                pool.submit(run_reference, bench, label, cls, hp, seed, Path(tmp)) for seed in seeds
            ]
            results = [job.result() for job in jobs]
            values: dict[str, list[float]] = {}
            for result in results:
                for metric, value in result.score.metrics.items():  # type: ignore[union-attr]
                    values.setdefault(metric, []).append(value)
            summaries.append(
                Summary(label, hp, values, [r.wall_s for r in results], [r.cpu_s for r in results])
            )
            print(f"  {bench.name}: {label} done", file=sys.stderr)
    return summaries


def derive(
    manifest: dict[str, Any], summaries: list[Summary]
) -> tuple[dict[str, dict[str, float]], Summary]:
    """The four calibrated numbers per metric, and the designated reference."""
    metrics = manifest["metrics"]
    primary = next(m for m in metrics if m.get("primary"))

    def best(metric: dict[str, Any]) -> Summary:
        sign = 1 if metric["direction"] == "higher" else -1
        return max(summaries, key=lambda s: sign * s.mean(metric["name"]))

    designated = best(primary)
    derived = {}
    for metric in metrics:
        name = metric["name"]
        largest_sd = max(s.sd(name) for s in summaries)
        tolerance = clean_ceil(max(TOLERANCE_FACTOR * largest_sd, MIN_TOLERANCE[name]))
        derived[name] = {
            "tolerance": tolerance,
            "seed_sd": significant(designated.sd(name), 2),
            "reference_low": significant(summaries[0].mean(name), 4),
            "reference_high": significant(best(metric).mean(name), 4),
        }
    return derived, designated


def calibration_paragraph(
    manifest: dict[str, Any], summaries: list[Summary], designated: Summary, seeds: list[int]
) -> str:
    parts = []
    for summary in summaries:
        measured = ", ".join(
            f"`{m['name']}` {summary.mean(m['name']):.4g} (sd {summary.sd(m['name']):.2g})"
            for m in manifest["metrics"]
        )
        parts.append(f"{summary.label} ({format_hp(summary.hyperparameters)}): {measured}")
    cpu = statistics.median(s for summary in summaries for s in summary.cpu_s)
    return (
        f"**Calibration.** `benchmarks/_tools/calibrate.py`, {len(seeds)} seeds "
        f"({seeds[0]}–{seeds[-1]}) per reference optimizer, mean and seed-to-seed sd: "
        + "; ".join(parts)
        + f". `reference_low` is plain SGD's mean, `reference_high` the best reference's mean, "
        f"`seed_sd` is {designated.label}'s sd, and each tolerance is at least "
        f"{TOLERANCE_FACTOR:g} × the largest of the three sds, rounded up to a clean number. "
        f"A run (ingest + score) costs about {cpu:.1f} s of one CPU core.\n"
    )


def toml_wrap(text: str, width: int = 96) -> str:
    """A paragraph as TOML multi-line string lines joined by line-ending backslashes."""
    words, lines, current = text.split(" "), [], ""
    for word in words:
        if current and len(current) + 1 + len(word) > width:
            lines.append(current + " \\")
            current = word
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return "\n".join(lines)


def rewrite_manifest(path: Path, derived: dict[str, dict[str, float]], paragraph: str) -> None:
    text = path.read_text(encoding="utf-8")
    head, *blocks = re.split(r"(?m)^(?=\[\[metrics\]\])", text)
    new_blocks = []
    for block in blocks:
        name = re.search(r'(?m)^name\s*=\s*"([^"]+)"', block).group(1)  # type: ignore[union-attr]
        for key, value in derived[name].items():
            block, count = re.subn(rf"(?m)^{key}\s*=.*$", f"{key} = {value!r}", block)
            if count != 1:
                raise SystemExit(f"{path}: [[metrics]] {name} has {count} '{key}' lines")
        new_blocks.append(block)
    head, count = re.subn(
        r'(?s)\*\*Calibration\.\*\*.*?(?=""")', lambda _: toml_wrap(paragraph.strip()) + "\n", head
    )
    if count != 1:
        raise SystemExit(f"{path}: no **Calibration.** paragraph at the end of the description")
    path.write_text(head + "".join(new_blocks), encoding="utf-8")


def markdown_tables(
    results: dict[str, tuple[dict[str, Any], list[Summary], dict[str, dict[str, float]], Summary]],
    seeds: list[int],
) -> str:
    lines = [
        f"Measured by `benchmarks/_tools/calibrate.py` over {len(seeds)} seeds "
        f"({seeds[0]}–{seeds[-1]}) per reference optimizer on this project's machine "
        f"({machine()}), two runs at a time.",
        "",
        "| benchmark | reference optimizer | hyperparameters | metric | mean | sd |",
        "|---|---|---|---|---:|---:|",
    ]
    for bench_id, (manifest, summaries, _, _) in results.items():
        for summary in summaries:
            for metric in manifest["metrics"]:
                name = metric["name"]
                lines.append(
                    f"| {bench_id} | {summary.label} | {format_hp(summary.hyperparameters)} "
                    f"| {name} | "
                    f"{summary.mean(name):.4f} | {summary.sd(name):.4f} |"
                )
    lines += [
        "",
        "| benchmark | metric | direction | tolerance | seed_sd (of) | reference_low "
        "| reference_high | CPU s per run (median) | wall s per run (median) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for bench_id, (manifest, summaries, derived, designated) in results.items():
        cpu = statistics.median(s for summary in summaries for s in summary.cpu_s)
        wall = statistics.median(s for summary in summaries for s in summary.wall_s)
        for metric in manifest["metrics"]:
            d = derived[metric["name"]]
            lines.append(
                f"| {bench_id} | {metric['name']} | {metric['direction']} | {d['tolerance']:g} | "
                f"{d['seed_sd']:g} ({designated.label}) | {d['reference_low']:g} "
                f"| {d['reference_high']:g} "
                f"| {cpu:.2f} | {wall:.2f} |"
            )
    return "\n".join(lines) + "\n"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def rewrite_docs(tables: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    new, count = re.subn(
        r"(?s)(<!-- calibration:start -->\n).*?(<!-- calibration:end -->)",
        lambda m: m.group(1) + tables + m.group(2),
        text,
    )
    if count != 1:
        raise SystemExit(f"{DOCS}: calibration markers not found")
    DOCS.write_text(new, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("benchmarks", nargs="*", help="ids (default: every optimizer benchmark)")
    parser.add_argument("--seeds", type=int, default=30, help="seeds per reference (>= 20)")
    parser.add_argument("--workers", type=int, default=2, help="parallel processes (<= 2 here)")
    parser.add_argument("--write", action="store_true", help="rewrite the benchmark.toml files")
    parser.add_argument(
        "--docs", action="store_true", help="rewrite the tables in docs/benchmarks.md"
    )
    args = parser.parse_args()
    if args.seeds < 20:
        parser.error("the calibration needs at least 20 seeds")
    seeds = list(range(FIRST_SEED, FIRST_SEED + args.seeds))
    ids = args.benchmarks or list(REFERENCES)
    results = {}
    for bench_id in ids:
        bench = runlocal.benchmark_dir(bench_id)
        manifest = runlocal.load_manifest(bench)
        summaries = calibrate(bench, seeds, args.workers)
        derived, designated = derive(manifest, summaries)
        results[bench_id] = (manifest, summaries, derived, designated)
        if args.write:
            paragraph = calibration_paragraph(manifest, summaries, designated, seeds)
            rewrite_manifest(bench / "benchmark.toml", derived, paragraph)
    tables = markdown_tables(results, seeds)
    print(tables)
    if args.docs:
        rewrite_docs(tables)


if __name__ == "__main__":
    main()
