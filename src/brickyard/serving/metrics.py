"""Prometheus metrics of a serving process (``GET /metrics``).

- ``brickyard_serving_requests_total{endpoint,model,version,status}``
- ``brickyard_serving_request_seconds{endpoint,model,version}`` (histogram, whole request)
- ``brickyard_serving_shadow_requests_total{endpoint,model,version,status}``
- ``brickyard_serving_model_info{endpoint,model,version,slot,path}`` (1 per loaded slot)
- ``brickyard_serving_model_swaps_total{endpoint,slot}``
- ``brickyard_serving_canary_percent{endpoint}``, ``brickyard_serving_canary_rolled_back{endpoint}``
- ``brickyard_serving_canary_events_total{endpoint,event}`` (rollback, advance, complete)
- ``brickyard_serving_inference_log_written_total{endpoint}``,
  ``brickyard_serving_inference_log_dropped_total{endpoint}``, ``brickyard_serving_inference_log_pending``
- ``brickyard_feature_freshness_seconds{table}``: seconds since the newest event time in the
  online store, per feature table a served model looks up (read when /metrics is scraped);
  ``brickyard_feature_materialized_timestamp_seconds{table}``: when it was last materialized

With several workers (``PROMETHEUS_MULTIPROC_DIR`` set by `brickyard serve --workers N`) every
worker writes its values to that folder and ``/metrics`` adds them up across workers.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class ServingMetrics:
    """The metrics of one app, in their own registry (several apps may share a process)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("brickyard_serving_requests", "Scoring requests", ["endpoint", "model", "version", "status"], registry=r)
        self.latency = Histogram(
            "brickyard_serving_request_seconds", "Scoring request latency (seconds)", ["endpoint", "model", "version"],
            buckets=BUCKETS, registry=r,
        )
        self.shadow = Counter(
            "brickyard_serving_shadow_requests", "Requests scored by a shadow model", ["endpoint", "model", "version", "status"], registry=r
        )
        self.model_info = Gauge(
            "brickyard_serving_model_info", "Loaded model versions (1 per slot)", ["endpoint", "model", "version", "slot", "path"],
            registry=r, multiprocess_mode="livemax",
        )
        self.swaps = Counter("brickyard_serving_model_swaps", "Model versions swapped in after an alias moved", ["endpoint", "slot"], registry=r)
        self.canary_percent = Gauge(
            "brickyard_serving_canary_percent", "Share of traffic sent to the challenger", ["endpoint"], registry=r, multiprocess_mode="livemax"
        )
        self.canary_rolled_back = Gauge(
            "brickyard_serving_canary_rolled_back", "1 after the canary was rolled back", ["endpoint"], registry=r, multiprocess_mode="livemax"
        )
        self.canary_events = Counter("brickyard_serving_canary_events", "Canary rollbacks and rollout steps", ["endpoint", "event"], registry=r)
        self.log_written = Counter("brickyard_serving_inference_log_written", "Inference log records written", ["endpoint"], registry=r)
        self.log_dropped = Counter(
            "brickyard_serving_inference_log_dropped", "Inference log records dropped (buffer full or write failed)", ["endpoint"], registry=r
        )
        self.log_pending = Gauge(
            "brickyard_serving_inference_log_pending", "Inference log records waiting to be written", registry=r, multiprocess_mode="livesum"
        )
        self.feature_freshness = Gauge(
            "brickyard_feature_freshness_seconds", "Seconds since the newest event time in the online store, per feature table",
            ["table"], registry=r, multiprocess_mode="livemax",
        )
        self.feature_materialized = Gauge(
            "brickyard_feature_materialized_timestamp_seconds", "When the feature table was last materialized online (Unix time)",
            ["table"], registry=r, multiprocess_mode="livemax",
        )
        self._requests: dict[tuple[str, str, str, int], Any] = {}
        self._latency: dict[tuple[str, str, str], Any] = {}

    def observe(self, endpoint: str, model: str, version: str, status: int, seconds: float) -> None:
        """Count one request and its latency (children are cached: no label lookups per call)."""
        key = (endpoint, model, version, status)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = self.requests.labels(endpoint, model, version, str(status))
        counter.inc()
        short = key[:3]
        histogram = self._latency.get(short)
        if histogram is None:
            histogram = self._latency[short] = self.latency.labels(*short)
        histogram.observe(seconds)

    def render(self) -> bytes:
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
