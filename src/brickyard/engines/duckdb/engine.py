"""The default engine: DuckDB, embedded, with the lake's tables visible as `zone.name`.

Only the tables a query names are opened (through delta-rs, as Arrow datasets, so DuckDB
pushes projections and filters down and streams). Raw files are read with DuckDB's own
file functions by lake-relative path.

>>> import tempfile, pyarrow as pa
>>> from brickyard.lake import Lake, LakeLocation
>>> lake = Lake(LakeLocation(tempfile.mkdtemp()))
>>> _ = lake.write("gold.fares", pa.table({"fare": [5.0, 7.0]}))
>>> DuckDBEngine(lake).query("SELECT sum(fare) AS total FROM gold.fares").fetchall()
[(12.0,)]
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import duckdb

from brickyard.config.models import DuckDBConfig
from brickyard.engines.base import (
    Engine,
    IngestBatch,
    Preview,
    Scored,
    ScoreRequest,
    TableCheck,
    TaskQuery,
    TrainingRows,
)
from brickyard.engines.csv_errors import SNIFFED_RECORDS, Dialect, csv_problem, locate
from brickyard.engines.sql_text import Snapshot, one_line, rewrite_raw_paths, rewrite_time_travel, single_select
from brickyard.errors import (
    BrickyardError,
    DataFileNotFoundError,
    SqlError,
    TableNotFoundError,
)
from brickyard.lake.datasets import arrow_dataset
from brickyard.lake.names import TableName

if TYPE_CHECKING:
    import pyarrow as pa

    from brickyard.core.quality import CheckedWrite, Rule
    from brickyard.engines.asof import AsOfJoin, AsOfResult
    from brickyard.lake.tables import Lake

Relation = duckdb.DuckDBPyRelation  # a query's result, read as it is fetched
BUILTIN_SCHEMAS = frozenset({"main", "temp", "information_schema", "pg_catalog", "system"})
STREAMING_MEMORY_LIMIT = "256MB"
COPY_OPTIONS = {
    "csv": "FORMAT csv, HEADER true",
    "json": "FORMAT json, ARRAY true",
    "parquet": "FORMAT parquet, ROW_GROUP_SIZE 61440",
}


class DuckDBEngine(Engine):
    """Runs SQL over the lake with an in-process DuckDB connection."""

    name = "duckdb"
    streams_locally = True

    def __init__(self, lake: Lake, config: DuckDBConfig | None = None) -> None:
        self.lake = lake
        self.config = config or DuckDBConfig()
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._lake_views: dict[str, Any] = {}  # zone.name -> the DeltaTable behind its view
        self._sandboxed = False  # preview_select turned external access off (for good)

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The engine's DuckDB connection, opened on first use."""
        if self._connection is None:
            self._connection = self._connect()
        return self._connection

    def fresh(self) -> DuckDBEngine:
        """A new engine over the same lake and config for one task run (tables registered
        by earlier tasks must not be seen at their old versions), set up for batch work:
        no progress bar on the terminal (the engine itself turns DuckDB 2.0's
        `type_pushdown` off, which breaks TRY_CAST over read_csv text columns)."""
        engine = DuckDBEngine(self.lake, self.config)
        engine.connection.execute("SET enable_progress_bar = false")
        return engine

    def close(self) -> None:
        """Close the DuckDB connection."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        # DuckDB 2.0's type_pushdown turns TRY_CAST over a text column of read_csv into a
        # typed read that fails on the first bad value instead of giving NULL.
        con.execute("SET disabled_optimizers = 'type_pushdown'")
        if self.config.threads:
            con.execute(f"SET threads = {int(self.config.threads)}")
        if self.config.memory_limit:
            con.execute("SET memory_limit = ?", [self.config.memory_limit])
        location = self.lake.location
        if location.is_local:
            con.execute("SET file_search_path = ?", [location.root])
        else:
            con.register_filesystem(location.filesystem)
        return con

    def prepare(self, query: str) -> str:
        """Make the lake's tables named in `query` visible and rewrite lake paths.

        Raises:
            SqlError: the query does not parse.
            TableNotFoundError: it names a `zone.name` that is not in the lake.
        """
        query, snapshots = rewrite_time_travel(query)
        if not self.lake.location.is_local:
            query = rewrite_raw_paths(query, self.lake.location.uri)
        with self.errors():
            statements = duckdb.extract_statements(query)
            names = set()
            for statement in statements:
                names |= self._table_names(statement.query)
        self._refresh_views()
        for snapshot in snapshots:
            self._register_snapshot(snapshot)
        for name in sorted(names):
            self._register_table(_strip_alias(name))
        return query

    def _table_names(self, statement: str) -> set[str]:
        """The tables a statement names. A SELECT's parse tree answers without binding
        (binding would sniff every CSV the query reads, a second time); other statements
        ask DuckDB's binder."""
        found = self.connection.execute("SELECT json_serialize_sql(?)", [statement]).fetchall()
        tree = json.loads(found[0][0])
        if not tree.get("error"):
            return {
                f'"{schema}"."{table}"' if schema else f'"{table}"'
                for schema, table in _base_tables(tree)
            }
        return self.connection.get_table_names(statement, qualified=True)

    def query(self, query: str) -> duckdb.DuckDBPyRelation:
        """Run one or more statements; return the result of the last as a relation."""
        prepared = self.prepare(query)
        with self.errors():
            statements = duckdb.extract_statements(prepared)
            for statement in statements[:-1]:
                self.connection.execute(statement.query)
            return self.connection.sql(statements[-1].query)

    def preview(self, query: str, limit: int) -> Preview | None:
        """The first `limit` rows of the last statement of `query` (None for a statement
        without rows)."""
        relation = self.query(query)
        if relation is None:
            return None
        with self.errors():  # rows are read as they are fetched
            rows = relation.limit(limit).fetchall()
        return Preview(list(relation.columns), [str(t) for t in relation.types], rows)

    def preview_select(self, query: str, limit: int, *, timeout_seconds: float) -> Preview:
        """The first `limit` rows of one read-only SELECT (the web console's SQL): the query
        reads lake tables and files under the lake root only (DuckDB's external access is
        turned off for this engine, `allowed_directories` = the lake), and is interrupted
        after `timeout_seconds`. Use it on an engine of its own (`fresh()`): the sandbox
        stays on for the engine's life.

        Raises:
            SqlError: not exactly one SELECT, a file outside the lake, a failing query, or
                the timeout.
        """
        single_select(rewrite_time_travel(query)[0], "the query")
        query = rewrite_raw_paths(query, self.lake.location.uri)
        prepared = self.prepare(query)
        if not self._sandboxed:
            root = self.lake.location.uri("").rstrip("/") + "/"
            self.connection.execute("SET allowed_directories = [?]", [root])
            self.connection.execute("SET enable_external_access = false")
            self._sandboxed = True
        timer = threading.Timer(timeout_seconds, self.connection.interrupt)
        timer.start()
        try:
            with self.errors():
                relation = self.connection.sql(prepared)
                rows = relation.limit(limit).fetchall()
        except SqlError as exc:
            if not timer.is_alive():
                raise SqlError(
                    f"the query was stopped after {timeout_seconds:g} s", hint="add a WHERE or a LIMIT, or aggregate",
                ) from exc
            raise
        finally:
            timer.cancel()
        return Preview(list(relation.columns), [str(t) for t in relation.types], rows)

    def fetch(self, query: str) -> pa.Table:
        """The result of the last statement of `query` as an Arrow table (empty for a
        statement without rows)."""
        import pyarrow as pa

        relation = self.query(query)
        if relation is None:
            return pa.table({})
        with self.errors():  # rows are read as they are fetched
            return relation.to_arrow_table()

    def check_table(self, table: str, rules: Sequence[Rule], *, task: str) -> TableCheck:
        from brickyard.engines.duckdb.expect import DuckDBCheck

        return DuckDBCheck(self, table, rules, task=task)

    def task_query(self, text: str, rules: Sequence[Rule], *, where: str) -> TaskQuery:
        from brickyard.engines.duckdb.sql import DuckDBQuery

        return DuckDBQuery(self, text, rules, where)

    def ingest_batch(self, batch: IngestBatch) -> CheckedWrite:
        from brickyard.engines.duckdb.ingest import ingest_batch

        return ingest_batch(self, batch)

    def score_table(self, request: ScoreRequest) -> Scored:
        from brickyard.engines.duckdb.score import score_table

        return score_table(self.lake, request)

    def training_rows(
        self,
        *,
        table: str | None = None,
        query: str | None = None,
        version: int | None = None,
        pinned: Mapping[str, int] | None = None,
    ) -> TrainingRows:
        from brickyard.engines.duckdb.training import training_rows

        return training_rows(self, table=table, query=query, version=version, pinned=pinned)

    def export(self, query: str, target: str, fmt: str) -> None:
        """`copy_to`: streamed into one file, or /dev/stdout."""
        self.copy_to(query, target, fmt)

    def copy_to(self, query: str, target: str, fmt: str) -> None:
        """Stream the result of `query` into a file (or /dev/stdout) as csv, json or parquet.

        DuckDB's COPY writes as it reads, so results larger than memory are fine.
        """
        options = COPY_OPTIONS[fmt]
        prepared = self.prepare(query)
        with self.errors():
            statements = duckdb.extract_statements(prepared)
            for statement in statements[:-1]:
                self.connection.execute(statement.query)
            last = statements[-1].query.strip().rstrip(";")
            path = target.replace("'", "''")
            with self._streaming(ordered=_has_order_by(last)):
                self.connection.execute(f"COPY ({last}) TO '{path}' ({options})")

    @contextmanager
    def _streaming(self, ordered: bool) -> Iterator[None]:
        """Settings for an export that must not hold the result in memory: without an
        ORDER BY, rows need not keep their input order (DuckDB then buffers far less), and
        unless the workspace sets its own, memory is capped (DuckDB spills past it)."""
        con = self.connection
        previous = con.execute(
            "SELECT current_setting('preserve_insertion_order'), current_setting('memory_limit')"
        ).fetchall()[0]
        if not ordered:
            con.execute("SET preserve_insertion_order = false")
        if not self.config.memory_limit:
            con.execute("SET memory_limit = ?", [STREAMING_MEMORY_LIMIT])
        try:
            yield
        finally:
            con.execute(f"SET preserve_insertion_order = {str(previous[0]).lower()}")
            con.execute("SET memory_limit = ?", [previous[1]])

    def columns(self, query: str) -> list[str]:
        """The result's column names (DuckDB binds the query; no row is read)."""
        relation = self.query(query)
        return [] if relation is None else list(relation.columns)

    def as_of_join(self, join: AsOfJoin) -> AsOfResult:
        """Feature values as of each entity row's timestamp: an ASOF JOIN per lookup
        (`brickyard.engines.duckdb.asof`)."""
        from brickyard.engines.duckdb.asof import as_of_join

        return as_of_join(self, join)

    def execute(self, query: str, parameters: list[object] | None = None) -> None:
        """Run statements for their effect (COPY, CREATE ...)."""
        prepared = self.prepare(query)
        with self.errors():
            self.connection.execute(prepared, parameters)

    @contextmanager
    def errors(self) -> Iterator[None]:
        """DuckDB's errors as brickyard errors (`translate_errors`); a CSV error names the
        lake file and the line (`raw/x.csv:502: ...`), found by reading the file again
        without DuckDB's sniffer when the sniffer named none. Wrap the fetching of a
        relation's rows in it: DuckDB reads files as it goes."""
        with translate_errors(self.csv_error):
            yield

    def csv_error(self, text: str) -> SqlError | None:
        """The error for a DuckDB message about a malformed CSV file: `raw/x.csv:502: what`
        with a hint (read_csv's options); None when the message is not about one."""
        problem = csv_problem(text)
        if problem is None or problem.file is None:
            return None
        if problem.line is None or problem.kind == "line_size":  # the sniffer's: none, or 1
            limit = SNIFFED_RECORDS if problem.line is None else None
            cursor = self.connection.cursor()  # the query's connection may be mid-transaction
            try:
                problem = locate(cursor, problem.file, Dialect.from_message(text), limit=limit) or problem
            finally:
                cursor.close()
        assert problem.file is not None
        return SqlError(problem.at(self._lake_path(problem.file)), hint=problem.hint(task=False))

    def _lake_path(self, path: str) -> str:
        """A file as DuckDB named it, relative to the lake root where it is inside it."""
        location = self.lake.location
        for root in (location.uri("").rstrip("/") + "/", location.root.rstrip("/") + "/"):
            if path.startswith(root):
                return path[len(root) :]
        return path

    def _register_table(self, name: str) -> None:
        # Split on dots outside double quotes: `FROM 'raw/x.csv'` is named "raw/x.csv".
        parts = [quoted or bare for quoted, bare in re.findall(r'"((?:[^"]|"")*)"|([^".]+)', name)]
        if len(parts) != 2 or parts[0].lower() in BUILTIN_SCHEMAS or "@" in parts[-1]:
            return
        zone, table = (part.lower() for part in parts)
        full = f"{zone}.{table}"
        if full in self._lake_views or self._schema_has(zone, table):
            return
        if not re.fullmatch(r"[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*", full) or not self.lake.exists(full):
            raise TableNotFoundError(full, self.lake.tables())
        delta = self.lake.delta(TableName(zone, table))
        self._create_view(zone, f'"{table}"', arrow_dataset(delta))
        self._lake_views[full] = delta

    def _refresh_views(self) -> None:
        """Point views of tables written since they were registered at the new version."""
        for full, delta in self._lake_views.items():
            seen = delta.version()
            delta.update_incremental()
            if delta.version() != seen:
                zone, table = full.split(".")
                self._create_view(zone, f'"{table}"', arrow_dataset(delta))

    def _register_snapshot(self, snapshot: Snapshot) -> None:
        dataset = self.lake.dataset(
            snapshot.table, version=snapshot.version, as_of=snapshot.timestamp
        )
        self._create_view("main", f'"{snapshot.view_name}"', dataset)

    def _create_view(self, schema: str, quoted_name: str, dataset: object) -> None:
        arrow_name = f"__lake_{abs(hash((schema, quoted_name)))}"
        self.connection.register(arrow_name, dataset)
        self.connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        self.connection.execute(
            f'CREATE OR REPLACE VIEW "{schema}".{quoted_name} AS SELECT * FROM "{arrow_name}"'
        )

    def _schema_has(self, schema: str, table: str) -> bool:
        found = self.connection.execute(
            "SELECT 1 FROM duckdb_views() WHERE schema_name = ? AND view_name = ? "
            "UNION ALL SELECT 1 FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
            [schema, table, schema, table],
        ).fetchall()  # fetchall, not fetchone: DuckDB 2 refuses new work while a result is open
        return bool(found)


def _base_tables(node: object) -> Iterator[tuple[str, str]]:
    """(schema, table) of every table reference in a serialized parse tree."""
    if isinstance(node, dict):
        if node.get("type") == "BASE_TABLE" and "table_name" in node:
            yield node.get("schema_name") or "", node["table_name"]
        for value in node.values():
            yield from _base_tables(value)
    elif isinstance(node, list):
        for value in node:
            yield from _base_tables(value)


def _has_order_by(statement: str) -> bool:
    """True when the statement's code (not its strings or comments) says ORDER BY."""
    code = "".join(
        statement[start:end]
        for (start, kind), (end, _) in zip(
            duckdb.tokenize(statement), [*duckdb.tokenize(statement)[1:], (len(statement), None)]
        )
        if kind not in (duckdb.token_type.string_const, duckdb.token_type.comment)
    )
    return re.search(r"\bORDER\s+BY\b", code, re.IGNORECASE) is not None


def _strip_alias(name: str) -> str:
    return re.split(r"\s+AS\s+", name, maxsplit=1, flags=re.IGNORECASE)[0].strip()


@contextmanager
def translate_errors(explain: Callable[[str], BrickyardError | None] | None = None) -> Iterator[None]:
    """Turn DuckDB's exceptions into brickyard errors with one readable line; `explain` may
    give a better error for a message (None: the generic one). DuckDB's errors raised
    through an Arrow reader arrive as OSError with DuckDB's text."""
    try:
        yield
    except BrickyardError:
        raise
    except (duckdb.Error, OSError) as exc:
        if not isinstance(exc, duckdb.Error) and not _is_duckdb_text(str(exc)):
            raise
        found = explain(str(exc)) if explain is not None else None
        if found is not None:
            raise found from exc
        if isinstance(exc, duckdb.IOException):
            _raise_io_error(exc)
        raise SqlError(one_line(str(exc))) from exc


def _raise_io_error(exc: duckdb.IOException) -> None:
    text = str(exc)
    missing = re.search(r'No files found that match the pattern "([^"]+)"', text)
    if missing:
        raise DataFileNotFoundError(
            f"no file in the lake matches {missing.group(1)!r}",
            hint="list what is there with: brickyard sql \"SELECT * FROM glob('raw/**')\"",
        ) from exc
    raise SqlError(one_line(text)) from exc


def _is_duckdb_text(message: str) -> bool:
    """True for a message in DuckDB's form (`Invalid Input Error: ...`)."""
    return re.match(r"(?:[A-Z][A-Za-z]* )+Error: ", message) is not None


def type_problem(type_text: str) -> str | None:
    """None if DuckDB understands the SQL type `type_text` (a contract column's), else its
    complaint."""
    try:
        duckdb.connect().execute(f"SELECT CAST(NULL AS {type_text})")
    except duckdb.Error as exc:
        return f"unknown type {type_text!r} ({str(exc).splitlines()[0]})"
    return None
