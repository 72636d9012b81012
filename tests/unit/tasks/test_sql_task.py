"""The `sql` kind: a SELECT over the lake into a table (overwrite, append, merge,
incremental), idempotent re-runs, expectations applied before writing, lineage, check()."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest
from pydantic import ValidationError

from brickyard.core.quality import ExpectationFailedError
from brickyard.engines.duckdb import quarantine as duckdb_quarantine
from brickyard.engines.duckdb import sql as duckdb_sql
from brickyard.errors import ConfigError, LakeError, SqlError
from brickyard.tasks.sql_task import SQL_KEY, SqlOptions

if TYPE_CHECKING:
    from conftest import Lakehouse

TRIPS = pa.table(
    {
        "trip_id": [1, 2, 3, 4],
        "fare": [10.0, -2.0, 7.5, None],
        "payment_type": [1, 2, 9, 1],
    }
)


def seed(house: Lakehouse, table: pa.Table = TRIPS, name: str = "bronze.trips") -> int:
    return house.lake.write(name, table)


def task(**fields: Any) -> dict[str, Any]:
    return {"name": "silver", "kind": "sql", "target": "silver.trips", **fields}


def ids(house: Lakehouse, name: str = "silver.trips") -> list[int]:
    return sorted(house.table(name).column("trip_id").to_pylist())


class Killed(BaseException):
    """Stands for the process being killed (not an Exception: nothing may catch it)."""


# -- modes ---------------------------------------------------------------------------------


def test_overwrite_writes_the_query_result_and_records_lineage(house: Lakehouse) -> None:
    seed(house)
    context = house.run(task(query="SELECT trip_id, fare * 2 AS fare2 FROM bronze.trips WHERE fare > 0"))
    assert house.rows("silver.trips", sort="trip_id") == [{"trip_id": 1, "fare2": 20.0}, {"trip_id": 3, "fare2": 15.0}]
    assert context.metrics.reads == {"bronze.trips": 0}
    assert context.metrics.writes == {"silver.trips": 0}
    assert context.metrics.rows_out == 2

    seed(house, pa.table({"trip_id": [5], "fare": [1.0], "payment_type": [1]}))
    again = house.run(task(query="SELECT trip_id, fare * 2 AS fare2 FROM bronze.trips WHERE fare > 0"))
    assert ids(house) == [1, 3, 5]
    assert again.metrics.reads == {"bronze.trips": 1} and again.metrics.writes == {"silver.trips": 1}


def test_sql_file_and_partitioning(house: Lakehouse) -> None:
    seed(house)
    house.file("sql/silver_trips.sql", "-- cleaned trips\nSELECT trip_id, payment_type FROM bronze.trips\n")
    house.run(task(sql="sql/silver_trips.sql", partition_by="payment_type"))
    assert house.lake.describe("silver.trips").partition_columns == ["payment_type"]
    assert ids(house) == [1, 2, 3, 4]


def test_append_appends_and_a_retried_attempt_of_the_same_run_does_not(house: Lakehouse) -> None:
    seed(house)
    spec = task(query="SELECT trip_id FROM bronze.trips", mode="append")
    house.run(spec, run_id="r1")
    house.run(spec, run_id="r1")  # a retry after the commit landed: nothing twice
    assert ids(house) == [1, 2, 3, 4]
    house.run(spec, run_id="r2")  # a new run appends again (not incremental)
    assert ids(house) == [1, 1, 2, 2, 3, 3, 4, 4]


def test_merge_updates_matching_keys_and_inserts_the_rest(house: Lakehouse) -> None:
    seed(house)
    spec = task(query="SELECT trip_id, fare FROM bronze.trips", mode="merge", keys=["trip_id"])
    house.run(spec)
    house.lake.write("bronze.trips", pa.table({"trip_id": [2, 5], "fare": [20.0, 5.0], "payment_type": [1, 1]}), mode="overwrite")
    house.run(spec)
    assert house.rows("silver.trips", sort="trip_id") == [
        {"trip_id": 1, "fare": 10.0},
        {"trip_id": 2, "fare": 20.0},
        {"trip_id": 3, "fare": 7.5},
        {"trip_id": 4, "fare": None},
        {"trip_id": 5, "fare": 5.0},
    ]


# -- incremental -------------------------------------------------------------------------


def test_incremental_append_reads_only_rows_added_since_the_last_run(house: Lakehouse) -> None:
    seed(house)
    house.lake.write("bronze.zones", pa.table({"payment_type": [1, 2, 9], "label": ["card", "cash", "?"]}))
    spec = task(
        query="SELECT t.trip_id, z.label FROM bronze.trips t JOIN bronze.zones z USING (payment_type)",
        mode="append",
        incremental=["bronze.trips"],  # new trips, joined to the whole zones table
    )
    first = house.run(spec)
    assert ids(house) == [1, 2, 3, 4] and first.metrics.reads == {"bronze.trips": 0, "bronze.zones": 0}

    nothing = house.run(spec)
    assert nothing.metrics.rows_out == 0 and house.lake.version("silver.trips") == 0

    seed(house, pa.table({"trip_id": [5, 6], "fare": [1.0, 2.0], "payment_type": [2, 1]}))
    second = house.run(spec)
    assert ids(house) == [1, 2, 3, 4, 5, 6]
    assert second.metrics.rows_out == 2
    assert second.metrics.reads == {"bronze.trips": 1, "bronze.zones": 0}
    recorded = json.loads(house.lake.history("silver.trips")[0][SQL_KEY])
    assert recorded["sources"] == {"bronze.trips": 1, "bronze.zones": 0}


def test_incremental_merge_and_a_rewritten_source(house: Lakehouse) -> None:
    seed(house)
    spec = task(query="SELECT trip_id, fare FROM bronze.trips", mode="merge", keys="trip_id", incremental=True)
    house.run(spec)
    seed(house, pa.table({"trip_id": [1, 7], "fare": [99.0, 7.0], "payment_type": [1, 1]}))
    house.run(spec)
    rows = {r["trip_id"]: r["fare"] for r in house.table("silver.trips").to_pylist()}
    assert rows == {1: 99.0, 2: -2.0, 3: 7.5, 4: None, 7: 7.0}

    house.lake.write("bronze.trips", TRIPS, mode="overwrite")
    with pytest.raises(LakeError, match=r"bronze.trips was rewritten between version 1 and 2.*--full-refresh"):
        house.run(spec)
    house.run(spec, full_refresh=True)
    assert ids(house) == [1, 2, 3, 4]
    assert house.run(spec).metrics.rows_out == 0


def test_a_crash_before_the_commit_leaves_the_rows_for_the_retry(house: Lakehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(house)
    spec = task(query="SELECT trip_id FROM bronze.trips", mode="append", incremental=True)
    house.run(spec)
    seed(house, pa.table({"trip_id": [5], "fare": [1.0], "payment_type": [1]}))

    def crash(*args: Any, **kwargs: Any) -> None:
        raise Killed("killed while writing")

    with monkeypatch.context() as patch:
        patch.setattr(house.lake, "write", crash)
        with pytest.raises(Killed):
            house.run(spec, run_id="r-crash")
    house.run(spec, run_id="r-crash")
    house.run(spec, run_id="r-next")
    assert ids(house) == [1, 2, 3, 4, 5]


def test_a_crash_after_the_commit_is_not_written_twice(house: Lakehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(house)
    spec = task(query="SELECT trip_id FROM bronze.trips", mode="merge", keys="trip_id")
    real = house.lake.merge

    def then_crash(*args: Any, **kwargs: Any) -> int:
        real(*args, **kwargs)
        raise Killed("killed after the commit")

    house.run(spec, run_id="r1")
    seed(house, pa.table({"trip_id": [5], "fare": [1.0], "payment_type": [1]}))
    with monkeypatch.context() as patch:
        patch.setattr(house.lake, "merge", then_crash)
        with pytest.raises(Killed):
            house.run(spec, run_id="r2")
    version = house.lake.version("silver.trips")
    house.run(spec, run_id="r2")
    assert house.lake.version("silver.trips") == version
    assert ids(house) == [1, 2, 3, 4, 5]


# -- expectations before writing ---------------------------------------------------------


def test_drop_expectations_keep_bad_rows_out_of_the_target(house: Lakehouse) -> None:
    seed(house)
    spec = task(
        query="SELECT * FROM bronze.trips",
        expectations=[
            {"range": {"column": "fare", "min": 0}, "action": "drop"},
            {"not_null": "fare", "action": "drop"},
            {"accepted_values": {"column": "payment_type", "values": [1, 2, 3]}, "action": "warn"},
        ],
    )
    context = house.run(spec, run_id="r1")
    assert ids(house) == [1, 3]
    bad = house.rows("silver.trips__quarantine", sort="trip_id")
    assert [(r["trip_id"], r["fare"], r["_reason"], r["_run_id"]) for r in bad] == [
        ("2", "-2", "range(fare): '-2.0'", "r1"),
        ("4", None, "not_null(fare): value is NULL", "r1"),
    ]
    results = {r["name"]: (r["action"], r["failing_rows"], r["passed"]) for r in context.metrics.extra["expectations"]}
    assert results == {
        "range(fare)": ("drop", 1, False),
        "not_null(fare)": ("drop", 1, False),
        "accepted_values(payment_type)": ("warn", 1, False),
    }
    assert context.metrics.writes == {"silver.trips": 0, "silver.trips__quarantine": 0}
    # An overwrite task rebuilds its quarantine too: no duplicates on the next run.
    house.run(spec, run_id="r2")
    assert house.count("silver.trips__quarantine") == 2


def test_contract_expectations_and_required_columns(house: Lakehouse) -> None:
    seed(house)
    house.file(
        "contracts/silver.trips.yaml",
        "columns:\n  - {name: trip_id, type: bigint}\n  - {name: fare, type: double, nullable: false}\n"
        "expectations:\n  - {sql: 'fare < 100', name: plausible_fare, action: drop}\n",
    )
    house.run(task(query="SELECT trip_id, fare FROM bronze.trips", contract="silver.trips"))
    assert ids(house) == [1, 2, 3]
    (bad,) = house.table("silver.trips__quarantine").to_pylist()
    # A sql predicate passes only where it is TRUE: NULL fails it too.
    assert bad["_reason"] == "plausible_fare; not_null(fare): value is NULL"


def test_fail_expectation_writes_nothing(house: Lakehouse) -> None:
    seed(house)
    spec = task(query="SELECT * FROM bronze.trips", mode="append", expectations=[{"unique": ["payment_type"], "action": "fail"}])
    with pytest.raises(ExpectationFailedError, match=r"'unique\(payment_type\)' failed on 2 rows of silver.trips"):
        house.run(spec)
    assert not house.lake.exists("silver.trips") and not house.lake.exists("silver.trips__quarantine")


def test_crash_between_quarantine_and_target_commit(house: Lakehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(house)
    spec = task(query="SELECT * FROM bronze.trips", mode="append", incremental=True,
                expectations=[{"range": {"column": "fare", "min": 0}, "action": "drop"}])
    real = duckdb_quarantine.write_quarantine

    def then_crash(*args: Any, **kwargs: Any) -> int | None:
        real(*args, **kwargs)
        raise Killed("killed between the two commits")

    monkeypatch.setattr(duckdb_sql, "write_quarantine", then_crash)
    with pytest.raises(Killed):
        house.run(spec)
    monkeypatch.setattr(duckdb_sql, "write_quarantine", real)
    house.run(spec)
    assert ids(house) == [1, 3, 4]
    assert house.count("silver.trips__quarantine") == 1


def test_a_parked_batch_is_redone_from_the_source_versions_it_read(
    house: Lakehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The crash leaves batch 2's quarantine commit without its target commit; rows that
    arrive afterwards belong to the next batch, so none is lost from the quarantine."""
    seed(house)
    spec = task(query="SELECT * FROM bronze.trips", mode="append", incremental=True,
                expectations=[{"range": {"column": "fare", "min": 0}, "action": "drop"}])
    house.run(spec, run_id="r1")
    seed(house, pa.table({"trip_id": [5, 6], "fare": [-1.0, 3.0], "payment_type": [1, 1]}))
    real = duckdb_quarantine.write_quarantine

    def then_crash(*args: Any, **kwargs: Any) -> int | None:
        real(*args, **kwargs)
        raise Killed("killed between the two commits")

    monkeypatch.setattr(duckdb_sql, "write_quarantine", then_crash)
    with pytest.raises(Killed):
        house.run(spec, run_id="r2")
    monkeypatch.setattr(duckdb_sql, "write_quarantine", real)
    seed(house, pa.table({"trip_id": [7, 8], "fare": [-5.0, 4.0], "payment_type": [1, 1]}))

    house.run(spec, run_id="r3")

    assert ids(house) == [1, 3, 4, 6, 8]
    assert sorted(int(i) for i in house.table("silver.trips__quarantine").column("trip_id").to_pylist()) == [2, 5, 7]
    batches = [json.loads(entry[SQL_KEY]) for entry in house.lake.history("silver.trips")[:2]]
    assert [(b["batch"], b["run_id"], b["sources"]) for b in batches] == [
        (3, "r3", {"bronze.trips": 2}),
        (2, "r2", {"bronze.trips": 1}),
    ]


def test_full_refresh_of_two_tasks_appending_to_one_table_keeps_both(house: Lakehouse) -> None:
    """The first task of the refresh run replaces the table (and its quarantine); the second
    appends, as it does on incremental runs."""
    seed(house)
    seed(house, pa.table({"trip_id": [11, 12], "fare": [1.0, -1.0], "payment_type": [1, 1]}), "bronze.other")
    drop = [{"range": {"column": "fare", "min": 0}, "action": "drop"}]
    first = task(name="first", query="SELECT trip_id, fare FROM bronze.trips", mode="append",
                 incremental=True, expectations=drop)
    second = task(name="second", query="SELECT trip_id, fare FROM bronze.other", mode="append",
                  incremental=True, expectations=drop)
    pipeline = [first, {**second, "depends_on": ["first"]}]
    for run_id, full_refresh in (("r1", False), ("r2", True), ("r3", True)):
        house.run(pipeline, "first", run_id=run_id, full_refresh=full_refresh)
        house.run(pipeline, "second", run_id=run_id, full_refresh=full_refresh)
        assert ids(house) == [1, 3, 4, 11], run_id
        assert sorted(house.table("silver.trips__quarantine").column("trip_id").to_pylist()) == ["12", "2"], run_id
    modes = [entry["operationParameters"]["mode"] for entry in house.lake.history("silver.trips")[:2]]
    assert modes == ["Append", "Overwrite"]
    # Each task's next incremental run reads only rows added after the refresh: none.
    assert house.run(pipeline, "first", run_id="r4").metrics.rows_out == 0
    assert house.run(pipeline, "second", run_id="r4").metrics.rows_out == 0


# -- errors and check ----------------------------------------------------------------------


def test_options_and_query_errors(house: Lakehouse) -> None:
    with pytest.raises(ValidationError, match="exactly one of query"):
        SqlOptions.model_validate({"target": "silver.x"})
    with pytest.raises(ValidationError, match="merge needs keys"):
        SqlOptions.model_validate({"target": "silver.x", "query": "SELECT 1", "mode": "merge"})
    with pytest.raises(ValidationError, match="use it with mode append or merge"):
        SqlOptions.model_validate({"target": "silver.x", "query": "SELECT 1", "incremental": True})
    with pytest.raises(ConfigError, match="SQL file sql/missing.sql not found"):
        house.run(task(sql="sql/missing.sql"))
    with pytest.raises(SqlError, match="expected one SELECT statement, found 2"):
        house.run(task(query="SELECT 1; SELECT 2"))
    with pytest.raises(SqlError, match="expected a SELECT"):
        house.run(task(query="CREATE TABLE x AS SELECT 1"))


def test_a_malformed_raw_csv_names_the_file_and_line_without_an_oserror(house: Lakehouse) -> None:
    house.raw("raw/x/late.csv", "a,b,c\n" + "1,2,3\n" * 30000 + "4,5,6,7\n")
    with pytest.raises(SqlError) as caught:
        house.run(task(query="SELECT * FROM read_csv('raw/x/late.csv')"))
    assert caught.value.message == "task silver: raw/x/late.csv:30002: 4 fields where 3 were expected: '4,5,6,7'"
    assert caught.value.hint and "read_csv" in caught.value.hint
    assert not house.lake.exists("silver.trips")


def test_check_finds_sql_errors_with_position_and_unknown_tables(house: Lakehouse) -> None:
    seed(house)
    assert house.check(task(query="SELECT trip_id FROM bronze.trips")) == []
    (problem,) = house.check(task(query="SELECT trip_id,\n  fare FROM FROM bronze.trips"))
    assert problem.startswith("query: Parser Error: syntax error") and "line 2" in problem
    (problem,) = house.check(task(query="SELECT tripid FROM bronze.trips"))
    assert "tripid" in problem and "query:" in problem
    (problem,) = house.check(task(query="SELECT * FROM bronze.trip"))
    assert problem == "query: table bronze.trip does not exist and no pipeline task writes it (hint: did you mean bronze.trips or silver.trips?)"
    (problem,) = house.check(task(query="SELECT trip_id FROM bronze.trips", mode="merge", keys=["id"]))
    assert "no column 'id'" in problem
    (problem,) = house.check(task(query="SELECT trip_id FROM bronze.trips", expectations=[{"not_null": "fare"}]))
    assert problem.startswith("expectation 'not_null(fare)' does not fit the query's columns")


def test_check_accepts_tables_an_upstream_task_will_write(house: Lakehouse) -> None:
    house.raw("raw/taxi/a.csv", "a,b\n1,2\n")
    house.file("contracts/bronze.taxi.yaml", "columns:\n  - {name: trip_id, type: bigint}\n  - {name: fare, type: double}\n")
    ingest = {"name": "ingest", "kind": "ingest", "source": "raw/taxi/*.csv", "target": "bronze.taxi", "contract": "bronze.taxi"}
    good = task(query="SELECT trip_id, fare, _source_file FROM bronze.taxi", depends_on=["ingest"])
    assert house.check([ingest, good], "silver") == []
    bad = task(query="SELECT trip_id, tip FROM bronze.taxi", depends_on=["ingest"])
    (problem,) = house.check([ingest, bad], "silver")
    assert "tip" in problem
    # Without a contract the upstream table's columns are unknown: the query is only parsed.
    (house.ws.root / "contracts/bronze.taxi.yaml").unlink()
    plain = {"name": "ingest", "kind": "ingest", "source": "raw/taxi/*.csv", "target": "bronze.taxi"}
    assert house.check([plain, bad], "silver") == []
