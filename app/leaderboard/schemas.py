"""Leaderboards, techniques and statistics on the wire (pydantic models: cheap to encode)."""

from __future__ import annotations

import datetime as dt

from app.core.pagination import Page
from app.core.schemas import ResponseModel


class RowLinks(ResponseModel):
    submission: str
    web: str
    history: str
    badge: str


class LeaderboardRow(ResponseModel):
    """One submission on a board: its latest scored version."""

    rank: int | None
    rank_band: int | None
    submission_id: int
    title: str
    author: str
    version: int
    date: dt.datetime
    metric: str
    direction: str
    claimed: float
    reproduced_mean: float | None
    ci95_low: float | None
    ci95_high: float | None
    verdict: str
    lean: str | None
    quality: float
    seed_selection_flag: bool
    deterministic: bool | None
    self_reported: bool
    links: RowLinks


class BoardInfo(ResponseModel):
    """Which board this is and how it is ordered."""

    benchmark: str
    version: int
    versions: list[int]
    metric: str
    metrics: list[str]
    direction: str | None
    tolerance: float | None
    entries: int
    ranked: int
    generation: int
    sort: str


class LeaderboardPage(Page[LeaderboardRow]):
    board: BoardInfo


class BenchmarkResult(ResponseModel):
    benchmark: str
    version: int
    submission_id: int
    runs: int
    iqm: float


class TechniqueRow(ResponseModel):
    """A technique (author + package name) across benchmarks, on normalized scores."""

    rank: int
    rank_band: int
    author: str
    name: str
    benchmarks: int
    runs: int
    iqm: float
    ci95_low: float
    ci95_high: float
    profile: list[float]
    results: list[BenchmarkResult]


class TechniquePage(Page[TechniqueRow]):
    profile_taus: list[float]


class RateOut(ResponseModel):
    """Reproduced or exceeded, out of every scored claim but insufficient data."""

    successes: int
    trials: int
    proportion: float | None
    ci95_low: float | None
    ci95_high: float | None


class GroupStats(ResponseModel):
    key: str
    scored: int
    verdicts: dict[str, int]
    rate: RateOut


class StatsOut(ResponseModel):
    overall: GroupStats
    benchmarks: list[GroupStats]
    tags: list[GroupStats]
    authors: list[GroupStats]
    groups_shown: int
