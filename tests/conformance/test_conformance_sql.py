"""The `sql` kind on every engine: a full rebuild with a contract (rows to quarantine with
reasons, partitions), the demo's silver and gold SQL, incremental append, merge (upsert),
a failing expectation, and one-line errors — the same tables on each engine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa
import pytest
from conformance_kit import DEMO_CONTRACTS, DEMO_SQL, TAXI_SAMPLE, Project, fingerprint, types

TRIPS = pa.table(
    {
        "trip_id": [1, 2, 3, 4, 5, 6],
        "fare": [10.0, -2.5, 7.25, None, 5000.0, 0.1],
        "tip": [1.0, 1e10, 2.0, 1e-7, 0.5, None],
        "payment_type": [1, 2, 9, 1, 3, None],
        "city": ["nyc", "nyc", None, "sf", "nyc", "la"],
        "pickup": pa.array([datetime(2017, 1, 1, 8, 30), datetime(2017, 1, 2), None,
                            datetime(2017, 1, 3, 23, 59, 59), datetime(2017, 1, 4), datetime(2017, 1, 5)],
                           pa.timestamp("us")),
    }
)
CONTRACT = """\
table: silver.trips
expectations:
  - {name: fare_not_negative, range: {column: fare, min: 0, max: 1000}, action: drop}
  - {name: payment_known, accepted_values: {column: payment_type, values: [1, 2, 3]}, action: drop}
  - {name: has_pickup, not_null: pickup, action: drop}
  - {name: cheap, sql: "fare < 8", action: warn}
"""


def task(**fields: Any) -> dict[str, Any]:
    return {"name": "silver", "kind": "sql", "target": "silver.trips", **fields}


@pytest.fixture
def trips(project: Project) -> Project:
    """A project whose lake holds bronze.trips."""
    project.ws.lake.write("bronze.trips", TRIPS)
    return project


def ids(project: Project, table: str = "silver.trips") -> list[int]:
    return sorted(project.read(table).column("trip_id").to_pylist())


def test_a_contract_quarantines_rows_with_reasons_and_keeps_the_partitions(trips: Project) -> None:
    trips.file("contracts/silver.trips.yaml", CONTRACT)
    trips.pipeline("p", task(query="SELECT trip_id, fare, tip, payment_type, upper(city) AS city, pickup FROM bronze.trips",
                             contract="contracts/silver.trips.yaml", partition_by="city"))

    run = trips.run_ok("p").task("silver")

    assert ids(trips) == [1, 4, 6]
    quarantined = trips.rows("silver.trips__quarantine")
    assert {r["trip_id"]: r["_reason"] for r in quarantined} == {
        "2": "fare_not_negative: '-2.5'",
        "3": "payment_known: '9'; has_pickup: value is NULL",
        "5": "fare_not_negative: '5000.0'",
    }
    # The quarantine keeps every value as text, written the same way on each engine.
    assert {r["trip_id"]: (r["fare"], r["tip"]) for r in quarantined} == {
        "2": ("-2.5", "1e+10"), "3": ("7.25", "2"), "5": ("5000", "0.5")
    }
    assert quarantined[0]["pickup"] == "2017-01-02 00:00:00.000000"
    assert trips.lake.describe("silver.trips").partition_columns == ["city"]
    assert (run.rows_in, run.rows_out, run.reads, run.writes) == (
        6, 3, {"bronze.trips": 0}, {"silver.trips__quarantine": 0, "silver.trips": 0}
    )
    assert run.metrics == {"quarantined_rows": 3, "expectations": [
        {"name": "fare_not_negative", "check": "range", "action": "drop", "failing_rows": 2, "passed": False},
        {"name": "payment_known", "check": "accepted_values", "action": "drop", "failing_rows": 1, "passed": False},
        {"name": "has_pickup", "check": "not_null", "action": "drop", "failing_rows": 1, "passed": False},
        {"name": "cheap", "check": "sql", "action": "warn", "failing_rows": 3, "passed": False},
    ]}
    assert types(trips.read("silver.trips")) == {
        "trip_id": "int64", "fare": "double", "tip": "double", "payment_type": "int64", "city": "string",
        "pickup": "timestamp[us]",
    }
    assert (fingerprint(trips.read("silver.trips")), fingerprint(trips.read("silver.trips__quarantine"))) == (
        "aab6eb10ad608e50", "3b5f12e2a1e87ee3"
    )


def test_the_demo_silver_and_gold_sql_give_the_same_rows_and_quarantine(project: Project) -> None:
    project.raw("raw/taxi/sample_2017/2017_sample.csv", TAXI_SAMPLE)
    for name in ("silver_taxi_trips.sql", "gold_taxi_daily.sql"):
        project.file(f"sql/{name}", DEMO_SQL / name)
    for name in ("bronze.taxi_trips_sample_2017.yaml", "silver.taxi_trips.yaml"):
        project.file(f"contracts/{name}", DEMO_CONTRACTS / name)
    project.pipeline("taxi", [
        {"name": "ingest", "kind": "ingest", "source": "raw/taxi/sample_2017/*.csv", "target": "bronze.taxi_trips",
         "contract": "contracts/bronze.taxi_trips_sample_2017.yaml"},
        {"name": "clean", "kind": "sql", "sql": "sql/silver_taxi_trips.sql", "target": "silver.taxi_trips",
         "mode": "append", "incremental": True, "contract": "contracts/silver.taxi_trips.yaml",
         "depends_on": ["ingest"]},
        {"name": "daily", "kind": "sql", "sql": "sql/gold_taxi_daily.sql", "target": "gold.taxi_daily",
         "depends_on": ["clean"]},
    ])

    run = project.run_ok("taxi")

    clean = run.task("clean")
    failing = {e["name"]: e["failing_rows"] for e in clean.metrics["expectations"]}
    assert (clean.rows_in, clean.rows_out, clean.metrics["quarantined_rows"]) == (999, 987, 12)
    assert failing == {
        "dropoff_after_pickup": 9, "trip_under_six_hours": 2, "fare_not_negative": 1, "distance_plausible": 0,
        "passengers_known": 0, "passengers_present": 0, "pickup_zone_valid": 0, "dropoff_zone_valid": 0,
        "payment_type_known": 0, "zero_passenger_trips": 0,
    }
    assert clean.rows_out > 900
    assert types(project.read("silver.taxi_trips")) == {
        "trip_id": "string", "vendor_id": "int32", "pickup_at": "timestamp[us]", "dropoff_at": "timestamp[us]",
        "pickup_date": "date32[day]", "pickup_hour": "int64", "passenger_count": "int32", "trip_distance": "double",
        "trip_minutes": "double", "fare_per_mile": "double", "rate_code_id": "int32", "pu_location_id": "int32",
        "do_location_id": "int32", "payment_type": "int32", "fare_amount": "double", "tip_amount": "double",
        "tolls_amount": "double", "total_amount": "double", "source_file": "string",
    }
    assert types(project.read("gold.taxi_daily")) == {
        "pickup_date": "date32[day]", "pickup_zone": "int32", "trips": "int64", "passengers": "int64",
        "avg_distance": "double", "avg_minutes": "double", "avg_fare": "double", "revenue": "double",
        "card_tip_rate": "double",
    }
    assert [fingerprint(project.read(t)) for t in ("silver.taxi_trips", "silver.taxi_trips__quarantine",
                                                   "gold.taxi_daily")] == [
        "69d26e1a3e4a81fe", "fb1467fda97fc235", "0460ca8eb654d535"
    ]


def test_incremental_append_reads_only_new_rows(project: Project) -> None:
    trips = project
    trips.ws.lake.write("bronze.trips", TRIPS.slice(0, 3))
    trips.pipeline("p", task(query="SELECT trip_id, fare FROM bronze.trips", mode="append", incremental=True))
    trips.run_ok("p")
    assert ids(trips) == [1, 2, 3]

    trips.ws.lake.write("bronze.trips", TRIPS.slice(3, 2), mode="append")
    second = trips.run_ok("p").task("silver")
    assert ids(trips) == [1, 2, 3, 4, 5]
    assert (second.rows_in, second.reads) == (2, {"bronze.trips": 1})

    version = trips.lake.version("silver.trips")
    trips.run_ok("p")  # nothing new: no commit
    assert trips.lake.version("silver.trips") == version
    trips.run_ok("p", full_refresh=True)
    assert ids(trips) == [1, 2, 3, 4, 5]
    assert fingerprint(trips.read("silver.trips")) == "e6ceb86574fd7334"


def test_merge_upserts_by_key(trips: Project) -> None:
    trips.pipeline("p", task(query="SELECT trip_id, fare, city FROM bronze.trips WHERE trip_id <= 3",
                             mode="merge", keys="trip_id"))
    trips.run_ok("p")
    trips.ws.lake.write("bronze.trips", pa.table({
        "trip_id": [3, 7], "fare": [99.0, 1.0], "payment_type": [1, 1], "city": ["sf", "la"], "tip": [0.0, 0.0],
        "pickup": pa.array([None, None], pa.timestamp("us")),
    }), mode="overwrite")
    trips.pipeline("p", task(query="SELECT trip_id, fare, city FROM bronze.trips", mode="merge", keys="trip_id"))

    run = trips.run_ok("p").task("silver")

    assert trips.rows("silver.trips") == [
        {"trip_id": 1, "fare": 10.0, "city": "nyc"},
        {"trip_id": 2, "fare": -2.5, "city": "nyc"},
        {"trip_id": 3, "fare": 99.0, "city": "sf"},
        {"trip_id": 7, "fare": 1.0, "city": "la"},
    ]
    assert types(trips.read("silver.trips")) == {"trip_id": "int64", "fare": "double", "city": "string"}
    assert (run.rows_in, run.rows_out) == (2, 2)


def test_a_fail_expectation_names_itself_and_writes_nothing(trips: Project) -> None:
    trips.pipeline("p", task(query="SELECT * FROM bronze.trips", expectations=[{"not_null": "fare", "action": "fail"}]))

    error = trips.run_failing("p")

    assert "'not_null(fare)' failed on 1 row of silver.trips" in error
    assert not trips.exists("silver.trips")
    assert not trips.exists("silver.trips__quarantine")


def test_bad_sql_fails_with_one_line_errors_and_writes_nothing(trips: Project) -> None:
    trips.pipeline("p", task(query="SELECT nope FROM bronze.trips"))
    assert "nope" in trips.run_failing("p")
    trips.pipeline("p", task(query="SELECT * FROM bronze.missing"))
    assert "bronze.missing" in trips.run_failing("p")
    trips.pipeline("p", task(query="SELECT trip_id FROM bronze.trips", partition_by="city"))
    assert "keys/partition_by" in trips.run_failing("p")
    assert not trips.exists("silver.trips")
