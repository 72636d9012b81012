"""The `features` kind: materialize feature tables (`features/NAME.yaml`) as Delta tables.

```yaml
- name: customer_features
  kind: features
  table: customer_rfm                 # features/customer_rfm.yaml -> features.customer_rfm
  # tables: [customer_rfm, customer_web]   # or several, in this order
  max_quarantined: 0.01               # optional, as in the sql kind
```

The rows come from the definition's `source`:

- `table: silver.x`: read incrementally. The first run (and `--full-refresh`) copies the
  table; later runs append only the rows added to it since the version the last run read
  (the source must be append-only between runs, as for the `sql` kind's `incremental`).
- `sql: sql/x.sql` (or inline SQL): the query's result replaces the table.

Either way, when no lake table the source reads has a new version since the last run
(and the definition's source, keys and times are unchanged), nothing is written and the
log says so. A row whose key, event time (or created time, when declared) is null goes
to `features.NAME__quarantine` with the reason, never into the feature table; a key or
time column the source lacks stops the task naming it. Each write stores its rows sorted
by the keys, then the event time, so a training set's point-in-time join finds them in
order and need not sort them again (`brickyard.engines.duckdb.asof_arrays`). Underneath,
this is the `sql` kind's job (one Delta commit per table, its lineage and retry safety), on
either engine.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar

from pydantic import field_validator, model_validator

from brickyard.core.contract import Expectation
from brickyard.core.feature_table import FeatureTableSpec
from brickyard.core.quality import quarantine_name
from brickyard.errors import BrickyardError, ConfigError, SqlError
from brickyard.tasks.base import CheckContext, CheckProblem, TaskContext, TaskKind
from brickyard.tasks.quality import QuarantineLimit
from brickyard.tasks.sql_task import SqlOptions, _SqlJob, last_state


class FeaturesOptions(QuarantineLimit):
    """The `features` kind's fields: `table: NAME` or `tables: [NAME, ...]`."""

    table: str | None = None
    tables: tuple[str, ...] = ()

    @field_validator("table", mode="before")
    @classmethod
    def _bare(cls, value: Any) -> Any:
        return value.removeprefix("features.") if isinstance(value, str) else value

    @field_validator("tables", mode="before")
    @classmethod
    def _bare_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        return [v.removeprefix("features.") if isinstance(v, str) else v for v in value]

    @model_validator(mode="after")
    def _one_of(self) -> FeaturesOptions:
        if (self.table is None) == (not self.tables):
            raise ValueError("give table: NAME (features/NAME.yaml) or tables: [NAME, ...]")
        return self

    def names(self) -> list[str]:
        """The feature tables to materialize, in order."""
        return [self.table] if self.table is not None else list(self.tables)


def source_query(spec: FeatureTableSpec) -> tuple[str | None, str | None]:
    """(inline SQL, SQL file) of a definition's source: a table source is `SELECT *` of it;
    `sql:` names a file when it is one word ending in `.sql`, else it is the query."""
    source = spec.source
    if source.table is not None:
        return f"SELECT * FROM {source.table}", None
    text = str(source.sql).strip()
    if text.endswith(".sql") and not any(ch.isspace() for ch in text):
        return None, text
    return text, None


def required_columns(spec: FeatureTableSpec) -> list[str]:
    """The columns a feature table's source must give: keys, event time, created time."""
    return list(spec.feature_columns_excluded)


def definition_digest(spec: FeatureTableSpec) -> str:
    """A short hash of what decides the table's rows (source, keys, times): a change
    rebuilds the table instead of appending to it."""
    text = json.dumps(
        {"source": spec.source.model_dump(), "keys": spec.keys, "event_time": spec.event_time, "created_time": spec.created_time},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def sql_options(spec: FeatureTableSpec, incremental: bool, max_quarantined: int | float | None) -> SqlOptions:
    """The `sql` job that writes a feature table: append new source rows, or replace."""
    query, file = source_query(spec)
    checks = tuple(
        Expectation(name=f"{role} {column}", not_null=column, action="drop")
        for role, column in [("key", k) for k in spec.keys]
        + [("event_time", spec.event_time)]
        + ([("created_time", spec.created_time)] if spec.created_time else [])
    )
    return SqlOptions(
        query=query,
        sql=file,
        target=spec.table,
        mode="append" if incremental else "overwrite",
        incremental=incremental,
        expectations=checks,
        max_quarantined=max_quarantined,
    )


class FeaturesTask(TaskKind):
    """Materializes feature tables (see the module doc)."""

    name = "features"
    Options = FeaturesOptions
    needs: ClassVar[frozenset[str]] = frozenset()  # runs on every engine

    def writes(self, options: FeaturesOptions) -> list[str]:
        tables = [f"features.{name}" for name in options.names()]
        return [name for table in tables for name in (table, quarantine_name(table))]

    def check(self, options: FeaturesOptions, context: CheckContext) -> list[str]:
        from brickyard.tasks.explain import explain_problems
        from brickyard.tasks.sql_task import query_text

        found: list[str] = []
        key = "table" if options.table is not None else "tables"
        for index, name in enumerate(options.names()):
            at = (key,) if key == "table" else (key, index)
            try:
                spec = context.workspace.feature_table(name)
                options_sql = sql_options(spec, False, None)
                text = query_text(options_sql, context.workspace.root)
            except BrickyardError as exc:
                found.append(CheckProblem(str(exc), *at))
                continue
            where = options_sql.sql or f"features/{name}.yaml source"
            problems = explain_problems(context, text, where, required=required_columns(spec))
            problems += context.engine.sql_problems(text, where)
            found += [CheckProblem(problem, *at) for problem in problems]
        return found

    def run(self, options: FeaturesOptions, context: TaskContext) -> None:
        for name in options.names():
            _materialize(context.workspace.feature_table(name), options, context)


def _materialize(spec: FeatureTableSpec, options: FeaturesOptions, context: TaskContext) -> None:
    """Write one feature table, or say why nothing needed writing."""
    lake, log = context.lake, context.log
    task_id = f"{context.pipeline.name}.{context.task.name}/{spec.name}@{definition_digest(spec)}"
    state = last_state(lake, spec.table, task_id)
    if state is not None and not context.full_refresh and state.sources and all(
        lake.exists(table) and lake.version(table) == version for table, version in state.sources.items()
    ):
        log.info(
            "%s: no source has a new version since the last run (%s); nothing to write",
            spec.table, ", ".join(f"{t} v{v}" for t, v in sorted(state.sources.items())),
        )
        for table, version in state.sources.items():
            context.record_read(table, version)
        context.record_write(spec.table, lake.version(spec.table))
        context.metrics.extra.setdefault("unchanged", []).append(spec.table)
        return
    incremental = spec.source.table is not None and state is not None and not context.full_refresh
    sql = sql_options(spec, incremental, options.max_quarantined)
    _require_columns(spec, sql, context)
    _SqlJob(sql, context, task_id=task_id, order_by=(*spec.keys, spec.event_time)).run()


def _require_columns(spec: FeatureTableSpec, sql: SqlOptions, context: TaskContext) -> None:
    """Stop with the column named when the source lacks a key or time column."""
    from brickyard.tasks.sql_task import query_text

    text = query_text(sql, context.workspace.root)
    where = sql.sql or f"features/{spec.name}.yaml source"
    try:
        columns = context.engine.columns(text)
    except SqlError as exc:
        raise SqlError(f"{where}: {exc.message}", hint=exc.hint) from exc
    for column in required_columns(spec):
        if column not in columns:
            role = "key" if column in spec.keys else "event_time" if column == spec.event_time else "created_time"
            raise ConfigError(
                f"feature table {spec.table}: its {role} column {column!r} is not a column of its source ({where})",
                hint=f"the source's columns: {', '.join(columns)}; fix features/{spec.name}.yaml or the source",
            )
