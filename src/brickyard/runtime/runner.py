"""The pipeline runner: one run, its tasks in order, each attempt recorded.

>>> import tempfile
>>> from brickyard import Workspace
>>> ws = Workspace.init(tempfile.mkdtemp())
>>> _ = (ws.root / "hello.py").write_text("def main(ctx, n):\\n    ctx.metrics.rows_out = n\\n")
>>> _ = (ws.root / "pipelines" / "hello.yaml").write_text(
...     "tasks:\\n  - {name: greet, kind: python, function: 'hello:main', args: {n: 3}}\\n")
>>> result = PipelineRunner(ws).run("hello")
>>> result.status, result.tasks[0].rows_out
('succeeded', 3)
>>> [a.status for a in StateStore(ws.state_url).attempts(result.run_id)]
['succeeded']

Tasks run one after another in this process; each attempt in a worker thread so that
`timeout_seconds` can fail it. A failed task fails the run; the tasks downstream of it are
`skipped`, the others still run. A failed attempt is retried, within the task's `retries`
policy (tenacity), only when its error is transient (`brickyard.errors.is_transient`: an
I/O or connection error, a commit conflict, a locked database, a timeout); a terminal one
(a syntax error, a missing column or table, a bad option) fails the task at once.
At most `max_active_runs` runs of a pipeline run at once; a later run waits `queued`.
Rows a task quarantined are counted on its attempts and summed in `RunResult.quarantine`,
so a run that succeeded with rows set aside says so.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_attempt

from brickyard.errors import BrickyardError, UsageError
from brickyard.runtime.attempt import AttemptOutcome, run_attempt
from brickyard.runtime.logs import close_task_logger, open_task_logger, set_log_field, task_log_path
from brickyard.runtime.plan import Plan, PlannedTask, make_plan, resolve_engine
from brickyard.runtime.records import RunRecord, RunStatus, TaskStatus
from brickyard.runtime.report import QuarantineSummary, quarantine_summaries
from brickyard.runtime.state import StateStore
from brickyard.tasks.base import TaskContext
from brickyard.telemetry import tracing
from brickyard.workspace import Workspace


@dataclass
class TaskState:
    """The live state of one task of a run (what the CLI's table shows)."""

    name: str
    kind: str
    status: str = TaskStatus.PENDING
    attempt: int = 0
    started: float | None = None  # time.monotonic() when the current attempt began
    wall_seconds: float | None = None
    cpu_seconds: float = 0.0
    rows_in: int | None = None
    rows_out: int | None = None
    error: str | None = None
    hint: str | None = None  # the error's hint (already at the end of `error`)
    exception: BaseException | None = field(default=None, repr=False)  # see AttemptOutcome.exception
    quarantined_rows: int | None = None  # over every attempt; None: the task checks no rows
    quarantine: list[dict[str, Any]] = field(default_factory=list)  # notes of every attempt

    def elapsed(self) -> float | None:
        """Seconds of the current attempt so far, or of the last one when finished."""
        if self.status == TaskStatus.RUNNING and self.started is not None:
            return time.monotonic() - self.started
        return self.wall_seconds


@dataclass(frozen=True)
class RunEvent:
    """Something happened: `queued`, `waiting`, `started`, `task`, `retry`, `finished`."""

    kind: str
    run_id: str
    pipeline: str
    task: TaskState | None = None
    message: str = ""
    tasks: tuple[TaskState, ...] = ()  # every task's live state (same objects all run long)


@dataclass
class RunResult:
    """How a run ended."""

    run_id: str
    pipeline: str
    status: str
    error: str | None = None
    tasks: list[TaskState] = field(default_factory=list)
    stray_threads: int = 0  # timed-out attempts whose threads still run

    @property
    def failed_task(self) -> TaskState | None:
        """The first task that failed (its `exception` and `hint` say more), or None."""
        return next((task for task in self.tasks if task.status == TaskStatus.FAILED), None)

    @property
    def ok(self) -> bool:
        return self.status == RunStatus.SUCCEEDED

    @property
    def quarantine(self) -> list[QuarantineSummary]:
        """Per task and quarantine table, the rows this run quarantined."""
        return quarantine_summaries((task.name, task.quarantine) for task in self.tasks)


EventCallback = Callable[[RunEvent], None]


class PipelineRunner:
    """Runs pipelines of one workspace, recording runs in its state database."""

    def __init__(
        self,
        ws: Workspace,
        store: StateStore | None = None,
        *,
        poll_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ws = ws
        self.store = store or StateStore(ws.state_url)
        self.poll_seconds = poll_seconds
        self.sleep = sleep
        self._tracer: Any = None  # set per run when tracing is on (`tracing:` in brickyard.yaml)

    def run(
        self,
        name: str,
        full_refresh: bool = False,
        trigger: str = "manual",
        run_id: str | None = None,
        on_event: EventCallback | None = None,
        *,
        engine: str | None = None,
    ) -> RunResult:
        """Run pipeline `name` to the end; with `run_id`, execute that queued run instead of
        creating one. A failed task does not raise: see `RunResult.status` and `.error`.

        Raises:
            BrickyardError: no such pipeline, an invalid one (ConfigError), an engine that
                cannot run it, or a `run_id` that is unknown, of another pipeline or not queued.
        """
        emit = on_event or (lambda event: None)
        if run_id is not None:
            self._check_queued(run_id, name)
        try:
            plan = make_plan(self.ws, name, engine)
        except Exception as exc:
            if run_id is not None:
                self.store.finish_run(run_id, RunStatus.FAILED, str(exc))
            raise
        self.store.mark_dead_runs()
        if run_id is None:
            record = self.store.create_run(
                name, trigger, full_refresh=full_refresh, engine=plan.engine, tasks=plan.names, claimed=True
            )
        else:
            record = self.store.claim(run_id, tasks=plan.names, engine=plan.engine)
        return self._execute(plan, record, full_refresh or record.full_refresh, emit)

    def launch_run(self, pipeline: str, trigger: str, params: dict[str, Any], idempotency_key: str) -> str:
        """Start a run of `pipeline` in its own process, as every trigger does (a `monitor`
        task's alert action); with an idempotency key seen before, that run's id instead."""
        from brickyard.runtime.triggers import Launcher

        launcher = Launcher(self.ws, store=self.store)
        return launcher.launch(pipeline, trigger, params=params, idempotency_key=idempotency_key).run.id

    def _check_queued(self, run_id: str, name: str) -> None:
        record = self.store.get_run(run_id)
        if record.pipeline != name:
            raise UsageError(f"run {run_id} belongs to pipeline {record.pipeline!r}, not {name!r}")
        if record.status != RunStatus.QUEUED:
            raise BrickyardError(
                f"run {run_id} is {record.status}, not queued", hint="only a queued run can be executed by id"
            )

    def _execute(self, plan: Plan, record: RunRecord, full_refresh: bool, emit: EventCallback) -> RunResult:
        """The run, as a span `run <pipeline>` (a child of `TRACEPARENT`'s) when tracing is on."""
        self._tracer = tracing.tracer(self.ws.config.tracing, self.ws.root)
        attributes = {"brickyard.pipeline": plan.spec.name, "brickyard.run_id": record.id,
                      "brickyard.trigger": record.trigger, "brickyard.engine": plan.engine}
        try:
            with tracing.span(self._tracer, f"run {plan.spec.name}", attributes, parent=tracing.context_from_env()) as span:
                result = self._execute_tasks(plan, record, full_refresh, emit)
                tracing.finish(span, result.ok, result.error, {
                    "brickyard.status": result.status,
                    "brickyard.cpu_seconds": sum(task.cpu_seconds for task in result.tasks),
                    "brickyard.tasks": len(result.tasks),
                })
        finally:
            tracing.flush(self._tracer)
        return result

    def _execute_tasks(self, plan: Plan, record: RunRecord, full_refresh: bool, emit: EventCallback) -> RunResult:
        states = {task.spec.name: TaskState(task.spec.name, task.spec.kind) for task in plan.tasks}
        result = RunResult(record.id, plan.spec.name, RunStatus.RUNNING, tasks=list(states.values()))
        stray: list[threading.Thread] = []
        try:
            emit(RunEvent("queued", record.id, plan.spec.name, tasks=tuple(result.tasks)))
            if not self._wait_turn(record, plan.spec.max_active_runs, emit):
                result.status, result.error = RunStatus.CANCELLED, "cancelled while queued"
                return result
            emit(RunEvent("started", record.id, plan.spec.name, tasks=tuple(result.tasks)))
            for task in plan.tasks:
                self._run_task(plan, task, record.id, states, full_refresh, emit, stray)
            failed = [s for s in states.values() if s.status == TaskStatus.FAILED]
            if failed:
                result.status = RunStatus.FAILED
                result.error = failure_text(failed[0].name, failed[0].error or "")
            else:
                result.status = RunStatus.SUCCEEDED
            self.store.finish_run(record.id, result.status, result.error)
        except (KeyboardInterrupt, SystemExit):
            self.store.finish_run(record.id, RunStatus.CANCELLED, "interrupted")
            raise
        except BaseException as exc:
            self.store.finish_run(record.id, RunStatus.FAILED, f"runner error: {type(exc).__name__}: {exc}")
            raise
        result.stray_threads = sum(thread.is_alive() for thread in stray)
        emit(RunEvent("finished", record.id, plan.spec.name, message=result.error or result.status,
                      tasks=tuple(result.tasks)))
        return result

    def _wait_turn(self, record: RunRecord, max_active: int, emit: EventCallback) -> bool:
        """Block until the run may start (True), or it was cancelled while queued (False)."""
        waiting = False
        while not self.store.try_start(record.id, max_active):
            if self.store.get_run(record.id).status != RunStatus.QUEUED:
                return False
            if not waiting:
                others = [r.id for r in self.store.active_runs(record.pipeline) if r.id != record.id]
                emit(RunEvent("waiting", record.id, record.pipeline, message=f"waiting for {', '.join(others)}"))
                waiting = True
            time.sleep(self.poll_seconds)
            self.store.mark_dead_runs()
        return True

    def _run_task(
        self,
        plan: Plan,
        task: PlannedTask,
        run_id: str,
        states: dict[str, TaskState],
        full_refresh: bool,
        emit: EventCallback,
        stray: list[threading.Thread],
    ) -> None:
        state = states[task.spec.name]
        blocked = [d for d in task.spec.depends_on if states[d].status != TaskStatus.SUCCEEDED]
        if blocked:
            state.status = TaskStatus.SKIPPED
            state.error = f"upstream task {blocked[0]!r} {states[blocked[0]].status}"
            self.store.record_skipped(run_id, task.spec.name, state.error)
            emit(RunEvent("task", run_id, plan.spec.name, state))
            return
        path = task_log_path(self.ws.root, run_id, task.spec.name)
        logger = open_task_logger(path, f"brickyard.{run_id}.{task.spec.name}", pipeline=plan.spec.name, run_id=run_id,
                                  task=task.spec.name)
        policy = task.spec.retries
        numbers = itertools.count(1)

        def note_retry(retry: RetryCallState) -> None:
            delay = retry.next_action.sleep if retry.next_action else 0.0
            message = f"attempt {retry.attempt_number} failed with a transient error; retrying in {delay:g} s"
            logger.warning(message)
            emit(RunEvent("retry", run_id, plan.spec.name, state, message))

        retrying = Retrying(
            stop=stop_after_attempt(policy.count + 1),
            wait=lambda retry: policy.delay(retry.attempt_number + 1),
            retry=retry_if_result(lambda outcome: not outcome.ok and outcome.transient),
            retry_error_callback=lambda retry: retry.outcome.result(),  # type: ignore[union-attr]
            before_sleep=note_retry,
            sleep=self.sleep,
        )
        try:
            attempt = lambda: self._attempt(plan, task, run_id, next(numbers), state, logger, full_refresh, emit)  # noqa: E731
            outcome: AttemptOutcome = retrying(attempt)
        finally:
            close_task_logger(logger)
        if outcome.stray is not None:
            stray.append(outcome.stray)

    def _attempt(
        self,
        plan: Plan,
        task: PlannedTask,
        run_id: str,
        number: int,
        state: TaskState,
        logger: logging.Logger,
        full_refresh: bool,
        emit: EventCallback,
    ) -> AttemptOutcome:
        path = task_log_path(self.ws.root, run_id, task.spec.name)
        attempt_id = self.store.start_attempt(run_id, task.spec.name, number, log_path=str(path))
        state.status, state.attempt, state.started, state.error = TaskStatus.RUNNING, number, time.monotonic(), None
        emit(RunEvent("task", run_id, plan.spec.name, state))
        set_log_field(logger, "attempt", number)
        total = task.spec.retries.count + 1
        logger.info("== attempt %d of %d: task %s (kind %s), run %s", number, total, task.spec.name, task.spec.kind, run_id)
        context = TaskContext(
            self.ws, plan.spec, task.spec, run_id, number, full_refresh, logger,
            engine=self.ws.engine_named(resolve_engine(task.spec.engine or plan.engine)),
            launch=self.launch_run,
        )
        attributes = {"brickyard.pipeline": plan.spec.name, "brickyard.run_id": run_id, "brickyard.task": task.spec.name,
                      "brickyard.task.kind": task.spec.kind, "brickyard.attempt": number}
        with tracing.span(self._tracer, f"task {task.spec.name}", attributes) as span:
            try:
                outcome = run_attempt(task.kind, task.options, context, task.spec.timeout_seconds)
            except BaseException:
                self.store.finish_attempt(attempt_id, TaskStatus.FAILED, error="interrupted")
                raise
            metrics = outcome.metrics
            status = TaskStatus.SUCCEEDED if outcome.ok else TaskStatus.FAILED
            tracing.finish(span, outcome.ok, outcome.error, {
                "brickyard.status": status, "brickyard.rows_in": metrics.rows_in, "brickyard.rows_out": metrics.rows_out,
                "brickyard.cpu_seconds": outcome.cpu_seconds, "brickyard.wall_seconds": outcome.wall_seconds,
                "brickyard.quarantined_rows": metrics.quarantined_rows, "brickyard.transient": outcome.transient or None,
                "brickyard.timed_out": outcome.timed_out or None,
            })
        notes = [note.as_dict() for note in metrics.quarantine.values()]
        self.store.finish_attempt(
            attempt_id, status, wall_seconds=outcome.wall_seconds, cpu_seconds=outcome.cpu_seconds,
            rows_in=metrics.rows_in, rows_out=metrics.rows_out, reads=_jsonable(metrics.reads),
            writes=_jsonable(metrics.writes), error=outcome.error, transient=outcome.transient,
            metrics=_jsonable(metrics.extra), quarantined_rows=metrics.quarantined_rows,
            quarantine=notes or None,
        )
        logger.info("attempt %d %s in %.3f s (%.3f CPU-s), rows in %d, out %d", number, status,
                    outcome.wall_seconds, outcome.cpu_seconds, metrics.rows_in, metrics.rows_out)
        state.status, state.wall_seconds, state.error = status, outcome.wall_seconds, outcome.error
        state.hint, state.exception = outcome.hint, outcome.exception
        if not outcome.ok and not outcome.transient and number < total:
            logger.info("not retried: the error is terminal (another attempt would fail the same way)")
        state.cpu_seconds += outcome.cpu_seconds
        state.rows_in, state.rows_out = metrics.rows_in, metrics.rows_out
        if metrics.quarantined_rows is not None:
            state.quarantined_rows = (state.quarantined_rows or 0) + metrics.quarantined_rows
            state.quarantine += notes
        emit(RunEvent("task", run_id, plan.spec.name, state))
        return outcome


def failure_text(task: str, error: str) -> str:
    """`task 'x' failed: ...`, without the `task x: ` that many task errors begin with."""
    for prefix in (f"task {task}: ", f"task {task!r}: "):
        if error.startswith(prefix):
            error = error[len(prefix):]
            break
    return f"task {task!r} failed: {error}"


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    """A copy that the JSON columns accept (unknown objects as text)."""
    copied: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return copied
