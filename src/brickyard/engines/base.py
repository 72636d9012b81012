"""What an engine is: the interface every engine implements, and its capability flags.

An engine runs SQL (DuckDB's dialect) and data work over the lake. It states what it can
do as class attributes, so task kinds and the CLI ask `engine.distributed` instead of
comparing engine names, and a kind lists the capabilities it needs (`TaskKind.needs`);
planning and `brickyard validate` refuse a kind on an engine that lacks one.

Engines are found by name in `brickyard.engines.registry`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from brickyard.core.quality import CheckedWrite, Rule
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
