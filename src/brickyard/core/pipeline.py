"""Pipeline definitions: `pipelines/NAME.yaml` as immutable data.

A pipeline is a DAG of tasks. Every task has the common fields below; the rest of its
fields belong to its kind and are validated by that kind's own model (see
`brickyard.tasks.registry`).

```yaml
schedule: "0 6 * * *"               # optional cron expression
trigger: {file_arrival: raw/taxi/}  # optional
max_active_runs: 1
tasks:
  - name: ingest_trips
    kind: ingest
    retries: {count: 2, backoff_seconds: 5}
    timeout_seconds: 600
    source: raw/taxi/*.csv
    target: bronze.taxi_trips
  - name: clean_trips
    kind: sql
    depends_on: [ingest_trips]
    sql: sql/silver_taxi_trips.sql
    target: silver.taxi_trips
```
"""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PATTERN = r"^[a-z_][a-z0-9_]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(Strict):
    """How often a failed task attempt is retried, with exponential backoff."""

    count: int = Field(default=0, ge=0, le=20)
    backoff_seconds: float = Field(default=1.0, ge=0)
    max_backoff_seconds: float = Field(default=60.0, ge=0)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number `attempt` (2 = the first retry)."""
        return min(self.backoff_seconds * 2 ** max(attempt - 2, 0), self.max_backoff_seconds)


class FileArrival(Strict):
    """Start the pipeline when new files land under a lake path."""

    file_arrival: str
    poll_seconds: float = Field(default=5.0, gt=0)
    debounce_seconds: float = Field(default=2.0, ge=0)


class TaskSpec(BaseModel):
    """The fields every task has; `options` holds the kind's own fields, unvalidated here."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    kind: str
    depends_on: tuple[str, ...] = ()
    retries: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_seconds: float | None = Field(default=None, gt=0)
    engine: str | None = None

    @property
    def options(self) -> dict[str, Any]:
        """The kind-specific fields (everything not common to all tasks)."""
        return dict(self.model_extra or {})

    @field_validator("depends_on", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value


class PipelineSpec(Strict):
    """A whole pipeline file."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    schedule: str | None = None
    trigger: FileArrival | None = None
    max_active_runs: int = Field(default=1, ge=1)
    engine: str | None = None
    tasks: tuple[TaskSpec, ...] = Field(min_length=1)

    def task(self, name: str) -> TaskSpec:
        """The task called `name` (KeyError if none)."""
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(name)

    def order(self) -> list[TaskSpec]:
        """Tasks in an order that respects `depends_on` (file order among equals).

        Raises:
            ValueError: a dependency is unknown, duplicated names, or a cycle.
        """
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))
        sorter = TopologicalSorter({t.name: t.depends_on for t in self.tasks})
        position = {t.name: index for index, t in enumerate(self.tasks)}
        sorter.prepare()
        ordered: list[str] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready(), key=position.__getitem__)
            ordered.extend(ready)
            sorter.done(*ready)
        return [self.task(name) for name in ordered]

    def problems(self) -> list[str]:
        """Structural problems: duplicate task names, unknown dependencies, cycles."""
        found: list[str] = []
        names = [t.name for t in self.tasks]
        for name in sorted({n for n in names if names.count(n) > 1}):
            found.append(f"task name {name!r} is used more than once")
        for task in self.tasks:
            for dependency in task.depends_on:
                if dependency not in names:
                    found.append(f"task {task.name!r} depends on unknown task {dependency!r}")
        if not found:
            try:
                TopologicalSorter({t.name: t.depends_on for t in self.tasks}).prepare()
            except CycleError as exc:
                cycle = " -> ".join(exc.args[1])
                found.append(f"tasks depend on each other in a cycle: {cycle}")
        return found
