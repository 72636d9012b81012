"""The `materialize` task kind: push a feature table's latest rows to the online store.

```yaml
- name: push_rfm
  kind: materialize
  depends_on: [build_rfm]
  table: customer_rfm             # features/customer_rfm.yaml, the Delta table features.customer_rfm
  full: false                     # true: read the whole table, not only what was added
```

Incremental from the Delta version last materialized (see `brickyard.features.materialize`);
a run with nothing new writes nothing and says so in its log. Rows read and written, the
versions and the store are in the task's metrics.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from brickyard.tasks.base import CheckContext, CheckProblem, TaskContext, TaskKind, TaskOptions


class MaterializeOptions(TaskOptions):
    """Options of a `materialize` task."""

    table: str = Field(description="the feature table (features/NAME.yaml; `features.NAME` also accepted) to push online")
    full: bool = Field(default=False, description="read the whole table instead of the versions added since the last run")


class MaterializeTask(TaskKind):
    """Writes the latest row per entity of `features.NAME` to the workspace's online store."""

    name = "materialize"
    needs: ClassVar[frozenset[str]] = frozenset()  # reads the Delta table through the lake, on any engine
    Options = MaterializeOptions

    def check(self, options: MaterializeOptions, context: CheckContext) -> list[str]:
        """The feature table is defined in features/NAME.yaml."""
        from brickyard.errors import BrickyardError

        try:
            context.workspace.feature_table(options.table)
        except BrickyardError as exc:
            return [CheckProblem(str(exc), "table")]
        return []

    def run(self, options: MaterializeOptions, context: TaskContext) -> None:
        from brickyard.features.materialize import materialize

        result = materialize(context.workspace, options.table, full=options.full or context.full_refresh)
        context.record_read(result.table, result.to_version)
        context.metrics.rows_in = result.rows_read
        context.metrics.rows_out = result.rows_written
        context.metrics.extra["online_store"] = result.as_dict()
        context.log.info("%s", result.summary())
