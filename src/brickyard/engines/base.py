"""What an engine is: the interface every engine implements, and its capability flags.

An engine runs SQL (DuckDB's dialect) and data work over the lake. It states what it can
do as class attributes, so task kinds and the CLI ask `engine.distributed` instead of
comparing engine names, and a kind lists the capabilities it needs (`TaskKind.needs`);
planning and `brickyard validate` refuse a kind on an engine that lacks one.

Engines are found by name in `brickyard.engines.registry`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    import logging

    from brickyard.core.quality import CheckedWrite, Rule
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


@dataclass(frozen=True)
class TrainingRows:
    """Rows read for training, with the Delta version of every lake table read (lineage)
    and a description of the source for messages (`table x`, `the query`)."""

    table: Any  # a pyarrow.Table
    reads: dict[str, int]
    source: str


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
    ) -> CheckedWrite:
        """Run the query and write its rows to `target` with `mode` (a merge upserts by
        `keys`), its `drop` rows first to the quarantine with `quarantine_mode` (or not:
        `skip_quarantine`, that commit of `transaction` landed already), each in one commit
        with `transaction`; `quarantined(version)` is called when the quarantine commit
        lands. Broken `warn` rules are logged on `log`.

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
    def export(self, query: str, target: str, fmt: str) -> None:
        """Write the result of `query` to `target` as csv, json or parquet, without holding
        it in memory: one file (or /dev/stdout) on an engine that streams locally, a folder
        of part files on a distributed one.

        Raises:
            SqlError, TableNotFoundError, DataFileNotFoundError.
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
