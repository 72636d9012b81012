"""Stores outside the lake: SQL databases that batches are exported into exactly once.

`Database` is a named database from `brickyard.yaml`; `export_table` stages a lake table
version as Parquet and loads it into a SQL table once (PostgreSQL by COPY, others by
SQLAlchemy executemany); `read_sql_batches` streams a SQL table or query as Arrow batches.
"""

from brickyard.stores.database import Database
from brickyard.stores.sql_export import (
    ExportError,
    ExportMode,
    LoadResult,
    Target,
    batch_id_for,
    export_table,
    is_transient,
    load_staged,
)
from brickyard.stores.sql_source import read_sql_batches
from brickyard.stores.staging import StagedBatch, stage

__all__ = [
    "Database",
    "ExportError",
    "ExportMode",
    "LoadResult",
    "StagedBatch",
    "Target",
    "batch_id_for",
    "export_table",
    "is_transient",
    "load_staged",
    "read_sql_batches",
    "stage",
]
