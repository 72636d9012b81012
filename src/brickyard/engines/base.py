"""What an engine is: the interface every engine implements, and its capability flags.

An engine runs SQL (DuckDB's dialect) and data work over the lake. It states what it can
do as class attributes, so task kinds and the CLI ask `engine.distributed` instead of
comparing engine names, and a kind lists the capabilities it needs (`TaskKind.needs`);
planning and `brickyard validate` refuse a kind on an engine that lacks one.

Engines are found by name in `brickyard.engines.registry`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from brickyard.engines.asof import AsOfJoin, AsOfResult
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


class Engine(ABC):
    """An engine over the lake: a name, capability flags, and the operations the task kinds
    and the CLI call on any engine.

    The kinds' engine-specific halves still reach the concrete engine (the DuckDB
    connection, the Spark session) when a capability flag sends them there.
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
