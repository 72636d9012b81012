"""The Spark engine on a real local Spark: Delta tables read through delta-rs file lists,
written by executors and committed once by the driver, queried with DuckDB-dialect SQL."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from brickyard.engines.spark_delta import read_table, write_table
from brickyard.errors import LakeError, SqlError, TableNotFoundError

TITANIC = Path(__file__).parents[3] / "src" / "brickyard" / "demo" / "data" / "titanic.csv"

pytestmark = pytest.mark.slow


def trips() -> pa.Table:
    return pa.table(
        {
            "id": pa.array([1, 2, 3, 4], pa.int64()),
            "fare": [5.0, 7.5, None, 12.25],
            "pickup_at": pa.array([datetime(2026, 1, 1, 8, 30)] * 4, pa.timestamp("us")),
            "day": pa.array([date(2026, 1, 1), date(2026, 1, 1), date(2026, 1, 2), None], pa.date32()),
        }
    )


def test_spark_reads_a_partitioned_table_and_its_past_versions(spark_workspace) -> None:  # type: ignore[no-untyped-def]
    lake = spark_workspace.lake
    lake.write("bronze.trips", trips(), partition_by=["day"])
    lake.write("bronze.trips", trips().slice(0, 1))
    spark = spark_workspace.spark.spark
    frame = read_table(spark, lake, "bronze.trips")
    assert frame.schema.simpleString() == "struct<id:bigint,fare:double,pickup_at:timestamp_ntz,day:date>"
    rows = sorted(frame.toArrow().to_pylist(), key=lambda r: (r["id"], str(r["day"])))
    expected = sorted([*trips().to_pylist(), trips().to_pylist()[0]], key=lambda r: (r["id"], str(r["day"])))
    assert rows == expected
    assert read_table(spark, lake, "bronze.trips", version=0).count() == 4


def test_executors_write_and_the_driver_commits_once(spark_workspace) -> None:  # type: ignore[no-untyped-def]
    ws = spark_workspace
    ws.lake.write("silver.trips", trips())
    frame = ws.spark.dataframe("SELECT id + 10 AS id, fare, pickup_at, day FROM silver.trips")
    before = ws.lake.version("silver.trips")
    version = write_table(ws.lake, "silver.trips", frame, mode="append", metadata={"who": "test"}, transaction=("t", 1))
    assert version == before + 1
    assert ws.lake.history("silver.trips", limit=1)[0]["operation"] in {"WRITE", "write"}
    # DuckDB and delta-rs read what Spark wrote, types included.
    assert ws.sql("SELECT count(*), sum(id) FROM silver.trips").fetchall() == [(8, 10 + 50)]
    assert ws.lake.read("silver.trips").schema.field("pickup_at").type == pa.timestamp("us")
    # The same application transaction again: recognised, nothing written.
    assert write_table(ws.lake, "silver.trips", frame, mode="append", transaction=("t", 1)) == version
    assert ws.lake.read("silver.trips").num_rows == 8


def test_overwrite_replaces_rows_and_schema_and_creates_tables(spark_workspace) -> None:  # type: ignore[no-untyped-def]
    ws = spark_workspace
    ws.lake.write("silver.trips", trips())
    daily = ws.spark.dataframe("SELECT day, count(*) AS trips, round(sum(fare), 2) AS fares FROM silver.trips GROUP BY day")
    assert write_table(ws.lake, "gold.daily", daily, mode="overwrite", partition_by=["day"]) == 0
    got = sorted(ws.lake.read("gold.daily").to_pylist(), key=lambda r: str(r["day"]))
    assert got == [
        {"trips": 2, "fares": 12.5, "day": date(2026, 1, 1)},
        {"trips": 1, "fares": None, "day": date(2026, 1, 2)},
        {"trips": 1, "fares": 12.25, "day": None},
    ]
    assert ws.lake.describe("gold.daily").partition_columns == ["day"]
    empty = ws.spark.dataframe("SELECT id FROM silver.trips WHERE id < 0")
    assert write_table(ws.lake, "silver.trips", empty, mode="overwrite") == 1
    assert ws.lake.read("silver.trips").num_rows == 0
    assert ws.lake.read("silver.trips").schema.names == ["id"]


def test_an_append_that_does_not_fit_the_table_is_refused_and_changes_nothing(spark_workspace) -> None:  # type: ignore[no-untyped-def]
    ws = spark_workspace
    ws.lake.write("silver.trips", trips())
    extra = ws.spark.dataframe("SELECT id, fare, 'x' AS note FROM silver.trips")
    with pytest.raises(LakeError, match=r"column\(s\) \['note'\] are not in the table"):
        write_table(ws.lake, "silver.trips", extra, mode="append")
    assert ws.lake.version("silver.trips") == 0
    # The new column is added by a metadata commit, then the rows in one commit.
    assert write_table(ws.lake, "silver.trips", extra, mode="append", evolve_schema=True) == 2
    notes = ws.sql("SELECT count(note), count(*) FROM silver.trips").fetchall()
    assert notes == [(4, 8)]


def test_sql_over_raw_files_and_clear_errors(spark_workspace) -> None:  # type: ignore[no-untyped-def]
    ws = spark_workspace
    (ws.root / "lake" / "raw" / "titanic").mkdir(parents=True)
    shutil.copy(TITANIC, ws.root / "lake" / "raw" / "titanic" / "train.csv")
    query = "SELECT Pclass, count(*) AS n FROM 'raw/titanic/*.csv' GROUP BY Pclass ORDER BY Pclass"
    spark_rows = ws.spark.to_arrow(ws.spark.dataframe(query)).to_pylist()
    assert spark_rows == [dict(zip(("Pclass", "n"), row, strict=True)) for row in ws.sql(query).fetchall()]
    with pytest.raises(TableNotFoundError, match="bronze.nope"):
        ws.spark.dataframe("SELECT * FROM bronze.nope")
    with pytest.raises(SqlError, match=r"failed on Spark: \[UNRESOLVED_COLUMN.*`nope`") as caught:
        ws.spark.dataframe("SELECT nope FROM 'raw/titanic/*.csv'")
    assert "\n" not in str(caught.value)


def test_a_remote_lake_is_refused_with_the_reason(spark_workspace, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from brickyard.lake import Lake, LakeLocation

    remote = Lake(LakeLocation("abfs://lake@account.dfs.core.windows.net/x"))
    with pytest.raises(LakeError, match="reads and writes the lake by path"):
        read_table(spark_workspace.spark.spark, remote, "bronze.trips")


def test_delta_lake_spark_support_is_detected_and_its_absence_reported(spark_workspace) -> None:  # type: ignore[no-untyped-def]
    from brickyard.engines.spark_delta import native_delta

    ws = spark_workspace
    spark = ws.spark.spark
    assert native_delta(spark) is False  # no Delta jars here: the file-list way is used
    ws.lake.write("silver.trips", trips())
    ids = ws.spark.dataframe("SELECT id FROM silver.trips")
    spark.conf.set("spark.brickyard.delta", "native")
    try:
        assert native_delta(spark) is True
        with pytest.raises(LakeError, match="reading silver.trips with Delta Lake's Spark support failed: .*delta"):
            read_table(spark, ws.lake, "silver.trips")
        with pytest.raises(LakeError, match="writing silver.trips with Delta Lake's Spark support failed"):
            write_table(ws.lake, "silver.trips", ids, mode="append")
    finally:
        spark.conf.unset("spark.brickyard.delta")
    assert ws.lake.version("silver.trips") == 0


def test_history_unpacks_metadata_a_delta_spark_writer_stored_as_json(workspace) -> None:  # type: ignore[no-untyped-def]
    workspace.lake.write("gold.scores", trips(), metadata={"userMetadata": '{"brickyard.run_id": "r1"}'})
    (entry,) = workspace.lake.history("gold.scores", limit=1)
    assert entry["brickyard.run_id"] == "r1"
