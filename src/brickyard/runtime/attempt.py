"""One task attempt in a worker thread: timeout, wall and CPU time, errors as text (the
values of PII columns withheld: `error_text`). Whether a failure is worth a retry is
`brickyard.errors.is_transient`'s call (a timeout is).

CPU-seconds are the process's user+system time (`getrusage(RUSAGE_SELF)`) over the
attempt, so native threads of DuckDB and delta-rs count too. A timed-out attempt's thread
cannot be stopped; it is left running as a daemon thread and reported as `stray`.
"""

from __future__ import annotations

import contextvars
import copy
import resource
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

from brickyard.core import pii
from brickyard.errors import BrickyardError, is_transient
from brickyard.tasks.base import TaskContext, TaskKind, TaskMetrics


@dataclass(frozen=True)
class AttemptOutcome:
    """What one attempt came to."""

    ok: bool
    wall_seconds: float
    cpu_seconds: float
    metrics: TaskMetrics
    error: str | None = None
    transient: bool = False
    timed_out: bool = False
    stray: threading.Thread | None = None
    hint: str | None = None  # the error's hint (also at the end of `error`)
    # The exception itself, for `--debug` to show with its causes; None for a task whose
    # data holds PII columns (the causes' text may quote row values).
    exception: BaseException | None = None


def cpu_seconds() -> float:
    """User plus system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_attempt(kind: TaskKind, options: Any, context: TaskContext, timeout: float | None) -> AttemptOutcome:
    """Run `kind.run(options, context)` in a daemon thread, waiting at most `timeout` s."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            kind.run(options, context)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes the attempt's error
            failure.append(exc)

    name = f"brickyard-{context.task.name}-{context.attempt}"
    # The thread runs in a copy of this context: the attempt's span (tracing) is current there.
    thread = threading.Thread(target=contextvars.copy_context().run, args=(target,), name=name, daemon=True)
    cpu_start, wall_start = cpu_seconds(), time.perf_counter()
    thread.start()
    thread.join(timeout)
    wall, cpu = time.perf_counter() - wall_start, max(cpu_seconds() - cpu_start, 0.0)
    metrics = copy.deepcopy(context.metrics)
    if thread.is_alive():
        message = f"timed out after {timeout:g} s"
        context.log.error("%s (the task's thread is left running)", message)
        return AttemptOutcome(False, wall, cpu, metrics, message, transient=True, timed_out=True, stray=thread)
    if not failure:
        return AttemptOutcome(True, wall, cpu, metrics)
    exc = failure[0]
    message, transient = error_text(exc, context), is_transient(exc)
    shown = None if context.pii_columns else exc
    if isinstance(exc, BrickyardError):
        context.log.error("%s: %s%s", type(exc).__name__, message, _causes(exc, context))
        return AttemptOutcome(False, wall, cpu, metrics, message, transient, hint=exc.hint, exception=shown)
    if context.pii_columns:
        frames = "".join(traceback.format_tb(exc.__traceback__))
        context.log.error("Traceback (most recent call last):\n%s%s", frames, message)
    else:
        context.log.error("".join(traceback.format_exception(exc)).rstrip())
    return AttemptOutcome(False, wall, cpu, metrics, message, transient, exception=shown)


def _causes(exc: BaseException, context: TaskContext) -> str:
    """The chain of causes of a brickyard error, one `caused by:` line each (PII withheld)."""
    lines: list[str] = []
    cause = exc.__cause__
    while cause is not None and len(lines) < 10:
        named = f"{type(cause).__name__}: " if isinstance(cause, BrickyardError) else ""
        lines.append(f"\n  caused by: {named}{error_text(cause, context)}")
        cause = cause.__cause__
    return "".join(lines)


def error_text(exc: BaseException, context: TaskContext) -> str:
    """The attempt's error as the log, the state database and the CLI show it. For a task
    whose data holds PII columns, the text of an engine's error about the data (which may
    quote a row's values) is withheld; an unexpected exception's message is withheld whole
    unless it is an engine's."""
    text = str(exc) if isinstance(exc, BrickyardError) else f"{type(exc).__name__}: {exc}"
    if not context.pii_columns:
        return text
    withheld = pii.withhold_values(text, context.pii_columns)
    if isinstance(exc, BrickyardError) or withheld != text:
        return withheld
    return f"{type(exc).__name__}: {pii.WITHHELD_MESSAGE}"
