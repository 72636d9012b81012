"""One task attempt in a worker thread: timeout, wall and CPU time, errors as text (the
values of PII columns withheld: `error_text`).

CPU-seconds are the process's user+system time (`getrusage(RUSAGE_SELF)`) over the
attempt, so native threads of DuckDB and delta-rs count too. A timed-out attempt's thread
cannot be stopped; it is left running as a daemon thread and reported as `stray`.
"""

from __future__ import annotations

import copy
import resource
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

from brickyard.errors import BrickyardError
from brickyard.tasks import pii
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
    thread = threading.Thread(target=target, name=name, daemon=True)
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
    if isinstance(exc, BrickyardError):
        message = error_text(exc, context)
        context.log.error("%s: %s", type(exc).__name__, message)
        return AttemptOutcome(False, wall, cpu, metrics, message, transient=exc.transient)
    if context.pii_columns:
        frames = "".join(traceback.format_tb(exc.__traceback__))
        context.log.error("Traceback (most recent call last):\n%s%s", frames, error_text(exc, context))
    else:
        context.log.error("".join(traceback.format_exception(exc)).rstrip())
    transient = isinstance(exc, ConnectionError | TimeoutError)
    return AttemptOutcome(False, wall, cpu, metrics, error_text(exc, context), transient=transient)


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
