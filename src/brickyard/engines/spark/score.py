"""Batch scoring on the Spark engine (`SparkEngine.score_table`): the same scoring
function as on DuckDB (`brickyard.ml.scoring.score_batches`, handed over in the
`ScoreRequest`), run by Spark's executors.

`score_frame` turns a source DataFrame into the scored DataFrame of
`brickyard.ml.scoring` (`<keys>, prediction, probability, model_name, model_version,
scored_at, score_date`; no `probability` for a model without class probabilities) with `mapInArrow`: the loaded model travels inside the function (so the
registry is read once, on the driver; Spark ships a large function once per executor) and
every Python worker scores its partition's Arrow batches with `score_batches`, re-cut to
`batch_size` rows. The rows and batches scored are counted by `observe` on the output (a
column marking each batch's first row, dropped before the write): exact under task retries,
and, unlike broadcast variables and accumulators, available over Spark Connect. The output schema comes
from scoring a few rows on the driver first, which also checks the columns before any
work is spread out. The scores are those of the DuckDB engine: same model object, same
function, same Arrow input.

On a cluster the executors' Python must have brickyard and the model's packages
(scikit-learn) installed, as the driver does.

A Spark MLlib model (MLflow's `spark` flavor, e.g. the `kmeans` trainer's on Spark; the
request's `native_model`) is not sent to Python workers (it holds the driver's Spark session, which executors cannot use):
its `PipelineModel.transform` runs on the source DataFrame, and the output gets the same
columns and types as the Python scoring's (taken from scoring the sample rows).

`stage_sql_batches` is how a SQL database source reaches Spark: there is no JDBC driver
offline, so the rows are read on the driver, batch by batch (never whole), into Parquet
files in a staging folder of the lake, which Spark's executors then read. Arrow infers
column types per batch, so a batch whose types widen the schema (nulls, then numbers;
integers, then decimals) has the earlier files rewritten to the final types.
"""

from __future__ import annotations

import functools
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from brickyard.engines.base import Scored, ScoreRequest, ScoringFailedError
from brickyard.errors import BrickyardError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from brickyard.engines.spark.engine import SparkEngine

SAMPLE_ROWS = 10
BATCH_START = "__brickyard_batch_start"


@dataclass
class SparkScoring:
    """A scored DataFrame (lazy) and the counters observed while it is written."""

    frame: DataFrame
    rows: Any  # `.value`: an `_Observed` count, or a `_Counted` one
    batches: Any

    @property
    def rows_scored(self) -> int:
        """Rows scored (read after the frame was written)."""
        return int(self.rows.value)

    @property
    def batch_count(self) -> int:
        """Batches scored (read after the frame was written)."""
        return int(self.batches.value)


def score_table(engine: SparkEngine, request: ScoreRequest) -> Scored:
    """`Engine.score_table` on Spark: a lake table read by the executors, or the source's
    batches staged under the lake first; scored by `score_frame`; written by the executors
    and committed in one Delta commit with the request's transaction.

    Raises:
        ScoringFailedError, BrickyardError: see `Engine.score_table`.
    """
    from brickyard.engines.spark_delta import read_table, write_table

    lake, spark = engine.lake, engine.spark
    staging: str | None = None
    scored: SparkScoring | None = None
    try:
        frame: DataFrame | None
        if request.table is not None:
            frame = read_table(spark, lake, request.table, version=request.version)
        else:
            staging = request.staging
            try:
                staged = stage_sql_batches(request.batches(), staging)
            except BrickyardError:
                raise
            except Exception as exc:
                raise ScoringFailedError(str(exc)) from exc
            frame = staged.frame(spark)
        if frame is None:  # a staged source without rows: no key types to go by
            from pyspark.sql.pandas.types import from_arrow_schema

            out = spark.createDataFrame([], from_arrow_schema(request.empty_schema(None)))
        else:
            source_frame = frame
            try:
                scored = score_frame(request, frame, lambda: request.empty_schema(_arrow_schema(source_frame)))
            except BrickyardError:
                raise
            except Exception as exc:  # the model failed on the first rows, on the driver
                raise ScoringFailedError(str(exc)) from exc
            out = scored.frame
        if lake.committed_version(request.target, request.transaction) is not None:
            # another attempt committed meanwhile; `write_table` would skip without running
            # the frame, whose observed counts would then never arrive
            return Scored(None, 0, 0)
        try:
            version = write_table(
                lake, request.target, out, mode=request.mode, partition_by=request.partition_by,
                metadata=request.metadata, transaction=request.transaction,
            )
        except BrickyardError as exc:
            worker = _worker_error(exc)
            if worker is None:
                raise
            raise ScoringFailedError(worker) from exc
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    if scored is None:
        return Scored(version, 0, 0)
    return Scored(version, scored.rows_scored, scored.batch_count)


def score_frame(request: ScoreRequest, source: DataFrame, empty_schema: Callable[[], pa.Schema]) -> SparkScoring:
    """The scored rows of `source` as a DataFrame; nothing runs until it is written.
    `empty_schema()` gives the Arrow output schema when the source has no rows.

    Raises:
        BrickyardError: a key or feature column is missing from the source.
    """
    from pyspark.sql import Observation
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    request.check_columns(source.columns)
    columns = request.columns or list(source.columns)
    source = source.select(*[f"`{c}`" for c in columns])
    sample = source.limit(SAMPLE_ROWS).toArrow()
    first = next(request.score(iter(sample.to_batches())), None)
    schema = _plain(first.schema if first is not None else empty_schema())
    if request.native_model is not None:
        return _transform(request, source, schema)
    work = functools.partial(_score_partition, score=request.score, batch_size=request.batch_size, schema=schema)
    marked = schema.append(pa.field(BATCH_START, pa.int8()))
    observation = Observation(f"brickyard_scoring_{uuid.uuid4().hex[:12]}")
    frame = (
        source.mapInArrow(work, from_arrow_schema(marked))
        .observe(observation, F.count(F.lit(1)).alias("rows"), F.sum(BATCH_START).alias("batches"))
        .drop(BATCH_START)
    )
    return SparkScoring(frame, _Observed(observation, "rows"), _Observed(observation, "batches"))


class _Observed:
    """One metric of an `Observation`, as an accumulator's `.value` (known once the
    observed frame was written)."""

    def __init__(self, observation: Any, name: str) -> None:
        self._observation = observation
        self._name = name

    @property
    def value(self) -> int:
        return int(self._observation.get[self._name] or 0)


class _Counted:
    """A number computed when first read (as an accumulator's `.value`)."""

    def __init__(self, compute: Any) -> None:
        self._compute = compute
        self._value: int | None = None

    @property
    def value(self) -> int:
        if self._value is None:
            self._value = int(self._compute())
        return self._value


def _transform(request: ScoreRequest, source: DataFrame, schema: pa.Schema) -> SparkScoring:
    """Score with the MLlib model's own `transform`, columns as `schema` (see the module
    docstring): its `prediction`, the request's `constants` (model name and version, scoring
    time and date) and a null `probability`; `rows` counts the source's rows, `batches` the
    output's partitions."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    types = {item.name: item.dataType for item in from_arrow_schema(schema).fields}
    keys = request.keys
    values = {
        "prediction": F.col("prediction"),
        "probability": F.lit(None),
        **{name: F.lit(value) for name, value in request.constants.items()},
    }
    scored = request.native_model.transform(source).select(
        *[F.col(f"`{key}`") for key in keys],
        *[values[name].cast(kind).alias(name) for name, kind in types.items() if name not in keys],
    )
    return SparkScoring(scored, _Counted(source.count), _Counted(lambda: _partitions(scored)))


def _partitions(frame: DataFrame) -> int:
    """The frame's partitions; 0 over Spark Connect, which has no RDDs to ask."""
    from brickyard.engines.spark_connect import is_connect

    return 0 if is_connect(frame) else frame.rdd.getNumPartitions()


def _plain(schema: pa.Schema) -> pa.Schema:
    """`schema` with the Arrow types Spark hands to and takes from Python workers."""
    fields = []
    for item in schema:
        kind = item.type
        if pa.types.is_large_string(kind):
            kind = pa.string()
        elif pa.types.is_large_binary(kind):
            kind = pa.binary()
        elif pa.types.is_null(kind):
            kind = pa.string()
        fields.append(pa.field(item.name, kind, nullable=True))
    return pa.schema(fields)


def _score_partition(
    batches: Iterator[pa.RecordBatch],
    *,
    score: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]],
    batch_size: int,
    schema: pa.Schema,
) -> Iterator[pa.RecordBatch]:
    """Runs in a Python worker: score one partition's batches, each with its first row
    marked in `BATCH_START` (for counting)."""
    for out in score(rebatch(batches, batch_size)):
        out = out if out.schema == schema else out.cast(schema)
        if out.num_rows:
            mark = pa.array([1] + [0] * (out.num_rows - 1), pa.int8())
            yield pa.RecordBatch.from_arrays([*out.columns, mark], schema=schema.append(pa.field(BATCH_START, pa.int8())))


def rebatch(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """The same rows in batches of `size` rows (the last one smaller)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        count += batch.num_rows
        while count >= size:
            table = pa.Table.from_batches(pending)
            yield from table.slice(0, size).combine_chunks().to_batches(max_chunksize=size)
            rest = table.slice(size)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield from pa.Table.from_batches(pending).combine_chunks().to_batches()


@dataclass
class StagedSource:
    """A SQL source staged as Parquet files for Spark, and how many rows it held."""

    folder: str
    schema: pa.Schema | None
    rows: int = 0
    files: list[str] = field(default_factory=list)

    def frame(self, spark: SparkSession) -> DataFrame | None:
        """The staged rows as a DataFrame (None when the source had no rows)."""
        from pyspark.sql.pandas.types import from_arrow_schema

        if self.schema is None or not self.files:
            return None
        from brickyard.engines.spark_delta import spark_path

        schema = from_arrow_schema(self.schema, prefer_timestamp_ntz=True)
        return spark.read.schema(schema).parquet(*map(spark_path, self.files))


def stage_sql_batches(batches: Iterator[pa.RecordBatch], folder: str) -> StagedSource:
    """Write each batch to its own Parquet file under `folder` (see the module docstring).

    Raises:
        whatever reading the batches raises; pyarrow's ArrowInvalid / ArrowTypeError when a
        batch's values do not fit the types of the others (text in a numeric column).
    """
    import pyarrow.parquet as pq

    os.makedirs(folder, exist_ok=True)
    staged = StagedSource(folder, None)
    schemas: list[pa.Schema] = []
    for index, batch in enumerate(batches):
        if batch.num_rows == 0:
            continue
        schema = batch.schema if staged.schema is None else pa.unify_schemas([staged.schema, batch.schema], promote_options="permissive")
        table = pa.Table.from_batches([batch])
        if table.schema != schema:
            table = table.cast(schema)
        path = os.path.join(folder, f"part-{index:06d}.parquet")
        pq.write_table(table, path)
        staged.files.append(path)
        schemas.append(schema)
        staged.schema = schema
        staged.rows += batch.num_rows
    if staged.schema is None:
        return staged
    final = pa.schema([
        item.with_type(pa.float64()) if pa.types.is_null(item.type) else item for item in staged.schema
    ])
    for path, schema in zip(staged.files, schemas, strict=True):
        if schema != final:
            pq.write_table(pq.read_table(path).cast(final), path)
    staged.schema = final
    return staged


def _arrow_schema(frame: DataFrame) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(frame.schema, timezone="UTC")


def _worker_error(exc: BaseException) -> str | None:
    """The error a Python worker raised while Spark wrote the scores (its last line), or
    None when the failure was not in the scoring code."""
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen)
        if type(seen).__name__ == "PythonException" or "PythonException" in text:
            lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
            errors = [line for line in lines if "Error:" in line or "Exception:" in line]
            return errors[-1] if errors else (lines[-1] if lines else type(seen).__name__)
        seen = seen.__cause__
    return None
