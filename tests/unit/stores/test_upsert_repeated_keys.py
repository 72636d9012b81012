"""`mode: upsert` of a batch in which a key appears more than once, into SQLite and a real
PostgreSQL: a clear error naming the repeated keys (values of PII key columns elided),
or, with `dedupe: {latest_by: COLUMN}`, the latest row of each key lands.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from brickyard import Workspace
from brickyard.lake import Lake, LakeLocation
from brickyard.stores import Database, ExportError, export_table
from brickyard.stores.sql_export import LEDGER_TABLE
from brickyard.tasks.export import ExportOptions

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(LakeLocation(str(tmp_path / "lake")))


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "postgres":
        return Database("pg", request.getfixturevalue("postgres").url)
    return Database("default", f"sqlite:///{tmp_path}/warehouse.db")


def query(db: Database, sql: str) -> list[tuple[Any, ...]]:
    engine = db.engine()
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def at(day: int) -> datetime:
    return datetime(2026, 11, day, 12, 0)


def updates() -> pa.Table:
    """Seven rows for four customers: 1 three times, 3 twice, 2 and 4 once."""
    return pa.table({
        "id": [1, 2, 1, 3, 1, 3, 4],
        "score": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
        "updated_at": [at(1), at(1), at(3), at(5), at(2), at(4), at(1)],
    })


def test_repeated_keys_are_named_with_counts_and_nothing_is_loaded(lake: Lake, db: Database) -> None:
    table = f"t_{uuid.uuid4().hex[:10]}"
    lake.write("gold.scores", pa.table({"id": [1, 9], "score": [0.0, 0.9], "updated_at": [at(1), at(1)]}))
    export_table(lake, db, "gold.scores", target=table, keys=["id"], mode="upsert")
    lake.write("gold.scores", updates(), mode="overwrite")

    with pytest.raises(ExportError) as caught:
        export_table(lake, db, "gold.scores", target=table, keys=["id"], mode="upsert", attempts=3, backoff_seconds=5)

    message = str(caught.value)
    assert not caught.value.transient
    assert f"upsert into table {table}" in message and "gold.scores@1" in message
    assert "2 keys repeat (5 rows): id=1 (3 rows), id=3 (2 rows)" in message
    assert "dedupe: {latest_by: COLUMN}" in message
    assert "UniqueViolation" not in message and "IntegrityError" not in message
    assert query(db, f"SELECT id, score FROM {table} ORDER BY id") == [(1, 0.0), (9, 0.9)]  # untouched
    assert query(db, f"SELECT COUNT(*) FROM {LEDGER_TABLE} WHERE target_table = '{table}'") == [(1,)]


def test_many_repeated_keys_show_a_few_and_the_count(lake: Lake, db: Database) -> None:
    ids = [n for n in range(40) for _ in range(2 if n < 25 else 1)]
    lake.write("gold.scores", pa.table({"id": ids, "score": [0.5] * len(ids)}))
    with pytest.raises(ExportError, match=r"25 keys repeat \(50 rows\): id=0 \(2 rows\), id=1 \(2 rows\), "
                                          r"id=2 \(2 rows\), id=3 \(2 rows\), id=4 \(2 rows\) and 20 more"):
        export_table(lake, db, "gold.scores", target=f"t_{uuid.uuid4().hex[:10]}", keys=["id"], mode="upsert")


def test_dedupe_latest_by_lands_the_latest_row_of_each_key(lake: Lake, db: Database) -> None:
    table = f"t_{uuid.uuid4().hex[:10]}"
    lake.write("gold.scores", pa.table({"id": [1, 9], "score": [0.0, 0.9], "updated_at": [at(1), at(1)]}))
    export_table(lake, db, "gold.scores", target=table, keys=["id"], mode="upsert")
    lake.write("gold.scores", updates(), mode="overwrite")

    result = export_table(lake, db, "gold.scores", target=table, keys=["id"], mode="upsert", dedupe_latest_by="updated_at")

    assert (result.loaded, result.rows, result.deduplicated) == (True, 4, 3)
    assert query(db, f"SELECT id, score FROM {table} ORDER BY id") == [(1, 0.3), (2, 0.2), (3, 0.4), (4, 0.7), (9, 0.9)]
    again = export_table(lake, db, "gold.scores", target=table, keys=["id"], mode="upsert", dedupe_latest_by="updated_at")
    assert (again.loaded, again.rows) == (False, 0)


def test_dedupe_with_composite_keys_and_null_order_values(lake: Lake, db: Database) -> None:
    """A null `latest_by` value loses to any other (on both databases)."""
    table = f"t_{uuid.uuid4().hex[:10]}"
    lake.write("gold.stock", pa.table({
        "store": ["a", "a", "a", "b", "b"],
        "sku": [1, 1, 2, 1, 1],
        "qty": [5, 7, 1, 3, 4],
        "seen": pa.array([2, None, 1, None, 9], pa.int64()),
    }))
    result = export_table(lake, db, "gold.stock", target=table, keys=["store", "sku"], mode="upsert", dedupe_latest_by="seen")
    assert (result.rows, result.deduplicated) == (3, 2)
    assert query(db, f"SELECT store, sku, qty FROM {table} ORDER BY store, sku") == [("a", 1, 5), ("a", 2, 1), ("b", 1, 4)]


def test_dedupe_refuses_keys_whose_latest_rows_tie(lake: Lake, db: Database) -> None:
    table = f"t_{uuid.uuid4().hex[:10]}"
    lake.write("gold.scores", pa.table({"id": [1, 1, 2], "score": [0.1, 0.2, 0.3], "updated_at": [at(2), at(2), at(1)]}))
    with pytest.raises(ExportError, match=r"1 key has more than one row with its latest updated_at: id=1 \(2 rows\)"):
        export_table(lake, db, "gold.scores", target=table, keys=["id"], mode="upsert", dedupe_latest_by="updated_at")


def test_values_of_pii_key_columns_are_elided(lake: Lake, db: Database) -> None:
    lake.write("gold.people", pa.table({"email": ["ann@example.com", "ann@example.com", "bo@example.com"],
                                        "region": ["eu", "eu", "us"], "score": [1.0, 2.0, 3.0]}))
    with pytest.raises(ExportError) as caught:
        export_table(lake, db, "gold.people", target=f"t_{uuid.uuid4().hex[:10]}", keys=["region", "email"],
                     mode="upsert", pii_columns={"email"})
    message = str(caught.value)
    assert "1 key repeats (2 rows): region='eu' email=<pii> (2 rows)" in message
    assert "example.com" not in message


def test_dedupe_checks_its_column(lake: Lake, tmp_path: Path) -> None:
    db = Database("default", f"sqlite:///{tmp_path}/w.db")
    lake.write("gold.scores", updates())
    with pytest.raises(ExportError, match="gold.scores has no column updated"):
        export_table(lake, db, "gold.scores", target="s", keys=["id"], mode="upsert", dedupe_latest_by="updated")
    with pytest.raises(ExportError, match="dedupe applies to mode upsert"):
        export_table(lake, db, "gold.scores", target="s", keys=["id"], mode="append", dedupe_latest_by="updated_at")


def test_the_task_option_is_validated() -> None:
    base = {"source": "gold.scores", "table": "s", "keys": ["id"], "mode": "upsert"}
    assert ExportOptions.model_validate({**base, "dedupe": {"latest_by": "updated_at"}}).dedupe.latest_by == "updated_at"  # type: ignore[union-attr]
    with pytest.raises(ValidationError, match="dedupe.*mode: upsert"):
        ExportOptions.model_validate({**base, "mode": "append", "dedupe": {"latest_by": "updated_at"}})
    with pytest.raises(ValidationError, match="latest_by.*is a key"):
        ExportOptions.model_validate({**base, "dedupe": {"latest_by": "id"}})
    with pytest.raises(ValidationError):
        ExportOptions.model_validate({**base, "dedupe": {"latest": "updated_at"}})


CONTRACT = """\
table: gold.people
columns:
  - {name: email, type: string, pii: true}
  - {name: score, type: double}
  - {name: updated_at, type: timestamp}
"""


def test_a_pipeline_upsert_of_repeated_pii_keys_fails_without_their_values_then_dedupes(tmp_path: Path) -> None:
    from brickyard.runtime.runner import PipelineRunner
    from brickyard.runtime.state import StateStore

    ws = Workspace.init(tmp_path / "ws")
    (ws.root / "contracts" / "gold.people.yaml").write_text(CONTRACT)
    ws.lake.write("gold.people", pa.table({
        "email": ["ann@example.com", "bo@example.com", "ann@example.com"],
        "score": [1.0, 2.0, 3.0],
        "updated_at": [at(1), at(1), at(2)],
    }))
    task = "  - {name: export_people, kind: export, source: gold.people, table: people, keys: [email], mode: upsert%s}\n"
    pipeline = ws.root / "pipelines" / "people.yaml"
    pipeline.write_text("tasks:\n" + task % "")

    failed = PipelineRunner(ws).run("people")

    assert failed.status == "failed"
    assert "1 key repeats (2 rows): email=<pii> (2 rows)" in (failed.error or "")
    assert "dedupe: {latest_by: COLUMN}" in (failed.error or "")
    state_db = ws.root / ".brickyard"
    leaked = [path for path in state_db.rglob("*") if path.is_file() and b"ann@example.com" in path.read_bytes()]
    assert leaked == []  # neither the state database nor the task log holds the value

    pipeline.write_text("tasks:\n" + task % ", dedupe: {latest_by: updated_at}")
    done = PipelineRunner(ws).run("people")

    assert done.status == "succeeded", done.error
    attempt = StateStore(ws.state_url).attempts(done.run_id)[-1]
    assert (attempt.metrics["rows_loaded"], attempt.metrics["rows_deduplicated"]) == (2, 1)
    assert (attempt.rows_in, attempt.rows_out) == (3, 2)
    with sa.create_engine(ws.local_url("sqlite:///warehouse.db")).connect() as conn:
        assert conn.execute(sa.text("SELECT email, score FROM people ORDER BY email")).all() == [
            ("ann@example.com", 3.0), ("bo@example.com", 2.0)]
