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


OLD_SCHEMA = (  # the state tables as brickyard made them before attempts recorded quarantines
    """CREATE TABLE runs (id VARCHAR(40) NOT NULL, pipeline VARCHAR(200) NOT NULL,
    status VARCHAR(20) NOT NULL, "trigger" VARCHAR(40) NOT NULL, created_at DATETIME NOT NULL,
    started_at DATETIME, ended_at DATETIME, pid INTEGER, pid_token VARCHAR(40), host VARCHAR(255),
    error TEXT, full_refresh BOOLEAN NOT NULL, engine VARCHAR(20), idempotency_key VARCHAR(200),
    params JSON NOT NULL, tasks JSON NOT NULL, PRIMARY KEY (id),
    CONSTRAINT uq_runs_idempotency UNIQUE (pipeline, idempotency_key))""",
    """CREATE TABLE task_attempts (id INTEGER NOT NULL, run_id VARCHAR(40) NOT NULL,
    task VARCHAR(200) NOT NULL, attempt INTEGER NOT NULL, status VARCHAR(20) NOT NULL,
    started_at DATETIME, ended_at DATETIME, wall_seconds FLOAT, cpu_seconds FLOAT, rows_in INTEGER,
    rows_out INTEGER, reads JSON NOT NULL, writes JSON NOT NULL, error TEXT, transient BOOLEAN NOT NULL,
    metrics JSON NOT NULL, log_path TEXT, PRIMARY KEY (id), FOREIGN KEY(run_id) REFERENCES runs (id))""",
    """INSERT INTO runs VALUES ('20250101-000000-000001', 'daily', 'succeeded', 'manual',
    '2025-01-01 00:00:00', '2025-01-01 00:00:00', '2025-01-01 00:00:01', 1, NULL, 'h', NULL, 0, 'duckdb',
    NULL, '{}', '["load"]')""",
    """INSERT INTO task_attempts VALUES (1, '20250101-000000-000001', 'load', 1, 'succeeded',
    '2025-01-01 00:00:00', '2025-01-01 00:00:01', 1.0, 0.5, 10, 9, '{}', '{}', NULL, 0,
    '{"quarantined_rows": 1}', NULL)""",
)


def test_a_state_database_from_before_quarantine_columns_is_migrated_in_place(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    old = sa.create_engine(url)
    with old.begin() as conn:
        for statement in OLD_SCHEMA:
            conn.execute(sa.text(statement))
    old.dispose()

    store = StateStore(url)
    [before] = store.attempts("20250101-000000-000001")
    assert (before.rows_out, before.quarantined_rows, before.quarantine) == (9, None, [])
    assert store.quarantined_rows(["20250101-000000-000001"]) == {}

    run = store.create_run("daily", trigger="manual", status="running")
    attempt = store.start_attempt(run.id, "load", 1)
    note = {"table": "bronze.t__quarantine", "rows": 3, "versions": [2], "reasons": [["bad fare", 3]]}
    store.finish_attempt(attempt, "succeeded", quarantined_rows=3, quarantine=[note])
    [after] = store.attempts(run.id)
    assert (after.quarantined_rows, after.quarantine) == (3, [note])
    assert store.quarantined_rows([run.id, "20250101-000000-000001"]) == {run.id: 3}
    columns = {c["name"] for c in sa.inspect(db.connect(url)).get_columns("task_attempts")}
    assert {"quarantined_rows", "quarantine"} <= columns
    assert StateStore(url).attempts(run.id)[0].quarantined_rows == 3  # a second open: nothing to add


def test_migrating_is_safe_when_two_processes_open_an_old_database_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    old = sa.create_engine(url)
    with old.begin() as conn:
        for statement in OLD_SCHEMA[:2]:
            conn.execute(sa.text(statement))
    old.dispose()
    opener = (
        "import sys; from brickyard.runtime.state import StateStore; "
        "print(len(StateStore(sys.argv[1]).attempts('x')))"
    )
    processes = [subprocess.Popen([sys.executable, "-c", opener, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(4)]
    outcomes = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0], [err for _, err in outcomes]
    columns = [c["name"] for c in sa.inspect(sa.create_engine(url)).get_columns("task_attempts")]
    assert columns.count("quarantined_rows") == 1 and columns.count("quarantine") == 1


def test_runs_are_paged_newest_first_with_a_count(store: StateStore) -> None:
    made = [store.create_run("daily" if i % 2 else "hourly", trigger="manual") for i in range(7)]
    daily = [run.id for run in reversed(made) if run.pipeline == "daily"]
    assert [r.id for r in store.list_runs("daily", limit=2)] == daily[:2]
    assert [r.id for r in store.list_runs("daily", limit=2, offset=2)] == daily[2:]
    assert [r.id for r in store.list_runs(limit=3, offset=6)] == [made[0].id]
    assert (store.count_runs(), store.count_runs("daily"), store.count_runs("nothing")) == (7, 3, 0)


def test_a_page_of_runs_is_read_through_an_index_also_in_an_old_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    old = sa.create_engine(url)
    with old.begin() as conn:
        for statement in OLD_SCHEMA:
            conn.execute(sa.text(statement))
    old.dispose()

    store = StateStore(url)
    store.create_run("daily", trigger="manual")
    query = sa.select(RUNS).where(RUNS.c.pipeline == "daily").order_by(RUNS.c.created_at.desc(), RUNS.c.id.desc())
    with db.connect(url).connect() as conn:
        compiled = str(query.limit(25).compile(conn, compile_kwargs={"literal_binds": True}))
        plan = " ".join(str(row[-1]) for row in conn.execute(sa.text("EXPLAIN QUERY PLAN " + compiled)))
        names = {index["name"] for index in sa.inspect(conn).get_indexes("runs")}
    assert {"ix_runs_created", "ix_runs_pipeline_created"} <= names
    assert "ix_runs_pipeline_created" in plan and "TEMP B-TREE" not in plan, plan
