"""`brickyard validate`: every problem in the workspace's pipelines and contracts, at once.

>>> import tempfile
>>> from brickyard import Workspace
>>> ws = Workspace.init(tempfile.mkdtemp())
>>> _ = (ws.root / "pipelines" / "p.yaml").write_text(
...     "tasks:\\n  - {name: a, kind: pyton}\\n  - {name: b, kind: python, depends_on: [c]}\\n")
>>> for problem in validate_workspace(ws): print(problem)  # doctest: +ELLIPSIS
pipelines/p.yaml:2: unknown task kind 'pyton' (hint: did you mean python? known kinds: evaluate, ...)
pipelines/p.yaml:3: task 'b' depends on unknown task 'c'
pipelines/p.yaml:3: tasks[1] (b).function: Field required (got {})

Checked, per pipeline and per engine a task may run on (see `validate_workspace`): YAML and schema, duplicate task names, unknown `depends_on`, cycles,
unknown kinds, each task's options against its kind's `Options` (every problem; a key the
kind does not take is reported and left out, so the rest is still checked), then the kind's
own `check` (missing tables, files, SQL errors; for `train` the estimator, its params and
the columns it names, for `promote` the metrics its rules compare), each problem at the
line of the key it is about. Per contract: YAML and schema, column types, columns named by
keys and expectations.

Columns are known from the lake, or, for a table a pipeline task writes, from what that
task says it writes (`TaskKind.columns`: an ingest knows its files' and contract's
columns); where they cannot be known before a run (a `sql` target), they are not checked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from brickyard.config.yaml_lines import Location, line_of, load_yaml_with_lines, read_text
from brickyard.core.contract import TYPE_ALIASES, Contract
from brickyard.core.files import TASK_KEYS, PipelineFile, load_pipeline
from brickyard.core.pipeline import PipelineSpec
from brickyard.engines.registry import engine_class, engine_names
from brickyard.errors import BrickyardError, ConfigError, suggest
from brickyard.lake import TableName
from brickyard.runtime.schema_problems import located_errors, schema_problems
from brickyard.tasks.base import CheckContext, TaskKind, Writer
from brickyard.tasks.registry import get_kind
from brickyard.workspace import Workspace


@dataclass(frozen=True, order=True)
class Problem:
    """One problem, located: `file:line: message` (file relative to the workspace)."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class _Task:
    index: int
    kind: TaskKind
    options: Any


def pipeline_files(ws: Workspace) -> list[Path]:
    """The pipeline files, `pipelines/*.yaml`."""
    return sorted((ws.root / "pipelines").glob("*.yaml"))


def contract_files(ws: Workspace) -> list[Path]:
    """The contract files, `contracts/*.yaml` and `*.yml`."""
    folder = ws.root / "contracts"
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def feature_files(ws: Workspace) -> list[Path]:
    """The feature table definitions, `features/*.yaml`."""
    return sorted((ws.root / "features").glob("*.yaml"))


def validate_workspace(ws: Workspace, engine: str | None = None) -> list[Problem]:
    """Every problem in every pipeline and contract, sorted by file and line.

    A task is checked for each engine it may run on: the one its pipeline is configured
    with, and every other engine `brickyard run --engine` could pick (each engine all the
    pipeline's tasks without an `engine:` of their own can run on); with `engine`, only
    that one, as `brickyard run --engine` would use it. Checks translate SQL; none starts
    an engine.
    """
    problems: list[Problem] = []
    loaded: list[tuple[PipelineFile, list[_Task]]] = []
    for path in pipeline_files(ws):
        file = _load_pipeline(ws, path, problems)
        if file is not None:
            problems.extend(_structure(ws, file))
            loaded.append((file, _tasks(ws, file, problems)))
    writers: dict[str, list[Writer]] = {}
    for _, tasks in loaded:
        for task in tasks:
            for table in _writes(task):
                writers.setdefault(table, []).append(Writer(task.kind, task.options))
    produced = frozenset(writers)
    for file, tasks in loaded:
        alternatives = _other_engines(ws, file, tasks) if engine is None else []
        for task in tasks:
            spec = file.spec.tasks[task.index]
            line = line_of(file.lines, ("tasks", task.index))
            chosen = spec.engine or engine or file.spec.engine or ws.config.engine
            if chosen not in engine_names():
                problems.append(Problem(_relative(ws, file.path), line, f"task {spec.name!r}: unknown engine {chosen!r} (engines: {', '.join(engine_names())})"))
                continue
            missing = task.kind.missing(engine_class(chosen))
            if missing:
                problems.append(Problem(
                    _relative(ws, file.path), line,
                    f"task {spec.name!r}: kind {task.kind.name} cannot run on engine {chosen!r}: it needs "
                    f"{', '.join(missing)} (it runs on: {', '.join(task.kind.engines)})",
                ))
                continue
            found: list[Problem] = []
            for each in [chosen, *([] if spec.engine else [e for e in alternatives if e != chosen])]:
                context = CheckContext(ws, file.spec, produced, engine=ws.engine_named(each), writers=writers, task=spec)
                for message in _check(task, context):
                    at = line_of(file.lines, ("tasks", task.index, *getattr(message, "at", ())))
                    on = f" on engine {each!r}" if each != chosen else ""
                    problem = Problem(_relative(ws, file.path), at, f"task {spec.name!r}{on}: {message}")
                    if problem not in found and replace(problem, message=f"task {spec.name!r}: {message}") not in found:
                        found.append(problem)
            problems.extend(found)
    for path in contract_files(ws):
        problems.extend(_contract_problems(ws, path))
    for path in feature_files(ws):
        problems.extend(_feature_problems(ws, path, produced))
    return sorted(problems, key=lambda p: (p.file, p.line or 0))


def _other_engines(ws: Workspace, file: PipelineFile, tasks: list[_Task]) -> list[str]:
    """The engines `brickyard run --engine` could run this pipeline on: those every task
    without an `engine:` of its own can run on."""
    free = [task for task in tasks if not file.spec.tasks[task.index].engine]
    return [engine for engine in engine_names() if all(engine in task.kind.engines for task in free)]


def _relative(ws: Workspace, path: str | Path) -> str:
    try:
        return os.path.relpath(path, ws.root)
    except ValueError:
        return str(path)


def _from_error(ws: Workspace, path: Path, exc: BrickyardError) -> Problem:
    if isinstance(exc, ConfigError) and exc.file:
        where = ":".join(str(part) for part in (exc.file, exc.line) if part is not None)
        text = str(exc)
        message = text[len(where) + 2 :] if text.startswith(where + ": ") else text
        return Problem(_relative(ws, exc.file), exc.line, message)
    return Problem(_relative(ws, path), None, str(exc))


def _load_pipeline(ws: Workspace, path: Path, problems: list[Problem]) -> PipelineFile | None:
    try:
        return load_pipeline(path)
    except ConfigError as exc:
        found: list[Problem] = []
        try:
            data, lines = load_yaml_with_lines(read_text(path), str(path))
            if isinstance(data, dict) and data.setdefault("name", path.stem) == path.stem:
                found = [Problem(_relative(ws, path), line, message)
                         for line, message in schema_problems(PipelineSpec, data, lines)]
        except ConfigError:
            pass
        problems.extend(found or [_from_error(ws, path, exc)])
        return None


def _structure(ws: Workspace, file: PipelineFile) -> list[Problem]:
    """Duplicate names, unknown dependencies and cycles, each at its line."""
    source, tasks = _relative(ws, file.path), file.spec.tasks
    names = [task.name for task in tasks]
    found: list[Problem] = []
    for index, task in enumerate(tasks):
        if task.name in names[:index]:
            line = line_of(file.lines, ("tasks", index, "name"))
            found.append(Problem(source, line, f"task name {task.name!r} is used more than once"))
        for dependency in task.depends_on:
            if dependency not in names:
                close = suggest(dependency, sorted(set(names)))
                hint = f" (hint: {close})" if close else ""
                line = line_of(file.lines, ("tasks", index, "depends_on"))
                found.append(Problem(source, line, f"task {task.name!r} depends on unknown task {dependency!r}{hint}"))
    if not found:
        try:
            TopologicalSorter({task.name: task.depends_on for task in tasks}).prepare()
        except CycleError as exc:
            cycle: list[str] = exc.args[1]
            line = line_of(file.lines, ("tasks", names.index(cycle[0]), "depends_on"))
            found.append(Problem(source, line, f"tasks depend on each other in a cycle: {' -> '.join(cycle)}"))
    return found


def _tasks(ws: Workspace, file: PipelineFile, problems: list[Problem]) -> list[_Task]:
    """Each task's kind and parsed options; problems for unknown kinds and bad options."""
    tasks = []
    for index, spec in enumerate(file.spec.tasks):
        try:
            kind = get_kind(spec.kind)
        except Exception as exc:  # noqa: BLE001 - an unknown kind, or one whose module is broken
            line = line_of(file.lines, ("tasks", index, "kind"))
            message = str(exc) if isinstance(exc, BrickyardError) else (
                f"task kind {spec.kind!r} could not be loaded: {type(exc).__name__}: {exc}")
            problems.append(Problem(_relative(ws, file.path), line, message))
            continue
        options = _options(ws, file, index, kind, problems)
        if options is not None:
            tasks.append(_Task(index, kind, options))
    return tasks


def _options(ws: Workspace, file: PipelineFile, index: int, kind: TaskKind, problems: list[Problem]) -> Any | None:
    """A task's options parsed with its kind's model, every problem with them reported.

    Keys the kind does not take are reported, then left out, so that the kind's own check
    still looks at the rest: a typo in one key does not hide a wrong column in another.
    """
    spec = file.spec.tasks[index]
    data = spec.options
    try:
        return kind.Options.model_validate(data)
    except ValidationError:
        pass
    source, lines = _relative(ws, file.path), file.task_lines(index)
    for line, field, message in located_errors(kind.Options, data, lines, also_known=TASK_KEYS):
        problems.append(Problem(source, line, f"tasks[{index}] ({spec.name}){'.' + field if field else ''}: {message}"))
    try:
        return kind.Options.model_validate({k: v for k, v in data.items() if k in kind.Options.model_fields})
    except ValidationError:
        return None


def _writes(task: _Task) -> list[str]:
    try:
        return list(task.kind.writes(task.options))
    except Exception:  # noqa: BLE001 - a kind's bug must not stop validation
        return []


def _check(task: _Task, context: CheckContext) -> list[str]:
    try:
        return list(task.kind.check(task.options, context))
    except BrickyardError as exc:
        return [str(exc)]
    except Exception as exc:  # noqa: BLE001 - reported, not raised: validate lists everything
        return [f"the {task.kind.name!r} kind's check failed: {type(exc).__name__}: {exc}"]


def _contract_problems(ws: Workspace, path: Path) -> list[Problem]:
    source = _relative(ws, path)
    try:
        data, lines = load_yaml_with_lines(read_text(path), str(path))
    except ConfigError as exc:
        return [_from_error(ws, path, exc)]
    if not isinstance(data, dict):
        return [Problem(source, 1, "expected a mapping of keys to values")]
    found = schema_problems(Contract, data, lines)
    if found:
        return [Problem(source, line, message) for line, message in found]
    contract = Contract.model_validate(data)
    return [Problem(source, line, message) for line, message in _contract_semantics(contract, lines)]


def _feature_problems(ws: Workspace, path: Path, produced: frozenset[str]) -> list[Problem]:
    """A feature table definition: YAML and schema, then its source (the SQL file, the
    table: in the lake or written by a pipeline) and its key and time columns."""
    from brickyard.core.feature_table import FeatureTableSpec
    from brickyard.core.files import load_feature_table

    source = _relative(ws, path)
    try:
        data, lines = load_yaml_with_lines(read_text(path), str(path))
    except ConfigError as exc:
        return [_from_error(ws, path, exc)]
    if not isinstance(data, dict):
        return [Problem(source, 1, "expected a mapping of keys to values")]
    found = schema_problems(FeatureTableSpec, {"name": path.stem, **data}, lines)
    if found:
        return [Problem(source, line, message) for line, message in found]
    try:
        spec = load_feature_table(path)
    except ConfigError as exc:
        return [_from_error(ws, path, exc)]
    problems: list[Problem] = []
    if spec.source.table is not None:
        line = line_of(lines, ("source", "table"))
        try:
            TableName.parse(spec.source.table)
            if spec.source.table not in produced and not ws.lake.exists(spec.source.table):
                problems.append(Problem(source, line, f"source table {spec.source.table} does not exist and no pipeline task writes it"))
        except BrickyardError as exc:
            problems.append(Problem(source, line, str(exc)))
    else:
        text = str(spec.source.sql).strip()
        if text.endswith(".sql") and " " not in text and not (ws.root / text).is_file():
            problems.append(Problem(source, line_of(lines, ("source", "sql")), f"SQL file {text} not found (looked in {ws.root / text})"))
    named = [*spec.keys, spec.event_time, *([spec.created_time] if spec.created_time else [])]
    for column in sorted({c for c in named if named.count(c) > 1}):
        problems.append(Problem(source, line_of(lines, ("keys",)), f"column {column!r} has two roles (keys, event_time, created_time must differ)"))
    return problems


def _contract_semantics(contract: Contract, lines: dict[Location, int]) -> list[tuple[int | None, str]]:
    """Table name, column types, and columns that keys and expectations name."""
    found: list[tuple[int | None, str]] = []
    if contract.table is not None:
        try:
            TableName.parse(contract.table)
        except BrickyardError as exc:
            found.append((line_of(lines, ("table",)), str(exc)))
    for index, column in enumerate(contract.columns):
        if column.type.lower() not in TYPE_ALIASES:
            error = _type_error(column.type)
            if error:
                found.append((line_of(lines, ("columns", index, "type")), f"column {column.name!r}: {error}"))
    names = [column.name for column in contract.columns]
    if not names:
        return found
    for index, key in enumerate(contract.keys):
        if key not in names:
            found.append((line_of(lines, ("keys", index)), _unknown_column(key, names, "key")))
    for index, expectation in enumerate(contract.expectations):
        for named in _expectation_columns(expectation):
            if named not in names:
                where = line_of(lines, ("expectations", index))
                found.append((where, _unknown_column(named, names, f"expectation {expectation.label}")))
    return found


def _expectation_columns(expectation: Any) -> list[str]:
    if expectation.not_null:
        return [expectation.not_null]
    if expectation.unique:
        return list(expectation.unique)
    check = expectation.range or expectation.accepted_values
    return [check.column] if check is not None else []


def _unknown_column(column: str, names: list[str], what: str) -> str:
    close = suggest(column, names)
    return f"{what} names column {column!r}, which the contract does not declare" + (
        f" (hint: {close})" if close else ""
    )


def _type_error(type_text: str) -> str | None:
    """None if DuckDB understands the type, else its complaint."""
    from brickyard.engines.duckdb.engine import type_problem

    return type_problem(type_text)
