"""The `sql` kind: a SELECT over the lake, written to a table.

```yaml
- name: clean_trips
  kind: sql
  sql: sql/silver_taxi_trips.sql      # or inline: query: "SELECT ... FROM bronze.taxi_trips"
  target: silver.taxi_trips
  mode: append                         # overwrite (default) | append | merge
  keys: [trip_id]                      # merge only
  partition_by: [pickup_date]          # optional
  incremental: true                    # read only rows added to the sources since the last run
                                       # (or a list: the tables read that way; others whole)
  contract: contracts/silver.taxi_trips.yaml   # expectations applied BEFORE writing
  expectations:                                # and/or inline ones
    - {sql: "fare_amount >= 0", name: non_negative_fare, action: drop}
  max_quarantined: 0.01                # optional: fail past 1% quarantined (or a count: 50)
```

The query runs on DuckDB with the lake's tables visible as `zone.name`; the result streams
into one Delta commit (merge collects it first). With `engine: spark` the same query (in
DuckDB's dialect) is translated for Spark SQL and written by Spark's executors, with the
same results, quarantine, incremental reads and idempotency (`brickyard.engines.spark.sql`);
there a merge is one overwrite of the table (its rows whose key is not among the new rows,
plus the new rows), and `brickyard validate` reports SQL that Spark cannot run. With expectations, bad rows never land:
`drop` rows go to `<target>__quarantine` (every column as text, `_reason`, `_loaded_at`,
`_run_id`; overwritten when the target is, appended otherwise) in a commit made before the
target's, `fail` stops the task with nothing written, `warn` is counted. The rows
quarantined and their top reasons are recorded for the run summary; past `max_quarantined`
the task fails with nothing written (neither table changes).

Every target commit records, in custom metadata `brickyard.sql`, the version of each source
table it read and the run id. That makes re-runs safe:

- `incremental: true` (modes append and merge) registers each source as only the rows
  added since the recorded version: the data files present now and absent then;
  `incremental: [bronze.trips]` does so for the tables listed and reads the others (say, a
  dimension joined to new facts) whole. Those sources must be append-only between runs
  (ingest's appends are); one rewritten by an overwrite, delete, merge or optimize stops
  the task with a hint to run --full-refresh. When none of them has a new version,
  nothing is written.
- A retried attempt of a run whose commit already landed writes nothing again, and a
  crash before the commit leaves the recorded versions unchanged, so the retry reads the
  same rows: append and merge are idempotent. A crash between the quarantine commit and
  the target commit leaves a parked batch: the next attempt or run redoes it from the
  source versions its quarantine commit recorded, then writes what arrived since.
- Two runs at once write each source row once: the batch number comes from the same read
  as the recorded versions, and the target commit (and the quarantine commit) is refused
  when the other run committed that batch first (`CommitConflictError`); the task then
  reads the recorded versions again and plans again.
- `--full-refresh` reads the sources whole and overwrites the target; when several tasks
  write one table, only the first of the run overwrites it (and its quarantine), later
  ones write in their mode (`brickyard.tasks.refresh`).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

from pydantic import field_validator, model_validator

from brickyard.core.contract import Contract, Expectation
from brickyard.core.quality import (
    checked_query,
    contract_rules,
    quarantine_name,
)
from brickyard.engines.sql_text import single_select
from brickyard.errors import BrickyardError, CommitConflictError, ConfigError, LakeError, SqlError
from brickyard.lake.names import TableName
from brickyard.tasks.base import CheckContext, TaskContext, TaskKind
from brickyard.tasks.quality import QuarantineLimit
from brickyard.tasks.refresh import REFRESH_KEY, refresh_metadata, refresh_mode

if TYPE_CHECKING:

    from brickyard.engines.base import TaskQuery
    from brickyard.lake import Lake, WriteMode

SQL_KEY = "brickyard.sql"
MAX_CONFLICTS = 20  # batches lost to concurrent writers before the task gives up

SqlMode = Literal["overwrite", "append", "merge"]


class SqlOptions(QuarantineLimit):
    """The `sql` kind's fields."""

    query: str | None = None
    sql: str | None = None
    target: str
    mode: SqlMode = "overwrite"
    keys: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    incremental: bool | tuple[str, ...] = False
    contract: str | None = None
    expectations: tuple[Expectation, ...] = ()

    @field_validator("target")
    @classmethod
    def _table_name(cls, value: str) -> str:
        try:
            return str(TableName.parse(value))
        except LakeError as exc:
            # from None: pydantic shows this ValueError's text, which is the cause's message (noise)
            raise ValueError(exc.message) from None

    @field_validator("incremental", mode="before")
    @classmethod
    def _tables(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("keys", "partition_by", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> SqlOptions:
        if (self.query is None) == (self.sql is None):
            raise ValueError("set exactly one of query (inline SQL) or sql (a file such as sql/NAME.sql)")
        if self.mode == "merge" and not self.keys:
            raise ValueError("mode merge needs keys: the columns that identify a row")
        if self.keys and self.mode != "merge":
            raise ValueError("keys are only used by mode merge")
        if self.incremental and self.mode == "overwrite":
            raise ValueError("incremental reads only new rows; use it with mode append or merge")
        for table in self.incremental if isinstance(self.incremental, tuple) else ():
            TableName.parse(table)
        return self

    def reads_incrementally(self, table: str) -> bool:
        """Whether `table` is read as only its rows added since the last run."""
        if isinstance(self.incremental, tuple):
            return table in self.incremental
        return self.incremental


@dataclass(frozen=True)
class SqlState:
    """What a commit by this task recorded (`brickyard.sql`)."""

    run_id: str
    batch: int
    sources: dict[str, int] = field(default_factory=dict)
    mode: SqlMode = "append"
    full_refresh: bool = False
    refresh: str | None = None  # the run whose full refresh the commit belongs to


def sql_records(lake: Lake, table: str, task: str) -> Iterator[SqlState]:
    """The `brickyard.sql` records of `task` in a table's history, newest first."""
    if not lake.exists(table):
        return
    for entry in lake.history(table):
        text = entry.get(SQL_KEY)
        if not isinstance(text, str):
            continue
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if data.get("task") == task:
            sources = {str(k): int(v) for k, v in (data.get("sources") or {}).items()}
            refresh = entry.get(REFRESH_KEY)
            yield SqlState(
                str(data.get("run_id", "")),
                int(data.get("batch", 0)),
                sources,
                _recorded_mode(data.get("mode", "append"), table, task),
                bool(data.get("full_refresh", False)),
                str(refresh) if refresh is not None else None,
            )


def _recorded_mode(value: object, table: str, task: str) -> SqlMode:
    for mode in get_args(SqlMode):
        if value == mode:
            return mode
    raise LakeError(f"{table}: a commit of task {task!r} records an unknown mode {value!r}")


def last_state(lake: Lake, target: str, task: str) -> SqlState | None:
    """The newest `brickyard.sql` record of `task` in the target's history."""
    return next(sql_records(lake, target, task), None)


def query_text(options: SqlOptions, root: Path) -> str:
    """The task's SQL: inline, or the file it names (relative to the workspace).

    Raises:
        ConfigError: the file does not exist.
    """
    if options.query is not None:
        return options.query
    path = root / str(options.sql)
    if not path.is_file():
        raise ConfigError(
            f"SQL file {options.sql} not found", hint=f"create {path} or fix the sql: path"
        )
    return path.read_text(encoding="utf-8")


class SqlTask(TaskKind):
    """A SELECT over the lake into a table (see the module doc)."""

    name = "sql"
    Options = SqlOptions
    needs: ClassVar[frozenset[str]] = frozenset()  # runs on every engine

    def writes(self, options: SqlOptions) -> list[str]:
        return [options.target, quarantine_name(options.target)]

    def run(self, options: SqlOptions, context: TaskContext) -> None:
        _SqlJob(options, context).run()

    def check(self, options: SqlOptions, context: CheckContext) -> list[str]:
        from brickyard.tasks.explain import explain_problems

        try:
            text = query_text(options, context.workspace.root)
            where = options.sql or "query"
            single_select(text, where)
            contract = context.workspace.contract(options.contract) if options.contract else None
        except BrickyardError as exc:
            return [str(exc)]
        rules = contract_rules(contract, options.expectations)
        problems = explain_problems(
            context,
            text,
            where,
            rules,
            required=[*options.keys, *options.partition_by],
        )
        problems += context.engine.sql_problems(checked_query(text, rules) if rules else text, where)
        return problems


class _SqlJob:
    """One attempt of a sql task: the shared steps (state, pins, metadata, metrics), with
    execution and writing by the engine (`Engine.task_query`)."""

    def __init__(self, options: SqlOptions, context: TaskContext, task_id: str | None = None,
                 order_by: tuple[str, ...] = ()) -> None:
        self.options = options
        self.order_by = order_by  # the rows' order in the files written (none: the query's)
        self.context = context
        self.lake = context.lake
        self.target = options.target
        # what its commits record as the task (another kind writing through this job gives its own)
        self.task_id = task_id or f"{context.pipeline.name}.{context.task.name}"
        self.app = f"brickyard.sql:{self.task_id}"
        self.contract: Contract | None = (
            context.workspace.contract(options.contract) if options.contract else None
        )
        if self.contract is not None:
            context.handles_pii(self.contract.pii_columns)

    def run(self) -> None:
        where = self.options.sql or f"task {self.context.task.name}"
        text = query_text(self.options, self.context.workspace.root)
        single_select(text, where)
        conflicts = 0
        while True:
            try:
                if not self.step(text, where):
                    return
            except CommitConflictError as exc:
                conflicts += 1
                if conflicts >= MAX_CONFLICTS:
                    raise
                self.context.log.warning(
                    "%s: %s; reading the tables again and planning the batch again (%d of %d)",
                    self.target,
                    exc.message,
                    conflicts,
                    MAX_CONFLICTS - 1,
                )
                self.context.metrics.extra["conflicts"] = conflicts
                time.sleep(random.uniform(0.02, 0.1) * conflicts)

    def step(self, text: str, where: str) -> bool:
        """Write the next batch: a parked one (its quarantine commit landed, its target commit
        did not: redone from the source versions it recorded), or this run's. False when
        this run's batch is written (or there is nothing to write).

        Raises:
            CommitConflictError: another writer committed this batch number first; nothing
                of it was committed, and the next step plans again.
        """
        options, context, log = self.options, self.context, self.context.log
        state = last_state(self.lake, self.target, self.task_id)
        if state is not None and state.run_id == context.run_id:
            log.info("%s: already written by an earlier attempt of run %s", self.target, context.run_id)
            for table, version in state.sources.items():
                context.record_read(table, version)
            context.record_write(self.target, self.lake.version(self.target))
            return False
        # The batch number comes from the same read as the state: a state gone stale by a
        # concurrent commit then makes this commit a conflict instead of a second copy.
        done = state.batch if state is not None else self.lake.transaction_version(self.target, self.app) or 0
        parked = self._parked(done)
        if parked is not None:
            log.warning(
                "%s: batch %d of run %s stopped after its quarantine commit; redoing it from the "
                "source versions it read (%s)",
                self.target,
                parked.batch,
                parked.run_id,
                ", ".join(f"{t} v{v}" for t, v in sorted(parked.sources.items())),
            )
            full = parked.full_refresh or not options.incremental or state is None
            self._write_batch(text, where, state, full, parked, quarantine_done=True)
            return True
        full = context.full_refresh or not options.incremental or state is None
        mode, quarantine_mode = self._modes()
        plan = SqlState(
            context.run_id,
            done + 1,
            {},
            mode,
            context.full_refresh,
            context.run_id if context.full_refresh else None,
        )
        self._write_batch(text, where, state, full, plan, quarantine_mode=quarantine_mode)
        return False

    def _modes(self) -> tuple[SqlMode, WriteMode]:
        """How this run writes the target and its quarantine: a full refresh replaces each
        the first time in the run and then writes as usual (see `brickyard.tasks.refresh`)."""
        options, context = self.options, self.context
        if options.mode == "overwrite":
            return "overwrite", "overwrite"
        if not context.full_refresh:
            return options.mode, "append"
        run_id, log = context.run_id, context.log
        mode: SqlMode = refresh_mode(self.lake, self.target, run_id)
        if mode == "append":
            log.info("%s: replaced earlier in run %s by another task; this task's full refresh %ss", self.target, run_id, options.mode)
            mode = options.mode
        return mode, refresh_mode(self.lake, quarantine_name(self.target), run_id)

    def _parked(self, done: int) -> SqlState | None:
        """The batch after `done` whose quarantine commit is in and whose target commit is
        not (None when there is none).

        Raises:
            CommitConflictError: the quarantine is further ahead: `done` is stale.
        """
        quarantine = quarantine_name(self.target)
        parked = self.lake.transaction_version(quarantine, self.app) or 0
        if parked <= done:
            return None
        if parked > done + 1:
            raise CommitConflictError(
                f"{quarantine} holds batch {parked} of task {self.task_id}, and {self.target} "
                f"was read at batch {done}: another run wrote meanwhile",
                hint="read the tables again",
            )
        for record in sql_records(self.lake, quarantine, self.task_id):
            if record.batch == parked:
                return record
        raise SqlError(
            f"{quarantine} holds batch {parked} of task {self.task_id} but not the source versions it read",
            hint=f"run the pipeline with --full-refresh to rebuild {self.target}",
        )

    def _write_batch(
        self,
        text: str,
        where: str,
        state: SqlState | None,
        full: bool,
        plan: SqlState,
        *,
        quarantine_mode: WriteMode = "append",
        quarantine_done: bool = False,
    ) -> None:
        """Run the query over the sources (pinned at `plan.sources` when given: a redo) and
        write batch `plan.batch` of run `plan.run_id` with `plan.mode`."""
        options, context = self.options, self.context
        rules = contract_rules(self.contract, options.expectations)
        if rules:
            context.record_quarantine(quarantine_name(self.target), 0)
        at = plan.sources or None
        query = context.engine.task_query(text, rules, where=where)
        try:
            versions = query.pin(lambda table: self._since(state, full, table), at=at)
            for table, version in versions.items():
                context.record_read(table, version)
            self._write_pinned(query, state, full, plan, versions, quarantine_mode, quarantine_done)
        finally:
            query.close()

    def _write_pinned(
        self,
        query: TaskQuery,
        state: SqlState | None,
        full: bool,
        plan: SqlState,
        versions: dict[str, int],
        quarantine_mode: WriteMode,
        quarantine_done: bool,
    ) -> None:
        """Write batch `plan.batch` from `query`, whose tables are pinned at `versions`
        (nothing when no incremental source has new rows since `state`)."""
        options, context, log = self.options, self.context, self.context.log
        at = plan.sources or None
        streamed = [t for t in versions if options.reads_incrementally(t) and t != self.target]
        if at is None and not full and state is not None and streamed and all(
            state.sources.get(table) == versions[table] for table in streamed
        ):
            log.info("%s: no source has new rows since the last run", self.target)
            context.record_write(self.target, self.lake.version(self.target))
            return
        mode = plan.mode
        metadata = {
            SQL_KEY: json.dumps(
                {
                    "task": self.task_id,
                    "run_id": plan.run_id,
                    "batch": plan.batch,
                    "mode": mode,
                    "full_refresh": plan.full_refresh,
                    "sources": versions,
                },
                separators=(",", ":"),
            )
        }
        if plan.refresh is not None:
            metadata.update(refresh_metadata(plan.refresh))
        written = query.write(
            self.target,
            mode=mode,
            quarantine_mode=quarantine_mode,
            skip_quarantine=quarantine_done,
            keys=options.keys,
            partition_by=options.partition_by,
            metadata=metadata,
            transaction=(self.app, plan.batch),
            run_id=context.run_id,
            loaded_at=datetime.now(UTC),
            log=log,
            max_quarantined=options.max_quarantined,
            quarantined=lambda version: context.record_write(quarantine_name(self.target), version),
            order_by=self.order_by,
        )
        assert written.version is not None
        version, rows_good, rows_bad = written.version, written.rows_good, written.rows_bad
        context.record_write(self.target, version)
        context.metrics.rows_in += written.rows_in
        context.metrics.rows_out += rows_good
        if query.rules:
            context.metrics.extra["quarantined_rows"] = context.metrics.extra.get("quarantined_rows", 0) + rows_bad
            context.metrics.extra["expectations"] = [r.as_dict() for r in written.results]
            context.record_quarantine(
                quarantine_name(self.target), rows_bad, written.quarantine_version, written.reasons
            )
        log.info(
            "%s: wrote %d row(s) (%s) as version %d%s",
            self.target,
            rows_good,
            mode,
            version,
            f"; {rows_bad} row(s) quarantined" if rows_bad else "",
        )

    def _since(self, state: SqlState | None, full: bool, table: str) -> int | None:
        """The version after which `table` is read (None: read whole)."""
        if full or table == self.target or not self.options.reads_incrementally(table):
            return None
        return state.sources.get(table) if state else None

