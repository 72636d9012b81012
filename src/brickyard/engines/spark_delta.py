"""Delta tables as Spark DataFrames, without Delta Lake's Spark jars.

Reading: delta-rs lists the files of a table version (`Lake.table_files`); Spark reads
those Parquet files with the table's schema, partition values added as columns.
Writing: Spark's executors write Parquet files into a fresh folder inside the table's
folder, then the driver commits them to the Delta log in one commit (`Lake.commit_files`),
reading only the files' footers. No table passes through the driver.

Both need a lake Spark can address by path: a local folder (or, on a cluster, storage every
executor mounts at the same path).

When the session has Delta Lake's own Spark support (Databricks; delta-spark's jars with its
session extension), tables are read and written with it instead (`format("delta")`, the
application transaction as `txnAppId`/`txnVersion`, brickyard's commit metadata as JSON in
`userMetadata`, which `Lake.history` unpacks). `spark.brickyard.delta: native|files` in the
workspace's `spark.conf` forces one way. (Delta's jars come from Maven, which these machines
cannot reach, so the native way is not exercised by the tests here.)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from brickyard.errors import LakeError
from brickyard.lake import DataFile, IfCommitted, Lake, TableName, WriteMode

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def spark_path(path: str) -> str:
    """A lake path as Spark must be given it: a local path with an explicit `file://`
    scheme (Spark resolves a bare path against the cluster's default filesystem, HDFS on
    many clusters), a URL as it is."""
    return path if "://" in path else "file://" + os.path.abspath(path)


def read_table(
    spark: SparkSession,
    lake: Lake,
    name: str | TableName,
    *,
    version: int | None = None,
    as_of: Any = None,
    since_version: int | None = None,
) -> DataFrame:
    """A table version as a DataFrame (lazy: executors read the files); with
    `since_version`, only its rows added after that version (`Lake.table_files`).

    Raises:
        TableNotFoundError, LakeError: as `Lake.table_files`; LakeError for a remote lake.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    if since_version is None and native_delta(spark):
        return _native_read(spark, lake, name, version=version, as_of=as_of)
    _require_local(lake)
    files = lake.table_files(name, version=version, as_of=as_of, since_version=since_version)
    schema = from_arrow_schema(files.schema, prefer_timestamp_ntz=True)
    partition_fields = {field.name: field for field in schema.fields if field.name in files.partition_columns}
    data_schema = type(schema)([field for field in schema.fields if field.name not in partition_fields])
    if not files.files:
        return spark.createDataFrame([], schema)
    groups: dict[tuple[tuple[str, str | None], ...], list[str]] = {}
    for file in files.files:
        key = tuple(sorted(file.partition_values.items()))
        groups.setdefault(key, []).append(spark_path(os.path.join(files.uri, unquote(file.path))))
    frames = []
    for key, paths in groups.items():
        frame = spark.read.schema(data_schema).parquet(*paths)
        for column, value in key:
            frame = frame.withColumn(column, F.lit(value).cast(partition_fields[column].dataType))
        frames.append(frame.select(*schema.fieldNames()))
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def write_table(
    lake: Lake,
    name: str | TableName,
    frame: DataFrame,
    *,
    mode: WriteMode = "append",
    partition_by: Sequence[str] | None = None,
    evolve_schema: bool = False,
    metadata: Mapping[str, Any] | None = None,
    transaction: tuple[str, int] | None = None,
    if_committed: IfCommitted = "skip",
) -> int:
    """Write a DataFrame to a table (created on first write) in one Delta commit.

    Appending casts the frame to the table's schema (columns matched by name; missing
    ones are NULL); a column the table lacks is an error unless `evolve_schema`.
    `transaction` and `if_committed` work as in `Lake.write`: checked before Spark writes
    the files, and again by the commit (`Lake.commit_files`).
    Returns the table version after the commit.

    Raises:
        CommitConflictError: the transaction was committed by another writer (with
            `if_committed="conflict"`).
        LakeError: the frame does not fit the table, or writing or committing failed.
    """
    from pyspark.sql.pandas.types import to_arrow_schema

    table = name if isinstance(name, TableName) else TableName.parse(name)
    if transaction is not None:
        committed = lake.committed_version(table, transaction, if_committed)
        if committed is not None:
            return committed
    if native_delta(frame.sparkSession):
        return _native_write(lake, table, frame, mode, partition_by, evolve_schema, metadata, transaction)
    _require_local(lake)
    partitions = list(partition_by or [])
    if lake.exists(table) and mode == "append":
        existing = lake.table_files(table)
        partitions = existing.partition_columns
        frame = _conform(frame, existing.schema, table, evolve_schema)
    missing = [column for column in partitions if column not in frame.columns]
    if missing:
        raise LakeError(f"cannot write {table}: partition column(s) {missing} are not in the result")
    schema = _nullable(to_arrow_schema(frame.schema, timezone="UTC"))
    folder_name = f"spark-{uuid.uuid4().hex[:12]}"
    folder = os.path.join(lake.table_uri(table), folder_name)
    try:
        frame.write.mode("error").partitionBy(*partitions).parquet(spark_path(folder))
    except Exception as exc:
        raise LakeError(f"writing {table} failed in Spark: {_first_line(exc)}") from exc
    files = written_files(folder, folder_name, partitions)
    return lake.commit_files(
        table,
        files,
        schema,
        mode=mode,
        partition_by=partitions,
        metadata=metadata,
        transaction=transaction,
        if_committed=if_committed,
    )


def native_delta(spark: SparkSession) -> bool:
    """True when the session has Delta Lake's own Spark support (or `spark.brickyard.delta`
    says `native`); `files` forces the file-list way."""
    forced = spark.conf.get("spark.brickyard.delta", "auto")
    if forced in ("native", "files"):
        return forced == "native"
    if "DeltaSparkSessionExtension" in (spark.conf.get("spark.sql.extensions", "") or ""):
        return True
    from brickyard.engines.spark_connect import is_connect

    if is_connect(spark):  # no JVM to probe: the extension (or spark.brickyard.delta) decides
        return False
    try:
        spark.sparkContext._jvm.java.lang.Class.forName("io.delta.tables.DeltaTable")  # type: ignore[union-attr]
    except Exception:
        return False
    return True


def _native_read(spark: SparkSession, lake: Lake, name: str | TableName, *, version: int | None, as_of: Any) -> DataFrame:
    from brickyard.errors import TableNotFoundError

    if not lake.exists(name):
        raise TableNotFoundError(str(name), lake.tables())
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    elif as_of is not None:
        reader = reader.option("timestampAsOf", str(as_of))
    try:
        return reader.load(spark_path(lake.table_uri(name)))
    except Exception as exc:
        raise LakeError(f"reading {name} with Delta Lake's Spark support failed: {_first_line(exc)}") from exc


def _native_write(
    lake: Lake,
    table: TableName,
    frame: DataFrame,
    mode: WriteMode,
    partition_by: Sequence[str] | None,
    evolve_schema: bool,
    metadata: Mapping[str, Any] | None,
    transaction: tuple[str, int] | None,
) -> int:
    import json

    writer = frame.write.format("delta").mode(mode).partitionBy(*(partition_by or []))
    if transaction is not None:
        writer = writer.option("txnAppId", transaction[0]).option("txnVersion", transaction[1])
    if metadata:
        writer = writer.option("userMetadata", json.dumps({k: str(v) for k, v in metadata.items()}))
    if evolve_schema:
        writer = writer.option("mergeSchema", "true")
    if mode == "overwrite":
        writer = writer.option("overwriteSchema", "true")
    try:
        writer.save(spark_path(lake.table_uri(table)))
    except Exception as exc:
        raise LakeError(f"writing {table} with Delta Lake's Spark support failed: {_first_line(exc)}") from exc
    return lake.version(table)


def written_files(folder: str, prefix: str, partitions: Sequence[str]) -> list[DataFile]:
    """The Parquet files Spark wrote under `folder`, with row counts from their footers
    and partition values from their `column=value` folders."""
    import pyarrow.parquet as pq

    found = []
    for directory, _, names in os.walk(folder):
        for file_name in sorted(names):
            if not file_name.endswith(".parquet") or file_name.startswith((".", "_")):
                continue
            path = os.path.join(directory, file_name)
            relative = os.path.relpath(path, folder)
            values: dict[str, str | None] = {}
            for segment in relative.split(os.sep)[:-1]:
                column, _, value = segment.partition("=")
                if column in partitions:
                    text = unquote(value)
                    values[column] = None if text == HIVE_NULL else text
            found.append(
                DataFile(
                    path=f"{prefix}/{relative}".replace(os.sep, "/"),
                    size=os.path.getsize(path),
                    rows=pq.read_metadata(path).num_rows,
                    partition_values=values,
                )
            )
    return found


def _conform(frame: DataFrame, schema: pa.Schema, table: TableName, evolve: bool) -> DataFrame:
    """`frame` with the table's columns, in its order, cast to its types."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    target = from_arrow_schema(schema, prefer_timestamp_ntz=True)
    by_name = {column.lower(): column for column in frame.columns}
    extra = [c for c in frame.columns if c.lower() not in {f.name.lower() for f in target.fields}]
    if extra and not evolve:
        raise LakeError(
            f"cannot append to {table}: column(s) {extra} are not in the table",
            hint="set the contract's evolution to add, or rebuild the table with --full-refresh",
        )
    columns = [
        F.col(f"`{by_name[field.name.lower()]}`").cast(field.dataType).alias(field.name)
        if field.name.lower() in by_name
        else F.lit(None).cast(field.dataType).alias(field.name)
        for field in target.fields
    ]
    columns += [F.col(f"`{column}`") for column in extra]
    return frame.select(*columns)


def _nullable(schema: pa.Schema) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([field.with_nullable(True) for field in schema])


def _require_local(lake: Lake) -> None:
    if not lake.location.is_local:
        raise LakeError(
            f"the Spark engine reads and writes the lake by path, and {lake.location.root} is remote",
            hint="use engine: duckdb for an abfs:// lake, or a Spark cluster with Delta Lake's own support",
        )


def _first_line(exc: BaseException) -> str:
    from brickyard.engines.spark_session import error_text

    return error_text(exc)
