"""Prometheus metrics, one registry per app instance (tests create many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "reprise_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30),
        )
        self.queue_depth = Gauge(
            "reprise_queue_jobs",
            "jobs queued or running, by required worker labels",
            ["requires", "status"],
            registry=self.registry,
        )
        self.lease_expiries = Counter(
            "reprise_lease_expiries_total",
            "leases that expired and were re-queued or ended",
            registry=self.registry,
        )
        self.job_durations = Histogram(
            "reprise_job_duration_seconds",
            "from first lease to the recorded result, by outcome",
            ["outcome"],
            registry=self.registry,
            buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
        )
        self.verdicts = Counter(
            "reprise_verdicts_total",
            "published claim verdicts",
            ["verdict"],
            registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).observe(seconds)
