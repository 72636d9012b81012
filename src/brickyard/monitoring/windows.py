"""The windows a monitor compares with its baseline: by time (hour, day, week, month) or
by batch (one Delta version of the target table each).

Times are UTC without a zone (as the lake stores them). A time window is computed once it
is closed (its end is at or before now); the window that is still open waits for a later
run. Windows already in the results table are never computed again.

>>> from datetime import datetime
>>> [str(w) for w in time_windows(datetime(2026, 1, 1, 5), datetime(2026, 1, 3, 1), "day",
...                                now=datetime(2026, 1, 3, 12), done={datetime(2026, 1, 1)}).due]
['2026-01-02']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

TimeUnit = Literal["hour", "day", "week", "month"]
WindowBy = Literal["hour", "day", "week", "month", "batch"]
TIME_UNITS: tuple[TimeUnit, ...] = ("hour", "day", "week", "month")


@dataclass(frozen=True, order=True)
class Window:
    """Rows with `start <= time < end`; a batch window also names its Delta `version` (its
    start and end are the times of the previous commit and of its own)."""

    start: datetime
    end: datetime
    version: int | None = None
    unit: str = "day"

    def __str__(self) -> str:
        if self.version is not None:
            return f"batch {self.version}"
        formats = {"hour": "%Y-%m-%dT%H", "day": "%Y-%m-%d", "week": "%G-W%V", "month": "%Y-%m"}
        return self.start.strftime(formats.get(self.unit, "%Y-%m-%dT%H:%M"))

    @property
    def slug(self) -> str:
        """The window as a file or folder name (artifacts of its report)."""
        return str(self).replace(" ", "-").replace(":", "")


@dataclass
class WindowPlan:
    """What a run does: the windows `due`, how many were `done` before, the `open` window
    (still filling; computed by a later run), the windows skipped for having no rows, the
    target's rows without a time, and the rows that arrived in windows already computed
    (`late`: window start -> rows; they are not compared)."""

    due: list[Window] = field(default_factory=list)
    done: int = 0
    open: Window | None = None
    empty: int = 0
    untimed: int = 0
    late: dict[datetime, int] = field(default_factory=dict)


def naive_utc(stamp: datetime) -> datetime:
    """`stamp` as UTC without a zone (a zoned time is converted, a naive one kept)."""
    return stamp.astimezone(UTC).replace(tzinfo=None) if stamp.tzinfo is not None else stamp


def floor(stamp: datetime, unit: TimeUnit) -> datetime:
    """The start of the `unit` that holds `stamp` (weeks start on Monday)."""
    stamp = naive_utc(stamp)
    if unit == "hour":
        return stamp.replace(minute=0, second=0, microsecond=0)
    day = stamp.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def following(start: datetime, unit: TimeUnit) -> datetime:
    """The start of the `unit` after the one starting at `start`."""
    if unit == "hour":
        return start + timedelta(hours=1)
    if unit == "day":
        return start + timedelta(days=1)
    if unit == "week":
        return start + timedelta(weeks=1)
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def time_windows(
    first: datetime, last: datetime, unit: TimeUnit, *, now: datetime, done: Iterable[datetime] = ()
) -> WindowPlan:
    """The windows of `unit` from the one holding `first` to the one holding `last` (the
    target's earliest and latest times): those closed by `now` and not in `done` (window
    starts already computed) are due; the one holding `now`, if any, is open."""
    now, finished = naive_utc(now), {naive_utc(stamp) for stamp in done}
    plan = WindowPlan()
    start, stop = floor(first, unit), floor(last, unit)
    while start <= stop:
        window = Window(start, following(start, unit), unit=unit)
        if start in finished:
            plan.done += 1
        elif window.end > now:
            plan.open = window
        else:
            plan.due.append(window)
        start = window.end
    return plan


def batch_windows(commits: Iterable[tuple[int, datetime]], *, done: Iterable[int] = ()) -> WindowPlan:
    """One window per Delta version of the target (`commits`: version and commit time, any
    order) that is not in `done`; version 0 starts at its own commit time."""
    finished = set(done)
    plan = WindowPlan()
    previous: datetime | None = None
    for version, stamp in sorted(commits):
        stamp = naive_utc(stamp)
        window = Window(previous or stamp, stamp, version=version, unit="batch")
        previous = stamp
        if version in finished:
            plan.done += 1
        else:
            plan.due.append(window)
    return plan
