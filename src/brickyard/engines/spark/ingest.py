"""One ingest batch on the Spark engine: raw files read by Spark's executors as text, typed
and checked with the same SQL as on DuckDB (`ingest_sql`, translated for Spark), split and
written by `brickyard.engines.spark.quality.write_checked` (quarantine commit, then target
commit, with the batch's application transaction). No row passes through the driver.

What is shared with DuckDB (in `brickyard.tasks.ingest`): which files, the column plan
(names from each file's header and, without a contract, types as DuckDB's sniffer detects
them on a sample), rules, checkpoint metadata, metrics and lineage.

Reading:
- CSV: every file with the columns its header has (as DuckDB names them: an unnamed first
  column is `column00`, a byte-order mark is dropped), all text, the task's fixed dialect
  (comma, double quotes doubled to escape, a header), `multiLine` (quoted values may span
  lines, and a file is never split across tasks), and `FAILFAST`: a malformed line fails
  the task, naming the file. Files with other columns are read apart and unioned by name.
- JSON lines: every key as text. Parquet: its own types.

Line numbers (`_line` of quarantined rows): CSV as on DuckDB (the record number in its
file, a header counting as line 1), from Spark's row ids of the unsplit file; Parquet the
1-based row number (`_metadata.row_index`); JSON lines NULL (Spark splits a JSON-lines
file between tasks and cannot number its records cheaply).
"""

from __future__ import annotations

import logging
import re
import unicodedata
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from brickyard.core.quality import (
    LINE_COLUMN,
    LOADED_AT_COLUMN,
    REASON,
    REASON_COLUMN,
    RUN_ID_COLUMN,
    SOURCE_FILE_COLUMN,
    CheckedWrite,
    ExpectationResult,
    Rule,
)
from brickyard.core.sources import FILE_COLUMN, Format, ReaderOptions, SourceFile, line_offset
from brickyard.engines.base import IngestBatch, RawReadError
from brickyard.engines.ingest_sql import RAW, PlannedColumn, duplicates_sql, final_sql, typed_sql
from brickyard.engines.spark.quality import write_checked
from brickyard.errors import BrickyardError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from brickyard.engines.spark.engine import SparkEngine
    from brickyard.lake import Lake, WriteMode

ROW_ID = "__by_row_id"  # Spark's row id (CSV) or the 1-based row number (Parquet)
ENCODINGS = {"utf-8": "UTF-8", "utf-16": "UTF-16", "latin-1": "ISO-8859-1"}


class SparkReadError(RawReadError):
    """Spark could not read the raw files (malformed line, unreadable file). `file` is the
    lake path of the file Spark named, when it named one of the batch's."""


def csv_options(options: ReaderOptions) -> dict[str, str]:
    """Spark's CSV reader options for the task's fixed dialect (see `sources.csv_arguments`)."""
    found = {
        "header": "true" if options.header else "false",
        "sep": options.delimiter or ",",
        "quote": options.quote if options.quote is not None else '"',
        "escape": options.escape if options.escape is not None else '"',
        "multiLine": "true",
        "mode": "FAILFAST",
        "enforceSchema": "true",
        "comment": "\u0000",
        "ignoreLeadingWhiteSpace": "false",
        "ignoreTrailingWhiteSpace": "false",
    }
    if options.null_strings is not None and len(options.null_strings) == 1:
        found["nullValue"] = options.null_strings[0]
    if options.encoding is not None:
        found["encoding"] = ENCODINGS[options.encoding]
    return found


def spark_paths(spark: SparkSession, uris: Sequence[str]) -> list[str]:
    """Each file's path as `file_path_key` gives it for Spark's `_metadata.file_path` (the
    URI-encoded path, without scheme or authority)."""
    return [hadoop_raw_path(uri) for uri in uris]


# ASCII characters that java.net.URI leaves as they are in a path: unreserved, punct, / and @.
_URI_PATH_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'(),;:$&+=/@")


def hadoop_raw_path(uri: str) -> str:
    """`new org.apache.hadoop.fs.Path(uri).toUri().getRawPath()`, computed here, so it needs
    no JVM (none is reachable over Spark Connect): scheme and authority dropped, `//`
    collapsed, a trailing `/` dropped, `.` and `..` segments resolved, and every character
    java.net.URI does not allow in a path percent-encoded as UTF-8 (visible non-ASCII
    characters are kept)."""
    start = 0
    colon, slash = uri.find(":"), uri.find("/")
    if colon != -1 and (slash == -1 or colon < slash):
        start = colon + 1
    if uri.startswith("//", start) and len(uri) - start > 2:
        end = uri.find("/", start + 2)
        start = end if end > 0 else len(uri)
    path = uri[start:].replace("//", "/")
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return _normalize_segments("".join(_uri_quote(char) for char in path))


def _uri_quote(char: str) -> str:
    if char in _URI_PATH_SAFE:
        return char
    if ord(char) > 0x80 and unicodedata.category(char) not in ("Zs", "Zl", "Zp", "Cc"):
        return char
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))


def _normalize_segments(path: str) -> str:
    """java.net.URI.normalize() of a path: `.` segments dropped, `name/..` pairs removed."""
    if "/." not in path and not path.startswith("."):
        return path
    absolute = path.startswith("/")
    kept: list[str] = []
    for segment in path.split("/")[1 if absolute else 0 :]:
        if segment == ".":
            continue
        if segment == ".." and kept and kept[-1] != "..":
            kept.pop()
            continue
        kept.append(segment)
    return ("/" if absolute else "") + "/".join(kept)


def file_path_key() -> Column:
    """Spark's `_metadata.file_path` without its scheme and authority (`file:/x`,
    `file:///x` and `/x` all give `/x`)."""
    from pyspark.sql import functions as F

    return F.regexp_replace(F.col("_metadata.file_path"), r"^[a-zA-Z][a-zA-Z0-9+.-]*:(//[^/]*)?", "")


def file_expression(spark: SparkSession, files: Sequence[SourceFile], uris: Sequence[str]) -> Column:
    """The lake-relative path of a row's file: a literal when the group is one file, else a
    lookup of Spark's file path in a map literal of the group's files."""
    from pyspark.sql import functions as F

    if len(files) == 1:
        return F.lit(files[0].path)
    pairs: list[Column] = []
    for file, key in zip(files, spark_paths(spark, uris), strict=True):
        pairs += [F.lit(key), F.lit(file.path)]
    return F.element_at(F.create_map(*pairs), file_path_key())


def read_raw(
    spark: SparkSession,
    fmt: Format,
    files: Sequence[SourceFile],
    uris: Sequence[str],
    columns_by_file: dict[str, list[str]],
    options: ReaderOptions,
) -> DataFrame:
    """The batch's files as one frame: their columns (text for CSV and JSON), `__file` (the
    lake-relative path) and `__by_row_id`. Files with the same columns are read together."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from brickyard.engines.spark_delta import spark_path

    groups: dict[tuple[str, ...], list[tuple[SourceFile, str]]] = {}
    for file, uri in zip(files, uris, strict=True):
        groups.setdefault(tuple(columns_by_file[file.path]), []).append((file, uri))
    frames = []
    for columns, members in groups.items():
        group_files = [f for f, _ in members]
        group_uris = [spark_path(u) for _, u in members]
        if fmt == "parquet":
            frame = spark.read.parquet(*group_uris)
            row = (F.col("_metadata.row_index") + 1).cast("long")
        else:
            schema = T.StructType([T.StructField(name, T.StringType()) for name in columns])
            if fmt == "csv":
                frame = spark.read.options(**csv_options(options)).schema(schema).csv(group_uris)
                row = F.monotonically_increasing_id()
            else:
                frame = spark.read.option("mode", "FAILFAST").schema(schema).json(group_uris)
                row = F.lit(None).cast("long")
        file_column = file_expression(spark, group_files, group_uris)
        selected = [F.col(f"`{name}`") for name in columns]
        if fmt == "csv" and options.null_strings is not None and len(options.null_strings) > 1:
            nulls = list(options.null_strings)
            selected = [F.when(c.isin(nulls), None).otherwise(c).alias(n) for c, n in zip(selected, columns, strict=True)]
        frames.append(frame.select(*selected, file_column.alias(FILE_COLUMN), row.alias(ROW_ID)))
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame, allowMissingColumns=True)
    return result


def load_batch(
    engine: SparkEngine,
    lake: Lake,
    *,
    task: str,
    fmt: Format,
    options: ReaderOptions,
    files: list[SourceFile],
    uris: list[str],
    columns_by_file: dict[str, list[str]],
    sources: list[str],
    planned: list[PlannedColumn],
    row_rules: list[Rule],
    unique_rules: list[Rule],
    key: bytes | None,
    target: str,
    mode: WriteMode,
    quarantine_mode: WriteMode,
    skip_quarantine: bool,
    partition_by: Sequence[str],
    metadata: dict[str, str],
    transaction: tuple[str, int],
    loaded_at: datetime,
    run_id: str,
    log: logging.Logger,
    max_quarantined: int | float | None = None,
) -> CheckedWrite:
    """Read, type, check and write one batch on Spark (see the module doc). `mode` and
    `quarantine_mode` are `append` or `overwrite`; `skip_quarantine`: the batch's
    quarantine commit landed already. The commits are refused when another writer
    committed the batch's transaction first.

    Raises:
        CommitConflictError: another writer committed the batch first.
        SparkReadError: a file could not be read; ExpectationFailedError, LakeError,
        SqlError: as `write_checked` and `SparkEngine.dataframe`.
    """
    from pyspark.sql import functions as F

    spark = engine.spark
    with spark_read_errors(task, files):  # a Parquet file's schema is read here, eagerly
        raw = read_raw(spark, fmt, files, uris, columns_by_file, options)
    view = f"__by_ingest_{uuid.uuid4().hex[:12]}"
    raw.createOrReplaceTempView(view)
    try:
        typed = typed_sql(fmt, view, planned, sources, 0, [f.path for f in files], spark=True, keep=[ROW_ID])
        query = final_sql(typed, planned, sources, row_rules, key, spark=True, keep=[ROW_ID])
        where = f"task {task}"
        with spark_read_errors(task, files):
            counted = [
                ExpectationResult(
                    rule.label,
                    rule.check,
                    rule.action,
                    int(engine.dataframe(duplicates_sql(typed, rule), where=where).collect()[0][0] or 0),
                )
                for rule in unique_rules
            ]
            frame = engine.dataframe(query, where=where)
            stamp = F.lit(loaded_at.replace(tzinfo=None)).cast("timestamp_ntz")
            good_columns = [p.name for p in planned] + [SOURCE_FILE_COLUMN]
            offset = line_offset(fmt, options)

            def good(rows: DataFrame) -> DataFrame:
                return rows.select(*[F.col(f"`{c}`") for c in good_columns], stamp.alias(LOADED_AT_COLUMN))

            def bad(rows: DataFrame) -> DataFrame:
                if fmt == "csv":
                    # The row id of an unsplit file grows by one a record: the line is its
                    # distance from the file's first id (counted over every row of the batch).
                    firsts = frame.groupBy(SOURCE_FILE_COLUMN).agg(F.min(ROW_ID).alias("__by_first"))
                    rows = rows.join(F.broadcast(firsts), SOURCE_FILE_COLUMN, "left")
                    line = F.col(ROW_ID) - F.col("__by_first") + 1 + offset
                else:
                    line = F.col(ROW_ID) + offset
                items = [F.col(RAW.format(i)).cast("string").alias(name) for i, name in enumerate(sources)]
                items += [
                    F.col(REASON).alias(REASON_COLUMN),
                    F.col(SOURCE_FILE_COLUMN).cast("string").alias(SOURCE_FILE_COLUMN),
                    line.cast("long").alias(LINE_COLUMN),
                    stamp.alias(LOADED_AT_COLUMN),
                    F.lit(run_id).alias(RUN_ID_COLUMN),
                ]
                return rows.select(*items)

            return write_checked(
                frame,
                row_rules,
                lake=lake,
                target=target,
                mode=mode,
                quarantine_mode=quarantine_mode,
                skip_quarantine=skip_quarantine,
                if_committed="conflict",
                metadata=metadata,
                transaction=transaction,
                partition_by=list(partition_by) or None,
                good=good,
                bad=bad,
                counted=counted,
                log=log,
                max_quarantined=max_quarantined,
            )
    finally:
        spark.catalog.dropTempView(view)


class spark_read_errors:  # noqa: N801 - used as a context manager
    """Spark's errors while reading raw files as a SparkReadError naming file and record."""

    def __init__(self, task: str, files: Sequence[SourceFile]) -> None:
        self.task = task
        self.files = files

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, value: BaseException | None, traceback: Any) -> Literal[False]:
        if value is None or isinstance(value, BrickyardError) or not _is_spark_error(value):
            return False
        names = ", ".join(f.path for f in self.files[:3]) + (" ..." if len(self.files) > 3 else "")
        # from None: the engine's text may quote raw rows with PII values; the message withholds them
        raise SparkReadError(
            f"task {self.task}: reading {names} on Spark failed: {spark_error_text(str(value))}",
            hint="fix the file (the message names the record), or set the reader options",
            file=named_file(str(value), self.files),
        ) from None


def named_file(message: str, files: Sequence[SourceFile]) -> str | None:
    """The lake path of the batch's file that a Spark error reads (`while reading file X`)."""
    from urllib.parse import unquote

    found = re.search(r"while reading file (\S+?)\.?(?:\s|$)", message)
    if found is None:
        return None
    path = unquote(found.group(1))
    return next((f.path for f in files if path.endswith("/" + f.path)), None)


def spark_error_text(message: str) -> str:
    """The useful part of a Spark/JVM error: the file it read, and the innermost cause."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    reading = next((m.group(1) for line in lines if (m := re.search(r"while reading file (\S+?)\.?\s", line + " "))), None)
    causes = [line for line in lines if line.startswith("Caused by:")]
    cause = causes[-1] if causes else next((line for line in lines if re.search(r"\[[A-Z_.]+\]", line)), lines[0] if lines else "")
    cause = re.sub(r"^Caused by:\s*", "", cause)
    cause = re.sub(r"^[\w.$]+(Exception|Error):\s*", "", cause)
    cause = re.sub(r"\s*SQLSTATE: \w+\s*", " ", cause).strip()
    return f"{cause} (file {reading})" if reading else cause


def _is_spark_error(exc: BaseException) -> bool:
    try:
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, PySparkException | Py4JError)


def ingest_batch(engine: SparkEngine, batch: IngestBatch) -> CheckedWrite:
    """`Engine.ingest_batch` on Spark (`load_batch`)."""
    return load_batch(
        engine,
        engine.lake,
        task=batch.task,
        fmt=batch.fmt,  # type: ignore[arg-type]
        options=batch.reader,
        files=batch.files,
        uris=batch.uris,
        columns_by_file=batch.columns_by_file,
        sources=batch.sources,
        planned=batch.planned,
        row_rules=batch.row_rules,
        unique_rules=batch.unique_rules,
        key=batch.key,
        target=batch.target,
        mode=batch.mode,
        quarantine_mode=batch.quarantine_mode,
        skip_quarantine=batch.skip_quarantine,
        partition_by=batch.partition_by,
        metadata=batch.metadata,
        transaction=batch.transaction,
        loaded_at=batch.loaded_at,
        run_id=batch.run_id,
        log=batch.log,
        max_quarantined=batch.max_quarantined,
    )
