"""What a task kind is, and what a running task is given.

A kind is a class with a `name`, an `Options` pydantic model for its own YAML fields, a
`check` that finds problems without running (for `brickyard validate`) and a `run`.
Adding a kind is one module and one line in `brickyard.tasks.registry.BUILTIN_KINDS`.

A kind names the engine capabilities it needs (`needs`, flags of
`brickyard.engines.base.Engine`); it runs on every engine that has them, and a task gets
its engine as `TaskContext.engine`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from brickyard.core.options import TaskOptions
from brickyard.core.quality import top_reasons

if TYPE_CHECKING:
    from brickyard.core.pipeline import PipelineSpec, TaskSpec
    from brickyard.engines import SparkEngine
    from brickyard.engines.base import Engine
    from brickyard.lake import Lake
    from brickyard.workspace import Workspace


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
    # The engine the task runs on; an engine's name is looked up in the workspace, and
    # none is the default engine (DuckDB).
    engine: Engine = field(default=None)  # type: ignore[assignment]
    # PII columns the task's data holds (from its contract): the runner withholds the
    # values an engine's error may quote before the error reaches a log or the state DB.
    pii_columns: set[str] = field(default_factory=set)
    # Starts a run of another pipeline through the run system that runs this task:
    # (pipeline, trigger, params, idempotency key) -> the new run's id. None outside a
    # runner (a kind that needs it says so); the runner gives runtime.triggers' Launcher.
    launch: Callable[[str, str, dict[str, Any], str], str] | None = None

    def __post_init__(self) -> None:
        self.engine = _engine_of(self.workspace, self.engine)

    @property
    def engine_name(self) -> str:
        """The name of the task's engine (`duckdb`, `spark`)."""
        return self.engine.name

    @property
    def on_spark(self) -> bool:
        """True when the task runs on the Spark engine (for `python` tasks' functions, which
        use `spark` then; the built-in kinds ask the engine's capability flags instead)."""
        return self.engine.name == "spark"

    @property
    def spark(self) -> SparkEngine:
        return self.workspace.spark

    @property
    def lake(self) -> Lake:
        return self.workspace.lake

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


class CheckProblem(str):
    """A problem `check` found, located at one of the task's keys.

    `at` is the path below the task (`("label",)`, `("features", 1)`); `brickyard validate`
    reports the problem at that key's line. A plain `str` problem is reported at the task.
    """

    at: tuple[str | int, ...]

    def __new__(cls, message: str, *at: str | int) -> CheckProblem:
        problem = super().__new__(cls, message)
        problem.at = at
        return problem


@dataclass(frozen=True)
class Writer:
    """A task that writes a table: its kind and parsed options."""

    kind: TaskKind
    options: Any


@dataclass
class CheckContext:
    """What `check` may look at: the workspace, the pipeline, and every table some
    pipeline task writes (so a table produced upstream is not reported missing)."""

    workspace: Workspace
    pipeline: PipelineSpec
    produced_tables: frozenset[str]
    # the engine the task will run on (its SQL must translate for spark); a name is looked
    # up in the workspace, none is the default engine
    engine: Engine = field(default=None)  # type: ignore[assignment]
    writers: Mapping[str, Sequence[Writer]] = field(default_factory=dict)  # table -> the tasks writing it
    task: TaskSpec | None = None  # the task being checked

    def __post_init__(self) -> None:
        self.engine = _engine_of(self.workspace, self.engine)

    def table_columns(self, table: str) -> list[str] | None:
        """The columns `table` has when the task runs, or None when that cannot be known
        without running the pipeline (checks then stay silent rather than guess).

        A table some pipeline task writes has the columns those tasks say they write (see
        `TaskKind.columns`); any other table has its columns in the lake, if it is there.
        """
        writers = self.writers.get(table, ())
        if writers:
            found: list[str] = []
            for writer in writers:
                try:
                    columns = writer.kind.columns(writer.options, table, self)
                except Exception:  # noqa: BLE001 - a kind's bug must not stop validation
                    columns = None
                if columns is None:
                    return None
                found += [column for column in columns if column not in found]
            return found
        lake = self.workspace.lake
        try:
            return [column.name for column in lake.delta(table).schema().fields] if lake.exists(table) else None
        except Exception:  # noqa: BLE001 - an unreadable table is the lake's problem, reported elsewhere
            return None


def _engine_of(workspace: Workspace, engine: Engine | str | None) -> Engine:
    """The engine a context holds: `engine` itself, or the workspace's engine of that name
    (None: the default engine)."""
    from brickyard.engines.registry import DEFAULT_ENGINE

    if engine is None or isinstance(engine, str):
        return workspace.engine_named(engine or DEFAULT_ENGINE)
    return engine


class TaskKind(ABC):
    """Base class of task kinds."""

    name: ClassVar[str]
    Options: ClassVar[type[TaskOptions]]
    # The engine capabilities `run` needs (flags of brickyard.engines.base.Engine). A kind
    # that says nothing runs its work in this process, so only on a local engine.
    needs: ClassVar[frozenset[str]] = frozenset({"streams_locally"})

    def missing(self, engine: type[Engine] | Engine) -> list[str]:
        """The capabilities this kind needs that `engine` lacks (empty: it runs there)."""
        return sorted(self.needs - engine.capabilities())

    @property
    def engines(self) -> tuple[str, ...]:
        """The names of the engines this kind runs on (see `needs`)."""
        from brickyard.engines.registry import engine_class, engine_names

        return tuple(name for name in engine_names() if not self.missing(engine_class(name)))

    def check(self, options: Any, context: CheckContext) -> list[str]:
        """Problems found without running (missing files, tables, SQL errors). Default: none.
        A `CheckProblem` says which key of the task it is about."""
        return []

    def writes(self, options: Any) -> list[str]:
        """The tables this task writes (for lineage checks and --full-refresh)."""
        return []

    def columns(self, options: Any, table: str, context: CheckContext) -> list[str] | None:
        """The columns `table` (one this task writes) will have once the task ran, when that
        is known without running it; None (the default) when it is not."""
        return None

    @abstractmethod
    def run(self, options: Any, context: TaskContext) -> None:
        """Do the task's work; raise a BrickyardError on a user problem."""
