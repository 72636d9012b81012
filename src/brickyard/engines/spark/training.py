"""Training rows read through Spark, with the Delta versions read (lineage).

`spark_source` gives a lazy DataFrame of a lake table (at a version) or of a query in
DuckDB's dialect (translated by the Spark engine), with each lake table pinned at the
version it resolved, so `reads` is exactly what Spark reads.

`training_rows` is the Spark engine's `Engine.training_rows`: the training rows of a
single-machine learner (scikit-learn) read by Spark's executors and collected to the driver
as Arrow (a training table is bounded by what one machine can fit on). For a table source
the rows come back in the order the DuckDB engine reads them (the table's files in the
Delta log's order, rows in file order; Spark itself reads bigger files first), so the
seeded split, and therefore the model, is the same on both engines. A query's rows come in
Spark's order: as on DuckDB, a query should `ORDER BY` for an exactly reproducible split.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from brickyard.engines.base import TrainingRows
from brickyard.errors import SqlError, TableNotFoundError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from brickyard.engines.spark.engine import SparkEngine

_FILE = "__brickyard_file"
_ROW = "__brickyard_row"


def mlflow_dfs_tmpdir(engine: SparkEngine) -> str:
    """Where MLflow has Spark save an MLlib model before logging it: a folder of the lake
    (which every node sees at the same path), as Spark must be given it."""
    from brickyard.engines.spark_delta import spark_path

    return spark_path(engine.lake.location.uri("staging/mlflow"))


def spark_source(
    engine: SparkEngine,
    *,
    table: str | None,
    query: str | None,
    version: int | None = None,
    pinned: Mapping[str, int] | None = None,
) -> tuple[DataFrame, dict[str, int], str]:
    """(lazy DataFrame, {table: version read}, description) of a table or a query.

    Raises:
        SparkUnavailableError, TableNotFoundError, LakeError, SqlError.
    """
    from brickyard.engines.spark_delta import read_table

    pinned = dict(pinned or {})
    spark, lake = engine.spark, engine.lake
    if table is not None:
        resolved = lake.delta(table, version=version if version is not None else pinned.get(table)).version()
        return read_table(spark, lake, table, version=resolved), {table: resolved}, f"table {table}"
    assert query is not None
    return _query(engine, spark, query, pinned)


def _query(engine: SparkEngine, spark: SparkSession, query: str, pinned: dict[str, int]) -> tuple[DataFrame, dict[str, int], str]:
    from brickyard.engines.spark.engine import run_statement
    from brickyard.engines.spark_delta import read_table
    from brickyard.engines.spark_sql import translate_all

    lake = engine.lake
    statements = translate_all(query, where="the training query")
    if not statements:
        raise SqlError("the training query holds no SQL statement")
    reads: dict[str, int] = {}
    result = None
    for statement in statements:
        for view, table in statement.tables.items():
            if not lake.exists(table):
                raise TableNotFoundError(table, lake.tables())
            if table not in reads:
                reads[table] = lake.delta(table, version=pinned.get(table)).version()
            read_table(spark, lake, table, version=reads[table]).createOrReplaceTempView(view)
        for view, snapshot in statement.snapshots.items():
            frame = read_table(spark, lake, snapshot.table, version=snapshot.version, as_of=snapshot.timestamp)
            frame.createOrReplaceTempView(view)
        for view, scan in statement.raw.items():
            engine.raw_frame(scan).createOrReplaceTempView(view)
        result = run_statement(spark, statement, "the training query")
    assert result is not None
    return result, reads, "the query"


def training_rows(
    engine: SparkEngine, *, table: str | None, query: str | None, version: int | None, pinned: Mapping[str, int] | None
) -> TrainingRows:
    """`Engine.training_rows` on Spark (see the module docstring).

    Raises:
        SparkUnavailableError, TableNotFoundError, LakeError, SqlError.
    """
    from brickyard.engines.spark.engine import translate_errors

    pinned = dict(pinned or {})
    if table is None:
        frame, reads, source = spark_source(engine, table=None, query=query, pinned=pinned)
        with translate_errors("the training query"):
            return TrainingRows(frame.toArrow(), reads, source)
    files = engine.lake.table_files(table, version=version if version is not None else pinned.get(table))
    with translate_errors(f"reading {table}"):
        rows = _ordered(engine.spark, files)
    return TrainingRows(rows, {table: files.version}, f"table {table}")


def _ordered(spark: SparkSession, files: Any) -> Any:
    """A table version's rows as Arrow, read by Spark, in Delta-log file order."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    from brickyard.engines.spark_delta import spark_path

    schema = files.schema
    partitions = list(files.partition_columns)
    if not files.files:
        return schema.empty_table()
    data_schema = from_arrow_schema(pa.schema([f for f in schema if f.name not in partitions]), prefer_timestamp_ntz=True)
    paths = [os.path.join(files.uri, unquote(file.path)) for file in files.files]
    frame = spark.read.schema(data_schema).parquet(*map(spark_path, paths)).select(
        "*", F.col("_metadata.file_path").alias(_FILE), F.col("_metadata.row_index").alias(_ROW)
    )
    collected = frame.toArrow()
    order = {os.path.normpath(path): index for index, path in enumerate(paths)}
    encoded = pc.dictionary_encode(collected.column(_FILE)).combine_chunks()
    lookup = pa.array(
        [order[os.path.normpath(unquote(urlparse(path).path))] for path in encoded.dictionary.to_pylist()], pa.int64()
    )
    ordinals = lookup.take(encoded.indices)
    collected = collected.append_column("__ordinal", ordinals)
    indices = pc.sort_indices(collected, sort_keys=[("__ordinal", "ascending"), (_ROW, "ascending")])
    collected = collected.take(indices)
    ordinal = collected.column("__ordinal")
    columns = {}
    for field in schema:
        if field.name in partitions:
            per_file = pa.array([file.partition_values.get(field.name) for file in files.files], pa.string())
            columns[field.name] = per_file.take(ordinal).cast(field.type)
        else:
            columns[field.name] = collected.column(field.name).cast(field.type)
    return pa.table(columns, schema=schema)
