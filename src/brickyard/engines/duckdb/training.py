"""Training rows on the DuckDB engine (`DuckDBEngine.training_rows`): a table version read
whole through delta-rs, or a query run with each lake table it names pinned at one version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from brickyard.engines.base import TrainingRows
from brickyard.lake.datasets import arrow_dataset

if TYPE_CHECKING:
    from brickyard.engines.duckdb.engine import DuckDBEngine

_BUILTIN_SCHEMAS = ("main", "temp", "information_schema", "pg_catalog", "system")


def training_rows(
    engine: DuckDBEngine, *, table: str | None, query: str | None, version: int | None, pinned: Mapping[str, int] | None
) -> TrainingRows:
    """See `Engine.training_rows`."""
    pinned = dict(pinned or {})
    lake = engine.lake
    if table is not None:
        delta = lake.delta(table, version=version if version is not None else pinned.get(table))
        return TrainingRows(arrow_dataset(delta).to_table(), {table: delta.version()}, f"table {table}")
    assert query is not None
    return _query_rows(engine, query, pinned)


def _query_rows(base: DuckDBEngine, query: str, pinned: dict[str, int]) -> TrainingRows:
    from brickyard.engines.duckdb.engine import DuckDBEngine

    probe = DuckDBEngine(base.lake, base.config)
    try:
        probe.prepare(query)
        names = [
            f"{schema}.{view}"
            for schema, view in probe.connection.execute(
                "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal "
                f"AND schema_name NOT IN {_BUILTIN_SCHEMAS}"
            ).fetchall()
        ]
    finally:
        probe.close()
    engine = DuckDBEngine(base.lake, base.config)
    try:
        reads: dict[str, int] = {}
        for name in sorted(names):
            delta = base.lake.delta(name, version=pinned.get(name))
            reads[name] = delta.version()
            zone, table = name.split(".")
            arrow_name = f"__pinned_{zone}_{table}"
            engine.connection.register(arrow_name, arrow_dataset(delta))
            engine.connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{zone}"')
            engine.connection.execute(f'CREATE OR REPLACE VIEW "{zone}"."{table}" AS SELECT * FROM "{arrow_name}"')
        rows = engine.query(query).to_arrow_table()
    finally:
        engine.close()
    return TrainingRows(rows, reads, "the query")
