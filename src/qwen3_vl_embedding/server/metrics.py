"""Prometheus metrics of one app (its own registry, so several apps can live in one process)."""
from __future__ import annotations

from typing import Callable

from .batcher import PassInfo

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


class Metrics:
    """Requests, latencies, errors, merged-run sizes and queue depth, labelled by endpoint or model."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("qvl_requests", "HTTP requests by endpoint and status", ["endpoint", "status"],
                                registry=r)
        self.latency = Histogram("qvl_request_seconds", "HTTP request latency", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.errors = Counter("qvl_errors", "error responses by endpoint and error code", ["endpoint", "code"],
                              registry=r)
        self.batch_items = Histogram("qvl_batch_items", "inputs per merged run", ["model"], buckets=SIZE_BUCKETS,
                                     registry=r)
        self.batch_requests = Histogram("qvl_batch_requests", "requests per merged run", ["model"],
                                        buckets=SIZE_BUCKETS, registry=r)
        self.run_seconds = Histogram("qvl_run_seconds", "time of one merged run", ["model"], buckets=LATENCY_BUCKETS,
                                     registry=r)
        self.items = Counter("qvl_items", "inputs embedded or scored", ["model"], registry=r)
        self.tokens = Counter("qvl_tokens", "tokens processed", ["model"], registry=r)
        self.queue_depth = Gauge("qvl_queue_depth", "inputs queued or running", ["model"], registry=r)

    def watch_queue(self, model: str, depth: Callable[[], int]) -> None:
        self.queue_depth.labels(model=model).set_function(depth)

    def pass_observer(self, model: str) -> Callable[[PassInfo], None]:
        def observe(info: PassInfo) -> None:
            self.batch_items.labels(model=model).observe(info.items)
            self.batch_requests.labels(model=model).observe(info.requests)
            self.run_seconds.labels(model=model).observe(info.seconds)
            self.items.labels(model=model).inc(info.items)
            self.tokens.labels(model=model).inc(info.tokens)
        return observe

    def observe_request(self, endpoint: str, status: int, seconds: float, code: str | None = None) -> None:
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)
        if status >= 400:
            self.errors.labels(endpoint=endpoint, code=code or str(status)).inc()

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
