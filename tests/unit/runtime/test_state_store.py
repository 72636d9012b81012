"""The state store of runs and attempts, on a real SQLite file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from brickyard.runtime import db
from brickyard.runtime.records import RUNS
from brickyard.runtime.state import DIED, DuplicateRunError, RunNotFoundError, StateStore, mark_dead_runs


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(f"sqlite:///{tmp_path}/state.db")


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_runs_are_created_read_and_listed_newest_first(store: StateStore) -> None:
    first = store.create_run("daily", trigger="manual")
    second = store.create_run("daily", trigger="cron", params={"day": "2026-11-23"})
    other = store.create_run("hourly", trigger="http")
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", first.id)
    assert first.status == "queued" and first.started_at is None and first.created_at.tzinfo is not None
    assert store.get_run(second.id).params == {"day": "2026-11-23"}
    assert [r.id for r in store.list_runs("daily")] == [second.id, first.id]
    assert {r.id for r in store.list_runs()} == {first.id, second.id, other.id}
    assert len(store.list_runs(limit=1)) == 1
    with pytest.raises(RunNotFoundError, match="no run 'missing'"):
        store.get_run("missing")


def test_idempotency_keys_are_unique_per_pipeline(store: StateStore) -> None:
    run = store.create_run("daily", trigger="http", idempotency_key="abc")
    assert store.find_run_by_idempotency_key("daily", "abc") == run
    assert store.find_run_by_idempotency_key("daily", "other") is None
    with pytest.raises(DuplicateRunError) as caught:
        store.create_run("daily", trigger="http", idempotency_key="abc")
    assert caught.value.existing.id == run.id
    assert store.create_run("hourly", trigger="http", idempotency_key="abc").pipeline == "hourly"


def test_try_start_admits_max_active_runs_in_queue_order(store: StateStore) -> None:
    first = store.claim(store.create_run("p", trigger="manual").id)
    second = store.claim(store.create_run("p", trigger="manual").id)
    third = store.claim(store.create_run("p", trigger="manual").id)
    assert not store.try_start(second.id, max_active=1)  # `first` waits longer
    assert store.try_start(first.id, max_active=1)
    assert not store.try_start(second.id, max_active=1)
    assert not store.try_start(third.id, max_active=2)  # `second` is older
    assert store.try_start(second.id, max_active=2)
    assert [r.status for r in store.active_runs("p")] == ["running", "running", "queued"]
    store.finish_run(first.id, "succeeded")
    assert store.try_start(third.id, max_active=2)
    assert not store.try_start(third.id, max_active=2)  # already running
    assert store.get_run(first.id).duration_seconds is not None


def test_runs_whose_process_died_are_failed_with_their_running_attempts(store: StateStore) -> None:
    alive = store.create_run("p", trigger="manual", status="running")
    dead = store.create_run("q", trigger="manual", status="running")
    attempt = store.start_attempt(dead.id, "t", 1)
    with store.engine.begin() as conn:
        conn.execute(RUNS.update().where(RUNS.c.id == dead.id).values(pid=dead_pid(), pid_token=None))
    assert alive.pid == os.getpid()
    assert mark_dead_runs(store) == [dead.id]
    run = store.get_run(dead.id)
    assert (run.status, run.error) == ("failed", DIED)
    assert store.attempts(dead.id)[0].status == "failed" and store.attempts(dead.id)[0].id == attempt
    assert store.get_run(alive.id).status == "running"
    assert store.mark_dead_runs() == []


def test_a_reused_pid_is_not_taken_for_the_process_that_recorded_it(store: StateStore) -> None:
    run = store.create_run("p", trigger="manual", status="running")
    with store.engine.begin() as conn:
        conn.execute(RUNS.update().where(RUNS.c.id == run.id).values(pid_token="1"))
    assert store.mark_dead_runs() == [run.id]


def test_queued_runs_without_a_process_are_left_alone_and_can_be_cancelled(store: StateStore) -> None:
    run = store.create_run("p", trigger="http")
    assert store.mark_dead_runs() == []
    assert store.cancel_run(run.id)
    assert store.get_run(run.id).status == "cancelled"
    assert not store.cancel_run(run.id)
    with pytest.raises(Exception, match="not queued"):
        store.claim(run.id)


def test_attempts_are_recorded_in_order(store: StateStore) -> None:
    run = store.create_run("p", trigger="manual", status="running")
    first = store.start_attempt(run.id, "a", 1, log_path="/tmp/a.log")
    store.finish_attempt(first, "failed", error="boom", transient=True, cpu_seconds=0.5, wall_seconds=1.0)
    second = store.start_attempt(run.id, "a", 2)
    store.finish_attempt(second, "succeeded", rows_in=3, rows_out=2, reads={"bronze.t": 1},
                         writes={"silver.t": 4}, metrics={"auc": 0.9})
    store.record_skipped(run.id, "b", "upstream task 'a' failed")
    a1, a2, b = store.attempts(run.id)
    assert (a1.status, a1.error, a1.transient, a1.cpu_seconds, a1.log_path) == ("failed", "boom", True, 0.5, "/tmp/a.log")
    assert (a2.rows_in, a2.rows_out, a2.reads, a2.writes, a2.metrics) == (3, 2, {"bronze.t": 1}, {"silver.t": 4}, {"auc": 0.9})
    assert a2.ended_at is not None and a2.started_at is not None and a2.ended_at >= a2.started_at
    assert (b.task, b.attempt, b.status) == ("b", 0, "skipped")


def test_tables_live_on_the_shared_metadata(store: StateStore) -> None:
    store.list_runs()
    names = set(sa.inspect(db.connect(store.url)).get_table_names())
    assert {"runs", "task_attempts"} <= names
