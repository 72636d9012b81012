"""The Spark engine: the lake's tables and raw files as Spark SQL views, queried with SQL
written in DuckDB's dialect (translated by `brickyard.engines.spark_sql`).

Spark starts on first use (`spark:` in the config: master URL and conf), so opening the
engine costs nothing until a query runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from brickyard.config.models import SparkConfig
from brickyard.engines.base import (
    Engine,
    FittedKMeans,
    IngestBatch,
    KMeansRequest,
    Preview,
    Scored,
    ScoreRequest,
    TableCheck,
    TaskQuery,
    TrainingRows,
)
from brickyard.engines.spark_delta import read_table, spark_path
from brickyard.engines.spark_session import error_text, spark_session
from brickyard.engines.spark_sql import (
    RawScan,
    SparkStatement,
    translate,
    translate_all,
)
from brickyard.errors import BrickyardError, SqlError, TableNotFoundError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from brickyard.core.quality import CheckedWrite, Rule
    from brickyard.engines.asof import AsOfJoin, AsOfResult
    from brickyard.lake.tables import Lake

TRUE = {"true", "1", "yes"}


class SparkEngine(Engine):
    """Runs SQL over the lake on a Spark session."""

    name = "spark"
    distributed = True
    translates_sql = True

    def __init__(self, lake: Lake, config: SparkConfig | None = None) -> None:
        self.lake = lake
        self.config = config or SparkConfig()

    @property
    def spark(self) -> SparkSession:
        """The Spark session (started on first use)."""
        return spark_session(self.config)

    def dataframe(self, query: str, *, where: str = "the query") -> DataFrame:
        """Run every statement of `query`; the last one's result as a (lazy) DataFrame.
        The views it registers stay in this engine's session (`in_new_session` for a
        query of its own).

        Raises:
            SqlError (UntranslatableSqlError for DuckDB-only SQL), TableNotFoundError.
        """
        statements = translate_all(query, where=where)
        if not statements:
            raise SqlError(f"{where} holds no SQL statement")
        result = None
        for statement in statements:
            self.register_views(statement)
            result = run_statement(self.spark, statement, where)
        assert result is not None
        return result

    def in_new_session(self) -> SparkEngine:
        """This engine bound to a new session of the same Spark application: temporary
        views registered through it are its own (a concurrent task never sees them, and
        none is left behind in the shared session)."""
        return _SessionEngine(self, self.spark.newSession())

    def register_views(self, statement: SparkStatement) -> None:
        """Create the temporary views a translated statement names."""
        for view, table in statement.tables.items():
            if not self.lake.exists(table):
                raise TableNotFoundError(table, self.lake.tables())
            read_table(self.spark, self.lake, table).createOrReplaceTempView(view)
        for view, snapshot in statement.snapshots.items():
            frame = read_table(self.spark, self.lake, snapshot.table, version=snapshot.version, as_of=snapshot.timestamp)
            frame.createOrReplaceTempView(view)
        for view, scan in statement.raw.items():
            self.raw_frame(scan).createOrReplaceTempView(view)

    def raw_frame(self, scan: RawScan) -> DataFrame:
        """Raw lake files as a DataFrame (CSV with a header and inferred types, unless
        `all_varchar`; JSON lines; Parquet)."""
        options = dict(scan.options)
        paths = [spark_path(self.lake.location.uri(path)) for path in scan.paths]
        reader = self.spark.read
        with translate_errors("reading " + ", ".join(scan.paths)):
            if scan.format == "csv":
                text_only = options.get("all_varchar", "false") in TRUE
                reader = reader.option("header", options.get("header", "true") not in {"false", "0", "no"})
                reader = reader.option("inferSchema", not text_only)
                separator = options.get("delim") or options.get("sep")
                if separator:
                    reader = reader.option("sep", separator)
                return reader.csv(paths)
            if scan.format == "json":
                return reader.json(paths)
            return reader.parquet(*paths)

    def to_arrow(self, frame: DataFrame, limit: int | None = None) -> pa.Table:
        """Collect a result to the driver as Arrow (only for results meant to be shown)."""
        with translate_errors("the query"):
            return (frame.limit(limit) if limit is not None else frame).toArrow()

    def columns(self, query: str) -> list[str]:
        """The result's column names (Spark analyses the query; no row is read)."""
        with translate_errors("the query"):
            return list(self.in_new_session().dataframe(query).columns)

    def as_of_join(self, join: AsOfJoin) -> AsOfResult:
        """Feature values as of each entity row's timestamp, computed by the executors and
        collected (`brickyard.engines.spark.asof`)."""
        from brickyard.engines.spark.asof import as_of_join

        return as_of_join(self.in_new_session(), join)

    def as_of_frame(self, join: AsOfJoin) -> tuple[DataFrame, dict[str, int]]:
        """The same join as a lazy DataFrame, with the versions the entity source read."""
        from brickyard.engines.spark.asof import as_of_frame

        return as_of_frame(self.in_new_session(), join)

    @classmethod
    def sql_problems(cls, text: str, where: str) -> list[str]:
        """Why `text` (DuckDB SQL) cannot run on Spark: empty when it translates."""
        try:
            translate(text, where=where)
        except SqlError as exc:
            return [str(exc)]
        return []

    def preview(self, query: str, limit: int) -> Preview:
        """The first `limit` rows of the query's result, collected to the driver."""
        shown = self.to_arrow(self.in_new_session().dataframe(query), limit=limit)
        rows = [tuple(row.values()) for row in shown.to_pylist()]
        return Preview(shown.column_names, [str(t) for t in shown.schema.types], rows)

    def fetch(self, query: str) -> pa.Table:
        """The query's result computed by the executors and collected to the driver."""
        return self.to_arrow(self.in_new_session().dataframe(query))

    def check_table(self, table: str, rules: Sequence[Rule], *, task: str) -> TableCheck:
        from brickyard.engines.spark.expect import SparkCheck

        return SparkCheck(self, self.lake, table, self.lake.version(table), rules)

    def task_query(self, text: str, rules: Sequence[Rule], *, where: str) -> TaskQuery:
        from brickyard.engines.spark.sql import SparkTaskQuery

        return SparkTaskQuery(self, text, rules, where)

    def start(self) -> None:
        self.spark  # noqa: B018 - starts the session (SparkUnavailableError when it cannot)

    def ingest_batch(self, batch: IngestBatch) -> CheckedWrite:
        from brickyard.engines.spark.ingest import ingest_batch

        return ingest_batch(self, batch)

    def score_table(self, request: ScoreRequest) -> Scored:
        from brickyard.engines.spark.score import score_table

        return score_table(self, request)

    def training_rows(
        self,
        *,
        table: str | None = None,
        query: str | None = None,
        version: int | None = None,
        pinned: Mapping[str, int] | None = None,
    ) -> TrainingRows:
        from brickyard.engines.spark.training import training_rows

        return training_rows(self, table=table, query=query, version=version, pinned=pinned)

    def fit_kmeans(self, request: KMeansRequest) -> FittedKMeans:
        """MLlib KMeans from brickyard's seeds, by the executors (`brickyard.engines.spark.kmeans`)."""
        from brickyard.engines.spark.kmeans import fit_kmeans

        return fit_kmeans(self, request)

    def export(self, query: str, target: str, fmt: str) -> None:
        """The result written by Spark's executors into the folder `target` (part files;
        csv with a header), replacing what the folder held."""
        writer, target = self.in_new_session().dataframe(query).write.mode("overwrite"), spark_path(target)
        if fmt == "csv":
            writer.option("header", True).csv(target)
        elif fmt == "json":
            writer.json(target)
        else:
            writer.parquet(target)


def run_statement(spark: SparkSession, statement: SparkStatement, where: str) -> DataFrame:
    """Run a translated statement whose views are registered (with DuckDB's rounding,
    which needs the views' column types)."""
    with translate_errors(where):
        schemas = {
            view: {field.name: field.dataType.simpleString() for field in spark.table(view).schema.fields}
            for view in statement.views
        }
        return spark.sql(statement.typed_text(schemas))


@contextmanager
def translate_errors(where: str) -> Iterator[None]:
    """Spark's analysis and parse errors as brickyard's one-line SqlError."""
    try:
        yield
    except BrickyardError:
        raise
    except Exception as exc:
        from pyspark.errors import PySparkException

        if not isinstance(exc, PySparkException | _py4j_error()):
            raise
        raise SqlError(f"{where} failed on Spark: {error_text(exc)}") from exc


def _py4j_error() -> type:
    try:
        from py4j.protocol import Py4JJavaError

        return Py4JJavaError
    except ImportError:  # pragma: no cover
        return RuntimeError


def one_line(message: str) -> str:
    """Spark's message text without its query plan and JVM stack."""
    return error_text(RuntimeError(message))


class _SessionEngine(SparkEngine):
    """A SparkEngine bound to one session (`SparkEngine.in_new_session`)."""

    def __init__(self, base: SparkEngine, session: SparkSession) -> None:
        super().__init__(base.lake, base.config)
        self._session = session

    @property
    def spark(self) -> SparkSession:
        return self._session

    def in_new_session(self) -> SparkEngine:
        return self  # already its own session
