"""Exactly-once export of lake rows into a SQL database (the Data Factory copy activity).

A batch is the rows of one lake table version (or of one commit in it), named by an id
derived from the source table, its version, the selection and the SQL target, so a
retried export of the same version is the same batch. Exporting a batch:

1. If the database's `brickyard_export_batches` ledger holds the batch id, stop: it is
   loaded.
2. Stage the rows as Parquet files in the lake under `staging/<pipeline>/<task>/<batch>/`
   (reused if a complete staging is there).
3. In ONE database transaction: insert the batch id into the ledger (its primary key
   makes a concurrent or earlier load of the same batch fail here), create the target
   table from the Arrow schema if it is missing, then load the rows:
   `append` inserts them; `replace` first empties the target; `upsert` loads them into a
   temporary staging table, checks that each key has one row there (or, with
   `dedupe_latest_by`, keeps the row with the latest value of that column per key; see
   `stores.upsert_keys`), deletes the target rows with the same keys and inserts the
   staged rows. Commit.
4. Delete the staged files.

A dropped connection, a killed process or a database restart aborts the open
transaction, so a batch is either wholly loaded and in the ledger, or not at all; the
load is retried with exponential backoff on transient errors and skipped on a retry
that finds the batch in the ledger (also when the commit succeeded but its
acknowledgement was lost). PostgreSQL loads with `COPY ... FROM STDIN` (see
`stores.postgres`); other databases with SQLAlchemy `executemany` in batches.

>>> import tempfile, pyarrow as pa
>>> from brickyard.lake import Lake, LakeLocation
>>> from brickyard.stores import Database
>>> folder = tempfile.mkdtemp()
>>> lake = Lake(LakeLocation(folder))
>>> _ = lake.write("gold.scores", pa.table({"id": [1, 2], "score": [0.5, 0.9]}))
>>> db = Database("default", f"sqlite:///{folder}/warehouse.db")
>>> export_table(lake, db, "gold.scores", target="scores", keys=["id"], mode="upsert").rows
2
>>> export_table(lake, db, "gold.scores", target="scores", keys=["id"], mode="upsert").loaded
False
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import sqlalchemy as sa
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from brickyard import errors
from brickyard.errors import BrickyardError
from brickyard.lake.datasets import arrow_dataset
from brickyard.stores import arrow_sql, upsert_keys
from brickyard.stores.database import Database
from brickyard.stores.staging import StagedBatch, stage

if TYPE_CHECKING:
    import pyarrow.dataset as pads

    from brickyard.lake import Lake

ExportMode = Literal["append", "replace", "upsert"]
Progress = Callable[[int], None]

LEDGER_TABLE = "brickyard_export_batches"
BATCH_ROWS = 50_000
ATTEMPTS = 6
BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0

log = logging.getLogger("brickyard.export")


class ExportError(BrickyardError):
    """Loading a batch into a SQL database failed (transient when retrying may help)."""

    def __init__(self, message: str, *, hint: str | None = None, transient: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.transient = transient


@dataclass(frozen=True)
class LoadResult:
    """What an export did: `loaded` is False when the ledger already held the batch.
    `rows` landed in the table; `deduplicated` older rows of repeated keys were left out
    (upsert with `dedupe_latest_by`)."""

    batch_id: str
    rows: int
    loaded: bool
    attempts: int
    seconds: float
    staging: str | None = None
    notes: tuple[str, ...] = ()  # what staging set aside (e.g. an unreadable manifest)
    deduplicated: int = 0


@dataclass(frozen=True)
class Target:
    """The SQL table to load, how, and the batch's identity. `latest_by`: an upsert keeps
    the latest row of a repeated key by this column; `pii_columns`: source columns whose
    values never appear in messages."""

    table: str
    keys: tuple[str, ...]
    mode: ExportMode
    batch_id: str
    source: str
    source_version: int
    latest_by: str | None = None
    pii_columns: frozenset[str] = frozenset()

    @property
    def schema_and_name(self) -> tuple[str | None, str]:
        db_schema, _, name = self.table.rpartition(".")
        return db_schema or None, name


def batch_id_for(source_table: str, source_version: int, target_table: str, selection: str = "all") -> str:
    """The deterministic id of a batch: the same source version, selection and target
    always give the same id.

    >>> batch_id_for("gold.scores", 3, "scores") == batch_id_for("gold.scores", 3, "scores")
    True
    """
    text = f"{source_table}@{source_version}|{selection}|{target_table}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def ledger_definition(metadata: sa.MetaData | None = None) -> sa.Table:
    """The ledger of loaded batches; its primary key is what makes a load happen once."""
    return sa.Table(
        LEDGER_TABLE,
        metadata or sa.MetaData(),
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("target_table", sa.String(400), nullable=False),
        sa.Column("source", sa.String(400), nullable=False),
        sa.Column("source_version", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
    )


class _AlreadyLoaded(Exception):
    """The ledger insert found the batch id: another attempt or process loaded it."""


class SqlLoader:
    """Loads staged batches with SQLAlchemy (`executemany` per batch of rows). Subclasses
    for a database override `write_rows` and `clear` with faster native statements."""

    bulk_method = "executemany"

    def __init__(self, database: Database) -> None:
        self.database = database
        self.ledger = ledger_definition()

    # -- the parts a dialect may override ---------------------------------------------

    def write_rows(
        self, conn: sa.Connection, table: sa.Table, batches: Iterator[pa.RecordBatch], progress: Progress | None
    ) -> int:
        """Insert the rows into `table` on `conn` (inside the caller's transaction)."""
        total = 0
        statement = table.insert()
        for batch in batches:
            conn.execute(statement, arrow_sql.rows(batch))
            total += batch.num_rows
            if progress:
                progress(total)
        return total

    def clear(self, conn: sa.Connection, table: sa.Table) -> None:
        """Delete every row of `table` (mode `replace`), inside the transaction."""
        conn.execute(table.delete())

    # -- the protocol -----------------------------------------------------------------

    def is_loaded(self, engine: sa.Engine, batch_id: str) -> bool:
        """True when the ledger holds `batch_id` (False when there is no ledger yet)."""
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(LEDGER_TABLE):
                return False
            query = sa.select(self.ledger.c.batch_id).where(self.ledger.c.batch_id == batch_id)
            return conn.execute(query).first() is not None

    def load(
        self, engine: sa.Engine, staged: StagedBatch, target: Target, *, batch_rows: int, progress: Progress | None
    ) -> int | None:
        """One attempt: load the staged batch exactly once. Returns the rows that landed,
        or None when the ledger already holds the batch.

        Raises:
            ExportError: an upsert batch has keys that repeat (nothing is committed).
        """
        with engine.connect() as conn:
            self._ensure_ledger(conn)
            try:
                with conn.begin():
                    if conn.execute(
                        sa.select(self.ledger.c.batch_id).where(self.ledger.c.batch_id == target.batch_id)
                    ).first():
                        return None
                    self._claim(conn, staged, target)
                    table = self._target_table(conn, staged.schema, target)
                    if target.mode == "replace":
                        self.clear(conn, table)
                    if target.mode == "upsert":
                        return self._upsert(conn, table, staged, target, batch_rows, progress)
                    return self.write_rows(conn, table, staged.batches(batch_rows), progress)
            except _AlreadyLoaded:
                return None

    def _ensure_ledger(self, conn: sa.Connection) -> None:
        try:
            with conn.begin():
                self.ledger.create(conn, checkfirst=True)
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
            # Another loader created it at the same moment.
            with conn.begin():
                if not sa.inspect(conn).has_table(LEDGER_TABLE):
                    raise

    def _claim(self, conn: sa.Connection, staged: StagedBatch, target: Target) -> None:
        row = {
            "batch_id": target.batch_id,
            "target_table": target.table,
            "source": target.source,
            "source_version": target.source_version,
            "rows": staged.rows,
            "mode": target.mode,
            "loaded_at": datetime.now(UTC),
        }
        try:
            conn.execute(self.ledger.insert().values(**row))
        except sa.exc.IntegrityError as exc:
            raise _AlreadyLoaded from exc

    def _target_table(self, conn: sa.Connection, schema: pa.Schema, target: Target) -> sa.Table:
        db_schema, name = target.schema_and_name
        if not sa.inspect(conn).has_table(name, schema=db_schema):
            table = arrow_sql.table_definition(
                name, schema, keys=target.keys, primary_key=target.mode == "upsert", db_schema=db_schema
            )
            try:
                table.create(conn)
            except (sa.exc.IntegrityError, sa.exc.ProgrammingError) as exc:
                if sa.inspect(conn.engine).has_table(name, schema=db_schema):
                    # Another loader created it meanwhile: this attempt is rolled back and retried.
                    raise ExportError(f"table {target.table} was created concurrently", transient=True) from exc
                raise
            return table
        table = sa.Table(name, sa.MetaData(), autoload_with=conn, schema=db_schema)
        missing = [column for column in schema.names if column not in table.c]
        if missing:
            raise ExportError(
                f"table {target.table} in {self.database.display_url} has no column(s) {', '.join(missing)}",
                hint="add the columns to the SQL table, drop it to have it recreated, or export fewer columns",
            )
        return table

    def _upsert(
        self,
        conn: sa.Connection,
        table: sa.Table,
        staged: StagedBatch,
        target: Target,
        batch_rows: int,
        progress: Progress | None,
    ) -> int:
        stage_table = sa.Table(
            f"brickyard_stage_{target.batch_id[:16]}",
            sa.MetaData(),
            *[sa.Column(column, table.c[column].type) for column in staged.schema.names],
            prefixes=["TEMPORARY"],
        )
        stage_table.create(conn)
        landed = self.write_rows(conn, stage_table, staged.batches(batch_rows), progress)
        columns = list(staged.schema.names)
        rows = one_row_per_key(conn, stage_table, columns, target)
        matches = sa.and_(*[table.c[key] == stage_table.c[key] for key in target.keys])
        conn.execute(table.delete().where(sa.exists().where(matches)))
        conn.execute(table.insert().from_select(columns, rows))
        if target.latest_by is not None:
            landed = conn.execute(sa.select(sa.func.count()).select_from(rows.subquery())).scalar_one()
        stage_table.drop(conn)
        return int(landed)


def one_row_per_key(conn: sa.Connection, stage: sa.Table, columns: list[str], target: Target) -> sa.Select[Any]:
    """The staged rows to upsert: all of them when each key has one row; with
    `target.latest_by`, the latest row of each key.

    Raises:
        ExportError: keys repeat and no `latest_by` is set, or the latest rows of a key tie.
    """
    keys, where = list(target.keys), f"upsert into table {target.table}: batch {target.batch_id} ({target.source})"
    if target.latest_by is None:
        repeats = upsert_keys.repeated_keys(conn, stage, keys)
        if repeats is not None:
            raise ExportError(
                f"{where}: {upsert_keys.describe(repeats, keys, target.pii_columns)}",
                hint=f"an upsert takes one row per key ({', '.join(keys)}): remove the repeats upstream, or keep "
                "the latest row of each key with `dedupe: {latest_by: COLUMN}` on the export task",
            )
        return sa.select(*[stage.c[column] for column in columns])
    ties = upsert_keys.repeated_keys(conn, upsert_keys.latest_ties(stage, keys, target.latest_by), keys)
    if ties is not None:
        noun = "1 key has" if ties.keys == 1 else f"{ties.keys} keys have"
        raise ExportError(
            f"{where}: {noun} more than one row with its latest {target.latest_by}: "
            f"{upsert_keys.examples(ties, keys, target.pii_columns)}",
            hint=f"`latest_by` needs a column whose values differ between the rows of a key "
            f"(an update time or a sequence number); {target.latest_by} ties here",
        )
    return upsert_keys.latest_rows(stage, columns, keys, target.latest_by)


def loader_for(database: Database) -> SqlLoader:
    """The fastest loader for the database: COPY for PostgreSQL, executemany otherwise."""
    if database.is_postgres:
        from brickyard.stores.postgres import PostgresLoader

        return PostgresLoader(database)
    return SqlLoader(database)


def is_transient(exc: BaseException) -> bool:
    """True for errors a retry may cure: connection refused or dropped, server shutting
    down, database locked, serialization failures. Authentication errors and unknown
    databases are not."""
    if isinstance(exc, BrickyardError):
        return errors.is_transient(exc)
    text = str(exc).lower()
    if any(word in text for word in ("authentication failed", "does not exist", "no password supplied")):
        return False
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)
    # Raw driver errors (COPY runs on the driver's cursor): psycopg's OperationalError.
    names = {cls.__name__ for cls in type(exc).__mro__}
    module = type(exc).__module__
    if ("OperationalError" in names or "InterfaceError" in names) and not module.startswith("brickyard"):
        return True
    return isinstance(exc, ConnectionError | TimeoutError)


def load_staged(
    database: Database,
    staged: StagedBatch,
    target: Target,
    *,
    batch_rows: int = BATCH_ROWS,
    attempts: int = ATTEMPTS,
    backoff_seconds: float = BACKOFF_SECONDS,
    progress: Progress | None = None,
) -> LoadResult:
    """Load a staged batch exactly once, retrying transient errors with backoff.

    Raises:
        ExportError: a terminal error, or a transient one that outlived every attempt
            (names the database with its password masked, the table and the batch).
    """
    loader = loader_for(database)
    engine = database.engine()
    started = time.perf_counter()
    try:
        landed, tries = _retrying(
            lambda: loader.load(engine, staged, target, batch_rows=batch_rows, progress=progress),
            database,
            target,
            attempts,
            backoff_seconds,
        )
    finally:
        engine.dispose()
    loaded = landed is not None
    rows = int(landed) if loaded else 0
    return LoadResult(
        target.batch_id, rows, loaded, tries, time.perf_counter() - started,
        deduplicated=staged.rows - rows if loaded else 0,
    )


def export_table(
    lake: Lake,
    database: Database,
    source: str,
    *,
    target: str,
    keys: Sequence[str] = (),
    mode: ExportMode = "append",
    version: int | None = None,
    where: pads.Expression | None = None,
    selection: str = "all",
    staging: str = "staging/adhoc/export",
    batch_rows: int = BATCH_ROWS,
    attempts: int = ATTEMPTS,
    backoff_seconds: float = BACKOFF_SECONDS,
    keep_staging: bool = False,
    progress: Progress | None = None,
    dedupe_latest_by: str | None = None,
    pii_columns: Collection[str] = (),
) -> LoadResult:
    """Export a lake table's rows (at `version`, default the latest; optionally only the
    rows matching `where`, named by `selection` in the batch id) into `target`, exactly
    once. Staged files go under `<staging>/<batch id>/`. An upsert whose batch repeats a
    key fails naming the keys, unless `dedupe_latest_by` names the column whose greatest
    value picks the row to keep; values of `pii_columns` never appear in messages.

    Raises:
        ExportError: the load failed (see `load_staged`), keys repeat, or a key or
            `dedupe_latest_by` column is missing; TableNotFoundError, LakeError.
    """
    if mode == "upsert" and not keys:
        raise ExportError("mode upsert needs keys", hint="list the row key columns under `keys:`")
    if dedupe_latest_by is not None and mode != "upsert":
        raise ExportError(f"dedupe applies to mode upsert, not {mode}", hint="use mode: upsert, or drop dedupe")
    delta = lake.delta(source, version=version)
    source_version = delta.version()
    batch_id = batch_id_for(source, source_version, target, selection)
    spec = Target(
        target, tuple(keys), mode, batch_id, f"{source}@{source_version}", source_version,
        latest_by=dedupe_latest_by, pii_columns=frozenset(pii_columns),
    )
    started = time.perf_counter()
    engine = database.engine()
    loader = loader_for(database)
    try:
        done, tries = _retrying(lambda: loader.is_loaded(engine, batch_id), database, spec, attempts, backoff_seconds)
    finally:
        engine.dispose()
    if done:
        log.info("batch %s (%s) is already in %s: skipped", batch_id, spec.source, target)
        return LoadResult(batch_id, 0, False, tries, time.perf_counter() - started)
    prefix = f"{staging.rstrip('/')}/{batch_id}"
    dataset = arrow_dataset(delta)
    missing = [key for key in keys if key not in dataset.schema.names]
    if missing:
        raise ExportError(f"{source} has no key column(s) {', '.join(missing)}", hint=f"columns: {', '.join(dataset.schema.names)}")
    if dedupe_latest_by is not None and dedupe_latest_by not in dataset.schema.names:
        raise ExportError(
            f"{source} has no column {dedupe_latest_by} (dedupe: latest_by)", hint=f"columns: {', '.join(dataset.schema.names)}"
        )
    staged = stage(lake.location, prefix, dataset.scanner(filter=where, batch_size=batch_rows).to_reader())
    result = load_staged(
        database, staged, spec, batch_rows=batch_rows, attempts=attempts, backoff_seconds=backoff_seconds, progress=progress
    )
    if not keep_staging:
        staged.remove()
    return LoadResult(
        batch_id,
        result.rows,
        result.loaded,
        result.attempts,
        time.perf_counter() - started,
        staging=lake.location.uri(prefix) if keep_staging else None,
        notes=staged.notes,
        deduplicated=result.deduplicated,
    )


def _retrying(
    call: Callable[[], Any], database: Database, target: Target, attempts: int, backoff_seconds: float
) -> tuple[Any, int]:
    """Run `call` with tenacity; returns (its result, the attempts it took)."""

    def note(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "loading batch %s into %s on %s failed (attempt %d of %d), retrying: %s",
            target.batch_id, target.table, database.display_url, state.attempt_number, attempts,
            database.redact(_first_line(exc)),
        )

    retrying = Retrying(
        stop=stop_after_attempt(max(attempts, 1)),
        wait=wait_exponential(multiplier=backoff_seconds, max=MAX_BACKOFF_SECONDS),
        retry=retry_if_exception(is_transient),
        before_sleep=note,
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                result = call()
        return result, retrying.statistics.get("attempt_number", 1)
    except BrickyardError:
        raise
    except Exception as exc:
        transient = is_transient(exc)
        tries = retrying.statistics.get("attempt_number", 1)
        where = f"batch {target.batch_id} ({target.source}) into table {target.table} on {database.display_url}"
        reason = database.redact(_first_line(exc))
        if transient:
            raise ExportError(
                f"loading {where} failed after {tries} attempts: {reason}",
                hint="check that the database is up and reachable, then run the task again (it resumes exactly once)",
                transient=True,
            ) from exc
        raise ExportError(
            f"loading {where} failed: {reason}",
            hint="fix the table or the data; nothing of this batch was committed",
        ) from exc


def _first_line(exc: BaseException | None) -> str:
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0] if text else type(exc).__name__
