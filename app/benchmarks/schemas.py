"""Benchmarks on the wire."""

from __future__ import annotations

from typing import Any

from app.core.schemas import ResponseModel


class MetricOut(ResponseModel):
    name: str
    direction: str
    tolerance: float
    primary: bool
    seed_sd: float | None
    reference_low: float | None
    reference_high: float | None


class BenchmarkSummary(ResponseModel):
    id: str
    version: int
    versions: list[int]
    title: str
    kind: str
    fresh_seeds: int
    metrics: list[MetricOut]
    submissions: int


class BenchmarkDetail(BenchmarkSummary):
    description: str
    limits: dict[str, Any]
    data: dict[str, Any]
    content_hash: str
