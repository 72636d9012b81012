"""Run and task-attempt records: the tables in the state database and their row types.

Statuses of a run: `queued`, `running`, `succeeded`, `failed`, `cancelled`.
Statuses of a task attempt: `running`, `succeeded`, `failed`, `skipped` (a task whose
upstream failed gets one `skipped` row with attempt number 0).

An attempt's `quarantined_rows` is the number of rows it committed to quarantine tables
(NULL for a task that checks no rows) and `quarantine` says which tables, at which
versions, with the top reasons. Columns added after a release are nullable and added to an
existing state database when it is opened (`db.connect`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from brickyard.runtime.db import METADATA


class RunStatus:
    """The life of a run (plain strings). `queued` and `running` are active; the rest final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TaskStatus:
    """The state of one task in a run (of its latest attempt), as plain strings."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)
FINAL = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)

RUNS = sa.Table(
    "runs",
    METADATA,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("pipeline", sa.String(200), nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("trigger", sa.String(40), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("started_at", sa.DateTime()),
    sa.Column("ended_at", sa.DateTime()),
    sa.Column("pid", sa.Integer()),
    sa.Column("pid_token", sa.String(40)),
    sa.Column("host", sa.String(255)),
    sa.Column("error", sa.Text()),
    sa.Column("full_refresh", sa.Boolean(), nullable=False, default=False),
    sa.Column("engine", sa.String(20)),
    sa.Column("idempotency_key", sa.String(200)),
    sa.Column("params", sa.JSON(), nullable=False, default=dict),
    sa.Column("tasks", sa.JSON(), nullable=False, default=list),
    sa.UniqueConstraint("pipeline", "idempotency_key", name="uq_runs_idempotency"),
    # newest-first pages of runs (all, or one pipeline's) without sorting the whole table
    sa.Index("ix_runs_created", "created_at", "id"),
    sa.Index("ix_runs_pipeline_created", "pipeline", "created_at", "id"),
)

ATTEMPTS = sa.Table(
    "task_attempts",
    METADATA,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("task", sa.String(200), nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("started_at", sa.DateTime()),
    sa.Column("ended_at", sa.DateTime()),
    sa.Column("wall_seconds", sa.Float()),
    sa.Column("cpu_seconds", sa.Float()),
    sa.Column("rows_in", sa.Integer()),
    sa.Column("rows_out", sa.Integer()),
    sa.Column("reads", sa.JSON(), nullable=False, default=dict),
    sa.Column("writes", sa.JSON(), nullable=False, default=dict),
    sa.Column("error", sa.Text()),
    sa.Column("transient", sa.Boolean(), nullable=False, default=False),
    sa.Column("metrics", sa.JSON(), nullable=False, default=dict),
    sa.Column("log_path", sa.Text()),
    sa.Column("quarantined_rows", sa.Integer()),
    sa.Column("quarantine", sa.JSON()),
)


def new_run_id(now: datetime | None = None) -> str:
    """A short id that sorts by creation time: `20261123-101500-ab12cd` (UTC); the first two
    hex digits are the fraction of the second (1/256 s), the other four are random."""
    moment = now or utcnow()
    return f"{moment:%Y%m%d-%H%M%S}-{moment.microsecond * 256 // 1_000_000:02x}{secrets.token_hex(2)}"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def to_db(moment: datetime | None) -> datetime | None:
    """Stored form: naive UTC (SQLite keeps no zone)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment is not None else None


def from_db(moment: datetime | None) -> datetime | None:
    """Read form: aware UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None else None


@dataclass(frozen=True)
class RunRecord:
    """One execution of a pipeline."""

    id: str
    pipeline: str
    status: str
    trigger: str
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    pid: int | None = None
    host: str | None = None
    error: str | None = None
    full_refresh: bool = False
    engine: str | None = None
    idempotency_key: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)
    pid_token: str | None = None

    @property
    def duration_seconds(self) -> float | None:
        """Wall time from start to end (or to now while running); None before it starts."""
        if self.started_at is None:
            return None
        return ((self.ended_at or utcnow()) - self.started_at).total_seconds()

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> RunRecord:
        data = dict(row._mapping)
        for key in ("created_at", "started_at", "ended_at"):
            data[key] = from_db(data[key])
        data["params"] = data["params"] or {}
        data["tasks"] = data["tasks"] or []
        return cls(**data)


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt of one task in a run (or the `skipped` marker of a task never tried)."""

    id: int
    run_id: str
    task: str
    attempt: int
    status: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    wall_seconds: float | None = None
    cpu_seconds: float | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    reads: dict[str, int] = field(default_factory=dict)
    writes: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    transient: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)
    log_path: str | None = None
    quarantined_rows: int | None = None
    quarantine: list[dict[str, Any]] = field(default_factory=list)  # {table, rows, versions, reasons}

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> AttemptRecord:
        data = dict(row._mapping)
        for key in ("started_at", "ended_at"):
            data[key] = from_db(data[key])
        for key in ("reads", "writes", "metrics"):
            data[key] = data[key] or {}
        data["quarantine"] = data.get("quarantine") or []
        return cls(**data)
