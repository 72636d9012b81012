"""Prometheus metrics of runs, tasks, triggers and feature freshness, read at each scrape of
the control plane's `GET /metrics` (beside the monitors' gauges, `monitoring.gauges`).

- ``brickyard_runs{pipeline,status}``: runs recorded in the state database, by status
  (`queued` ones are the queue)
- ``brickyard_run_oldest_queued_seconds{pipeline}``: age of the oldest queued run
- ``brickyard_task_duration_seconds{pipeline,task}`` (histogram): wall time of every finished
  task attempt; ``brickyard_task_cpu_seconds_total{pipeline,task}``: their CPU-seconds
- ``brickyard_task_attempts_total{pipeline,task,status}``: attempts by status
- ``brickyard_trigger_loop_running``: 1 while the trigger thread runs (0 with --no-triggers)
- ``brickyard_trigger_next_fire_timestamp_seconds{pipeline}``: a schedule's next time (Unix)
- ``brickyard_trigger_pending_files{pipeline}``: files a file-arrival trigger saw and has not
  started a run for yet
- ``brickyard_feature_freshness_seconds{table}``, ``brickyard_feature_materialized_timestamp_seconds{table}``:
  per feature table in the online store, seconds since its newest event time and when it
  was last materialized (as on `brickyard serve`'s /metrics)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from brickyard.runtime.records import ATTEMPTS, RUNS, RunStatus, from_db, utcnow
from brickyard.runtime.triggers import FileTrigger, ScheduleTrigger, TriggerLoop

if TYPE_CHECKING:
    from brickyard.runtime.state import StateStore
    from brickyard.workspace import Workspace

log = logging.getLogger("brickyard.server")
BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class RunCollector(Collector):
    """Yields the run, task, trigger and feature-freshness metrics at each scrape."""

    def __init__(self, workspace: Workspace, store: StateStore, loop: TriggerLoop | None) -> None:
        self.workspace = workspace
        self.store = store
        self.loop = loop

    def collect(self) -> Iterator[Metric]:
        with self.store.engine.connect() as conn:
            yield from self._runs(conn)
            yield from self._tasks(conn)
        yield from self._triggers()
        yield from self._features()

    def _runs(self, conn: sa.Connection) -> Iterator[Metric]:
        runs = GaugeMetricFamily("brickyard_runs", "Runs in the state database, by status", labels=["pipeline", "status"])
        query = sa.select(RUNS.c.pipeline, RUNS.c.status, sa.func.count()).group_by(RUNS.c.pipeline, RUNS.c.status)
        for pipeline, status, count in conn.execute(query):
            runs.add_metric([pipeline, status], float(count))
        oldest = GaugeMetricFamily("brickyard_run_oldest_queued_seconds", "Age of the oldest queued run", labels=["pipeline"])
        query = (sa.select(RUNS.c.pipeline, sa.func.min(RUNS.c.created_at)).where(RUNS.c.status == RunStatus.QUEUED)
                 .group_by(RUNS.c.pipeline))
        now = utcnow()
        for pipeline, created in conn.execute(query):
            moment = from_db(created)
            if moment is not None:
                oldest.add_metric([pipeline], max((now - moment).total_seconds(), 0.0))
        yield from (runs, oldest)

    def _tasks(self, conn: sa.Connection) -> Iterator[Metric]:
        """One pass over the attempts: per pipeline, task and status, the count, sums and
        bucket counts (the histogram adds the statuses up)."""
        wall = ATTEMPTS.c.wall_seconds
        buckets = [sa.func.sum(sa.case((wall <= bound, 1), else_=0)) for bound in BUCKETS]
        query = (
            sa.select(RUNS.c.pipeline, ATTEMPTS.c.task, ATTEMPTS.c.status, sa.func.count(), sa.func.count(wall),
                      sa.func.sum(wall), sa.func.sum(ATTEMPTS.c.cpu_seconds), *buckets)
            .join(RUNS, RUNS.c.id == ATTEMPTS.c.run_id)
            .where(ATTEMPTS.c.attempt > 0)
            .group_by(RUNS.c.pipeline, ATTEMPTS.c.task, ATTEMPTS.c.status)
        )
        attempts = CounterMetricFamily("brickyard_task_attempts", "Task attempts, by status", labels=["pipeline", "task", "status"])
        totals: dict[tuple[str, str], list[float]] = {}  # count, wall, cpu, buckets...
        for pipeline, task, status, count, timed, wall_total, cpu_total, *cumulative in conn.execute(query):
            attempts.add_metric([pipeline, task, status], float(count))
            entry = totals.setdefault((pipeline, task), [0.0] * (3 + len(BUCKETS)))
            for index, value in enumerate((timed, wall_total, cpu_total, *cumulative)):
                entry[index] += float(value or 0)
        duration = HistogramMetricFamily("brickyard_task_duration_seconds", "Wall time of finished task attempts",
                                         labels=["pipeline", "task"])
        cpu = CounterMetricFamily("brickyard_task_cpu_seconds", "CPU-seconds of finished task attempts",
                                  labels=["pipeline", "task"])
        for (pipeline, task), (timed, wall_total, cpu_total, *cumulative) in sorted(totals.items()):
            if not timed:
                continue
            points = [(_bound(bound), count) for bound, count in zip(BUCKETS, cumulative)] + [("+Inf", timed)]
            duration.add_metric([pipeline, task], points, wall_total)
            cpu.add_metric([pipeline, task], cpu_total)
        yield from (duration, cpu, attempts)

    def _triggers(self) -> Iterator[Metric]:
        running = GaugeMetricFamily("brickyard_trigger_loop_running", "1 while the trigger thread runs")
        running.add_metric([], 1.0 if self.loop is not None and self.loop.running else 0.0)
        next_fire = GaugeMetricFamily("brickyard_trigger_next_fire_timestamp_seconds", "A schedule's next time (Unix)",
                                      labels=["pipeline"])
        pending = GaugeMetricFamily("brickyard_trigger_pending_files", "Files seen by a file-arrival trigger, not yet run",
                                    labels=["pipeline"])
        for trigger in self.loop.triggers() if self.loop is not None else []:
            if isinstance(trigger, ScheduleTrigger):
                next_fire.add_metric([trigger.pipeline], trigger.next_at.astimezone(UTC).timestamp())
            elif isinstance(trigger, FileTrigger):
                pending.add_metric([trigger.pipeline], float(len(trigger.pending)))
        yield from (running, next_fire, pending)

    def _features(self) -> Iterator[Metric]:
        freshness = GaugeMetricFamily("brickyard_feature_freshness_seconds",
                                      "Seconds since the newest event time in the online store, per feature table", labels=["table"])
        materialized = GaugeMetricFamily("brickyard_feature_materialized_timestamp_seconds",
                                         "When the feature table was last materialized online (Unix time)", labels=["table"])
        for state in self._feature_states():
            age = state.freshness_seconds()
            freshness.add_metric([state.table], float("inf") if age is None else age)
            materialized.add_metric([state.table], state.materialized_at_us / 1e6)
        yield from (freshness, materialized)

    def _feature_states(self) -> list[Any]:
        from brickyard.features.online import OnlineStoreError, workspace_store

        try:
            store = workspace_store(self.workspace)
            try:
                return store.states()
            finally:
                store.close()
        except OnlineStoreError as exc:  # a scrape never fails for it; the log says why
            log.warning("feature freshness: %s", exc)
            return []


def _bound(value: float) -> str:
    return repr(float(value))
