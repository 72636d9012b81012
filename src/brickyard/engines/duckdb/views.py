"""Lake tables as views on a DuckDB connection at a version a task pinned (an Arrow dataset
from delta-rs behind each view)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from brickyard.core.quality import quote
from brickyard.engines.duckdb.engine import BUILTIN_SCHEMAS, DuckDBEngine
from brickyard.lake.names import TableName

if TYPE_CHECKING:
    import pyarrow.dataset as pads


def register(engine: DuckDBEngine, table: str, dataset: pads.Dataset) -> None:
    """Make `dataset` visible as `zone.name` on the engine's connection (replacing any view)."""
    name = TableName.parse(table)
    arrow_name = f"__by_src_{name.zone}_{name.name}"
    con = engine.connection
    con.register(arrow_name, dataset)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(name.zone)}")
    con.execute(f"CREATE OR REPLACE VIEW {quote(name.zone)}.{quote(name.name)} AS SELECT * FROM {quote(arrow_name)}")


def registered_tables(engine: DuckDBEngine) -> list[str]:
    """The lake tables `engine.prepare` made visible on a fresh engine, as `zone.name`."""
    rows = engine.connection.sql(
        "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal"
    ).fetchall()
    return sorted(f"{s}.{v}" for s, v in rows if s not in BUILTIN_SCHEMAS)


