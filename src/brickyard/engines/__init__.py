"""SQL engines over the lake. `duckdb` is the default; `spark` arrives with the Spark issue."""

from brickyard.engines.duckdb_engine import DuckDBEngine

__all__ = ["DuckDBEngine"]
