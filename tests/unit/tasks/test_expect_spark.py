"""The `expect` kind on the Spark engine: the same counts, quarantine rows, rewritten table,
commits and errors as on DuckDB (see test_sql_spark.py for the two-workspace helpers)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from test_sql_spark import Engines, Killed, lakes, same_table  # noqa: F401 (lakes: a fixture)

from brickyard.errors import LakeError
from brickyard.tasks import spark_quality
from brickyard.tasks.checkpoint import EXPECT_KEY
from brickyard.tasks.quality import ExpectationFailedError

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


def test_drop_gives_the_same_table_quarantine_and_metrics_as_duckdb(lakes: Engines) -> None:
    lakes.write("silver.trips", TRIPS, partition_by=["payment_type"])
    duck, spark = lakes.run(check_task(expectations=RULES))
    for key in ("rows_in", "rows_out", "extra", "reads", "writes"):
        assert getattr(spark.metrics, key) == getattr(duck.metrics, key), key
    assert spark.metrics.extra["quarantined_rows"] == 3
    assert spark.metrics.writes == {"silver.trips__quarantine": 0, "silver.trips": 1}
    assert sorted(r["trip_id"] for r in same_table(lakes, "silver.trips")) == [1, 5, 5]
    quarantined = same_table(lakes, "silver.trips__quarantine", drop=("_loaded_at", "_run_id"))
    assert {r["trip_id"]: (r["tip"], r["_reason"]) for r in quarantined} == {
        "2": ("1e+10", "range(fare): '-2.0'"),
        "3": ("0", "accepted_values(payment_type): '9'"),
        "4": ("2", "not_null(fare): value is NULL"),
    }
    assert lakes.spark.lake.describe("silver.trips").partition_columns == ["payment_type"]
    assert EXPECT_KEY in lakes.spark.lake.history("silver.trips", limit=1)[0]


def test_reasons_of_rules_on_pii_columns_withhold_the_value_on_both_engines(lakes: Engines) -> None:
    lakes.write("silver.trips", TRIPS)
    lakes.file(
        "contracts/silver.trips.yaml",
        "pii_key: k\ncolumns:\n  - {name: fare, type: double, pii: true}\n  - {name: payment_type, type: int}\n"
        "expectations:\n  - {range: {column: fare, min: 0}, action: drop}\n"
        "  - {accepted_values: {column: payment_type, values: [1, 2, 3]}, action: drop}\n",
    )
    lakes.run(check_task(contract="silver.trips"))
    quarantined = same_table(lakes, "silver.trips__quarantine", drop=("_loaded_at", "_run_id"))
    assert {r["trip_id"]: r["_reason"] for r in quarantined} == {
        "2": "range(fare): <pii value withheld>",
        "3": "accepted_values(payment_type): '9'",
    }


def test_warn_writes_nothing_and_fail_names_the_expectation(lakes: Engines) -> None:
    spark = lakes.spark
    spark.lake.write("silver.trips", TRIPS)
    context = spark.run(check_task(expectations=[{"unique": ["trip_id"]}]))
    assert context.metrics.extra["expectations"][0]["failing_rows"] == 2
    assert context.metrics.writes == {} and spark.lake.version("silver.trips") == 0
    with pytest.raises(ExpectationFailedError, match="'range\\(fare\\)' failed on 1 row\\(s\\) of silver.trips"):
        spark.run(check_task(expectations=[{"range": {"column": "fare", "min": 0}, "action": "fail"},
                                           {"not_null": "fare", "action": "drop"}]))
    assert spark.lake.version("silver.trips") == 0
    assert not spark.lake.exists("silver.trips__quarantine")


def test_a_crash_between_quarantine_and_table_commit_quarantines_once(
    lakes: Engines, monkeypatch: pytest.MonkeyPatch
) -> None:
    spark = lakes.spark
    spark.lake.write("silver.trips", TRIPS)
    spec = check_task(expectations=[{"not_null": "fare", "action": "drop"}])
    real = spark_quality.write_table

    def crash_on_table(lake: Any, name: Any, *args: Any, **kwargs: Any) -> int:
        if str(name) == "silver.trips":
            raise Killed()
        return real(lake, name, *args, **kwargs)

    monkeypatch.setattr(spark_quality, "write_table", crash_on_table)
    with pytest.raises(Killed):
        spark.run(spec, run_id="r1")
    assert spark.lake.read("silver.trips__quarantine").num_rows == 1
    assert spark.lake.version("silver.trips") == 0
    monkeypatch.setattr(spark_quality, "write_table", real)
    spark.run(spec, run_id="r1")
    assert spark.lake.read("silver.trips__quarantine").num_rows == 1
    assert spark.lake.read("silver.trips").num_rows == 5


def test_a_concurrent_write_stops_the_drop(lakes: Engines, monkeypatch: pytest.MonkeyPatch) -> None:
    spark = lakes.spark
    spark.lake.write("silver.trips", TRIPS)
    real = spark_quality.write_table

    def meanwhile(lake: Any, name: Any, *args: Any, **kwargs: Any) -> int:
        spark.lake.write("silver.trips", TRIPS.slice(0, 1), mode="append")  # another writer
        return real(lake, name, *args, **kwargs)

    monkeypatch.setattr(spark_quality, "write_table", meanwhile)
    with pytest.raises(LakeError, match=r"silver.trips changed \(version 0 -> 1\)"):
        spark.run(check_task(expectations=[{"not_null": "fare", "action": "drop"}]))
    assert spark.lake.read("silver.trips").num_rows == 7
