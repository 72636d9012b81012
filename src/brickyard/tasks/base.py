"""What a task kind is, and what a running task is given.

A kind is a class with a `name`, an `Options` pydantic model for its own YAML fields, a
`check` that finds problems without running (for `brickyard validate`) and a `run`.
Adding a kind is one module and one line in `brickyard.tasks.registry.BUILTIN_KINDS`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from brickyard.core.pipeline import PipelineSpec, TaskSpec
    from brickyard.engines import DuckDBEngine, SparkEngine
    from brickyard.lake import Lake
    from brickyard.workspace import Workspace


class TaskOptions(BaseModel):
    """Base of every kind's options: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


TOP_REASONS = 3  # the reasons a quarantine summary keeps, most frequent first


@dataclass
class QuarantineNote:
    """Rows a task attempt moved to one quarantine table: how many, the table versions it
    committed, and the most frequent `_reason` texts among those rows, with their counts."""

    table: str
    rows: int = 0
    versions: list[int] = field(default_factory=list)
    reasons: list[tuple[str, int]] = field(default_factory=list)

    def add(self, rows: int, version: int | None, reasons: Sequence[tuple[str, int]]) -> None:
        """Count one more commit (e.g. a second ingest batch) into the note."""
        self.rows += rows
        if version is not None and version not in self.versions:
            self.versions.append(version)
        merged = Counter(dict(self.reasons))
        merged.update(dict(reasons))
        self.reasons = top_reasons(merged.items())

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "rows": self.rows, "versions": list(self.versions),
                "reasons": [[reason, count] for reason, count in self.reasons]}


def top_reasons(counts: Any, limit: int = TOP_REASONS) -> list[tuple[str, int]]:
    """The `limit` most frequent (reason, count) pairs; ties in the reason's order."""
    return sorted(((str(r), int(c)) for r, c in counts), key=lambda item: (-item[1], item[0]))[:limit]


@dataclass
class TaskMetrics:
    """What a task attempt reports: rows, lineage (table versions read and written), extras,
    and the rows it quarantined (`quarantined_rows` stays None for a task that checks none)."""

    rows_in: int = 0
    rows_out: int = 0
    reads: dict[str, int] = field(default_factory=dict)
    writes: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    quarantined_rows: int | None = None
    quarantine: dict[str, QuarantineNote] = field(default_factory=dict)


@dataclass
class TaskContext:
    """Everything a task's `run` may use. Tasks read and write only through it."""

    workspace: Workspace
    pipeline: PipelineSpec
    task: TaskSpec
    run_id: str
    attempt: int
    full_refresh: bool
    log: logging.Logger
    metrics: TaskMetrics = field(default_factory=TaskMetrics)
    engine_name: str = "duckdb"
    # PII columns the task's data holds (from its contract): the runner withholds the
    # values an engine's error may quote before the error reaches a log or the state DB.
    pii_columns: set[str] = field(default_factory=set)

    @property
    def on_spark(self) -> bool:
        """True when the task runs on the Spark engine."""
        return self.engine_name == "spark"

    @property
    def spark(self) -> SparkEngine:
        return self.workspace.spark

    @property
    def lake(self) -> Lake:
        return self.workspace.lake

    @property
    def engine(self) -> DuckDBEngine:
        return self.workspace.engine

    def record_read(self, table: str, version: int) -> None:
        """Note that the task read `table` at `version` (lineage)."""
        self.metrics.reads[table] = version

    def record_write(self, table: str, version: int) -> None:
        """Note that the task committed `table` at `version` (lineage)."""
        self.metrics.writes[table] = version

    def record_quarantine(
        self, table: str, rows: int, version: int | None = None, reasons: Sequence[tuple[str, int]] = ()
    ) -> None:
        """Note that the task committed `rows` rows to quarantine table `table` at `version`,
        with their top `_reason` texts; `rows=0` says the task checked rows and found none."""
        metrics = self.metrics
        metrics.quarantined_rows = (metrics.quarantined_rows or 0) + rows
        if rows:
            metrics.quarantine.setdefault(table, QuarantineNote(table)).add(rows, version, reasons)

    def handles_pii(self, columns: Iterable[str]) -> None:
        """Note that the task's data holds these PII columns (see `pii_columns`)."""
        self.pii_columns.update(columns)


@dataclass
class CheckContext:
    """What `check` may look at: the workspace, the pipeline, and every table some
    pipeline task writes (so a table produced upstream is not reported missing)."""

    workspace: Workspace
    pipeline: PipelineSpec
    produced_tables: frozenset[str]
    engine: str = "duckdb"  # the engine the pipeline runs on (its SQL must translate for it)
    engine: str = "duckdb"  # the engine the task will run on (its SQL must translate for spark)


class TaskKind(ABC):
    """Base class of task kinds."""

    name: ClassVar[str]
    Options: ClassVar[type[TaskOptions]]
    engines: ClassVar[tuple[str, ...]] = ("duckdb",)  # the engines `run` works on

    def check(self, options: Any, context: CheckContext) -> list[str]:
        """Problems found without running (missing files, tables, SQL errors). Default: none."""
        return []

    def writes(self, options: Any) -> list[str]:
        """The tables this task writes (for lineage checks and --full-refresh)."""
        return []

    @abstractmethod
    def run(self, options: Any, context: TaskContext) -> None:
        """Do the task's work; raise a BrickyardError on a user problem."""
