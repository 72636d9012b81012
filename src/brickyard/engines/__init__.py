"""SQL engines over the lake: `duckdb` (embedded, the default) and `spark` (PySpark)."""

from brickyard.engines.duckdb_engine import DuckDBEngine
from brickyard.engines.spark_engine import SparkEngine

__all__ = ["DuckDBEngine", "SparkEngine"]
