"""What `brickyard run-show` shows: a run, its attempts, CPU-seconds and their cost.

>>> cost(7200.0, 0.05)
0.1
>>> cost(10.0, None) is None
True
"""

from __future__ import annotations

from dataclasses import dataclass

from brickyard.runtime.records import AttemptRecord, RunRecord
from brickyard.runtime.state import StateStore


def cost(cpu_seconds: float | None, cpu_hour: float | None) -> float | None:
    """CPU-seconds priced at `cpu_hour` per CPU-hour; None without a rate."""
    if cpu_hour is None or cpu_seconds is None:
        return None
    return cpu_seconds / 3600.0 * cpu_hour


@dataclass(frozen=True)
class RunReport:
    """A run with its attempts, priced at `cpu_hour` (None: no pricing configured)."""

    run: RunRecord
    attempts: list[AttemptRecord]
    cpu_hour: float | None = None

    @property
    def cpu_seconds(self) -> float:
        """CPU-seconds of every attempt of the run."""
        return sum(attempt.cpu_seconds or 0.0 for attempt in self.attempts)

    @property
    def cost(self) -> float | None:
        """The run's total cost, or None without pricing."""
        return cost(self.cpu_seconds, self.cpu_hour)

    def attempt_cost(self, attempt: AttemptRecord) -> float | None:
        return cost(attempt.cpu_seconds or 0.0, self.cpu_hour)

    def task_cost(self, task: str) -> float | None:
        """Cost of all attempts of one task."""
        seconds = sum(a.cpu_seconds or 0.0 for a in self.attempts if a.task == task)
        return cost(seconds, self.cpu_hour)

    @property
    def task_names(self) -> list[str]:
        """Tasks in pipeline order (as recorded at start), then any others seen."""
        names = list(self.run.tasks)
        names += [a.task for a in self.attempts if a.task not in names]
        return list(dict.fromkeys(names))


def run_report(store: StateStore, run_id: str, cpu_hour: float | None = None) -> RunReport:
    """Load a run and its attempts.

    Raises:
        RunNotFoundError: no such run.
    """
    return RunReport(store.get_run(run_id), store.attempts(run_id), cpu_hour)
