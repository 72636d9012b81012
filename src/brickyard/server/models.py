"""The shapes of the control plane's answers, for its OpenAPI document.

Routes that build plain dicts name these models in `responses=` only: the document says what
the answer holds, and the route's output is not re-validated on every request. The
schemathesis test (tests/unit/server/test_server_openapi.py) checks that real answers fit.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

RunState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TaskState = Literal["pending", "running", "succeeded", "failed", "skipped"]


class ErrorBody(BaseModel):
    """Every error: what went wrong, and what to try (or null)."""

    error: str
    hint: str | None


class InvalidRequest(ErrorBody):
    """A 422: the request is well-formed HTTP but a field is wrong."""

    fields: list[str] = Field(description="the fields at fault: `full_refresh`, `query.limit`, `Idempotency-Key`, ...")


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    triggers: Literal["off", "running", "stopped"]


class RunSummary(BaseModel):
    """One run, without its tasks."""

    run_id: str
    pipeline: str
    status: RunState
    trigger: str
    full_refresh: bool
    created_at: str | None = Field(description="ISO 8601, UTC")
    started_at: str | None
    finished_at: str | None
    duration_seconds: float | None
    error: str | None
    quarantined_rows: int | None = Field(
        description="rows the run's tasks committed to quarantine tables; null when no task checks rows"
    )


class QuarantineNote(BaseModel):
    """Rows one task put in one quarantine table during the run."""

    table: str = Field(description="the quarantine table, `zone.name__quarantine`")
    rows: int
    versions: list[int] = Field(description="the table versions the task committed")
    reasons: list[tuple[str, int]] = Field(description="the most frequent `_reason` texts, with their row counts")


class TaskDetail(BaseModel):
    """One task of a run, from its latest attempt (`pending` before the first)."""

    name: str
    status: TaskState
    attempts: int
    started_at: str | None
    finished_at: str | None
    wall_seconds: float | None
    cpu_seconds: float | None
    rows_in: int | None
    rows_out: int | None
    reads: dict[str, Any]
    writes: dict[str, Any]
    error: str | None
    quarantined_rows: int | None = Field(description="over every attempt; null for a task that checks no rows")
    quarantine: list[QuarantineNote]


class RunDetail(RunSummary):
    """One run with its parameters and tasks."""

    params: dict[str, Any]
    tasks: list[TaskDetail]


class RunList(BaseModel):
    pipeline: str
    runs: list[RunSummary]


class Job(BaseModel):
    """A pipeline and its triggers."""

    name: str
    description: str
    schedule: str | None
    file_arrival: str | None
    max_active_runs: int
    tasks: list[str]


class BrokenJob(BaseModel):
    """A pipeline whose file does not parse."""

    name: str
    error: str


class ScheduleTrigger(BaseModel):
    pipeline: str
    kind: Literal["schedule"]
    cron: str
    next_at: str | None


class FileArrivalTrigger(BaseModel):
    pipeline: str
    kind: Literal["file_arrival"]
    path: str
    pending_files: int


class JobList(BaseModel):
    jobs: list[Job | BrokenJob]
    triggers: list[ScheduleTrigger | FileArrivalTrigger]
