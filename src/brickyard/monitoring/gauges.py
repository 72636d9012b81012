"""Prometheus gauges of the monitors, read from the state database when scraped.

A monitor runs inside a pipeline run's short-lived process, so its values are kept in the
state database (`MonitorStore`) and served by the long-running control plane
(`brickyard server`, `GET /metrics`), which reads them at each scrape:

- ``brickyard_monitor_drift_statistic{monitor,feature,method}``: the latest window's
  deciding statistic of each feature (PSI, JS; for KS and chi-square the p-value's test
  statistic), ``brickyard_monitor_drift_threshold{monitor,feature,method}`` its threshold
- ``brickyard_monitor_feature_drifted{monitor,feature}``: 1 when it drifted
- ``brickyard_monitor_drift_share{monitor}``, ``brickyard_monitor_windows{monitor}``,
  ``brickyard_monitor_last_window_end_seconds{monitor}`` (Unix time)
- ``brickyard_monitor_performance{monitor,metric,estimated}``: the latest window's metrics
  and their drops
- ``brickyard_monitor_alerts{monitor,status}``: alerts raised, by status
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from brickyard.monitoring.state import MonitorStore


class MonitorCollector(Collector):
    """Yields the monitors' gauges from the state database at each scrape."""

    def __init__(self, store: MonitorStore) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        statistic = GaugeMetricFamily("brickyard_monitor_drift_statistic", "Latest window's deciding drift statistic per feature",
                                      labels=["monitor", "feature", "method"])
        threshold = GaugeMetricFamily("brickyard_monitor_drift_threshold", "Threshold of that statistic",
                                      labels=["monitor", "feature", "method"])
        drifted = GaugeMetricFamily("brickyard_monitor_feature_drifted", "1 when the feature drifted in the latest window",
                                    labels=["monitor", "feature"])
        for row in self.store.features():
            labels = [row["monitor"], row["feature"], row["method"]]
            if row["statistic"] is not None:
                statistic.add_metric(labels, float(row["statistic"]))
            if row["threshold"] is not None:
                threshold.add_metric(labels, float(row["threshold"]))
            drifted.add_metric([row["monitor"], row["feature"]], 1.0 if row["drifted"] else 0.0)
        share = GaugeMetricFamily("brickyard_monitor_drift_share", "Share of features that drifted in the latest window",
                                  labels=["monitor"])
        windows = GaugeMetricFamily("brickyard_monitor_windows", "Windows computed", labels=["monitor"])
        last_end = GaugeMetricFamily("brickyard_monitor_last_window_end_seconds", "End of the latest window (Unix time)",
                                     labels=["monitor"])
        performance = GaugeMetricFamily("brickyard_monitor_performance", "Latest window's metrics and drops",
                                        labels=["monitor", "metric", "estimated"])
        for row in self.store.monitors():
            name = row["name"]
            if row["drift_share"] is not None:
                share.add_metric([name], float(row["drift_share"]))
            windows.add_metric([name], float(row["windows"]))
            if row["last_window_end"] is not None:
                last_end.add_metric([name], row["last_window_end"].replace(tzinfo=UTC).timestamp())
            values: dict[str, Any] = dict(row["performance"] or {})
            estimated = "true" if values.pop("estimated", False) else "false"
            for metric, value in sorted(values.items()):
                if isinstance(value, int | float) and not metric.startswith("_"):
                    performance.add_metric([name, metric, estimated], float(value))
        alerts = GaugeMetricFamily("brickyard_monitor_alerts", "Alerts raised, by status", labels=["monitor", "status"])
        counts: dict[tuple[str, str], int] = {}
        for alert in self.store.alerts():
            counts[(alert.monitor, alert.status)] = counts.get((alert.monitor, alert.status), 0) + 1
        for (monitor, status), count in sorted(counts.items()):
            alerts.add_metric([monitor, status], float(count))
        yield from (statistic, threshold, drifted, share, windows, last_end, performance, alerts)


class MonitorMetrics:
    """A registry holding the monitors' collector, rendered as Prometheus text."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, state_url: str) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(MonitorCollector(MonitorStore(state_url)))

    def render(self) -> bytes:
        return generate_latest(self.registry)
