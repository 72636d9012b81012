"""Exactly once against a real PostgreSQL that fails in the middle of a load.

Each test exports 200,000 rows in COPY chunks of 2,000 and, once 60,000 rows are on the
wire, breaks something: the server is stopped like a crash (`pg_ctl -m immediate`) and
started again, the loading connection is terminated by the server, the exporting process
is SIGKILLed, or a second exporter races the first. Afterwards every key is in the target
exactly once, the row count equals the source, and exporting again changes nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import sqlalchemy as sa

from brickyard.lake import Lake, LakeLocation
from brickyard.stores import Database, LoadResult, export_table

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROWS = 200_000
CHUNK = 2_000
BREAK_AT = 60_000
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(LakeLocation(str(tmp_path / "lake")))
    start = datetime(2026, 11, 23, tzinfo=UTC)
    ids = np.arange(ROWS, dtype=np.int64)
    lake.write("gold.events", pa.table({
        "id": ids,
        "value": np.random.default_rng(7).random(ROWS),
        "name": pa.array([f"event {i}" for i in range(ROWS)]),
        "at": pa.array([start + timedelta(seconds=int(i)) for i in ids], pa.timestamp("us", "UTC")),
    }))
    return lake


@pytest.fixture
def db(postgres: Any) -> Database:
    return Database("pg", postgres.url)


def counts(db: Database, table: str) -> tuple[int, int]:
    """(rows, distinct ids) of the target; (0, 0) when the table does not exist."""
    engine = db.engine()
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(table):
                return 0, 0
            row = conn.execute(sa.text(f"SELECT COUNT(*), COUNT(DISTINCT id) FROM {table}")).one()
            return int(row[0]), int(row[1])
    finally:
        engine.dispose()


def assert_exactly_once(lake: Lake, db: Database, table: str, mode: str = "append") -> None:
    assert counts(db, table) == (ROWS, ROWS)
    again = export_table(lake, db, "gold.events", target=table, keys=["id"], mode=mode)  # type: ignore[arg-type]
    assert (again.loaded, again.rows) == (False, 0)
    assert counts(db, table) == (ROWS, ROWS)


def export_in_thread(lake: Lake, db: Database, table: str, on_break: Any, mode: str = "append") -> LoadResult:
    """Run an export in a thread; call `on_break()` on the main thread once BREAK_AT rows
    are sent (the export waits meanwhile), then let it go on and wait for its result."""
    reached, resume = threading.Event(), threading.Event()
    outcome: list[Any] = []

    def progress(rows: int) -> None:
        if rows >= BREAK_AT and not reached.is_set():
            reached.set()
            resume.wait(60)

    def work() -> None:
        try:
            outcome.append(export_table(
                lake, db, "gold.events", target=table, keys=["id"], mode=mode,  # type: ignore[arg-type]
                batch_rows=CHUNK, attempts=12, backoff_seconds=0.2, progress=progress,
            ))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            outcome.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    assert reached.wait(120), "the export never got to the break point"
    try:
        on_break()
    finally:
        resume.set()
    thread.join(180)
    assert not thread.is_alive(), "the export did not finish"
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_a_database_crash_and_restart_mid_load_loses_and_duplicates_nothing(
    lake: Lake, db: Database, postgres: Any, mode: str
) -> None:
    table = f"events_{uuid.uuid4().hex[:8]}"

    def crash_and_restart() -> None:
        postgres.stop("immediate")
        time.sleep(1.0)  # the export's retries meet a server that is down
        postgres.start()

    result = export_in_thread(lake, db, table, crash_and_restart, mode=mode)
    assert result.loaded and result.rows == ROWS
    assert result.attempts >= 2
    assert_exactly_once(lake, db, table, mode)


def test_a_connection_dropped_mid_load_is_retried(lake: Lake, db: Database) -> None:
    table = f"events_{uuid.uuid4().hex[:8]}"

    def terminate_the_loader() -> None:
        engine = db.engine()
        with engine.connect() as conn:
            killed = conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND query ILIKE 'COPY%'"
            )).scalars().all()
        engine.dispose()
        assert killed == [True]

    result = export_in_thread(lake, db, table, terminate_the_loader)
    assert result.loaded and result.attempts == 2
    assert_exactly_once(lake, db, table)


SCRIPT = """
import sys, time
from brickyard.lake import Lake, LakeLocation
from brickyard.stores import Database, export_table

def progress(rows):
    print(rows, flush=True)
    time.sleep(0.01)

lake = Lake(LakeLocation(sys.argv[1]))
export_table(lake, Database("pg", sys.argv[2]), "gold.events", target=sys.argv[3], keys=["id"],
             batch_rows=int(sys.argv[4]), progress=progress)
print("done", flush=True)
"""


def test_a_killed_exporter_leaves_nothing_and_the_rerun_loads_once(lake: Lake, db: Database) -> None:
    table = f"events_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    child = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, lake.location.root, db.url, table, str(CHUNK)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    assert child.stdout is not None
    sent = 0
    for line in child.stdout:
        assert line.strip() != "done", "the export finished before it could be killed"
        sent = int(line)
        if sent >= BREAK_AT:
            child.send_signal(signal.SIGKILL)
            break
    child.wait(30)
    assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    assert BREAK_AT <= sent < ROWS
    # Nothing of the open transaction is visible (the target was created inside it).
    assert counts(db, table) == (0, 0)
    staged = list((Path(lake.location.root) / "staging").rglob("_manifest.json"))
    assert len(staged) == 1  # staged before the load began; the rerun reuses it
    rerun = export_table(lake, db, "gold.events", target=table, keys=["id"], batch_rows=20_000)
    assert rerun.loaded and rerun.rows == ROWS
    assert_exactly_once(lake, db, table)


def test_two_exporters_racing_on_one_batch_load_it_once(lake: Lake, db: Database) -> None:
    table = f"events_{uuid.uuid4().hex[:8]}"
    results: list[LoadResult] = []

    def second_exporter() -> None:
        # The first holds the uncommitted ledger row; the second blocks on it, then finds
        # the batch loaded. Give it a moment to block before the first goes on.
        thread = threading.Thread(target=lambda: results.append(
            export_table(lake, db, "gold.events", target=table, keys=["id"], batch_rows=50_000)))
        thread.start()
        time.sleep(2.0)
        threads.append(thread)

    threads: list[threading.Thread] = []
    first = export_in_thread(lake, db, table, second_exporter)
    threads[0].join(120)
    assert [first.loaded, results[0].loaded] == [True, False]
    assert_exactly_once(lake, db, table)
