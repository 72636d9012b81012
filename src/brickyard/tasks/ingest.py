"""The `ingest` kind: raw files in the lake into a bronze Delta table, incrementally.

```yaml
- name: ingest_trips
  kind: ingest
  source: raw/taxi/*.csv               # a lake path or glob
  format: csv                          # csv | json (JSON lines) | parquet; default from the extension
  target: bronze.taxi_trips
  contract: contracts/bronze.taxi_trips.yaml   # or a table name; optional
  options: {delimiter: ",", header: true}      # reader options (CSV; also quote, escape,
                                               # null_strings, encoding, max_line_size)
  partition_by: [vendor_id]                    # optional
  changed_files: ignore                        # ignore (default) | reload
  max_quarantined: 0.01                        # optional: fail past 1% quarantined (or a count)
```

How a run goes:

- The files matching `source` are listed with their size and modification time (or etag).
  Those the target already holds are known from the target's Delta history (see
  `brickyard.tasks.checkpoint`); only the others are read, as one batch, in one commit that
  also records them. A re-run loads nothing twice. A loaded file whose size or time changed
  is skipped with a warning (`changed_files: ignore`, like Auto Loader), or loaded again
  (`reload`: its rows are appended again; earlier rows of it stay, told apart by
  `_loaded_at`).
- Empty files (no bytes, or only line breaks) are skipped: the task's log says so
  (`skipped 1 empty file: raw/taxi/empty.csv`) and its metrics list them under
  `skipped_files` (with changed files skipped, each with its reason). They are recorded
  with the batch like loaded files, so they are not looked at again; a batch of only
  empty files is recorded in a commit of no rows (with no table yet, nothing records them
  and the next run skips them again). An empty file that later gets content under the same
  name is a changed file, as for Auto Loader (a file is processed once unless
  `allowOverwrites`): skipped with a warning that says it was empty, or loaded with
  `changed_files: reload` (its earlier, empty version added no rows, so nothing doubles).
- The files are streamed through DuckDB as text, cast to the contract's types in SQL
  (`TRY_CAST`, `try_strptime` for a column's `format`), checked against the contract's
  `nullable: false` columns and its expectations, and split batch by batch: good rows go
  into ONE Delta commit as they stream (input larger than memory is fine), bad rows (a
  value that does not parse, a missing required value, a broken `drop` expectation) are
  kept (they are few) and written to `<target>__quarantine` with every source column as
  text, `_reason`, `_source_file`, `_line`, `_loaded_at` and `_run_id`.
- The quarantine commit is made BEFORE the target commit, with the same batch number as a
  Delta application transaction; if the process dies between the two, the re-run redoes
  that batch with the file list the quarantine commit recorded, and the quarantine write is
  skipped as already done: no quarantined row is lost or duplicated.
- The rows quarantined and their top reasons are recorded for the run summary. Past
  `max_quarantined` (a share of the batch's rows, or a count) the batch is not loaded:
  nothing is committed (target, quarantine, checkpoint), so its files are read again by
  the next run, and the error gives the count, the share and the top reasons.
- `fail` expectations stop the task with nothing written; `warn` ones are counted and
  logged; `unique` expectations are checked across the batch's rows in a first pass
  (warn/fail only: quarantining duplicates is the `expect` kind's job).
- Casts are exact: a value an integer or DECIMAL(p,s) column cannot hold as it is goes to
  the quarantine (`1.5` into BIGINT: "id: '1.5' is not an integer (BIGINT)"; `1.234` into
  DECIMAL(5,2): "... has more decimal places than DECIMAL(5,2) holds"; "... is out of range
  for INTEGER"), never rounded; also when the type comes from the existing table or from
  DuckDB's detection rather than from a contract.
- PII columns (`pii: true`) are replaced by HMAC-SHA256 hex tokens keyed by the contract's
  `pii_key`, also in the quarantine, whose source columns keep the token of a PII column,
  never its raw text. No raw PII value is written anywhere else either: a reason names the
  column and the problem with `<pii value withheld>` in place of the value, and an
  engine's error about the data (which may quote a value) is reported with its text
  withheld (`pii.withhold_values`; the runner does the same for every task that marks its
  PII columns with `TaskContext.handles_pii`).
- Columns not in the contract follow its `evolution`: `add` (the column is added, as text)
  or `fail` (nothing is written). Without a contract, types are DuckDB's detection, and an
  existing table's columns keep their types.
- `--full-refresh` rebuilds the target (and the quarantine) from every matching file as a
  new table version (an overwrite; history stays) and restarts the checkpoint there. When
  several tasks write one table, the table is rebuilt once per run from all of them: the
  first task of the run replaces it, the later ones (and a retried attempt) append
  (`brickyard.tasks.refresh`); each task's checkpoint restarts at its own refresh batch.
- Two runs of one pipeline at once (`max_active_runs: 2`, two `brickyard run` processes)
  load every file once. Each commit is made against the table version the batch was
  planned on, with the batch's application transaction: when the other run committed that
  batch number first (in the target, or in the quarantine for other files), Delta's
  conflict check refuses the commit (`CommitConflictError`), nothing of the batch lands,
  and the task reads the tables again and plans again: it redoes a parked batch, or loads
  the files the other run did not. Data files of a refused commit stay unreferenced until
  a vacuum.

On the Spark engine (`engine: spark`) the same YAML gives the same tables: the files are
read by Spark's executors as text and typed, checked and split with the same SQL
(translated), quarantine first, then target, each in one Delta commit with the batch's
application transaction (see `brickyard.engines.spark.ingest`). Column names, and without a
contract the detected types, still come from DuckDB's look at each file's header and a
sample, so both engines plan the same columns. Differences: `_line` is NULL for JSON lines
on Spark; CSV files are read unsplit (one Spark task a file), so that quoted values may
span lines and records can be numbered.

Details: `_loaded_at` is the batch's start time in UTC, stored without a zone. `_line` is
the record's number in its file counting a CSV header as line 1 (it differs from the
physical line only after blank lines or quoted values spanning lines). CSV files are read
with a fixed dialect (comma, double quotes, a header; change it with `options`), never
sniffed per file: a malformed line fails the task, with nothing loaded, rather than
shifting columns or dropping rows silently. The error names the lake file and the line and
says what to try, on both engines: `raw/taxi/b.csv:502: 4 fields where 3 were expected:
'...'`, `... a quoted value is never closed`, `... the line is 3000004 bytes, over the limit
of 2000000 bytes` (raise `max_line_size`), `... the text is not valid UTF-8` (set
`encoding`); the line's text is not shown when the contract has PII columns. Where DuckDB's sniffer (which looks at the first lines) or Spark's reader does
not name the line, the file is read again by DuckDB with the task's dialect and no
sniffing, which does. A `fail` expectation or a stopped run may leave data files that no
commit references; a Delta vacuum (`Lake.vacuum`) removes them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from brickyard.core import pii
from brickyard.core.contract import Contract
from brickyard.core.quality import (
    LOADED_AT_COLUMN,
    SOURCE_FILE_COLUMN,
    CheckedWrite,
    ExpectationResult,
    Rule,
    compile_rule,
    quarantine_name,
)
from brickyard.core.sources import Format, ReaderOptions, SourceFile, format_of, is_empty
from brickyard.engines.base import IngestBatch, RawReadError
from brickyard.engines.duckdb.explain import contract_problems
from brickyard.engines.duckdb.ingest_errors import IngestError
from brickyard.engines.duckdb.planner import RawFilePlanner
from brickyard.engines.duckdb.quarantine import write_quarantine
from brickyard.engines.ingest_sql import PlannedColumn
from brickyard.errors import CommitConflictError, ConfigError, DataFileNotFoundError, LakeError
from brickyard.lake.names import TableName
from brickyard.tasks.base import CheckContext, TaskContext, TaskKind
from brickyard.tasks.checkpoint import (
    INGEST_KEY,
    BatchRecord,
    app_id,
    list_files,
    loaded_files,
    recorded_batch,
    refreshed_in_run,
)
from brickyard.tasks.quality import QuarantineLimit
from brickyard.tasks.refresh import refresh_metadata, refresh_mode

if TYPE_CHECKING:

    from brickyard.engines.base import Engine
    from brickyard.lake import WriteMode

META_COLUMNS = (SOURCE_FILE_COLUMN, LOADED_AT_COLUMN)
MAX_CONFLICTS = 20  # batches lost to concurrent writers before the task gives up


@dataclass
class Modes:
    """How one batch writes the target and the quarantine; `quarantine_done`: the
    quarantine commit of this batch landed already (a parked batch redone)."""

    target: WriteMode
    quarantine: WriteMode
    quarantine_done: bool = False

    @classmethod
    def plain(cls) -> Modes:
        return cls("append", "append")


class SchemaEvolutionError(IngestError):
    """A source file has a column the contract does not allow (`evolution: fail`)."""


class IngestOptions(QuarantineLimit):
    """The `ingest` kind's fields."""

    source: str = Field(min_length=1)
    format: Format | None = None
    target: str
    contract: str | None = None
    options: ReaderOptions = Field(default_factory=ReaderOptions)
    partition_by: tuple[str, ...] = ()
    changed_files: Literal["ignore", "reload"] = "ignore"

    @field_validator("target")
    @classmethod
    def _table_name(cls, value: str) -> str:
        try:
            return str(TableName.parse(value))
        except LakeError as exc:
            # from None: pydantic shows this ValueError's text, which is the cause's message (noise)
            raise ValueError(exc.message) from None

    @field_validator("partition_by", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _known_format(self) -> IngestOptions:
        if self.format is None and format_of(self.source) is None:
            raise ValueError(
                f"cannot tell the format of {self.source!r} from its extension; "
                "set format: csv, json or parquet"
            )
        return self

    @property
    def file_format(self) -> Format:
        return self.format or format_of(self.source) or "csv"

    @property
    def reader(self) -> ReaderOptions:
        """The reader options, with a tab delimiter by default for `.tsv` sources."""
        if self.options.delimiter is None and self.source.lower().rstrip("*").endswith(".tsv"):
            return self.options.model_copy(update={"delimiter": "\t"})
        return self.options


class IngestTask(TaskKind):
    """Files under a lake path into a Delta table, incrementally (see the module doc)."""

    name = "ingest"
    Options = IngestOptions
    needs: ClassVar[frozenset[str]] = frozenset()  # runs on every engine

    def writes(self, options: IngestOptions) -> list[str]:
        return [options.target, quarantine_name(options.target)]

    def columns(self, options: IngestOptions, table: str, context: CheckContext) -> list[str] | None:
        from brickyard.tasks.ingest_columns import target_columns

        return target_columns(options, context) if table == options.target else None

    def run(self, options: IngestOptions, context: TaskContext) -> None:
        job = _IngestJob(options, context)
        try:
            job.run()
        finally:
            job.close()

    def check(self, options: IngestOptions, context: CheckContext) -> list[str]:
        problems: list[str] = []
        try:
            files = list_files(context.workspace.lake, options.source)
        except Exception as exc:  # noqa: BLE001 - a storage problem is reported, not raised
            problems.append(f"cannot list {options.source!r}: {exc}")
        else:
            if not files:
                problems.append(f"no file in the lake matches {options.source!r}")
        if options.contract:
            try:
                contract = context.workspace.contract(options.contract)
            except ConfigError as exc:
                problems.append(f"contract {options.contract!r}: {exc}")
            else:
                problems += contract_problems(contract, f"contract {options.contract}", options.partition_by)
                problems += _rule_problems(contract, options.target, context.engine)
        return problems


def _rule_problems(contract: Contract, target: str, engine: Engine) -> list[str]:
    """Why the contract's expectations (SQL in DuckDB's dialect) cannot run on `engine`."""
    from brickyard.core.quality import checked_query, contract_rules

    rules = contract_rules(contract)
    return engine.sql_problems(checked_query(f"SELECT * FROM {target}", rules), f"expectations on {target}") if rules else []


class _IngestJob:
    """One ingest task attempt: possibly a redone batch, then the new files."""

    def __init__(self, options: IngestOptions, context: TaskContext) -> None:
        self.options = options
        self.context = context
        self.lake = context.lake
        self.log = context.log
        self.target = options.target
        self.quarantine = quarantine_name(options.target)
        self.task_id = f"{context.pipeline.name}.{context.task.name}"
        self.app = app_id(context.pipeline.name, context.task.name)
        self.fmt = options.file_format
        self.contract = context.workspace.contract(options.contract) if options.contract else None
        where = f"contract {options.contract} of task {context.task.name}"
        self.key = pii.contract_key(self.contract, where) if self.contract else None
        self.pii_columns = self._pii_names()
        context.handles_pii(self.pii_columns)
        self.planner = RawFilePlanner(
            context.workspace.engine, task=context.task.name, fmt=self.fmt, reader=options.reader,
            pii_columns=self.pii_columns,
        )
        self.results: dict[str, ExpectationResult] = {}

    def close(self) -> None:
        self.planner.close()

    def _pii_names(self) -> list[str]:
        """The contract's PII columns, by their names in the table and in the files."""
        if self.contract is None:
            return []
        found = [c for c in self.contract.columns if c.pii]
        return list(dict.fromkeys([c.name for c in found] + [c.source_name for c in found]))

    # -- which files --------------------------------------------------------------------

    def run(self) -> None:
        extra = self.context.metrics.extra
        extra.setdefault("files_loaded", 0)
        extra.setdefault("quarantined_rows", 0)
        extra.setdefault("skipped_files", [])
        extra.setdefault("batches", [])
        self.context.record_quarantine(self.quarantine, 0)
        conflicts = 0
        while True:
            try:
                if not self.step():
                    return
            except CommitConflictError as exc:
                conflicts += 1
                if conflicts >= MAX_CONFLICTS:
                    raise
                self.log.warning(
                    "%s: %s; reading the table again and planning the batch again (%d of %d)",
                    self.target,
                    exc.message,
                    conflicts,
                    MAX_CONFLICTS - 1,
                )
                extra["conflicts"] = conflicts
                time.sleep(random.uniform(0.02, 0.1) * conflicts)

    def step(self) -> bool:
        """Load the next batch: a parked one (its quarantine commit landed, its target commit
        did not), this run's full refresh, or the new files. False when nothing is left.

        Raises:
            CommitConflictError: another writer committed this batch number (or the table)
                first; nothing of this batch was committed, and the next step plans again.
        """
        done = self.lake.transaction_version(self.target, self.app) or 0
        parked = self.lake.transaction_version(self.quarantine, self.app) or 0
        if parked > done:
            record = recorded_batch(self.lake, self.quarantine, self.task_id, parked)
            if record is None:
                raise IngestError(
                    f"{self.quarantine} holds batch {parked} of task {self.task_id} "
                    "but not its file list",
                    hint=f"run the pipeline with --full-refresh to rebuild {self.target}",
                )
            self.log.warning(
                "%s: batch %d (run %s) stopped after its quarantine commit; redoing it with its %d file(s)",
                self.target,
                parked,
                record.run_id,
                len(record.files),
            )
            self.load(parked, list(record.files), record.full_refresh, record.run_id)
            return True
        listed = list_files(self.lake, self.options.source)
        if not listed:
            raise DataFileNotFoundError(
                f"task {self.context.task.name}: no file in the lake matches {self.options.source!r}",
                hint="list what is there with: brickyard sql \"SELECT * FROM glob('raw/**')\"",
            )
        run_id = self.context.run_id
        if self.context.full_refresh and not refreshed_in_run(self.lake, self.target, self.task_id, run_id):
            self.log.info("%s: full refresh from %d file(s)", self.target, len(listed))
            self.load(done + 1, listed, True, run_id)
            return True
        batch = self.new_files(listed)
        if not batch:
            self.log.info("%s: no new files under %s", self.target, self.options.source)
            if self.lake.exists(self.target):
                self.context.record_write(self.target, self.lake.version(self.target))
            return False
        self.load(done + 1, batch, False, run_id)
        return False

    def new_files(self, listed: list[SourceFile]) -> list[SourceFile]:
        loaded = loaded_files(self.lake, self.target, self.task_id)
        new = [f for f in listed if f.path not in loaded]
        changed = [f for f in listed if f.path in loaded and f.changed_from(loaded[f.path])]
        if changed and self.options.changed_files == "reload":
            self.log.warning(
                "%s: %d loaded file(s) changed and are loaded again: %s",
                self.target,
                len(changed),
                ", ".join(f.path for f in changed[:5]),
            )
            return sorted(new + changed, key=lambda f: f.path)
        if changed:
            self.log.warning(
                "%s: %d loaded file(s) changed since and are skipped (changed_files: ignore): %s",
                self.target,
                len(changed),
                ", ".join(f.path for f in changed[:5]),
            )
            for file in changed:
                if loaded[file.path].size == 0:
                    self.log.warning(
                        "%s: %s was empty when first seen (recorded, as Auto Loader records a file "
                        "it processed) and now has %d bytes; set changed_files: reload to load them",
                        self.target,
                        file.path,
                        file.size,
                    )
            self._skipped(changed, "changed since it was loaded (changed_files: ignore)")
        return new

    def _skipped(self, files: Sequence[SourceFile], reason: str) -> None:
        """Report files skipped for `reason` in the task's metrics (once each)."""
        skipped = self.context.metrics.extra["skipped_files"]
        seen = {entry["path"] for entry in skipped}
        skipped += [{"path": f.path, "reason": reason} for f in files if f.path not in seen]

    # -- one batch ----------------------------------------------------------------------

    def load(self, batch: int, listed: list[SourceFile], full_refresh: bool, run_id: str) -> None:
        """Load `listed` as batch number `batch` of run `run_id` (quarantine commit, then
        target commit). A full-refresh batch replaces the target and the quarantine, unless
        another task of the same run replaced them already: then it appends (`refresh`).

        Empty files are skipped and reported, and recorded with the batch like the others,
        so that they are not looked at again (a commit of no rows records them when the
        batch has nothing else; with no table yet there is nothing to record them in).

        Raises:
            CommitConflictError: another writer committed batch `batch` first.
        """
        location = self.lake.location
        empty = [f for f in listed if is_empty(location.filesystem, location.fs_path(f.path), f.size)]
        if empty:
            self.log.info(
                "%s: skipped %d empty file%s: %s",
                self.target,
                len(empty),
                "" if len(empty) == 1 else "s",
                ", ".join(f.path for f in empty[:10]) + (" ..." if len(empty) > 10 else ""),
            )
            self._skipped(empty, "empty file")
        files = [f for f in listed if f not in empty]
        modes = self.modes(batch, listed, full_refresh, run_id)
        if not files:
            self._record_only(batch, listed, full_refresh, run_id, modes)
            return
        uris = [location.uri(f.path) for f in files]
        columns_by_file = {
            f.path: self._columns(f, uri) for f, uri in zip(files, uris, strict=True)
        }
        sources = list(dict.fromkeys(c for cols in columns_by_file.values() for c in cols))
        planned = self.plan(files, columns_by_file, sources, uris, modes.target == "overwrite")
        missing = [c for c in self.options.partition_by if c not in {p.name for p in planned}]
        if missing:
            raise IngestError(
                f"task {self.context.task.name}: partition column(s) {', '.join(missing)} "
                f"are not columns of {self.target}",
                hint="partition_by names target columns (after any contract rename)",
            )
        row_rules, unique_rules = self.rules()
        loaded_at = datetime.now(UTC)
        record = BatchRecord(self.task_id, batch, full_refresh, run_id, tuple(listed))
        metadata = {INGEST_KEY: record.to_json()}
        if full_refresh:
            metadata.update(refresh_metadata(run_id))
        outcome = self._load(
            batch, files, uris, columns_by_file, sources, planned, row_rules, unique_rules,
            modes, metadata, loaded_at,
        )
        if outcome.quarantine_version is not None:
            self.context.record_write(self.quarantine, outcome.quarantine_version)
        assert outcome.version is not None
        self.context.record_write(self.target, outcome.version)
        self._account(batch, files, outcome, full_refresh, modes.target)

    def modes(self, batch: int, listed: list[SourceFile], full_refresh: bool, run_id: str) -> Modes:
        """How batch `batch` writes the target and the quarantine (see `load`).

        Raises:
            CommitConflictError: the quarantine holds this batch number for other files.
        """
        modes = Modes.plain()
        if full_refresh:
            modes = Modes(
                refresh_mode(self.lake, self.target, run_id), refresh_mode(self.lake, self.quarantine, run_id)
            )
            if modes.target == "append":
                self.log.info(
                    "%s: replaced earlier in run %s by another task; this task's full refresh appends",
                    self.target,
                    run_id,
                )
        modes.quarantine_done = self.quarantine_holds(batch, listed)
        return modes

    def quarantine_holds(self, batch: int, files: list[SourceFile]) -> bool:
        """Whether the quarantine holds this batch with these files already (a parked batch
        redone: its quarantine write is skipped).

        Raises:
            CommitConflictError: it holds this batch number (or a later one) for other
                files: another writer is loading it.
        """
        parked = self.lake.transaction_version(self.quarantine, self.app) or 0
        if parked < batch:
            return False
        record = recorded_batch(self.lake, self.quarantine, self.task_id, batch) if parked == batch else None
        if record is not None and record.files == tuple(files):
            return True
        raise CommitConflictError(
            f"{self.quarantine} holds batch {parked} of task {self.task_id} for other files: "
            "another run is loading them",
            hint="read the table again and plan the batch again",
        )

    def _record_only(
        self, batch: int, files: list[SourceFile], full_refresh: bool, run_id: str, modes: Modes
    ) -> None:
        """Record a batch of only empty files in a commit of no rows (none without a table)."""
        import pyarrow as pa

        if not self.lake.exists(self.target):
            self.log.info("%s: no table yet to record the empty files in; they are looked at again next run", self.target)
            return
        record = BatchRecord(self.task_id, batch, full_refresh, run_id, tuple(files))
        metadata = {INGEST_KEY: record.to_json()}
        if full_refresh:
            metadata.update(refresh_metadata(run_id))
        emptied = modes.quarantine == "overwrite" and not modes.quarantine_done
        if emptied and self.lake.exists(self.quarantine):
            schema = pa.schema(self.lake.delta(self.quarantine).schema().to_arrow())
            version = write_quarantine(
                self.lake,
                self.target,
                [],
                schema,
                overwrite=True,
                metadata=metadata,
                transaction=(self.app, batch),
                if_committed="conflict",
            )
            if version is not None:
                self.context.record_write(self.quarantine, version)
        schema = pa.schema(self.lake.delta(self.target).schema().to_arrow())
        version = self.lake.write(
            self.target,
            schema.empty_table(),
            mode=modes.target,
            partition_by=self.options.partition_by or None,
            metadata=metadata,
            transaction=(self.app, batch),
            if_committed="conflict",
        )
        self.context.record_write(self.target, version)
        self._account(batch, [], CheckedWrite(0, 0, 0, [], version, None), full_refresh, modes.target)

    def _load(
        self,
        batch: int,
        files: list[SourceFile],
        uris: list[str],
        columns_by_file: dict[str, list[str]],
        sources: list[str],
        planned: list[PlannedColumn],
        row_rules: list[Rule],
        unique_rules: list[Rule],
        modes: Modes,
        metadata: dict[str, str],
        loaded_at: datetime,
    ) -> CheckedWrite:
        """The batch read, typed, checked and written by the task's engine
        (`Engine.ingest_batch`); a file it could not read is named with its line."""
        try:
            return self.context.engine.ingest_batch(
                IngestBatch(
                    task=self.context.task.name,
                    fmt=self.fmt,
                    reader=self.options.reader,
                    files=files,
                    uris=uris,
                    columns_by_file=columns_by_file,
                    sources=sources,
                    planned=planned,
                    row_rules=row_rules,
                    unique_rules=unique_rules,
                    key=self.key,
                    target=self.target,
                    mode=modes.target,
                    quarantine_mode=modes.quarantine,
                    skip_quarantine=modes.quarantine_done,
                    partition_by=list(self.options.partition_by),
                    metadata=metadata,
                    transaction=(self.app, batch),
                    loaded_at=loaded_at,
                    run_id=self.context.run_id,
                    log=self.log,
                    max_quarantined=self.options.max_quarantined,
                    pii_columns=list(self.pii_columns),
                    contract=self.options.contract,
                )
            )
        except RawReadError as exc:
            # from None: the engine's text may quote raw rows with PII values; the message withholds them
            raise self.planner.located(exc, files) from None

    def _account(
        self, batch: int, files: list[SourceFile], outcome: CheckedWrite, full_refresh: bool, mode: str
    ) -> None:
        metrics = self.context.metrics
        version = outcome.version
        metrics.rows_in += outcome.rows_in
        metrics.rows_out += outcome.rows_good
        metrics.extra["files_loaded"] += len(files)
        metrics.extra["quarantined_rows"] += outcome.rows_bad
        self.context.record_quarantine(
            self.quarantine, outcome.rows_bad, outcome.quarantine_version, outcome.reasons
        )
        metrics.extra["batches"].append(
            {
                "batch": batch,
                "files": len(files),
                "rows": outcome.rows_good,
                "quarantined": outcome.rows_bad,
                "version": version,
                "full_refresh": full_refresh,
                "mode": mode,
            }
        )
        for result in outcome.results:
            found = self.results.get(result.name)
            if found is None:
                self.results[result.name] = result
            else:
                found.failing_rows += result.failing_rows
        metrics.extra["expectations"] = [r.as_dict() for r in self.results.values()]
        self.log.info(
            "%s: loaded %d row(s) from %d file(s) as version %d (batch %d, %s); %d row(s) quarantined",
            self.target,
            outcome.rows_good,
            len(files),
            version,
            batch,
            mode,
            outcome.rows_bad,
        )

    # -- columns and SQL ----------------------------------------------------------------

    def _columns(self, file: SourceFile, uri: str) -> list[str]:
        return self.planner.columns(file, uri)

    def existing_types(self) -> dict[str, str]:
        """The target's columns and their DuckDB types (empty if it does not exist)."""
        import pyarrow as pa

        if not self.lake.exists(self.target):
            return {}
        schema = pa.schema(self.lake.delta(self.target).schema().to_arrow())
        return {name: kind for name, kind in self.planner.duckdb_types(schema) if name not in META_COLUMNS}

    def plan(
        self,
        files: list[SourceFile],
        columns_by_file: dict[str, list[str]],
        sources: list[str],
        uris: list[str],
        replace: bool,
    ) -> list[PlannedColumn]:
        """The target columns for this batch (`replace`: the batch replaces the table, whose
        columns then do not count), checking the evolution policy."""
        existing = {} if replace else self.existing_types()
        contract = self.contract
        declared = list(contract.columns) if contract else []
        known = {c.source_name for c in declared}
        planned = [
            PlannedColumn(
                c.name, c.source_name, c.duckdb_type, c.format, c.nullable, c.pii, c.source_name in sources
            )
            for c in declared
        ]
        extra = [s for s in sources if s not in known and s not in META_COLUMNS]
        new = [s for s in extra if s not in existing]
        if new and contract is not None and contract.evolution == "fail" and (declared or existing):
            column = new[0]
            file = next(path for path, cols in columns_by_file.items() if column in cols)
            raise SchemaEvolutionError(
                f"task {self.context.task.name}: column {column!r} of {file} is not in the contract "
                f"of {self.target} (evolution: fail); nothing was written"
                + (f" (also new: {', '.join(new[1:])})" if len(new) > 1 else ""),
                hint=f"add {column!r} to {self.options.contract}, or set evolution: add",
            )
        inferred: dict[str, str] = {}
        formats: dict[str, str] = {}
        if new and not declared:
            inferred, formats = self.planner.detected(files, uris)
        for source in extra:
            if source in existing:
                kind = existing[source]
            elif declared:
                kind = "VARCHAR"  # evolution add: a column the contract does not know, as text
            else:
                kind = inferred.get(source, "VARCHAR")
            fallback = formats.get(kind) if source not in existing else None
            planned.append(PlannedColumn(source, source, kind, fallback_format=fallback))
        return planned

    def rules(self) -> tuple[list[Rule], list[Rule]]:
        """Row-level rules, and `unique` rules (counted in a first pass)."""
        expectations = self.contract.expectations if self.contract else ()
        pii_columns = self.contract.pii_columns if self.contract else []
        rules = [compile_rule(e, pii_columns) for e in expectations]
        for rule in rules:
            if rule.check == "unique" and rule.action == "drop":
                raise IngestError(
                    f"expectation {rule.label!r} of {self.options.contract}: unique with action "
                    "drop is not supported at ingest",
                    hint="use action warn or fail, or an expect task after the ingest",
                )
        return [r for r in rules if r.check != "unique"], [r for r in rules if r.check == "unique"]
