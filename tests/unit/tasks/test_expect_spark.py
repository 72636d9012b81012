"""The `expect` kind on Spark with a crash or a concurrent writer injected into its commit
(see test_sql_spark.py for the helpers). What both engines do alike is in
tests/conformance/test_conformance_expect.py."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from test_sql_spark import Engines, Killed, lakes, same_table  # noqa: F401 (lakes: a fixture)

from brickyard.engines.spark import quality as spark_quality
from brickyard.errors import LakeError

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
