"""What an engine is: the interface every engine implements, and its capability flags.

An engine runs SQL (DuckDB's dialect) and data work over the lake. It states what it can
do as class attributes, so task kinds and the CLI ask `engine.distributed` instead of
comparing engine names, and a kind lists the capabilities it needs (`TaskKind.needs`);
planning and `brickyard validate` refuse a kind on an engine that lacks one.

Engines are found by name in `brickyard.engines.registry`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from brickyard.errors import BrickyardError

if TYPE_CHECKING:
    import logging

    import pyarrow as pa

    from brickyard.core.quality import CheckedWrite, Rule
    from brickyard.engines.asof import AsOfJoin, AsOfResult
    from brickyard.lake import WriteMode
    from brickyard.lake.tables import Lake

# The capability flags an engine class states (each a bool class attribute of `Engine`).
CAPABILITIES: dict[str, str] = {
    "distributed": "work runs on executors of a cluster; results are written by them, "
    "in parts (Spark)",
    "streams_locally": "work runs in this process, streaming rows through it with bounded "
    "memory; the driver-side ML kinds (evaluate, promote, export) need it",
    "translates_sql": "SQL written in DuckDB's dialect is translated, and a construct the "
    "engine lacks is refused by `brickyard validate`",
}


@dataclass(frozen=True)
class Preview:
    """The first rows of a query's result, for showing: column names, type names, rows."""

    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]


class RawReadError(BrickyardError):
    """An engine could not read a batch's raw files (a malformed line, an unreadable file).
    `file` is the lake path of the file the engine named, when it named one of the batch's;
    the kind turns it into the task's located error (file and line)."""

    def __init__(self, message: str, *, hint: str | None = None, file: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.file = file


@dataclass
class IngestBatch:
    """One ingest batch for `Engine.ingest_batch`: the files (lake-relative `files`, full
    `uris`), the column plan (`sources`: the files' columns; `planned`: the target's), the
    rules (`row_rules` checked per row, `unique_rules` counted over the batch), the PII key,
    and how to write: the target and its quarantine modes, `skip_quarantine` (that commit of
    the transaction landed already), partitions, commit metadata and transaction."""

    task: str
    fmt: str  # csv, json or parquet
    reader: Any  # brickyard.core.sources.ReaderOptions
    files: list[Any]  # brickyard.core.sources.SourceFile
    uris: list[str]
    columns_by_file: dict[str, list[str]]
    sources: list[str]
    planned: list[Any]  # brickyard.engines.ingest_sql.PlannedColumn
    row_rules: list[Rule]
    unique_rules: list[Rule]
    key: bytes | None
    target: str
    mode: WriteMode
    quarantine_mode: WriteMode
    skip_quarantine: bool
    partition_by: list[str]
    metadata: dict[str, str]
    transaction: tuple[str, int]
    loaded_at: datetime
    run_id: str
    log: logging.Logger
    max_quarantined: int | float | None = None
    pii_columns: list[str] = field(default_factory=list)
    contract: str | None = None  # the contract's name, for messages


class ScoringFailedError(BrickyardError):
    """The scoring function failed on the rows (a model on input it cannot take); the
    message is its error's text, for the kind to put in context."""


@dataclass
class ScoreRequest:
    """Rows of a source scored batch by batch and written to `target` in one commit
    (`Engine.score_table`).

    `score(batches)` maps Arrow batches of the source's `columns` to output batches; a
    distributed engine ships it to its workers, so it must pickle. `batches()` reads the
    source in this process, batch by batch (a lake table: `table` at `version` is given too,
    for an engine that reads it itself). `empty_schema(source_schema)` is the output schema
    when there are no rows. `native_model`, when given, is a model the engine scores with
    itself (a Spark MLlib model), writing `constants` beside its `prediction`.
    """

    target: str
    mode: Literal["append", "overwrite"]
    partition_by: list[str]
    metadata: dict[str, str]
    transaction: tuple[str, int]
    keys: list[str]
    columns: list[str] | None
    batch_size: int
    score: Callable[[Iterator[Any]], Iterator[Any]]
    batches: Callable[[], Iterator[Any]]
    empty_schema: Callable[[Any], Any]
    check_columns: Callable[[Sequence[str]], None]
    staging: str  # a folder under the lake for what a distributed engine must stage
    table: str | None = None
    version: int | None = None
    native_model: Any = None
    constants: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scored:
    """What `Engine.score_table` wrote: the target's new version (None: another attempt of
    the same transaction committed meanwhile, and nothing was written), rows and batches."""

    version: int | None
    rows: int
    batches: int


@dataclass(frozen=True)
class TrainingRows:
    """Rows read for training, with the Delta version of every lake table read (lineage)
    and a description of the source for messages (`table x`, `the query`)."""

    table: Any  # a pyarrow.Table
    reads: dict[str, int]
    source: str


@dataclass
class KMeansRequest:
    """A KMeans segmentation for an engine that fits it itself (`Engine.fit_kmeans`).

    The rows are a lake `table` (at `version`, else its version in `pinned`) or a `query`;
    `features` None means every column but `exclude` and dates or times. `key` columns are
    kept beside the features for the assignments. `ks` are the k to try, smallest first.
    `seeds(values, weights, k)` is the k-means++ choice (row indices) over the engine's
    hashed sample of distinct feature rows (`brickyard.ml.kmeans_init`, `sample_size` rows),
    so every engine starts Lloyd's iterations from the same centres. `source` names the
    task's source in messages about key columns; `min_rows` is the fewest rows to train on.
    """

    table: str | None
    query: str | None
    version: int | None
    pinned: dict[str, int]
    features: list[str] | None
    exclude: list[str]
    key: list[str]
    ks: list[int]
    params: dict[str, Any]
    seed: int
    seeds: Callable[[Any, Any, int], Any]
    sample_size: int
    min_rows: int
    source: str
    log: logging.Logger


@dataclass(frozen=True)
class ClusterStats:
    """Per cluster (in cluster order): its number, rows and each feature's mean (None where
    all null); and each feature's mean and population deviation over all rows."""

    clusters: list[tuple[int, int, list[float | None]]]
    mean: list[float | None]
    std: list[float | None]


@dataclass
class FittedKMeans(ABC):
    """A KMeans model an engine fitted (`Engine.fit_kmeans`), its rows still on the engine:
    the numbers the train task logs, the engine's own `model` object (for its MLflow
    flavor), and the work that reads those rows again. `close()` releases them."""

    model: Any
    estimator: str  # the model class, as `module:Class`
    rows: int
    features: list[str]
    feature_types: dict[str, str]  # MLflow column types of the raw features (long, float, double)
    nullable: set[str]  # features that held nulls in training
    reads: dict[str, int]
    where: str
    k: int
    silhouette: float
    inertia: float
    iterations: int
    silhouette_by_k: dict[int, float]
    inertia_by_k: dict[int, float]
    params: dict[str, Any]
    seconds: float

    @abstractmethod
    def cluster_stats(self) -> ClusterStats:
        """Rows and feature means per cluster, and the overall means and deviations."""

    @abstractmethod
    def write_tables(self, *, profile: pa.Table | None, profile_table: str | None, assignments_table: str | None,
                     key: Sequence[str]) -> dict[str, int]:
        """Overwrite `profile_table` with `profile` and `assignments_table` with each row's
        `key` columns and `cluster` (int); returns {table: version written}."""

    @abstractmethod
    def model_folders(self) -> tuple[str, str | None]:
        """Where the model's MLflow flavor saves it before logging: (a folder every node sees,
        a staging folder for a remote session or None).

        Raises:
            ModelError: the engine cannot log its model from here.
        """

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release what the fit holds (cached rows)."""


class TableCheck(ABC):
    """The checked rows of one version of a lake table (`Engine.check_table`): every row
    with one flag per rule and the `__by_reason` of its broken `drop` rules (see
    `brickyard.core.quality.checked_query`). Close it when done."""

    table: str
    version: int  # the table version checked

    @abstractmethod
    def count(self) -> tuple[int, list[int]]:
        """The number of rows, and per rule the number that break it.

        Raises:
            SqlError: a rule does not run on the table.
        """

    @abstractmethod
    def rewrite(
        self,
        *,
        metadata: Mapping[str, Any],
        transaction: tuple[str, int],
        run_id: str,
        loaded_at: datetime,
        max_quarantined: int | float | None = None,
    ) -> CheckedWrite:
        """Append the `drop` rows to `<table>__quarantine`, then overwrite the table with the
        rest (its own schema and partitioning), each in one commit with `transaction`; only
        while the table is still at the checked version, and nothing past `max_quarantined`.

        Raises:
            LakeError: the table changed since it was checked.
            QuarantineLimitError, ExpectationFailedError: nothing was written.
        """

    @abstractmethod
    def close(self) -> None:
        """Release what the check holds (views, cached rows)."""


class TaskQuery(ABC):
    """A task's SELECT (DuckDB's dialect) with its rules, ready to run on one engine
    (`Engine.task_query`): pin the lake tables it names, then write its checked rows to a
    target and the `drop` rows to the target's quarantine. Close it when done."""

    rules: list[Rule]  # the rules the query is checked against

    @abstractmethod
    def pin(
        self, since: Callable[[str], int | None] = lambda _: None, at: Mapping[str, int] | None = None
    ) -> dict[str, int]:
        """Make every lake table the query names visible at one version: the one in `at`,
        else its current one; only the rows added after `since(table)` where that is not
        None. Returns {table: version}.

        Raises:
            TableNotFoundError, LakeError: a table or version is not there, or the rows
            since a version cannot be told (the table was rewritten).
        """

    @abstractmethod
    def write(
        self,
        target: str,
        *,
        mode: Literal["overwrite", "append", "merge"],
        quarantine_mode: WriteMode,
        skip_quarantine: bool,
        keys: Sequence[str],
        partition_by: Sequence[str],
        metadata: Mapping[str, str],
        transaction: tuple[str, int],
        run_id: str,
        loaded_at: datetime,
        log: logging.Logger,
        max_quarantined: int | float | None = None,
        quarantined: Callable[[int], None] = lambda _: None,
        order_by: Sequence[str] = (),
    ) -> CheckedWrite:
        """Run the query and write its rows to `target` with `mode` (a merge upserts by
        `keys`), its `drop` rows first to the quarantine with `quarantine_mode` (or not:
        `skip_quarantine`, that commit of `transaction` landed already), each in one commit
        with `transaction`; `quarantined(version)` is called when the quarantine commit
        lands. Broken `warn` rules are logged on `log`. With `order_by`, the rows are
        written sorted by those columns (ascending, nulls first).

        Raises:
            SqlError: the query fails, or lacks a column `keys`/`partition_by` name.
            CommitConflictError: another writer committed `transaction` first.
            ExpectationFailedError, QuarantineLimitError: nothing was written.
        """

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release what the query holds (its engine, views)."""


class Engine(ABC):
    """An engine over the lake: a name, capability flags, and the operations the task kinds
    and the CLI call on any engine.
    """

    name: ClassVar[str]
    # capability flags: see CAPABILITIES
    distributed: ClassVar[bool] = False
    streams_locally: ClassVar[bool] = False
    translates_sql: ClassVar[bool] = False

    def __init__(self, lake: Lake, config: Any = None) -> None:
        """An engine over `lake` with its section of brickyard.yaml (`duckdb:`, `spark:`);
        constructing one does no I/O (the engine starts on first use)."""
        self.lake = lake

    @classmethod
    def capabilities(cls) -> frozenset[str]:
        """The capability flags this engine has."""
        return frozenset(flag for flag in CAPABILITIES if getattr(cls, flag))

    @classmethod
    def sql_problems(cls, text: str, where: str) -> list[str]:
        """Why `text` (DuckDB SQL) cannot run on this engine, for `brickyard validate`;
        empty when it can. Default: none (the engine runs DuckDB's dialect itself)."""
        return []

    @abstractmethod
    def preview(self, query: str, limit: int) -> Preview | None:
        """The first `limit` rows of the last statement of `query`; None when it returns no
        rows (e.g. a SET).

        Raises:
            SqlError, TableNotFoundError, DataFileNotFoundError.
        """

    @abstractmethod
    def fetch(self, query: str) -> pa.Table:
        """The whole result of `query` as an Arrow table in this process, for results meant to
        be held (a monitor's window of rows); on a distributed engine it is computed by the
        executors and collected to the driver.

        Raises:
            SqlError, TableNotFoundError, DataFileNotFoundError.
        """

    @abstractmethod
    def export(self, query: str, target: str, fmt: str) -> None:
        """Write the result of `query` to `target` as csv, json or parquet, without holding
        it in memory: one file (or /dev/stdout) on an engine that streams locally, a folder
        of part files on a distributed one.

        Raises:
            SqlError, TableNotFoundError, DataFileNotFoundError.
        """

    @abstractmethod
    def columns(self, query: str) -> list[str]:
        """The column names of the last statement of `query`, found without reading rows.

        Raises:
            SqlError, TableNotFoundError.
        """

    @abstractmethod
    def as_of_join(self, join: AsOfJoin) -> AsOfResult:
        """Entity rows with feature values looked up as of each row's timestamp, collected
        as Arrow; the rules (TTL, ties, order, no row dropped) are in
        `brickyard.engines.asof`.

        Raises:
            SqlError, TableNotFoundError, LakeError.
        """

    @abstractmethod
    def check_table(self, table: str, rules: Sequence[Rule], *, task: str) -> TableCheck:
        """The rows of `table`'s current version checked against `rules`, for task `task`
        (the `expect` kind).

        Raises:
            TableNotFoundError, LakeError, SqlError (UntranslatableSqlError on Spark).
        """

    @abstractmethod
    def task_query(self, text: str, rules: Sequence[Rule], *, where: str) -> TaskQuery:
        """The `sql` kind's query `text` (one SELECT, DuckDB's dialect) checked against
        `rules`, ready to pin and write; `where` names it in errors.

        Raises:
            SqlError (UntranslatableSqlError on an engine that translates), TableNotFoundError.
        """

    def start(self) -> None:  # noqa: B027 - an engine that starts nothing
        """Start the engine now (a Spark session), so an engine that cannot run fails
        before expensive work (loading a model); a no-op where nothing starts.

        Raises:
            SparkUnavailableError: on Spark, when it cannot start.
        """

    @abstractmethod
    def ingest_batch(self, batch: IngestBatch) -> CheckedWrite:
        """Read, type, check and write one ingest batch: the quarantine commit, then the
        target commit, each with the batch's transaction (see `IngestBatch`).

        Raises:
            RawReadError: the engine could not read a file; IngestError: a located read
            error; CommitConflictError: another writer committed the batch first;
            ExpectationFailedError, QuarantineLimitError: nothing was written; LakeError,
            SqlError.
        """

    @abstractmethod
    def score_table(self, request: ScoreRequest) -> Scored:
        """Score the request's source and write the scores to its target in one commit with
        its transaction (see `ScoreRequest`).

        Raises:
            ScoringFailedError: the scoring function failed on the rows.
            BrickyardError: a column is missing (`check_columns`), a read or write failed.
        """

    @abstractmethod
    def training_rows(
        self,
        *,
        table: str | None = None,
        query: str | None = None,
        version: int | None = None,
        pinned: Mapping[str, int] | None = None,
    ) -> TrainingRows:
        """The rows of a lake `table` (at `version`, else its version in `pinned`, else its
        current one) or of a `query` (DuckDB's dialect; each table it names at its version in
        `pinned`, else its current one), collected to this process for a single-machine
        learner. A table's rows come in the order its files are in the Delta log, and each
        file's rows in file order, on every engine (so a seeded split gives the same model).

        Raises:
            TableNotFoundError, LakeError, SqlError; SparkUnavailableError on Spark.
        """

    def fit_kmeans(self, request: KMeansRequest) -> FittedKMeans:
        """Fit KMeans on the engine's own workers (a `distributed` engine: MLlib on Spark),
        choosing k by silhouette among `request.ks`. An engine that streams rows through
        this process has none: the train kind fits scikit-learn on `training_rows` instead.

        Raises:
            TrainingDataError, ModelError, TableNotFoundError, LakeError, SqlError.
        """
        raise BrickyardError(
            f"the {self.name} engine does not fit KMeans itself",
            hint="brickyard fits KMeans with scikit-learn on this engine's training rows",
        )
