"""A pipeline made ready to run: tasks in order, each with its kind and parsed options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from brickyard.core.files import PipelineFile
from brickyard.core.pipeline import PipelineSpec, TaskSpec
from brickyard.engines.registry import engine_class, engine_names
from brickyard.errors import ConfigError
from brickyard.tasks.base import TaskKind
from brickyard.tasks.registry import UnknownTaskKindError, get_kind
from brickyard.workspace import Workspace


class EngineNotAvailableError(ConfigError):
    """An unknown engine, or a task whose kind cannot run on the engine it was given."""


@dataclass(frozen=True)
class PlannedTask:
    """A task with its kind and validated options."""

    spec: TaskSpec
    kind: TaskKind
    options: Any


@dataclass(frozen=True)
class Plan:
    """A pipeline's tasks in topological order, and the engine it runs on."""

    file: PipelineFile
    tasks: tuple[PlannedTask, ...]
    engine: str

    @property
    def spec(self) -> PipelineSpec:
        return self.file.spec

    @property
    def names(self) -> list[str]:
        return [task.spec.name for task in self.tasks]


def make_plan(ws: Workspace, name: str, engine: str | None = None) -> Plan:
    """Load pipeline `name`, order its tasks and validate every task's options.

    Raises:
        BrickyardError: no such pipeline; ConfigError: invalid file, dependencies, kind or
            options (with file and line); EngineNotAvailableError: an unknown engine, or a task
            whose kind cannot run on its engine.
    """
    file = ws.pipeline(name)
    try:
        ordered = file.spec.order()
    except ValueError as exc:
        # from None: the ValueError's text is this message (noise)
        raise ConfigError(str(exc), file=str(file.path), hint="`brickyard validate` lists every problem") from None
    tasks = []
    for task in ordered:
        try:
            kind = get_kind(task.kind)
        except UnknownTaskKindError as exc:
            line = file.task_line(task.name, "kind")
            # from None: the kind error's message and hint are this error's (noise)
            raise ConfigError(exc.message, file=str(file.path), line=line, hint=exc.hint) from None
        tasks.append(PlannedTask(task, kind, file.parse_options(task, kind.Options)))
    chosen = resolve_engine(engine or file.spec.engine or ws.config.engine)
    for planned in tasks:
        task_engine = resolve_engine(planned.spec.engine or chosen)
        missing = planned.kind.missing(engine_class(task_engine))
        if missing:
            raise EngineNotAvailableError(
                f"task {planned.spec.name!r} (kind {planned.kind.name}) cannot run on engine {task_engine!r}: "
                f"it needs {', '.join(missing)}, which that engine lacks",
                file=str(file.path),
                line=file.task_line(planned.spec.name, "kind"),
                hint=f"kind {planned.kind.name} runs on: {', '.join(planned.kind.engines)}; "
                "set `engine:` on the task to pick one",
            )
    return Plan(file, tuple(tasks), chosen)


def resolve_engine(engine: str) -> str:
    """Check that `engine` is one brickyard has.

    Raises:
        EngineNotAvailableError: an unknown engine.
    """
    if engine not in engine_names():
        raise EngineNotAvailableError(f"unknown engine {engine!r}", hint=f"engines: {', '.join(engine_names())}")
    return engine
