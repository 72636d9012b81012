"""brickyard.stores: exporting lake tables into SQLite and a real PostgreSQL, value for value,
with the append / replace / upsert modes, the batch ledger, and errors that name the
database (password masked), the table and the batch.

The crash tests (server restart, dropped connection, killed process) are in
test_exactly_once.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from brickyard.lake import Lake, LakeLocation
from brickyard.stores import Database, ExportError, export_table, is_transient, sql_export, stage
from brickyard.stores.database import WorkspaceLike
from brickyard.stores.sql_export import LEDGER_TABLE

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(LakeLocation(str(tmp_path / "lake")))


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "postgres":
        return Database("pg", request.getfixturevalue("postgres").url)
    return Database("default", f"sqlite:///{tmp_path}/warehouse.db")


def new_table() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


def rows(db: Database, table: str, order: str = "id") -> list[dict[str, Any]]:
    engine = db.engine()
    try:
        with engine.connect() as conn:
            reflected = sa.Table(table, sa.MetaData(), autoload_with=conn)
            result = conn.execute(sa.select(reflected).order_by(reflected.c[order]))
            return [dict(row._mapping) for row in result]
    finally:
        engine.dispose()


def scalar(db: Database, sql: str) -> Any:
    engine = db.engine()
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def typed() -> pa.Table:
    """Every type the binary COPY path encodes, with nulls and awkward values."""
    return pa.table({
        "id": pa.array([1, 2, 3, 4], pa.int64()),
        "small": pa.array([-32768, None, 0, 32767], pa.int16()),
        "medium": pa.array([-(2**31), 0, None, 2**31 - 1], pa.int32()),
        "flag": pa.array([True, False, None, True]),
        "ratio": pa.array([0.5, float("inf"), None, -1e300], pa.float64()),
        "single": pa.array([1.5, None, -0.25, 3.0], pa.float32()),
        "name": pa.array(["plain", "", None, 'Zoë "the ship" 🚢,\nnext line']),
        "at": pa.array(
            [datetime(2026, 11, 23, 10, 30, 1, 123456, tzinfo=UTC), datetime(1912, 4, 15, 2, 20, tzinfo=UTC), None,
             datetime(2000, 1, 1, tzinfo=UTC)], pa.timestamp("us", "UTC")),
        "local": pa.array([datetime(2026, 1, 1, 8), None, datetime(1999, 12, 31, 23, 59, 59), datetime(2000, 1, 1)],
                          pa.timestamp("ms")),
        "day": pa.array([date(2026, 11, 23), date(1912, 4, 15), None, date(2000, 1, 1)]),
        "blob": pa.array([b"\x00\xff", None, b"", b"abc"]),
        "category": pa.array(["a", "b", "a", None]).dictionary_encode(),
    })


def assert_same(source: pa.Table, loaded: list[dict[str, Any]], *, naive_timestamps: bool = False) -> None:
    expected = source.to_pylist()
    assert len(loaded) == len(expected)
    for want, got in zip(expected, loaded, strict=True):
        for column, value in want.items():
            actual = got[column]
            if isinstance(value, datetime) and value.tzinfo is not None and naive_timestamps:
                value = value.replace(tzinfo=None)
            if isinstance(actual, memoryview):
                actual = bytes(actual)
            assert actual == value, f"{column}: {actual!r} != {value!r}"


@pytest.mark.postgres
def test_postgres_round_trip_through_binary_copy(lake: Lake, postgres: Any) -> None:
    db = Database("pg", postgres.url)
    table = new_table()
    lake.write("gold.typed", typed())
    result = export_table(lake, db, "gold.typed", target=table, keys=["id"])
    assert (result.loaded, result.rows, result.attempts) == (True, 4, 1)
    assert_same(typed(), rows(db, table))
    types = scalar(db, f"SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) "
                       f"FROM information_schema.columns WHERE table_name = '{table}'")
    assert types == (
        "id bigint, small smallint, medium integer, flag boolean, ratio double precision, single real, name text, "
        "at timestamp with time zone, local timestamp without time zone, day date, blob bytea, category text"
    )


@pytest.mark.postgres
def test_postgres_round_trip_through_csv_copy_for_other_types(lake: Lake, postgres: Any) -> None:
    db = Database("pg", postgres.url)
    table = new_table()
    data = typed().append_column("amount", pa.array([Decimal("1.50"), None, Decimal("-99999999.99"), Decimal("0.00")],
                                                    pa.decimal128(10, 2)))
    data = data.append_column("tags", pa.array([["a", "b"], None, [], ["c"]]))
    lake.write("gold.typed", data)
    export_table(lake, db, "gold.typed", target=table)
    loaded = rows(db, table)
    assert_same(data.drop_columns(["tags"]), loaded)
    assert [row["tags"] for row in loaded] == [["a", "b"], None, [], ["c"]]


def test_sqlite_round_trip(lake: Lake, tmp_path: Path) -> None:
    db = Database("default", f"sqlite:///{tmp_path}/w.db")
    lake.write("gold.typed", typed())
    export_table(lake, db, "gold.typed", target="typed", batch_rows=3)
    assert_same(typed(), rows(db, "typed"), naive_timestamps=True)


def test_modes_and_the_ledger(lake: Lake, db: Database) -> None:
    table = new_table()
    lake.write("gold.scores", pa.table({"id": [1, 2, 3], "score": [0.1, 0.2, 0.3]}))
    first = export_table(lake, db, "gold.scores", target=table, keys=["id"], mode="upsert")
    assert (first.loaded, first.rows) == (True, 3)
    skipped = export_table(lake, db, "gold.scores", target=table, keys=["id"], mode="upsert")
    assert (skipped.loaded, skipped.rows, skipped.batch_id) == (False, 0, first.batch_id)
    lake.write("gold.scores", pa.table({"id": [3, 4], "score": [0.9, 0.4]}), mode="overwrite")
    export_table(lake, db, "gold.scores", target=table, keys=["id"], mode="upsert")
    assert [(r["id"], r["score"]) for r in rows(db, table)] == [(1, 0.1), (2, 0.2), (3, 0.9), (4, 0.4)]
    export_table(lake, db, "gold.scores", version=0, target=table, keys=["id"], mode="append")  # a new target: new batch id
    assert scalar(db, f"SELECT COUNT(*) FROM {table}") == 4  # version 0 into this table was loaded already
    other = new_table()
    export_table(lake, db, "gold.scores", version=0, target=other, mode="append")
    lake.write("gold.scores", pa.table({"id": [7], "score": [0.7]}), mode="overwrite")
    export_table(lake, db, "gold.scores", target=other, mode="append")
    assert [r["id"] for r in rows(db, other)] == [1, 2, 3, 7]
    lake.write("gold.scores", pa.table({"id": [8], "score": [0.8]}), mode="overwrite")
    export_table(lake, db, "gold.scores", target=other, mode="replace")
    assert [r["id"] for r in rows(db, other)] == [8]
    ledger = [r for r in rows(db, LEDGER_TABLE, order="loaded_at") if r["target_table"] in (table, other)]
    assert [(r["target_table"], r["source"], r["rows"], r["mode"]) for r in ledger] == [
        (table, "gold.scores@0", 3, "upsert"),
        (table, "gold.scores@1", 2, "upsert"),
        (other, "gold.scores@0", 3, "append"),
        (other, "gold.scores@2", 1, "append"),
        (other, "gold.scores@3", 1, "replace"),
    ]


def test_a_filtered_selection_is_its_own_batch(lake: Lake, db: Database) -> None:
    import pyarrow.compute as pc

    table = new_table()
    lake.write("gold.scores", pa.table({"id": [1, 2, 3], "score": [0.1, 0.2, 0.3]}))
    high = export_table(lake, db, "gold.scores", target=table, where=pc.field("score") > 0.15, selection="high")
    everything = export_table(lake, db, "gold.scores", target=table)
    assert high.batch_id != everything.batch_id
    assert (high.rows, everything.rows) == (2, 3)


def test_a_lost_commit_acknowledgement_is_not_a_duplicate(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit succeeds but the client sees a dropped connection: the retry finds the
    batch in the ledger and loads nothing more."""
    db = Database("default", f"sqlite:///{tmp_path}/w.db")
    lake.write("gold.scores", pa.table({"id": [1, 2, 3]}))
    real = sql_export.SqlLoader.load
    calls: list[int] = []

    def commit_then_drop(self: Any, *args: Any, **kwargs: Any) -> bool:
        loaded = real(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            raise sa.exc.OperationalError("COMMIT", {}, ConnectionResetError("connection reset by peer"))
        return loaded

    monkeypatch.setattr(sql_export.SqlLoader, "load", commit_then_drop)
    result = export_table(lake, db, "gold.scores", target="scores", backoff_seconds=0.01)
    assert (result.attempts, len(calls)) == (2, 2)
    assert scalar(db, "SELECT COUNT(*) FROM scores") == 3


def test_staging_is_written_first_and_a_partial_one_is_rewritten(lake: Lake, tmp_path: Path) -> None:
    location = lake.location
    folder = Path(location.root) / "staging" / "p" / "t" / "b1"
    folder.mkdir(parents=True)
    (folder / "part-00000.parquet").write_bytes(b"half a file from a killed process")
    staged = stage(location, "staging/p/t/b1", pa.table({"id": list(range(10))}).to_reader(max_chunksize=3), rows_per_file=4)
    assert staged.rows == 10 and len(staged.files) == 2  # a new file once one holds 4+ rows
    assert all(name.endswith(".parquet") and "/" in name for name in staged.files)  # in the attempt's own folder
    assert sum(batch.num_rows for batch in staged.batches(100)) == 10
    assert stage(location, "staging/p/t/b1", pa.table({"id": [1]}).to_reader()).files == staged.files  # reused
    staged.remove()
    assert not folder.exists()
    db = Database("default", f"sqlite:///{tmp_path}/w.db")
    lake.write("gold.scores", pa.table({"id": [1, 2]}))
    kept = export_table(lake, db, "gold.scores", target="scores", staging="staging/p/t", keep_staging=True)
    assert kept.staging and (Path(kept.staging) / "_manifest.json").is_file()


def test_unreachable_database_fails_after_the_last_attempt_with_the_password_masked(lake: Lake) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    db = Database("pg", f"postgresql+psycopg://app:s3cr3t@127.0.0.1:{port}/warehouse")
    lake.write("gold.scores", pa.table({"id": [1]}))
    with pytest.raises(ExportError) as caught:
        export_table(lake, db, "gold.scores", target="scores", attempts=3, backoff_seconds=0.01)
    message = str(caught.value)
    assert caught.value.transient
    assert "failed after 3 attempts" in message
    assert f"postgresql+psycopg://app:***@127.0.0.1:{port}/warehouse" in message
    assert "into table scores" in message and "(gold.scores@0)" in message
    assert "s3cr3t" not in message


@pytest.mark.postgres
def test_wrong_password_is_terminal(lake: Lake, postgres: Any) -> None:
    db = Database("pg", postgres.url.replace(postgres.PASSWORD, "wrong"))
    lake.write("gold.scores", pa.table({"id": [1]}))
    with pytest.raises(ExportError, match="password authentication failed") as caught:
        export_table(lake, db, "gold.scores", target="scores", attempts=5, backoff_seconds=5)
    assert not caught.value.transient
    assert "wrong" not in str(caught.value)


def test_bad_data_is_terminal_and_commits_nothing(lake: Lake, db: Database) -> None:
    table = new_table()
    engine = db.engine()
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL)"))
    engine.dispose()
    lake.write("gold.people", pa.table({"id": [1, 2], "name": ["ann", None]}))
    with pytest.raises(ExportError, match=f"into table {table} on .*failed: ") as caught:
        export_table(lake, db, "gold.people", target=table, attempts=4, backoff_seconds=5)
    assert not caught.value.transient
    assert scalar(db, f"SELECT COUNT(*) FROM {table}") == 0
    assert scalar(db, f"SELECT COUNT(*) FROM {LEDGER_TABLE} WHERE target_table = '{table}'") == 0


def test_columns_the_target_lacks_are_named(lake: Lake, db: Database) -> None:
    table = new_table()
    engine = db.engine()
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {table} (id INTEGER)"))
    engine.dispose()
    lake.write("gold.people", pa.table({"id": [1], "name": ["ann"], "age": [3]}))
    with pytest.raises(ExportError, match=f"table {table} in .* has no column.s. name, age"):
        export_table(lake, db, "gold.people", target=table)


def test_upsert_needs_keys_and_keys_must_exist(lake: Lake, tmp_path: Path) -> None:
    db = Database("default", f"sqlite:///{tmp_path}/w.db")
    lake.write("gold.people", pa.table({"id": [1]}))
    with pytest.raises(ExportError, match="mode upsert needs keys"):
        export_table(lake, db, "gold.people", target="people", mode="upsert")
    with pytest.raises(ExportError, match="gold.people has no key column.s. person_id"):
        export_table(lake, db, "gold.people", target="people", keys=["person_id"], mode="upsert")


def test_transient_errors_are_told_apart() -> None:
    dropped = sa.exc.OperationalError("COPY", {}, Exception("server closed the connection unexpectedly"))
    assert is_transient(dropped)
    assert is_transient(ConnectionRefusedError())
    assert not is_transient(sa.exc.IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_transient(sa.exc.OperationalError("", {}, Exception('password authentication failed for user "app"')))
    assert not is_transient(sa.exc.OperationalError("", {}, Exception('database "nope" does not exist')))
    assert not is_transient(ValueError("bad"))


def test_databases_come_from_the_workspace_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from brickyard import Workspace
    from brickyard.errors import ConfigError

    ws = Workspace.init(tmp_path / "ws")
    ws.config_path.write_text(ws.config_path.read_text() + "  pg:\n    url: postgresql+psycopg://app:${env:PG_TEST_PASSWORD}@db/app\n")
    ws = Workspace.open(ws.root)
    monkeypatch.setenv("PG_TEST_PASSWORD", "hunter2")
    workspace: WorkspaceLike = ws
    pg = Database.from_workspace(workspace, "pg")
    assert pg.url == "postgresql+psycopg://app:hunter2@db/app"
    assert pg.display_url == "postgresql+psycopg://app:***@db/app"
    assert pg.redact("failed for app:hunter2") == "failed for app:***"
    assert Database.from_workspace(workspace, "default").url == f"sqlite:///{ws.root}/warehouse.db"
    with pytest.raises(ConfigError, match="no database 'pgg'") as caught:
        Database.from_workspace(workspace, "pgg")
    assert "did you mean pg" in str(caught.value)
