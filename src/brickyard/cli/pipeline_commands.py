"""`brickyard validate`, `schema`, `run`, `runs`, `run-show`, `logs`: pipelines and their runs.

Each command is a few lines over `brickyard.runtime` (validate_workspace, PipelineRunner,
StateStore, run_report, read_logs); this module only renders.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime
from enum import Enum
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from brickyard.cli.options import FormatOption, WorkspaceOption, open_workspace
from brickyard.cli.render import TableFormat, console, emit, key_values
from brickyard.engines.registry import engine_names
from brickyard.errors import BrickyardError

if TYPE_CHECKING:
    from brickyard.runtime.records import AttemptRecord, RunRecord
    from brickyard.runtime.report import RunReport
    from brickyard.runtime.runner import RunEvent, RunResult, TaskState

STATUS_STYLE = {
    "queued": "yellow", "pending": "dim", "running": "cyan", "succeeded": "green",
    "failed": "bold red", "skipped": "magenta", "cancelled": "yellow",
}


# the engines of brickyard.engines.registry, as the choices of --engine
EngineChoice = Enum("EngineChoice", {name: name for name in engine_names()}, type=str)  # type: ignore[misc]


class SchemaFormat(str, Enum):
    json = "json"
    markdown = "markdown"


class ValidationFailedError(BrickyardError):
    """`brickyard validate` found problems."""


class RunFailedError(BrickyardError):
    """A run ended failed or cancelled."""


def validate(
    engine: Annotated[
        EngineChoice | None,
        typer.Option("--engine", help="Check for this engine only (default: every engine a task may run on)."),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Check every pipeline and contract, for every engine a task may run on; list all
    problems as file:line: message."""
    from brickyard.runtime.validate import contract_files, pipeline_files, validate_workspace

    ws = open_workspace(workspace)
    problems = validate_workspace(ws, engine.value if engine else None)
    out = console()
    for problem in problems:
        out.print(str(problem), markup=False)
    if problems:
        raise ValidationFailedError(
            f"{_count(len(problems), 'problem')} found", hint="fix them and run `brickyard validate` again"
        )
    pipelines, contracts = len(pipeline_files(ws)), len(contract_files(ws))
    out.print(f"{_count(pipelines, 'pipeline')}, {_count(contracts, 'contract')} valid")


def schema(
    fmt: Annotated[
        SchemaFormat,
        typer.Option("--format", "-f", help="json: the JSON Schema of pipeline files; markdown: docs/pipelines.md."),
    ] = SchemaFormat.json,
) -> None:
    """Print the JSON Schema of pipeline files, for editors' completion and checks
    (`brickyard schema > brickyard.schema.json`), or the pipeline reference as Markdown."""
    from brickyard.tasks.reference import pipelines_markdown, schema_json

    sys.stdout.write(schema_json() if fmt is SchemaFormat.json else pipelines_markdown())


def run_pipeline(
    pipeline: Annotated[str, typer.Argument(help="The pipeline: pipelines/NAME.yaml.")],
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="Rebuild tables from scratch.")] = False,
    engine: Annotated[EngineChoice | None, typer.Option("--engine", help="Engine (default: from config).")] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", hidden=True, help="Execute this queued run.")] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Run a pipeline, showing its tasks live; exit 1 if a task fails. Rows set aside in
    quarantine tables are reported after the run (a warning: the run still succeeds)."""
    from rich.live import Live

    from brickyard.runtime.report import quarantine_lines
    from brickyard.runtime.runner import PipelineRunner

    ws = open_workspace(workspace)
    signal.signal(signal.SIGTERM, _terminate)
    out = console()
    view = LiveRunView()
    with Live(view, console=out, refresh_per_second=4):
        result = PipelineRunner(ws).run(
            pipeline, full_refresh=full_refresh, run_id=run_id, on_event=view.on_event,
            engine=engine.value if engine else None,
        )
    if not out.is_terminal:
        out.line()
    total = sum(task.wall_seconds or 0.0 for task in result.tasks)
    out.print(f"run {result.run_id} {result.status} ({_seconds(total)} in tasks)", markup=False)
    _print_quarantine(quarantine_lines(result.quarantine), warning=True)
    if result.stray_threads:  # a timed-out task's thread cannot be stopped: leave without it
        if not result.ok:
            sys.stderr.write(f"error: {result.error}\n")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0 if result.ok else 1)
    if not result.ok:
        _raise_failed(result)


def _raise_failed(result: RunResult) -> NoReturn:
    """One `error:` line for a failed run: the task's error, its hint and run-show as one
    hint; with `--debug`, the traceback of the task's error and its causes."""
    message, hint = result.error or result.status, f"brickyard run-show {result.run_id}"
    failed = result.failed_task
    own = f" (hint: {failed.hint})" if failed is not None and failed.hint else ""
    if own and message.endswith(own):
        message, hint = message[: -len(own)], f"{failed.hint}; details: {hint}"  # type: ignore[union-attr]
    raise RunFailedError(message, hint=hint) from (failed.exception if failed is not None else None)


def runs(
    pipeline: Annotated[str | None, typer.Argument(help="Only this pipeline's runs.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs.")] = 20,
    fmt: FormatOption = TableFormat.table,
    workspace: WorkspaceOption = None,
) -> None:
    """List recent runs, newest first, with the rows each quarantined."""
    from brickyard.runtime.state import StateStore

    ws = open_workspace(workspace)
    store = StateStore(ws.state_url)
    listed = store.list_runs(pipeline, limit=limit)
    quarantined = store.quarantined_rows([run.id for run in listed])
    if fmt is not TableFormat.table:
        emit([{**_run_record(run), "quarantined_rows": quarantined.get(run.id)} for run in listed], fmt,
             columns=[*RUN_FIELDS, "quarantined_rows"])
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold")
    for column in ("id", "pipeline", "status", "trigger", "started", "duration", "quarantined"):
        table.add_column(column, no_wrap=True, min_width=len("20260101-000000-abcdef") if column == "id" else None,
                         justify="right" if column == "quarantined" else "left")
    for run in listed:
        table.add_row(run.id, run.pipeline, _status(run.status), run.trigger,
                      _time(run.started_at or run.created_at, short=True), _seconds(run.duration_seconds),
                      _quarantined(quarantined.get(run.id)))
    console().print(table)


def run_show(
    run_id: Annotated[str, typer.Argument(help="The run's id (see `brickyard runs`).")],
    fmt: Annotated[
        TableFormat,
        typer.Option("--format", "-f", help="table (for people); json (everything) or csv (the attempts) for scripts."),
    ] = TableFormat.table,
    workspace: WorkspaceOption = None,
) -> None:
    """Show a run: its tasks' attempts, timings, CPU-seconds, rows, rows quarantined (where
    and why), lineage, errors, and cost (CPU-seconds priced at `pricing: cpu_hour:` of
    brickyard.yaml)."""
    from brickyard.runtime.report import quarantine_lines, run_report
    from brickyard.runtime.state import StateStore

    ws = open_workspace(workspace)
    report = run_report(StateStore(ws.state_url), run_id, ws.config.pricing.cpu_hour)
    if fmt is TableFormat.json:
        emit(_report_document(report), fmt)
        return
    if fmt is TableFormat.csv:
        emit(_attempt_records(report), fmt, columns=ATTEMPT_FIELDS)
        return
    run, priced = report.run, report.cpu_hour is not None
    facts: list[tuple[str, Any]] = [
        ("run", run.id), ("pipeline", run.pipeline), ("status", run.status), ("trigger", run.trigger),
        ("started", _time(run.started_at)), ("ended", _time(run.ended_at)),
        ("duration", _seconds(run.duration_seconds)), ("cpu seconds", f"{report.cpu_seconds:.3f}"),
        ("cost", f"{report.cost:.6f} ({report.cpu_hour:g} per CPU-hour)" if priced
         else "not priced: set pricing.cpu_hour in brickyard.yaml"),
    ]
    if report.quarantined_rows is not None:
        facts.append(("quarantined", f"{report.quarantined_rows:,} row{'' if report.quarantined_rows == 1 else 's'}"))
    if run.full_refresh:
        facts.append(("full refresh", "yes"))
    if run.error:
        facts.append(("error", run.error))
    out = console()
    out.print(key_values(facts))
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold")
    columns = ["task", "attempt", "status", "duration", "cpu s", "rows in", "rows out", "quarantined"]
    for column in columns + (["cost"] if priced else []):
        table.add_column(column, no_wrap=True, justify="left" if column in ("task", "status") else "right")
    seen = {attempt.task for attempt in report.attempts}
    notes: list[str] = []
    for attempt in report.attempts:
        cost = [f"{report.attempt_cost(attempt):.6f}" if attempt.attempt else ""] if priced else []
        table.add_row(*_attempt_cells(attempt), *cost)
        notes.extend(_attempt_notes(attempt))
    for task in report.task_names:
        if task not in seen:
            table.add_row(task, "", _status("pending"), *[""] * (len(columns) - 3 + priced))
    out.print(table)
    for note in notes:
        out.print(note, markup=False)
    _print_quarantine(quarantine_lines(report.quarantine), warning=False)


RUN_FIELDS = [
    "id", "pipeline", "status", "trigger", "created_at", "started_at", "ended_at",
    "duration_seconds", "engine", "full_refresh", "error",
]
ATTEMPT_FIELDS = [
    "task", "attempt", "status", "started_at", "ended_at", "wall_seconds", "cpu_seconds", "cost",
    "rows_in", "rows_out", "quarantined_rows", "quarantine", "reads", "writes", "metrics", "error",
]


def _run_record(run: RunRecord) -> dict[str, Any]:
    return {name: getattr(run, name) for name in RUN_FIELDS}


def _attempt_records(report: RunReport) -> list[dict[str, Any]]:
    """Every attempt, then a `pending` record for each task never tried."""
    records = [
        {
            **{name: getattr(attempt, name) for name in ATTEMPT_FIELDS if name != "cost"},
            "cost": report.attempt_cost(attempt) if attempt.attempt else None,
        }
        for attempt in report.attempts
    ]
    seen = {attempt.task for attempt in report.attempts}
    records += [{"task": task, "status": "pending"} for task in report.task_names if task not in seen]
    return records


def _report_document(report: RunReport) -> dict[str, Any]:
    return {
        "run": _run_record(report.run),
        "cpu_seconds": report.cpu_seconds,
        "cpu_hour": report.cpu_hour,
        "cost": report.cost,
        "quarantined_rows": report.quarantined_rows,
        "attempts": _attempt_records(report),
    }


def logs(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    task: Annotated[str | None, typer.Argument(help="Only this task's log.")] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Print a run's task logs."""
    from brickyard.runtime.logs import read_logs
    from brickyard.runtime.state import StateStore

    ws = open_workspace(workspace)
    order = StateStore(ws.state_url).get_run(run_id).tasks
    found = read_logs(ws.root, run_id, task, order=order)
    for name, text in found:
        if len(found) > 1:
            typer.echo(f"===== {name} =====")
        typer.echo(text, nl=not text.endswith("\n"))


class LiveRunView:
    """The live table of a run: task, status, attempt, duration, rows in/out."""

    def __init__(self) -> None:
        self.title = "starting"
        self.note = ""
        self.tasks: tuple[TaskState, ...] = ()

    def on_event(self, event: RunEvent) -> None:
        if event.tasks:
            self.tasks = event.tasks
        self.title = f"run {event.run_id} of {event.pipeline}"
        self.note = event.message if event.kind in ("waiting", "retry") else ""

    def __rich__(self) -> Table | Text:
        if not self.tasks:  # nothing started (yet): no empty table, e.g. above a load error
            return Text(self.note)
        table = Table(title=self.title, caption=self.note or None, header_style="bold")
        for column in ("task", "status", "attempt", "duration", "rows in", "rows out", "quarantined"):
            table.add_column(column, no_wrap=True)
        for task in self.tasks:
            table.add_row(task.name, _status(task.status), str(task.attempt or ""), _seconds(task.elapsed()),
                          _number(task.rows_in), _number(task.rows_out), _quarantined(task.quarantined_rows))
        return table


def _attempt_cells(attempt: AttemptRecord) -> list[Any]:
    return [
        attempt.task, str(attempt.attempt or ""), _status(attempt.status), _seconds(attempt.wall_seconds),
        f"{attempt.cpu_seconds:.3f}" if attempt.cpu_seconds is not None else "",
        _number(attempt.rows_in), _number(attempt.rows_out), _quarantined(attempt.quarantined_rows),
    ]


def _attempt_notes(attempt: AttemptRecord) -> list[str]:
    """Lineage, extra metrics and the error of an attempt, one line each."""
    label = f"{attempt.task}#{attempt.attempt}" if attempt.attempt else attempt.task
    notes = [f"{label} {word}: {_lineage(tables)}" for word, tables in
             (("read", attempt.reads), ("wrote", attempt.writes)) if tables]
    if attempt.metrics:
        notes.append(f"{label} metrics: " + ", ".join(f"{k}={v}" for k, v in attempt.metrics.items()))
    if attempt.error:
        notes.append(f"{label} {'skipped' if attempt.status == 'skipped' else 'error'}: {attempt.error}")
    return notes


def _print_quarantine(lines: list[str], *, warning: bool) -> None:
    """The quarantine summary; after a run its headline is a yellow `warning:` line."""
    out = console()
    for index, line in enumerate(lines):
        if index == 0 and warning:
            out.print(Text(f"warning: {line}", style="bold yellow"))
        else:
            out.print(line, markup=False, highlight=False)


def _quarantined(value: int | None) -> Text:
    """A quarantined-rows cell: blank for a task that checks no rows, yellow when not 0."""
    return Text(_number(value), style="yellow" if value else "")


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def _lineage(tables: dict[str, int]) -> str:
    return ", ".join(f"{name}@v{version}" for name, version in tables.items())


def _number(value: int | None) -> str:
    return f"{value:,}" if value is not None else ""


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 60:
        return f"{value:.2f} s"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes} m {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} m"


def _time(moment: datetime | None, short: bool = False) -> str:
    """Local time; `short` leaves out the year."""
    if moment is None:
        return ""
    return moment.astimezone().strftime("%m-%d %H:%M:%S" if short else "%Y-%m-%d %H:%M:%S")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("validate")(validate)
    app.command("schema")(schema)
    app.command("run")(run_pipeline)
    app.command("runs")(runs)
    app.command("run-show")(run_show)
    app.command("logs")(logs)
