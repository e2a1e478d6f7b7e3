"""Prometheus metrics, one registry per app instance (tests create many apps).

Two kinds, and they aggregate differently across API replicas (docs/observability.md):

- **Process metrics** — request latencies, job results and durations, lease expiries — are
  counted by the process that did the work, after its transaction committed (``record_*``,
  fed by ``app.ops.instrument``). Across replicas, ``sum`` them.
- **Database gauges** — queue depth, the oldest wait, verdict counts — are read from the
  database at each scrape (``DatabaseSnapshot``), so every replica reports the same, complete
  figure whatever process did the work. Across replicas, take ``max``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app import __version__

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30)
JOB_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)


class Metrics:
    """The per-process metrics of one app; ``/metrics`` adds the database gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.build_info = Gauge(
            "reprise_build_info",
            "always 1; the running Reprise version as a label",
            ["version"],
            registry=self.registry,
        )
        self.build_info.labels(__version__).set(1)
        self.requests = Histogram(
            "reprise_http_request_duration_seconds",
            "HTTP request latency, by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=REQUEST_BUCKETS,
        )
        self.lease_expiries = Counter(
            "reprise_lease_expiries_total",
            "leases that ran out without a result and were re-queued or ended, by this process",
            registry=self.registry,
        )
        self.job_results = Counter(
            "reprise_job_results_total",
            "attempt results recorded by this process (worker results and lease expiries)",
            ["outcome"],
            registry=self.registry,
        )
        self.job_durations = Histogram(
            "reprise_job_duration_seconds",
            "from a job's first lease to its final outcome, by outcome",
            ["outcome"],
            registry=self.registry,
            buckets=JOB_BUCKETS,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).observe(seconds)

    def record_lease_expiry(self) -> None:
        self.lease_expiries.inc()

    def record_job_result(self, outcome: str) -> None:
        self.job_results.labels(outcome).inc()

    def record_job_finished(self, outcome: str, seconds: float) -> None:
        self.job_durations.labels(outcome).observe(max(seconds, 0.0))


@dataclass
class DatabaseSnapshot:
    """What the database says at scrape time, rendered as gauges."""

    queue: dict[tuple[str, str], int] = field(default_factory=dict)  # (requires, status) -> n
    oldest_wait_s: dict[str, float] = field(default_factory=dict)  # requires -> seconds
    verdicts: dict[tuple[str, str], int] = field(default_factory=dict)  # (benchmark, verdict)
    up: bool = True


class RegistryCollector(Collector):
    """The process metrics of a registry, re-exposed through the per-scrape registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


class SnapshotCollector(Collector):
    """A one-scrape collector: a fresh one per request, so two scrapes never share state."""

    def __init__(self, snapshot: DatabaseSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        return list(self._families())

    def _families(self) -> Iterator[Metric]:
        s = self.snapshot
        up = GaugeMetricFamily(
            "reprise_metrics_database_up",
            "1 when the database answered this scrape; the gauges below are absent otherwise",
        )
        up.add_metric([], 1.0 if s.up else 0.0)
        yield up
        if not s.up:
            return
        queue = GaugeMetricFamily(
            "reprise_queue_jobs",
            "jobs queued or running, by the worker labels they require ('' = any worker)",
            labels=["requires", "status"],
        )
        for status in ("queued", "running"):  # present even when empty, so alerts see a 0
            queue.add_metric(["", status], float(s.queue.get(("", status), 0)))
        for (requires, status), n in sorted(s.queue.items()):
            if requires:
                queue.add_metric([requires, status], float(n))
        yield queue
        wait = GaugeMetricFamily(
            "reprise_queue_oldest_wait_seconds",
            "how long the longest-waiting queued job has waited since it was (re-)queued",
            labels=["requires"],
        )
        for requires, seconds in sorted(s.oldest_wait_s.items()):
            wait.add_metric([requires], seconds)
        yield wait
        verdicts = GaugeMetricFamily(
            "reprise_verdicts",
            "scored submission versions, by benchmark and claim verdict",
            labels=["benchmark", "verdict"],
        )
        for (benchmark, verdict), n in sorted(s.verdicts.items()):
            verdicts.add_metric([benchmark, verdict], float(n))
        yield verdicts
