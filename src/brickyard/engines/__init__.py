"""SQL engines over the lake: `duckdb` (embedded, the default) and `spark` (PySpark).

`Engine` (in `base`) is the interface with its capability flags; `registry` names the
engines. The engine classes are imported on first use, so naming engines imports neither
DuckDB nor PySpark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brickyard.engines.duckdb.engine import DuckDBEngine
    from brickyard.engines.spark.engine import SparkEngine

__all__ = ["DuckDBEngine", "SparkEngine"]


def __getattr__(name: str) -> Any:
    if name == "DuckDBEngine":
        from brickyard.engines.duckdb.engine import DuckDBEngine

        return DuckDBEngine
    if name == "SparkEngine":
        from brickyard.engines.spark.engine import SparkEngine

        return SparkEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
