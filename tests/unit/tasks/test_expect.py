"""The `expect` kind: warn / drop (to quarantine, one commit) / fail over a lake table,
results per expectation in the metrics, crash safety, and check()."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest

from brickyard.core.quality import ExpectationFailedError
from brickyard.engines.duckdb import expect as duckdb_expect
from brickyard.engines.duckdb import quarantine as duckdb_quarantine
from brickyard.errors import ConfigError, LakeError
from brickyard.tasks.checkpoint import EXPECT_KEY

if TYPE_CHECKING:
    from conftest import Lakehouse

TRIPS = pa.table(
    {
        "trip_id": [1, 2, 3, 4, 5, 5],
        "fare": [10.0, -2.0, 7.5, None, 3.0, 3.0],
        "payment_type": [1, 2, 9, 1, 3, 3],
        "pickup": pa.array([0, 1, 2, 3, 4, 4], pa.timestamp("us")),
    }
)
DATA = Path(__file__).resolve().parents[3] / "src" / "brickyard" / "demo" / "data"


class Killed(BaseException):
    """Stands for the process being killed."""


def check_task(**fields: Any) -> dict[str, Any]:
    return {"name": "check", "kind": "expect", "table": "silver.trips", **fields}


def test_warn_records_results_and_writes_nothing(house: Lakehouse) -> None:
    house.lake.write("silver.trips", TRIPS)
    context = house.run(check_task(expectations=[
        {"not_null": "fare"},
        {"unique": ["trip_id"]},
        {"range": {"column": "fare", "min": 0, "max": 100}},
        {"accepted_values": {"column": "payment_type", "values": [1, 2, 3, 4, 5, 6]}},
        {"sql": "fare IS NULL OR fare < 50", "name": "cheap"},
    ]))
    assert context.metrics.extra["expectations"] == [
        {"name": "not_null(fare)", "check": "not_null", "action": "warn", "failing_rows": 1, "passed": False},
        {"name": "unique(trip_id)", "check": "unique", "action": "warn", "failing_rows": 2, "passed": False},
        {"name": "range(fare)", "check": "range", "action": "warn", "failing_rows": 1, "passed": False},
        {"name": "accepted_values(payment_type)", "check": "accepted_values", "action": "warn", "failing_rows": 1, "passed": False},
        {"name": "cheap", "check": "sql", "action": "warn", "failing_rows": 0, "passed": True},
    ]
    assert context.metrics.reads == {"silver.trips": 0} and context.metrics.writes == {}
    assert house.lake.version("silver.trips") == 0


def test_drop_moves_rows_to_quarantine_in_one_commit(house: Lakehouse) -> None:
    house.lake.write("silver.trips", TRIPS, partition_by=["payment_type"])
    context = house.run(check_task(expectations=[
        {"range": {"column": "fare", "min": 0}, "action": "drop"},
        {"unique": ["trip_id"], "action": "drop"},
        {"not_null": "fare", "action": "warn"},
    ]), run_id="r1")

    assert house.lake.version("silver.trips") == 1
    entry = house.lake.history("silver.trips")[0]
    assert entry["operationParameters"]["mode"] == "Overwrite" and EXPECT_KEY in entry
    table = house.table("silver.trips", sort="trip_id")
    assert table.column("trip_id").to_pylist() == [1, 3, 4]
    assert table.schema == house.table("silver.trips", version=0).schema
    assert house.lake.describe("silver.trips").partition_columns == ["payment_type"]
    bad = house.rows("silver.trips__quarantine", sort="_reason")
    assert [(r["trip_id"], r["_reason"], r["_run_id"]) for r in bad] == [
        ("2", "range(fare): '-2.0'", "r1"),
        ("5", "unique(trip_id): duplicate key '5'", "r1"),
        ("5", "unique(trip_id): duplicate key '5'", "r1"),
    ]
    assert bad[0]["pickup"] == "1970-01-01 00:00:00.000001"
    assert context.metrics.writes == {"silver.trips": 1, "silver.trips__quarantine": 0}
    assert context.metrics.extra["quarantined_rows"] == 3
    # Run again: nothing left to drop, nothing written.
    assert house.run(check_task(expectations=[{"range": {"column": "fare", "min": 0}, "action": "drop"}])).metrics.writes == {}
    assert house.count("silver.trips__quarantine") == 3


def test_fail_names_the_expectation_and_the_row_count(house: Lakehouse) -> None:
    house.lake.write("silver.trips", TRIPS)
    with pytest.raises(ExpectationFailedError, match=r"expectation 'unique\(trip_id\)' failed on 2 row\(s\) of silver.trips"):
        house.run(check_task(expectations=[
            {"unique": ["trip_id"], "action": "fail"},
            {"range": {"column": "fare", "min": 0}, "action": "drop"},
        ]))
    assert house.lake.version("silver.trips") == 0
    assert not house.lake.exists("silver.trips__quarantine")


def test_contract_by_default_with_required_columns(house: Lakehouse) -> None:
    house.lake.write("silver.trips", TRIPS)
    house.file("contracts/silver.trips.yaml", "columns:\n  - {name: fare, type: double, nullable: false}\n")
    context = house.run(check_task())
    assert [r["name"] for r in context.metrics.extra["expectations"]] == ["not_null(fare)"]
    assert house.count("silver.trips") == 5
    with pytest.raises(ConfigError, match="contract file .*silver.missing.yaml not found"):
        house.run(check_task(contract="silver.missing"))


def test_crash_between_quarantine_and_table_commit(house: Lakehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    house.lake.write("silver.trips", TRIPS)
    spec = check_task(expectations=[{"range": {"column": "fare", "min": 0}, "action": "drop"}])
    real = duckdb_quarantine.write_quarantine

    def then_crash(*args: Any, **kwargs: Any) -> int | None:
        real(*args, **kwargs)
        raise Killed

    monkeypatch.setattr(duckdb_expect, "write_quarantine", then_crash)
    with pytest.raises(Killed):
        house.run(spec)
    assert house.count("silver.trips") == 6 and house.count("silver.trips__quarantine") == 1
    monkeypatch.setattr(duckdb_expect, "write_quarantine", real)
    house.run(spec)
    assert house.count("silver.trips") == 5 and house.count("silver.trips__quarantine") == 1


def test_a_concurrent_write_stops_the_drop(house: Lakehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    house.lake.write("silver.trips", TRIPS)
    real = duckdb_quarantine.write_quarantine

    def meanwhile(*args: Any, **kwargs: Any) -> int | None:
        return real(*args, **kwargs)

    original_version = house.lake.version

    def moved(name: Any) -> int:
        return original_version(name) + (1 if str(name) == "silver.trips" else 0)

    monkeypatch.setattr(duckdb_expect, "write_quarantine", meanwhile)
    monkeypatch.setattr(house.lake, "version", moved)
    with pytest.raises(LakeError, match=r"silver.trips changed \(version 0 -> 1\)"):
        house.run(check_task(expectations=[{"range": {"column": "fare", "min": 0}, "action": "drop"}]))
    monkeypatch.undo()
    assert house.count("silver.trips") == 6 and not house.lake.exists("silver.trips__quarantine")


def test_expect_after_ingest_keeps_the_ingest_checkpoint(house: Lakehouse) -> None:
    house.raw("raw/taxi/a.csv", DATA / "nyc_taxi_2017_sample.csv")
    ingest = {"name": "ingest", "kind": "ingest", "source": "raw/taxi/*.csv", "target": "bronze.taxi"}
    house.run(ingest)
    house.run({"name": "check", "kind": "expect", "table": "bronze.taxi",
               "expectations": [{"range": {"column": "fare_amount", "min": 0}, "action": "drop"}]})
    assert house.count("bronze.taxi") == 998
    assert house.run(ingest).metrics.rows_in == 0  # the overwrite did not reset the checkpoint
    (bad,) = house.table("bronze.taxi__quarantine").to_pylist()
    assert bad["_source_file"] == "raw/taxi/a.csv" and bad["_loaded_at"] is not None


def test_check(house: Lakehouse) -> None:
    assert house.check(check_task()) == [
        f"contract file {house.ws.root / 'contracts/silver.trips.yaml'} not found "
        "(hint: contracts live in contracts/, e.g. contracts/bronze.trips.yaml)"
    ]
    (problem,) = house.check(check_task(expectations=[{"not_null": "fare"}]))
    assert problem == "silver.trips: table silver.trips does not exist and no pipeline task writes it"
    house.lake.write("silver.trips", TRIPS)
    assert house.check(check_task(expectations=[{"not_null": "fare"}])) == []
    (problem,) = house.check(check_task(expectations=[{"not_null": "tip"}]))
    assert problem.startswith("expectation 'not_null(tip)' does not fit the query's columns") and "tip" in problem
    house.file("contracts/silver.trips.yaml", "columns: []\n")
    assert house.check(check_task()) == ["no expectations for silver.trips: add expectations: or a contract with some"]
