"""The store of runs and task attempts, in the workspace state database.

>>> import tempfile
>>> store = StateStore(f"sqlite:///{tempfile.mkdtemp()}/state.db")
>>> run = store.create_run("daily", trigger="http", idempotency_key="req-1")
>>> run.status, store.find_run_by_idempotency_key("daily", "req-1").id == run.id
('queued', True)
>>> [r.id for r in store.active_runs("daily")] == [run.id]
True

A run goes `queued` -> `running` (`try_start`, which admits at most `max_active_runs` of a
pipeline at once) -> `succeeded` / `failed` (`finish_run`). The process executing a run
records its pid and host; `mark_dead_runs` fails active runs whose process is gone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import sqlalchemy as sa

from brickyard.errors import BrickyardError
from brickyard.runtime import db
from brickyard.runtime.procs import is_alive, start_token, this_host
from brickyard.runtime.records import (
    ACTIVE,
    ATTEMPTS,
    RUNS,
    AttemptRecord,
    RunRecord,
    RunStatus,
    TaskStatus,
    new_run_id,
    to_db,
    utcnow,
)

DIED = "process died (killed?)"


class RunNotFoundError(BrickyardError):
    """No run with the given id."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run {run_id!r}", hint="`brickyard runs` lists recent runs and their ids")
        self.run_id = run_id


class DuplicateRunError(BrickyardError):
    """A run with the same pipeline and idempotency key exists; `existing` is that run."""

    def __init__(self, existing: RunRecord) -> None:
        super().__init__(
            f"run {existing.id} already has idempotency key {existing.idempotency_key!r}",
            hint="reuse that run, or send a new idempotency key",
        )
        self.existing = existing


class StateStore:
    """Runs and attempts in the state database at a SQLAlchemy URL (tables made on first use)."""

    def __init__(self, url: str) -> None:
        self.url = url

    @cached_property
    def engine(self) -> sa.Engine:
        return db.connect(self.url)

    # -- runs ---------------------------------------------------------------------------

    def create_run(
        self,
        pipeline: str,
        trigger: str,
        status: str = RunStatus.QUEUED,
        idempotency_key: str | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        full_refresh: bool = False,
        engine: str | None = None,
        tasks: list[str] | None = None,
        claimed: bool = False,
    ) -> RunRecord:
        """Insert a new run (status `queued` unless told) and return it. `claimed`: this
        process will execute it (its pid and host are recorded, as `claim` does).

        Raises:
            DuplicateRunError: the pipeline already has a run with this idempotency key.
        """
        now = utcnow()
        values: dict[str, Any] = {
            "id": new_run_id(now), "pipeline": pipeline, "status": str(status), "trigger": trigger,
            "created_at": to_db(now), "idempotency_key": idempotency_key, "params": dict(params or {}),
            "full_refresh": full_refresh, "engine": engine, "tasks": list(tasks or []),
        }
        if claimed or status == RunStatus.RUNNING:
            values.update(self._owner())
        if status == RunStatus.RUNNING:
            values["started_at"] = to_db(now)
        try:
            with self.engine.begin() as conn:
                conn.execute(RUNS.insert().values(**values))
        except sa.exc.IntegrityError:
            existing = self.find_run_by_idempotency_key(pipeline, idempotency_key or "")
            if existing is None:
                raise
            # from None: the duplicate key is expected; it is reported as the existing run (noise)
            raise DuplicateRunError(existing) from None
        return self.get_run(values["id"])

    def get_run(self, run_id: str) -> RunRecord:
        """The run with id `run_id`.

        Raises:
            RunNotFoundError: no such run.
        """
        with self.engine.connect() as conn:
            row = conn.execute(RUNS.select().where(RUNS.c.id == run_id)).first()
        if row is None:
            raise RunNotFoundError(run_id)
        return RunRecord.from_row(row)

    def list_runs(self, pipeline: str | None = None, limit: int = 50, offset: int = 0) -> list[RunRecord]:
        """The newest runs first, of one pipeline or all; `offset` skips that many (paging)."""
        query = RUNS.select().order_by(RUNS.c.created_at.desc(), RUNS.c.id.desc()).limit(limit).offset(offset)
        if pipeline is not None:
            query = query.where(RUNS.c.pipeline == pipeline)
        with self.engine.connect() as conn:
            return [RunRecord.from_row(row) for row in conn.execute(query)]

    def count_runs(self, pipeline: str | None = None) -> int:
        """How many runs there are, of one pipeline or all."""
        query = sa.select(sa.func.count()).select_from(RUNS)
        if pipeline is not None:
            query = query.where(RUNS.c.pipeline == pipeline)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def find_run_by_idempotency_key(self, pipeline: str, key: str) -> RunRecord | None:
        """The run of `pipeline` created with idempotency key `key`, if any."""
        query = RUNS.select().where(RUNS.c.pipeline == pipeline, RUNS.c.idempotency_key == key)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return RunRecord.from_row(row) if row is not None else None

    def active_runs(self, pipeline: str | None = None) -> list[RunRecord]:
        """Queued and running runs (of one pipeline or all), oldest first."""
        query = RUNS.select().where(RUNS.c.status.in_([str(s) for s in ACTIVE]))
        if pipeline is not None:
            query = query.where(RUNS.c.pipeline == pipeline)
        with self.engine.connect() as conn:
            return [RunRecord.from_row(row) for row in conn.execute(query.order_by(RUNS.c.created_at, RUNS.c.id))]

    def claim(self, run_id: str, *, tasks: list[str] | None = None, engine: str | None = None) -> RunRecord:
        """Record this process (pid, host) as the one that will execute queued run `run_id`.

        Raises:
            RunNotFoundError: no such run. BrickyardError: the run is not queued.
        """
        run = self.get_run(run_id)
        if run.status != RunStatus.QUEUED:
            raise BrickyardError(
                f"run {run_id} is {run.status}, not queued", hint="only a queued run can be executed by id"
            )
        values: dict[str, Any] = self._owner()
        if tasks is not None:
            values["tasks"] = tasks
        if engine is not None:
            values["engine"] = engine
        self._update(run_id, **values)
        return self.get_run(run_id)

    def try_start(self, run_id: str, max_active: int = 1) -> bool:
        """Move queued run `run_id` to `running` if its pipeline has fewer than `max_active`
        running runs and no older queued run waits with a live process. One atomic UPDATE."""
        other = RUNS.alias("other")
        run = self.get_run(run_id)
        running = (
            sa.select(sa.func.count()).select_from(other)
            .where(other.c.pipeline == run.pipeline, other.c.status == str(RunStatus.RUNNING))
            .scalar_subquery()
        )
        older = (
            sa.select(sa.func.count()).select_from(other)
            .where(other.c.pipeline == run.pipeline, other.c.status == str(RunStatus.QUEUED),
                   other.c.pid.is_not(None), other.c.id != run_id,
                   sa.or_(other.c.created_at < to_db(run.created_at),
                          sa.and_(other.c.created_at == to_db(run.created_at), other.c.id < run_id)))
            .scalar_subquery()
        )
        statement = (
            RUNS.update()
            .where(RUNS.c.id == run_id, RUNS.c.status == str(RunStatus.QUEUED), running < max_active, older == 0)
            .values(status=str(RunStatus.RUNNING), started_at=to_db(utcnow()), **self._owner())
        )
        with self.engine.begin() as conn:
            claimed = conn.execute(statement).rowcount == 1
        if claimed:  # the start time is read after the claim, so it follows the end of the run it waited for
            self._update(run_id, started_at=to_db(utcnow()))
        return claimed

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> RunRecord:
        """Set a run's final status (and error), and its end time."""
        self._update(run_id, status=str(status), error=error, ended_at=to_db(utcnow()))
        return self.get_run(run_id)

    def cancel_run(self, run_id: str) -> bool:
        """Cancel a queued run; False when it is no longer queued."""
        statement = (
            RUNS.update()
            .where(RUNS.c.id == run_id, RUNS.c.status == str(RunStatus.QUEUED))
            .values(status=str(RunStatus.CANCELLED), ended_at=to_db(utcnow()), error="cancelled")
        )
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount == 1

    def mark_dead_runs(self) -> list[str]:
        """Fail the active runs on this host whose recorded process is gone (with their
        running attempts); returns their ids."""
        host = this_host()
        dead = [
            run.id for run in self.active_runs()
            if run.pid is not None and run.host == host and not is_alive(run.pid, run.pid_token)
        ]
        now = to_db(utcnow())
        with self.engine.begin() as conn:
            for run_id in dead:
                conn.execute(
                    ATTEMPTS.update()
                    .where(ATTEMPTS.c.run_id == run_id, ATTEMPTS.c.status == str(TaskStatus.RUNNING))
                    .values(status=str(TaskStatus.FAILED), error=DIED, ended_at=now)
                )
                conn.execute(
                    RUNS.update()
                    .where(RUNS.c.id == run_id, RUNS.c.status.in_([str(s) for s in ACTIVE]))
                    .values(status=str(RunStatus.FAILED), error=DIED, ended_at=now)
                )
        return dead

    # -- attempts -----------------------------------------------------------------------

    def attempts(self, run_id: str) -> list[AttemptRecord]:
        """Every attempt of every task of a run, in the order they began."""
        query = ATTEMPTS.select().where(ATTEMPTS.c.run_id == run_id).order_by(ATTEMPTS.c.id)
        with self.engine.connect() as conn:
            return [AttemptRecord.from_row(row) for row in conn.execute(query)]

    def quarantined_rows(self, run_ids: list[str]) -> dict[str, int]:
        """Rows each run committed to quarantine tables, for the runs whose attempts
        recorded any count (runs of tasks that check no rows are left out)."""
        query = (
            sa.select(ATTEMPTS.c.run_id, sa.func.sum(ATTEMPTS.c.quarantined_rows))
            .where(ATTEMPTS.c.run_id.in_(run_ids), ATTEMPTS.c.quarantined_rows.is_not(None))
            .group_by(ATTEMPTS.c.run_id)
        )
        with self.engine.connect() as conn:
            return {str(run_id): int(total) for run_id, total in conn.execute(query)}

    def start_attempt(self, run_id: str, task: str, attempt: int, log_path: str | None = None) -> int:
        """Insert a `running` attempt; returns its row id."""
        values = {"run_id": run_id, "task": task, "attempt": attempt, "status": str(TaskStatus.RUNNING),
                  "started_at": to_db(utcnow()), "log_path": log_path, "reads": {}, "writes": {}, "metrics": {}}
        with self.engine.begin() as conn:
            key = conn.execute(ATTEMPTS.insert().values(**values)).inserted_primary_key
        assert key is not None
        return int(key[0])

    def finish_attempt(self, attempt_id: int, status: str, **values: Any) -> None:
        """Close an attempt: status plus any of wall_seconds, cpu_seconds, rows_in, rows_out,
        reads, writes, error, transient, metrics, quarantined_rows, quarantine."""
        values.update(status=str(status), ended_at=to_db(utcnow()))
        with self.engine.begin() as conn:
            conn.execute(ATTEMPTS.update().where(ATTEMPTS.c.id == attempt_id).values(**values))

    def record_skipped(self, run_id: str, task: str, reason: str) -> None:
        """Note that `task` did not run because an upstream task failed (attempt number 0)."""
        values = {"run_id": run_id, "task": task, "attempt": 0, "status": str(TaskStatus.SKIPPED),
                  "error": reason, "reads": {}, "writes": {}, "metrics": {}}
        with self.engine.begin() as conn:
            conn.execute(ATTEMPTS.insert().values(**values))

    # -- helpers ------------------------------------------------------------------------

    def _update(self, run_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            if conn.execute(RUNS.update().where(RUNS.c.id == run_id).values(**values)).rowcount != 1:
                raise RunNotFoundError(run_id)

    @staticmethod
    def _owner() -> dict[str, Any]:
        pid = os.getpid()
        return {"pid": pid, "host": this_host(), "pid_token": start_token(pid)}


def mark_dead_runs(store: StateStore) -> list[str]:
    """Fail active runs whose process died (see `StateStore.mark_dead_runs`)."""
    return store.mark_dead_runs()

