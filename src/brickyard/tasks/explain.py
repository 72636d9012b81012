"""`check` helpers for the SQL-running kinds: find a query's problems with DuckDB's EXPLAIN,
without running it and before upstream tasks have produced their tables.

Tables the query names that are not in the lake yet but that some pipeline task writes are
stood in for by empty views with the columns their contract declares (an ingest target also
gets `_source_file` and `_loaded_at`); when no contract says, the query is only parsed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb

from brickyard.core.contract import Contract
from brickyard.core.quality import QUARANTINE_SUFFIX, Rule, checked_query, quote
from brickyard.engines.duckdb.engine import BUILTIN_SCHEMAS, DuckDBEngine, one_line
from brickyard.errors import BrickyardError, suggest
from brickyard.lake.names import TableName
from brickyard.tasks.base import CheckContext

INGEST_COLUMNS = (("_source_file", "VARCHAR"), ("_loaded_at", "TIMESTAMP"))


def named_tables(text: str) -> list[str]:
    """The `zone.name` tables a query names (from DuckDB's parse tree; no binding)."""
    con = duckdb.connect()
    try:
        found = con.sql("SELECT json_serialize_sql(?)", params=[text]).fetchall()
    finally:
        con.close()
    tree = json.loads(found[0][0])
    names = set()
    for schema, table in _base_tables(tree):
        if schema and schema.lower() not in BUILTIN_SCHEMAS:
            names.add(f"{schema.lower()}.{table.lower()}")
    return sorted(names)


def _base_tables(node: Any) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        if node.get("type") == "BASE_TABLE" and "table_name" in node:
            yield node.get("schema_name") or "", node["table_name"]
        for value in node.values():
            yield from _base_tables(value)
    elif isinstance(node, list):
        for value in node:
            yield from _base_tables(value)


def declared_columns(context: CheckContext, table: str) -> list[tuple[str, str]] | None:
    """The columns a not-yet-written table will have, from the contract of the task that
    writes it (or `contracts/<table>.yaml`); None when unknown."""
    contract: Contract | None = None
    ingest = False
    for task in context.pipeline.tasks:
        options = task.options
        if options.get("target") == table and isinstance(options.get("contract"), str):
            try:
                contract = context.workspace.contract(options["contract"])
            except BrickyardError:
                return None
            ingest = task.kind == "ingest"
            break
    if contract is None:
        try:
            contract = context.workspace.contract(table)
        except BrickyardError:
            return None
    if not contract.columns:
        return None
    columns = [
        (c.name, "VARCHAR" if c.pii else c.duckdb_type) for c in contract.columns
    ]
    return columns + list(INGEST_COLUMNS) if ingest else columns


def explain_problems(
    context: CheckContext,
    text: str,
    where: str,
    rules: Sequence[Rule] = (),
    *,
    required: Sequence[str] = (),
) -> list[str]:
    """Problems of a SELECT: unknown tables, SQL errors (with position), expectations that
    do not compile against its columns, `required` columns it lacks."""
    try:
        names = named_tables(text)
    except duckdb.Error as exc:
        return [f"{where}: {one_line(str(exc))}"]
    engine = DuckDBEngine(context.workspace.lake, context.workspace.config.duckdb)
    problems: list[str] = []
    try:
        lake = engine.lake
        known = sorted(
            t for t in set(lake.tables()) | set(context.produced_tables) if not t.endswith(QUARANTINE_SUFFIX)
        )
        unbound = []
        for table in names:
            try:
                TableName.parse(table)
            except BrickyardError as exc:
                problems.append(f"{where}: {exc}")
                continue
            if lake.exists(table):
                continue
            if table not in context.produced_tables:
                close = suggest(table, known)
                problems.append(
                    f"{where}: table {table} does not exist and no pipeline task writes it"
                    + (f" (hint: {close})" if close else "")
                )
                continue
            declared = None if table.endswith(QUARANTINE_SUFFIX) else declared_columns(context, table)
            if declared is None:
                unbound.append(table)
            else:
                _empty_view(engine, table, declared)
        if problems or unbound:
            return problems
        try:
            prepared = engine.prepare(text)
            engine.connection.sql(f"EXPLAIN {prepared}").fetchall()
            columns = engine.connection.sql(prepared).columns
        except (duckdb.Error, BrickyardError) as exc:
            message = exc.message if isinstance(exc, BrickyardError) else one_line(str(exc))
            return [f"{where}: {message}"]
        for column in required:
            if column not in columns:
                problems.append(f"{where}: the query has no column {column!r} (its columns: {', '.join(columns)})")
        for rule in rules:
            try:
                engine.connection.sql(f"EXPLAIN {checked_query(prepared, [rule])}").fetchall()
            except duckdb.Error as exc:
                problems.append(f"expectation {rule.label!r} does not fit the query's columns: {one_line(str(exc))}")
        return problems
    finally:
        engine.close()


def _empty_view(engine: DuckDBEngine, table: str, columns: Sequence[tuple[str, str]]) -> None:
    name = TableName.parse(table)
    select = ", ".join(f"CAST(NULL AS {kind}) AS {quote(column)}" for column, kind in columns)
    con = engine.connection
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(name.zone)}")
    con.execute(f"CREATE OR REPLACE VIEW {quote(name.zone)}.{quote(name.name)} AS SELECT {select} WHERE false")
