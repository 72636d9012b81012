"""What `brickyard run-show` shows: a run, its attempts, CPU-seconds and their cost, and
the rows its tasks quarantined (which table, version, how many, the top reasons).

>>> cost(7200.0, 0.05)
0.1
>>> cost(10.0, None) is None
True
>>> for line in quarantine_lines([QuarantineSummary("load", "bronze.t__quarantine", 3, (4,), (("fare < 0", 3),))]):
...     print(line)
3 rows went to quarantine in this run:
  bronze.t__quarantine (task load, version 4): 3 rows
    3  fare < 0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from brickyard.runtime.records import AttemptRecord, RunRecord
from brickyard.runtime.state import StateStore

MAX_REASON_CHARS = 160


@dataclass(frozen=True)
class QuarantineSummary:
    """The rows one task of a run committed to one quarantine table."""

    task: str
    table: str
    rows: int
    versions: tuple[int, ...] = ()
    reasons: tuple[tuple[str, int], ...] = ()  # the most frequent `_reason` texts, with counts

    @classmethod
    def from_note(cls, task: str, note: Mapping[str, Any]) -> QuarantineSummary:
        """From a recorded note `{table, rows, versions, reasons}`."""
        reasons = tuple((str(reason), int(count)) for reason, count in note.get("reasons") or ())
        versions = tuple(int(v) for v in note.get("versions") or ())
        return cls(task, str(note["table"]), int(note["rows"]), versions, reasons)


def quarantine_summaries(entries: Iterable[tuple[str, Sequence[Mapping[str, Any]]]]) -> list[QuarantineSummary]:
    """One summary per task and quarantine table from (task, notes) pairs, e.g. the
    attempts of a run in order (a table quarantined by two attempts of a task is merged)."""
    merged: dict[tuple[str, str], QuarantineSummary] = {}
    for task, notes in entries:
        for note in notes:
            found = QuarantineSummary.from_note(task, note)
            key = (task, found.table)
            if key in merged:
                found = _merge(merged[key], found)
            merged[key] = found
    return [summary for summary in merged.values() if summary.rows]


def _merge(first: QuarantineSummary, second: QuarantineSummary) -> QuarantineSummary:
    counts = dict(first.reasons)
    for reason, count in second.reasons:
        counts[reason] = counts.get(reason, 0) + count
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: max(len(first.reasons), len(second.reasons))]
    versions = tuple(dict.fromkeys(first.versions + second.versions))
    return QuarantineSummary(first.task, first.table, first.rows + second.rows, versions, tuple(top))


def quarantine_lines(summaries: Sequence[QuarantineSummary]) -> list[str]:
    """What a person reads about a run's quarantines: a headline, then per task and table
    the rows and the top reasons (no lines when nothing was quarantined)."""
    total = sum(summary.rows for summary in summaries)
    if not total:
        return []
    lines = [f"{_rows(total)} went to quarantine in this run:"]
    for summary in summaries:
        where = f"task {summary.task}"
        if summary.versions:
            label = "version" if len(summary.versions) == 1 else "versions"
            where += f", {label} {', '.join(str(v) for v in summary.versions)}"
        lines.append(f"  {summary.table} ({where}): {_rows(summary.rows)}")
        width = max((len(str(count)) for _, count in summary.reasons), default=0)
        lines += [f"    {count:>{width}}  {_short(reason)}" for reason, count in summary.reasons]
    return lines


def _rows(count: int) -> str:
    return f"{count:,} row{'' if count == 1 else 's'}"


def _short(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 1] + "…"


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
    def quarantined_rows(self) -> int | None:
        """Rows the run's attempts committed to quarantine tables (None: no task checks rows)."""
        counts = [a.quarantined_rows for a in self.attempts if a.quarantined_rows is not None]
        return sum(counts) if counts else None

    @property
    def quarantine(self) -> list[QuarantineSummary]:
        """Per task and quarantine table, the rows this run quarantined."""
        return quarantine_summaries((a.task, a.quarantine) for a in self.attempts)

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
