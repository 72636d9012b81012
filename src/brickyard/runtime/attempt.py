"""One task attempt in a worker thread: timeout, wall and CPU time, errors as text.

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
        context.log.error("%s: %s", type(exc).__name__, exc)
        return AttemptOutcome(False, wall, cpu, metrics, str(exc), transient=exc.transient)
    context.log.error("".join(traceback.format_exception(exc)).rstrip())
    transient = isinstance(exc, ConnectionError | TimeoutError)
    return AttemptOutcome(False, wall, cpu, metrics, f"{type(exc).__name__}: {exc}", transient=transient)
