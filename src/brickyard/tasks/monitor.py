"""The `monitor` task kind: a model's inputs and performance in production, window by
window, against its training baseline; alerts and their actions.

```yaml
- name: watch_titanic
  kind: monitor
  model: titanic@champion
  target: {table: gold.titanic_scored}     # or {sql: ...}: the inference log, a scoring table, any table
  time_column: scored_at
  window: day                              # hour | day | week | month | batch
  labels: {table: gold.outcomes, key: [PassengerId], label: Survived}
  alerts:
    - {when: drift_share > 0.3, consecutive: 2, actions: [log, {run: retrain_titanic}]}
```

The work is `brickyard.monitoring.monitor.Monitor`; see docs/monitoring.md. It runs on
every engine: the windows are read through the task's engine, and compared in this
process. `metrics.extra` holds what the run did (windows computed, drift share and
drifted features per window, alerts fired); the results table's new version is a write.
"""

from __future__ import annotations

from typing import ClassVar

from brickyard.monitoring.spec import MonitorSpec, results_table
from brickyard.tasks.base import CheckContext, CheckProblem, TaskContext, TaskKind, TaskOptions


class MonitorOptions(TaskOptions, MonitorSpec):
    """Options of a `monitor` task (see `brickyard.monitoring.spec.MonitorSpec`)."""


class MonitorTask(TaskKind):
    """Compares new windows of a target with the model version's baseline."""

    name = "monitor"
    Options = MonitorOptions
    needs: ClassVar[frozenset[str]] = frozenset()  # runs on every engine

    def check(self, options: MonitorOptions, context: CheckContext) -> list[str]:
        found: list[str] = []
        for key, source in (("target", options.target), ("labels", options.labels)):
            if source is None:
                continue
            if source.sql is not None:
                found += [CheckProblem(message, key, "sql")
                          for message in context.engine.sql_problems(source.sql, f"{key}.sql")]
            elif source.table not in context.produced_tables and not context.workspace.lake.exists(source.table or ""):
                found.append(CheckProblem(
                    f"table {source.table!r} does not exist in the lake and no task of the pipeline writes it", key, "table"
                ))
        pipelines = set(context.workspace.pipeline_names())
        for index, rule in enumerate(options.alerts):
            for number, action in enumerate(rule.actions):
                pipeline = getattr(action, "run", None)
                if pipeline is not None and pipeline not in pipelines:
                    found.append(CheckProblem(f"alert action run: {pipeline!r} is no pipeline of the workspace",
                                              "alerts", index, "actions", number))
        return found

    def writes(self, options: MonitorOptions) -> list[str]:
        # the default name is the task's, which this method is not given
        return [results_table(options.monitor)] if options.monitor else []

    def run(self, options: MonitorOptions, context: TaskContext) -> None:
        from brickyard.monitoring.monitor import Monitor

        name = options.monitor or context.task.name
        monitor = Monitor(
            context.workspace, context.engine, options, name, pipeline=context.pipeline.name,
            task=context.task.name, run_id=context.run_id, log=context.log, launch=context.launch,
            full_refresh=context.full_refresh,
        )
        outcome = monitor.run()
        if options.target.table is not None and context.lake.exists(options.target.table):
            context.record_read(options.target.table, context.lake.version(options.target.table))
        if outcome.table_version is not None:
            context.record_write(outcome.table, outcome.table_version)
        context.metrics.rows_in = sum(int(w.values.get("rows") or 0) for w in outcome.computed)
        context.metrics.rows_out = sum(len(w.rows) for w in outcome.computed)
        context.metrics.extra.update(outcome.as_dict())
        if not outcome.computed:
            context.log.info("monitor %s: no new window to compute (%d computed before%s)", name, outcome.plan.done,
                             f"; {outcome.plan.open} is still open" if outcome.plan.open else "")
