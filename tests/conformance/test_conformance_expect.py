"""The `expect` kind on every engine: counts, rows moved to quarantine with reasons (values of
PII columns withheld), the table rewritten without them (partitions kept), `warn` that
writes nothing and `fail` that names the expectation — the same on each engine."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from conformance_kit import Project, fingerprint

TRIPS = pa.table(
    {
        "trip_id": [1, 2, 3, 4, 5, 5],
        "fare": [10.0, -2.0, 7.5, None, 3.0, 3.0],
        "tip": [1.5, 1e10, 0.0, 2.0, 1e-7, 1e-7],
        "payment_type": [1, 2, 9, 1, 3, 3],
        "pickup": pa.array([0, 1, 2, 3, 4, 4], pa.timestamp("us")),
    }
)
RULES = [
    {"not_null": "fare", "action": "drop"},
    {"unique": ["trip_id"], "action": "warn"},
    {"range": {"column": "fare", "min": 0, "max": 100}, "action": "drop"},
    {"accepted_values": {"column": "payment_type", "values": [1, 2, 3]}, "action": "drop"},
    {"sql": "fare IS NULL OR fare < 50", "name": "cheap"},
]


def check_task(**fields: Any) -> dict[str, Any]:
    return {"name": "check", "kind": "expect", "table": "silver.trips", **fields}


@pytest.fixture
def trips(project: Project) -> Project:
    project.ws.lake.write("silver.trips", TRIPS, partition_by=["payment_type"])
    return project


def test_drop_moves_failing_rows_to_quarantine_and_rewrites_the_table(trips: Project) -> None:
    trips.pipeline("p", check_task(expectations=RULES))

    run = trips.run_ok("p").task("check")

    assert sorted(trips.read("silver.trips").column("trip_id").to_pylist()) == [1, 5, 5]
    quarantined = trips.rows("silver.trips__quarantine")
    assert {r["trip_id"]: (r["tip"], r["_reason"]) for r in quarantined} == {
        "2": ("1e+10", "range(fare): '-2.0'"),
        "3": ("0", "accepted_values(payment_type): '9'"),
        "4": ("2", "not_null(fare): value is NULL"),
    }
    assert trips.lake.describe("silver.trips").partition_columns == ["payment_type"]
    assert "brickyard.expect" in trips.lake.history("silver.trips", limit=1)[0]
    assert (run.rows_in, run.rows_out, run.reads, run.writes) == (
        6, 3, {"silver.trips": 0}, {"silver.trips__quarantine": 0, "silver.trips": 1}
    )
    assert run.metrics == {"quarantined_rows": 3, "expectations": [
        {"name": "not_null(fare)", "check": "not_null", "action": "drop", "failing_rows": 1, "passed": False},
        {"name": "unique(trip_id)", "check": "unique", "action": "warn", "failing_rows": 2, "passed": False},
        {"name": "range(fare)", "check": "range", "action": "drop", "failing_rows": 1, "passed": False},
        {"name": "accepted_values(payment_type)", "check": "accepted_values", "action": "drop", "failing_rows": 1,
         "passed": False},
        {"name": "cheap", "check": "sql", "action": "warn", "failing_rows": 0, "passed": True},
    ]}
    assert (fingerprint(trips.read("silver.trips")), fingerprint(trips.read("silver.trips__quarantine"))) == (
        "9c7abd64d48cc585", "1e25d04b02726e68"
    )


def test_reasons_of_rules_on_pii_columns_withhold_the_value(trips: Project) -> None:
    trips.file(
        "contracts/silver.trips.yaml",
        "pii_key: k\ncolumns:\n  - {name: fare, type: double, pii: true}\n  - {name: payment_type, type: int}\n"
        "expectations:\n  - {range: {column: fare, min: 0}, action: drop}\n"
        "  - {accepted_values: {column: payment_type, values: [1, 2, 3]}, action: drop}\n",
    )
    trips.pipeline("p", check_task(contract="silver.trips"))

    run = trips.run_ok("p")

    quarantined = trips.rows("silver.trips__quarantine")
    assert {r["trip_id"]: r["_reason"] for r in quarantined} == {
        "2": "range(fare): <pii value withheld>",
        "3": "accepted_values(payment_type): '9'",
    }
    assert "-2.0" not in repr(run.task("check")) and "-2.0" not in run.log("check")
    assert fingerprint(trips.read("silver.trips__quarantine")) == "01a607eaef3fc698"


def test_warn_writes_nothing_and_fail_names_the_expectation(trips: Project) -> None:
    trips.pipeline("p", check_task(expectations=[{"unique": ["trip_id"]}]))
    run = trips.run_ok("p").task("check")
    assert run.metrics["expectations"][0]["failing_rows"] == 2
    assert run.writes == {} and trips.lake.version("silver.trips") == 0

    trips.pipeline("p", check_task(expectations=[{"range": {"column": "fare", "min": 0}, "action": "fail"},
                                                 {"not_null": "fare", "action": "drop"}]))
    error = trips.run_failing("p")
    assert "'range(fare)' failed on 1 row(s) of silver.trips" in error
    assert trips.lake.version("silver.trips") == 0
    assert not trips.exists("silver.trips__quarantine")
