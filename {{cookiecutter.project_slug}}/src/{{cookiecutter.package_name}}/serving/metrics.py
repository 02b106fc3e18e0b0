"""The server's Prometheus metrics: requests, errors, latency, rows, the model served, reloads.

Several server processes (workers) share their counts when PROMETHEUS_MULTIPROC_DIR names a
folder, empty when the first of them starts: each process writes its values there, and /metrics
of any of them sums all (prometheus_client's multiprocess mode, chosen when it is imported).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .sources import Served

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
REASONS = {413: "body_too_large", 422: "invalid_input", 500: "prediction_failed"}


class ServerMetrics:
    """One registry per app, so that several apps in one process (the tests) never share counts."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry = CollectorRegistry()
        by_version = ["model_version"]
        self.requests = Counter(
            "predict_requests", "Prediction requests by outcome", [*by_version, "status"], registry=registry
        )
        self.errors = Counter(
            "predict_errors", "Failed prediction requests", [*by_version, "reason"], registry=registry
        )
        self.latency = Histogram(
            "predict_latency_seconds",
            "Time from request to response, in the server",
            by_version,
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.rows = Counter("predict_rows", "Rows predicted", by_version, registry=registry)
        self.model = Gauge(
            "model_info",
            "The model served (1)",
            [*by_version, "source", "fast_path"],
            registry=registry,
            multiprocess_mode="livemax",  # 1 while a live process serves it
        )
        self.shown: tuple[str, str, str] | None = None
        self.reloads = Counter(
            "model_reloads", "Model reload attempts by result", ["result"], registry=registry
        )
        self.log_records = Counter(
            "prediction_log_records",
            "Prediction log records: written, dropped (queue full) or failed (not written)",
            ["result"],
            registry=registry,
        )

        self.shadow = Counter(
            "shadow_requests",
            "Requests scored by the challenger in shadow: scored, failed, or dropped (queue full)",
            ["result"],
            registry=registry,
        )
        self.labels = Counter(
            "feedback_labels",
            "Labels received: accepted, or the reason each was refused",
            ["result"],
            registry=registry,
        )

    def show(self, served: Served) -> None:
        """model_info names the model served now (1); the one served before shows 0 in multiprocess
        mode (its value stays in the shared files), and is gone otherwise."""
        if self.shown is not None:
            self.model.labels(*self.shown).set(0)
        self.model.clear()
        self.shown = (served.version, served.info.get("source", ""), served.info["fast_path"])
        self.model.labels(*self.shown).set(1)

    def record(self, version: str, status: int, elapsed: float, reason: str | None = None) -> None:
        """One request; an error's reason is its status's unless the route named it."""
        self.requests.labels(version, str(status)).inc()
        if status >= 400:
            self.errors.labels(version, reason or REASONS.get(status, str(status))).inc()
        self.latency.labels(version).observe(elapsed)

    def count_log_records(self, result: str, records: int) -> None:
        self.log_records.labels(result).inc(records)

    def count_shadow(self, result: str, requests: int) -> None:
        self.shadow.labels(result).inc(requests)

    def count_labels(self, accepted: int, refused_for: list[str]) -> None:
        if accepted:
            self.labels.labels("accepted").inc(accepted)
        for reason in refused_for:
            self.labels.labels(reason).inc()

    def text(self) -> tuple[bytes, str]:
        """The Prometheus text format (of every process, in multiprocess mode), and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if not os.environ.get(MULTIPROCESS_ENV):
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client.multiprocess import MultiProcessCollector

        everyone = CollectorRegistry()
        MultiProcessCollector(everyone)
        return generate_latest(everyone), CONTENT_TYPE_LATEST

    def close(self) -> None:
        """At shutdown: in multiprocess mode, this process's live gauges stop counting."""
        if os.environ.get(MULTIPROCESS_ENV):
            from prometheus_client.multiprocess import mark_process_dead

            mark_process_dead(os.getpid())
