"""Charts as SVG, drawn with matplotlib's object API (no pyplot state, Agg-free SVG canvas).

Pure functions from numbers to bytes; ``plot_cache`` decides when they run (once per scored
version, off the event loop). Colours are the Okabe–Ito palette, distinguishable with the common
colour-vision deficiencies, and every series also differs by marker shape.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from matplotlib import rcParams
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

rcParams["svg.fonttype"] = "none"  # text stays text: smaller files, selectable, readable
rcParams["svg.hashsalt"] = "reprise"  # stable element ids: the same numbers, the same bytes
rcParams["font.family"] = "DejaVu Sans"
rcParams["font.size"] = 9

CLAIMED = "#E69F00"
RERUN = "#009E73"
FRESH = "#0072B2"
PROBE = "#CC79A7"
INK = "#1f2328"
VERDICT_COLOURS = {
    "reproduced": "#009E73",
    "exceeded": "#56B4E9",
    "not_reproduced": "#D55E00",
    "inconclusive": "#E69F00",
    "insufficient_data": "#999999",
}
VERDICT_MARKERS = {
    "reproduced": "o",
    "exceeded": "^",
    "not_reproduced": "v",
    "inconclusive": "s",
    "insufficient_data": "x",
}
RASTERIZE_ABOVE = 2_000  # points drawn as one embedded image beyond this, to bound the file
ERRORBARS_UP_TO = 300

# matplotlib keeps global caches (fonts, text layout); one figure at a time is plenty here.
_LOCK = threading.Lock()


@dataclass(frozen=True)
class SeedRun:
    """One run of a metric: why it ran, its seed, and its value (None when it failed)."""

    kind: str  # claimed | fresh | probe
    seed: int
    value: float | None
    outcome: str = "succeeded"


@dataclass(frozen=True)
class SeedPanel:
    """Everything one metric's panel shows."""

    metric: str
    direction: str
    tolerance: float
    claimed_mean: float
    claimed_low: float | None = None  # the claimed mean's 95% interval, when a spread was given
    claimed_high: float | None = None
    claimed_values: dict[int, float] = field(default_factory=dict)  # seed → value the claim gives
    runs: Sequence[SeedRun] = ()
    reproduced_mean: float | None = None
    reproduced_low: float | None = None
    reproduced_high: float | None = None


def _svg(fig: Figure) -> bytes:
    buf = io.BytesIO()
    FigureCanvasSVG(fig).print_svg(  # type: ignore[no-untyped-call]
        buf, metadata={"Date": None, "Creator": "Reprise"}
    )
    return buf.getvalue()


def _jitter(i: int, n: int, width: float = 0.22) -> float:
    return 0.0 if n <= 1 else -width / 2 + width * i / (n - 1)


def _valued(runs: Sequence[SeedRun]) -> list[tuple[int, int, float]]:
    """(position among ``runs``, seed, value) of the runs that produced a value."""
    return [(i, r.seed, r.value) for i, r in enumerate(runs) if r.value is not None]


def _claimed_seeds(ax: Axes, panel: SeedPanel, claimed: Sequence[SeedRun]) -> None:
    """Each claimed seed twice: the value the claim states and the value re-run here."""
    n = len(claimed)
    left = [(-0.14 + _jitter(i, n, 0.12), seed) for i, seed in enumerate(r.seed for r in claimed)]
    stated = [(x, panel.claimed_values[seed]) for x, seed in left if seed in panel.claimed_values]
    if stated:
        ax.scatter(
            [x for x, _ in stated],
            [v for _, v in stated],
            marker="D",
            facecolors="none",
            edgecolors=CLAIMED,
            s=34,
            lw=1.4,
            label="claimed seeds, as claimed",
            zorder=3,
        )
    reran = [(0.14 + _jitter(i, n, 0.12), seed, v) for i, seed, v in _valued(claimed)]
    if reran:
        ax.scatter(
            [x for x, _, _ in reran],
            [v for _, _, v in reran],
            marker="o",
            color=RERUN,
            s=30,
            label="claimed seeds, re-run here",
            zorder=3,
        )
    for x, seed, v in reran:
        if seed in panel.claimed_values:
            ax.plot(
                [x - 0.28, x], [panel.claimed_values[seed], v], color="#8c959f", lw=0.7, zorder=2
            )


def seed_plot(panel: SeedPanel) -> bytes:
    """Every seed of one metric against the claimed mean, its interval and the ±δ margin."""
    with _LOCK:
        fig = Figure(figsize=(6.4, 3.6), layout="constrained")
        ax = fig.add_subplot()
        m, d = panel.claimed_mean, panel.tolerance
        ax.axhspan(
            m - d, m + d, color="#8c959f", alpha=0.12, lw=0, label=f"claimed mean ± δ ({d:g})"
        )
        for edge in (m - d, m + d):
            ax.axhline(edge, color="#57606a", lw=0.8, ls="--")
        if panel.claimed_low is not None and panel.claimed_high is not None:
            ax.axhspan(
                panel.claimed_low,
                panel.claimed_high,
                color=CLAIMED,
                alpha=0.22,
                lw=0,
                label="claimed mean's 95% interval",
            )
        ax.axhline(m, color=INK, lw=1.2, label="claimed mean")
        _claimed_seeds(ax, panel, [r for r in panel.runs if r.kind == "claimed"])
        fresh = [r for r in panel.runs if r.kind == "fresh"]
        ok = _valued(fresh)
        if ok:
            ax.scatter(
                [1 + _jitter(i, len(fresh)) for i, _, _ in ok],
                [v for _, _, v in ok],
                marker="s",
                color=FRESH,
                s=30,
                label="fresh seeds",
                zorder=3,
            )
        mean = panel.reproduced_mean
        if mean is not None:
            low = panel.reproduced_low if panel.reproduced_low is not None else mean
            high = panel.reproduced_high if panel.reproduced_high is not None else mean
            ax.errorbar(
                [1.32],
                [mean],
                yerr=[[mean - low], [high - mean]],
                fmt="_",
                color=INK,
                capsize=4,
                ms=14,
                lw=1.4,
                label="reproduced mean, 95% interval",
                zorder=4,
            )
        probes = _valued([r for r in panel.runs if r.kind == "probe"])
        if probes:
            ax.scatter(
                [2.0] * len(probes),
                [v for _, _, v in probes],
                marker="P",
                color=PROBE,
                s=44,
                label="determinism probe",
                zorder=3,
            )
        failed = sum(1 for r in panel.runs if r.value is None)
        ax.set_xticks([0, 1, 2], ["claimed seeds", "fresh seeds", "probe"])
        ax.set_xlim(-0.6, 2.5)
        title = f"{panel.metric} ({'higher' if panel.direction == 'higher' else 'lower'} is better)"
        if failed:
            title += f" — {failed} run{'s' if failed != 1 else ''} without a value"
        ax.set_title(title, loc="left", fontsize=10)
        ax.set_ylabel(panel.metric)
        _finish(ax)
        return _svg(fig)


def _finish(ax: Axes) -> None:
    ax.grid(axis="y", color="#d0d7de", lw=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7.5, frameon=False)


@dataclass(frozen=True)
class BoardPoint:
    claimed: float
    reproduced: float
    low: float | None
    high: float | None
    verdict: str


def board_chart(
    points: Sequence[BoardPoint], *, metric: str, direction: str | None, tolerance: float | None
) -> bytes:
    """Claimed against reproduced for every entry of a board, with the ±δ band around y = x."""
    with _LOCK:
        fig = Figure(figsize=(6.4, 4.4), layout="constrained")
        ax = fig.add_subplot()
        finite = [p for p in points if math.isfinite(p.claimed) and math.isfinite(p.reproduced)]
        values = [v for p in finite for v in (p.claimed, p.reproduced)]
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        pad = (hi - lo) * 0.08 or 0.5
        lo, hi = lo - pad, hi + pad
        ax.plot([lo, hi], [lo, hi], color=INK, lw=1, label="reproduced = claimed")
        if tolerance:
            ax.fill_between(
                [lo, hi],
                [lo - tolerance, hi - tolerance],
                [lo + tolerance, hi + tolerance],
                color="#8c959f",
                alpha=0.15,
                lw=0,
                label=f"± δ ({tolerance:g})",
            )
        dense = len(finite) > RASTERIZE_ABOVE
        for verdict, colour in VERDICT_COLOURS.items():
            group = [p for p in finite if p.verdict == verdict]
            if not group:
                continue
            if len(finite) <= ERRORBARS_UP_TO:
                bars = [p for p in group if p.low is not None and p.high is not None]
                if bars:
                    ax.errorbar(
                        [p.claimed for p in bars],
                        [p.reproduced for p in bars],
                        yerr=[
                            [p.reproduced - (p.low or 0) for p in bars],
                            [(p.high or 0) - p.reproduced for p in bars],
                        ],
                        fmt="none",
                        ecolor=colour,
                        alpha=0.5,
                        lw=0.8,
                    )
            ax.scatter(
                [p.claimed for p in group],
                [p.reproduced for p in group],
                marker=VERDICT_MARKERS[verdict],
                color=colour,
                s=8 if dense else 26,
                label=f"{verdict.replace('_', ' ')} ({len(group)})",
                rasterized=dense,
                zorder=3,
            )
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel(f"claimed mean of {metric}")
        ax.set_ylabel(f"reproduced mean of {metric} (fresh seeds)")
        note = f" ({direction} is better)" if direction else ""
        ax.set_title(f"Claimed vs reproduced, {len(finite)} entries{note}", loc="left", fontsize=10)
        _finish(ax)
        ax.grid(axis="x", color="#d0d7de", lw=0.6)
        return _svg(fig)
