"""`brickyard validate` with DuckDB's parser and binder: SQL in DuckDB's dialect (the
dialect of every engine's task SQL) explained without running it, and an ingest contract's
types and expectations compiled. The kinds' `check`s call these on every engine."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

import duckdb

from brickyard.core.contract import Contract
from brickyard.core.quality import QUARANTINE_SUFFIX, Rule, checked_query, compile_rule, quote
from brickyard.engines.duckdb.engine import BUILTIN_SCHEMAS, DuckDBEngine
from brickyard.engines.sql_text import one_line
from brickyard.errors import BrickyardError, suggest
from brickyard.lake.names import TableName


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


def explain_select(
    base: DuckDBEngine,
    text: str,
    where: str,
    rules: Sequence[Rule] = (),
    *,
    required: Sequence[str] = (),
    produced: Collection[str] = (),
    declared: Callable[[str], list[tuple[str, str]] | None] = lambda _: None,
) -> list[str]:
    """Problems of a SELECT: unknown tables, SQL errors (with position), expectations that
    do not compile against its columns, `required` columns it lacks. A table not in the lake
    yet must be in `produced` (written by a pipeline task); `declared(table)` gives its
    columns when a contract says them (else the query is only parsed)."""
    try:
        names = named_tables(text)
    except duckdb.Error as exc:
        return [f"{where}: {one_line(str(exc))}"]
    engine = DuckDBEngine(base.lake, base.config)
    problems: list[str] = []
    try:
        lake = engine.lake
        known = sorted(
            t for t in set(lake.tables()) | set(produced) if not t.endswith(QUARANTINE_SUFFIX)
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
            if table not in produced:
                close = suggest(table, known)
                problems.append(
                    f"{where}: table {table} does not exist and no pipeline task writes it"
                    + (f" (hint: {close})" if close else "")
                )
                continue
            stand_in = None if table.endswith(QUARANTINE_SUFFIX) else declared(table)
            if stand_in is None:
                unbound.append(table)
            else:
                _empty_view(engine, table, stand_in)
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


def contract_problems(contract: Contract, where: str, partition_by: Sequence[str] = ()) -> list[str]:
    """Problems of a contract used at ingest: bad types, pii without key, expectations
    that do not compile against its columns, partition columns it lacks."""
    problems: list[str] = []
    con = duckdb.connect()
    try:
        for column in contract.columns:
            try:
                con.sql(f"SELECT CAST(NULL AS {column.duckdb_type})").fetchall()
            except duckdb.Error as exc:
                problems.append(
                    f"{where}: column {column.name!r} has an unknown type {column.type!r}: {one_line(str(exc))}"
                )
        if contract.pii_columns and not contract.pii_key:
            problems.append(
                f"{where}: columns {', '.join(contract.pii_columns)} are pii but the contract has no pii_key"
            )
        for expectation in contract.expectations:
            if expectation.unique is not None and expectation.action == "drop":
                problems.append(
                    f"{where}: expectation {expectation.label!r}: unique with action drop is not "
                    "supported at ingest; use warn/fail, or an expect task after the ingest"
                )
        names = [c.name for c in contract.columns]
        if contract.columns:
            for partition in partition_by:
                if partition not in names:
                    problems.append(f"{where}: partition column {partition!r} is not in the contract")
            if problems:
                return problems
            typed = ", ".join(
                f"CAST(NULL AS {c.duckdb_type}) AS {quote(c.name)}" for c in contract.columns
            )
            for expectation in contract.expectations:
                rule = compile_rule(expectation)
                try:
                    con.sql(
                        f"EXPLAIN SELECT {rule.fails}, {rule.reason} FROM (SELECT {typed}) AS t"
                    ).fetchall()
                except duckdb.Error as exc:
                    problems.append(
                        f"{where}: expectation {rule.label!r} does not compile: {one_line(str(exc))}"
                    )
    finally:
        con.close()
    return problems
