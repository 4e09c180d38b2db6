"""The API's Prometheus instruments, in a registry of the app's own.

Each app has its own registry, so several apps in one process (tests) never share
counts; `api/metrics.py` exposes them at `/metrics`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from consumers.jsonl import IngestReport


class Metrics:
    """The app's instruments, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.interactions = Counter(
            "relledger_interactions",
            "Interactions offered over HTTP, by what became of them.",
            ["outcome"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "relledger_read_model_lag_events",
            "Events recorded but not yet applied to the read models.",
            registry=self.registry,
        )
        self.quarantined = Gauge(
            "relledger_quarantined_relationships",
            "Relationships the projector has set aside (see projections status).",
            registry=self.registry,
        )
        self.latency = Histogram(
            "relledger_request_seconds",
            "Time to answer a request, by method, route and status.",
            ["method", "route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )

    def count(self, report: IngestReport) -> None:
        """What one posted batch (or single interaction) came to."""
        self.interactions.labels("recorded").inc(report.recorded)
        self.interactions.labels("late").inc(report.late)
        self.interactions.labels("duplicate").inc(report.duplicates)
        self.interactions.labels("conflict").inc(report.conflicts)
        self.interactions.labels("rejected").inc(report.rejected - report.conflicts)
