"""The `export` task kind: copy lake rows into a SQL database table, exactly once.

```yaml
- name: export_predictions
  kind: export
  depends_on: [score_passengers]
  source: {task: score_passengers}     # the batch that score task wrote in this run
  # source: {table: gold.titanic_predictions, version: 12}   # a table version (default latest)
  # source: gold.titanic_predictions                          # shorthand: the latest version
  database: default                    # a name under `databases:` in brickyard.yaml
  table: titanic_predictions           # the SQL table (schema.table allowed); created if missing
  keys: [PassengerId]                  # the row key columns
  mode: upsert                         # append | replace | upsert
  # dedupe: {latest_by: updated_at}    # upsert: keep the latest row of a repeated key
  batch_rows: 50000                    # rows per COPY chunk / executemany batch
  attempts: 6                          # load attempts on transient errors (backoff doubles)
  backoff_seconds: 1
```

Modes:

- `append` (default): insert the batch's rows.
- `replace`: empty the SQL table, then insert the batch's rows (one transaction: readers
  see the old rows or the new ones, never none).
- `upsert`: delete the SQL rows whose `keys` match a batch row, then insert the batch's
  rows (one transaction). A table the export creates gets `keys` as its primary key.
  Each key must have one row in the batch: a batch that repeats keys fails, naming a few
  of them with their row counts (values of columns the source table's contract marks
  `pii: true` show as `<pii>`), and nothing is loaded. With `dedupe: {latest_by: COLUMN}`
  the row with the greatest COLUMN value of each key is loaded instead (a null value
  loses to any other; keys whose latest rows tie fail, named the same way), and the
  metrics say how many older rows were left out.

Exactly once: the batch id is derived from the source table and version (and, for a
`task:` source, the commit that task made) and the SQL table, so a retried export of the
same version is the same batch; rows are staged as Parquet under
`staging/<pipeline>/<task>/<batch_id>/` in the lake, then loaded in one transaction that
also records the batch id in the database's `brickyard_export_batches` ledger; a batch the
ledger holds is skipped. See `brickyard.stores.sql_export`.

Engines: the same on both. The export reads the Delta table version (and, for a `task:`
source, finds the score task's commit by its commit info) through delta-rs, stages and
loads it from the driver; a score task on Spark commits the same metadata, so nothing here
depends on the engine that wrote the batch, and no Spark job runs.

Lineage: the lake table version is a read. `metrics.extra`: `batch_id`, `loaded` (False
when skipped), `rows_loaded`, `database` (password masked), `table`, `mode`, `attempts`,
`load_seconds`, `rows_per_second`; with `dedupe`, `rows_deduplicated` (older rows of
repeated keys left out); when staging found an unreadable manifest (a crash while writing
it), `staging_notes` (the batch was staged afresh).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from brickyard.errors import BrickyardError
from brickyard.lake import TableName
from brickyard.tasks.base import CheckContext, TaskContext, TaskKind, TaskOptions

HISTORY_SCAN = 1000


class ExportSource(TaskOptions):
    """A lake `table:` (at `version:`, default the latest) or an upstream score `task:`."""

    table: str | None = None
    version: int | None = Field(default=None, ge=0)
    task: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"table": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_kind(self) -> ExportSource:
        if (self.table is None) == (self.task is None):
            raise ValueError("give a lake `table:` or an upstream score `task:`")
        if self.task is not None and self.version is not None:
            raise ValueError("`version:` pins a `table:`; a `task:` source is the batch that task wrote")
        if self.table is not None:
            try:
                TableName.parse(self.table)
            except BrickyardError as exc:
                # from None: pydantic shows this ValueError's text, which is the cause's message (noise)
                raise ValueError(str(exc)) from None
        return self


class Dedupe(TaskOptions):
    """How an upsert picks one row per key: the row with the greatest `latest_by` value."""

    latest_by: str = Field(min_length=1)


class ExportOptions(TaskOptions):
    """Options of an `export` task (see the module docstring)."""

    source: ExportSource
    database: str = "default"
    table: str = Field(min_length=1)
    keys: list[str] = Field(default_factory=list)
    mode: Literal["append", "replace", "upsert"] = "append"
    batch_rows: int = Field(default=50_000, ge=1)
    attempts: int = Field(default=6, ge=1, le=50)
    backoff_seconds: float = Field(default=1.0, ge=0)
    keep_staging: bool = False
    dedupe: Dedupe | None = None

    @model_validator(mode="after")
    def _keys_for_upsert(self) -> ExportOptions:
        if self.mode == "upsert" and not self.keys:
            raise ValueError("mode upsert needs `keys:` (the row key columns)")
        if self.dedupe is not None and self.mode != "upsert":
            raise ValueError(f"`dedupe:` picks one row per key for mode: upsert; this task's mode is {self.mode}")
        if self.dedupe is not None and self.dedupe.latest_by in self.keys:
            raise ValueError(f"dedupe latest_by {self.dedupe.latest_by!r} is a key; name the column that orders a key's rows")
        return self


class ExportTask(TaskKind):
    """Loads a lake table version (or an upstream score batch) into a SQL table."""

    name = "export"
    Options = ExportOptions
    needs: ClassVar[frozenset[str]] = frozenset()  # engine-independent: see the module docstring

    def check(self, options: ExportOptions, context: CheckContext) -> list[str]:
        problems = []
        if options.database not in context.workspace.config.databases:
            problems.append(f"database {options.database!r} is not in brickyard.yaml's databases")
        source = options.source
        if source.task is not None:
            try:
                upstream = context.pipeline.task(source.task)
            except KeyError:
                problems.append(f"source task {source.task!r} is not a task of this pipeline")
            else:
                if upstream.kind != "score":
                    problems.append(f"source task {source.task!r} is a {upstream.kind} task, not a score task")
        elif source.table not in context.produced_tables and not context.workspace.lake.exists(source.table or ""):
            problems.append(f"table {source.table!r} does not exist in the lake and no task of the pipeline writes it")
        return problems

    def run(self, options: ExportOptions, context: TaskContext) -> None:
        from brickyard.stores import Database, export_table

        database = Database.from_workspace(context.workspace, options.database)
        table, version, where, selection = self._source(options, context)
        context.record_read(table, version)
        result = export_table(
            context.lake,
            database,
            table,
            version=version,
            where=where,
            selection=selection,
            target=options.table,
            keys=options.keys,
            mode=options.mode,
            staging=f"staging/{context.pipeline.name}/{context.task.name}",
            batch_rows=options.batch_rows,
            attempts=options.attempts,
            backoff_seconds=options.backoff_seconds,
            keep_staging=options.keep_staging,
            dedupe_latest_by=options.dedupe.latest_by if options.dedupe else None,
            pii_columns=pii_keys(context, table, options.keys),
        )
        context.metrics.rows_in = result.rows + result.deduplicated
        context.metrics.rows_out = result.rows
        context.metrics.extra.update({
            "batch_id": result.batch_id,
            "loaded": result.loaded,
            "rows_loaded": result.rows,
            "database": database.display_url,
            "table": options.table,
            "mode": options.mode,
            "attempts": result.attempts,
            "load_seconds": round(result.seconds, 3),
            "rows_per_second": round(result.rows / result.seconds) if result.loaded and result.seconds else 0,
            "source": f"{table}@{version}" + (f" ({selection})" if selection != "all" else ""),
        })
        if options.dedupe is not None:
            context.metrics.extra["rows_deduplicated"] = result.deduplicated
            if result.deduplicated:
                context.log.info("dedupe: left out %d older row(s) of repeated keys (latest by %s)",
                                 result.deduplicated, options.dedupe.latest_by)
        if result.staging:
            context.metrics.extra["staging"] = result.staging
        if result.notes:
            context.metrics.extra["staging_notes"] = list(result.notes)
        for note in result.notes:
            context.log.warning("%s", note)
        verb = "loaded" if result.loaded else "skipped (already loaded)"
        context.log.info("batch %s %s: %d rows into %s on %s", result.batch_id, verb, result.rows, options.table, database.display_url)

    def _source(self, options: ExportOptions, context: TaskContext) -> tuple[str, int, Any, str]:
        """(lake table, version, row filter, selection name) of the batch to export."""
        source = options.source
        if source.table is not None:
            return source.table, context.lake.delta(source.table, version=source.version).version(), None, "all"
        return upstream_batch(context, source.task or "")


def pii_keys(context: TaskContext, table: str, keys: list[str]) -> frozenset[str]:
    """The `keys` of lake table `table` marked `pii: true` by its contract: the contract of
    the task of this pipeline that writes it, else `contracts/<table>.yaml`. When a contract
    exists but cannot be read, every key counts as PII (its values never reach a message)."""
    from brickyard.core.contract import Contract

    reference = next(
        (task.options["contract"] for task in context.pipeline.tasks
         if task.options.get("target") == table and isinstance(task.options.get("contract"), str)),
        None,
    )
    if reference is None and not (context.workspace.root / "contracts" / f"{table}.yaml").is_file():
        return frozenset()
    try:
        contract: Contract = context.workspace.contract(reference or table)
    except BrickyardError:
        context.log.warning("the contract of %s cannot be read: key values are left out of messages", table)
        return frozenset(keys)
    return frozenset(keys) & frozenset(contract.pii_columns)


def upstream_batch(context: TaskContext, task_name: str) -> tuple[str, int, Any, str]:
    """The rows an upstream score task committed in this pipeline run: its target table,
    the version of that commit, a filter on its `scored_at`, and a selection name.

    Raises:
        BrickyardError: the task is not a score task of the pipeline, or it committed
            nothing in this run.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from brickyard.tasks.score import META_RUN_ID, META_SCORED_AT, META_TASK, PARTITION

    try:
        upstream = context.pipeline.task(task_name)
    except KeyError:
        # from None: a KeyError of the task's name (noise)
        raise BrickyardError(f"source task {task_name!r} is not a task of pipeline {context.pipeline.name}") from None
    target = upstream.options.get("target")
    if upstream.kind != "score" or not isinstance(target, str):
        raise BrickyardError(
            f"source task {task_name!r} is not a score task",
            hint="export a table instead: source: {table: zone.name}",
        )
    lake = context.lake
    if lake.exists(target):
        for entry in lake.history(target, limit=HISTORY_SCAN):
            if entry.get(META_RUN_ID) == context.run_id and entry.get(META_TASK) == task_name:
                scored_at = datetime.fromisoformat(str(entry[META_SCORED_AT]))
                stamp = pa.scalar(scored_at, pa.timestamp("us", tz="UTC"))
                where = (pc.field(PARTITION) == pa.scalar(scored_at.date(), pa.date32())) & (pc.field("scored_at") == stamp)
                return target, int(entry["version"]), where, f"commit:{context.run_id}:{task_name}"
    raise BrickyardError(
        f"score task {task_name!r} wrote nothing to {target} in run {context.run_id}",
        hint=f"make this task depend on it (depends_on: [{task_name}]), or export a table version instead",
    )
