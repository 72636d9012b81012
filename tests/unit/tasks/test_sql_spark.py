"""The `sql` kind on the Spark engine: the same YAML gives the same target rows,
quarantine, metrics, incremental reads, idempotent retries and errors as on DuckDB.

Each test builds the same lake in a DuckDB workspace (`house`) and a Spark one, runs the
same task on both and compares what a user would look at.
"""

from __future__ import annotations

import itertools
import logging
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from brickyard import Workspace
from brickyard.core.pipeline import PipelineSpec
from brickyard.engines.spark_sql import UntranslatableSqlError
from brickyard.errors import SqlError, TableNotFoundError
from brickyard.tasks import get_kind, spark_quality
from brickyard.tasks.base import CheckContext, TaskContext
from brickyard.tasks.quality import ExpectationFailedError

DEMO = Path(__file__).resolve().parents[3] / "src" / "brickyard" / "demo"
_run_ids = itertools.count(1)

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


class House:
    """A workspace, and a task of a pipeline run on it as the runner does, on one engine."""

    def __init__(self, ws: Workspace, engine: str) -> None:
        self.ws, self.lake, self.engine = ws, ws.lake, engine

    def file(self, relative: str, text: str) -> None:
        path = self.ws.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def run(self, tasks: Any, *, name: str | None = None, run_id: str | None = None,
            full_refresh: bool = False, engine: str | None = None) -> TaskContext:
        tasks = [tasks] if isinstance(tasks, dict) else tasks
        spec = PipelineSpec.model_validate({"name": "p", "tasks": tasks})
        task = spec.task(name) if name else spec.tasks[0]
        kind = get_kind(task.kind)
        context = TaskContext(
            workspace=self.ws, pipeline=spec, task=task, run_id=run_id or f"run-{next(_run_ids)}",
            attempt=1, full_refresh=full_refresh, log=logging.getLogger(f"test.{task.name}"),
            engine=engine or self.engine,
        )
        kind.run(kind.Options.model_validate(task.options), context)
        return context

    def check(self, tasks: Any) -> list[str]:
        tasks = [tasks] if isinstance(tasks, dict) else tasks
        spec = PipelineSpec.model_validate({"name": "p", "tasks": tasks})
        kind = get_kind(spec.tasks[0].kind)
        options = kind.Options.model_validate(spec.tasks[0].options)
        return kind.check(options, CheckContext(self.ws, spec, frozenset(), engine=self.engine))


class Engines:
    """The same lake on DuckDB and on Spark."""

    def __init__(self, duck: House, spark: House) -> None:
        self.duck, self.spark = duck, spark

    def both(self, action: Any) -> None:
        action(self.duck)
        action(self.spark)

    def write(self, name: str, data: pa.Table, **options: Any) -> None:
        self.both(lambda house: house.lake.write(name, data, **options))

    def file(self, relative: str, text: str) -> None:
        self.both(lambda house: house.file(relative, text))

    def run(self, tasks: Any, **options: Any) -> tuple[TaskContext, TaskContext]:
        return self.duck.run(tasks, **options), self.spark.run(tasks, **options)


@pytest.fixture
def lakes(spark_workspace: Workspace, tmp_path: Path) -> Engines:
    return Engines(House(Workspace.init(tmp_path / "duck"), "duckdb"), House(spark_workspace, "spark"))


def rows(house: Any, name: str, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """A table's rows, sorted, without `drop` columns."""
    table = house.lake.read(name)
    table = table.select([c for c in table.column_names if c not in drop])
    return sorted(table.to_pylist(), key=lambda row: [(v is None, str(v)) for v in row.values()])


def same_table(lakes: Engines, name: str, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    duck, spark = rows(lakes.duck, name, drop), rows(lakes.spark, name, drop)
    assert spark == duck
    assert lakes.spark.lake.read(name).schema == lakes.duck.lake.read(name).schema
    return duck


def task(**fields: Any) -> dict[str, Any]:
    return {"name": "silver", "kind": "sql", "target": "silver.trips", **fields}


def test_same_rows_quarantine_and_metrics_as_duckdb(lakes: Engines) -> None:
    lakes.write("bronze.trips", TRIPS)
    lakes.file("contracts/silver.trips.yaml", CONTRACT)
    spec = task(query="SELECT trip_id, fare, tip, payment_type, upper(city) AS city, pickup FROM bronze.trips",
                contract="contracts/silver.trips.yaml", partition_by="city")
    duck, spark = lakes.run(spec)

    assert sorted(r["trip_id"] for r in same_table(lakes, "silver.trips")) == [1, 4, 6]
    quarantined = same_table(lakes, "silver.trips__quarantine", drop=("_loaded_at", "_run_id"))
    assert {r["trip_id"]: r["_reason"] for r in quarantined} == {
        "2": "fare_not_negative: '-2.5'",
        "3": "payment_known: '9'; has_pickup: value is NULL",
        "5": "fare_not_negative: '5000.0'",
    }
    assert {r["trip_id"]: (r["fare"], r["tip"]) for r in quarantined} == {
        "2": ("-2.5", "1e+10"), "3": ("7.25", "2"), "5": ("5000", "0.5")
    }
    assert quarantined[0]["pickup"] == "2017-01-02 00:00:00.000000"
    assert lakes.spark.lake.describe("silver.trips").partition_columns == ["city"]
    for key in ("rows_in", "rows_out", "extra", "reads", "writes"):
        assert getattr(spark.metrics, key) == getattr(duck.metrics, key), key
    assert spark.metrics.extra["quarantined_rows"] == 3


def demo_lakes(lakes: Engines) -> None:
    """bronze.taxi_trips from the demo's 2017 sample (ingested on DuckDB), and the demo's
    SQL and contracts, in both workspaces."""

    def ingest(house: House) -> None:
        raw = Path(house.lake.location.uri("raw/taxi/sample_2017"))
        raw.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DEMO / "data" / "nyc_taxi_2017_sample.csv", raw / "2017_sample.csv")
        shutil.copytree(DEMO / "workspace" / "sql", house.ws.root / "sql", dirs_exist_ok=True)
        shutil.copytree(DEMO / "workspace" / "contracts", house.ws.root / "contracts", dirs_exist_ok=True)
        house.run({"name": "ingest", "kind": "ingest", "source": "raw/taxi/sample_2017/*.csv",
                   "target": "bronze.taxi_trips", "contract": "contracts/bronze.taxi_trips_sample_2017.yaml"},
                  run_id="ingest", engine="duckdb")

    lakes.both(ingest)


CLEAN = task(sql="sql/silver_taxi_trips.sql", target="silver.taxi_trips", mode="append", incremental=True,
             contract="contracts/silver.taxi_trips.yaml")
DAILY = task(sql="sql/gold_taxi_daily.sql", target="gold.taxi_daily")


def values(house: House, name: str, *columns: str) -> list[tuple[Any, ...]]:
    table = house.lake.read(name)
    return sorted(tuple(str(row[c]) for c in columns) for row in table.to_pylist())


def test_the_demo_pipeline_sql_gives_the_same_rows_and_quarantine(lakes: Engines) -> None:
    demo_lakes(lakes)
    duck, spark = lakes.run(CLEAN, run_id="r1")
    lakes.run(DAILY, run_id="r1")
    assert spark.metrics.extra == duck.metrics.extra
    assert spark.metrics.rows_out == duck.metrics.rows_out > 900
    # Values compare equal (a DECIMAL 1.50 equals a DOUBLE 1.5); types are checked last.
    assert rows(lakes.spark, "silver.taxi_trips") == rows(lakes.duck, "silver.taxi_trips")
    assert rows(lakes.spark, "gold.taxi_daily") == rows(lakes.duck, "gold.taxi_daily")
    quarantine = "silver.taxi_trips__quarantine"
    assert values(lakes.spark, quarantine, "trip_id", "_reason") == values(lakes.duck, quarantine, "trip_id", "_reason")
    assert lakes.spark.lake.read("silver.taxi_trips").schema == lakes.duck.lake.read("silver.taxi_trips").schema
    same_table(lakes, quarantine, drop=("_loaded_at", "_run_id"))


def test_incremental_append_reads_only_new_rows_and_retries_write_nothing_twice(lakes: Engines) -> None:
    lakes.write("bronze.trips", TRIPS.slice(0, 3))
    spec = task(query="SELECT trip_id, fare FROM bronze.trips", mode="append", incremental=True)
    lakes.spark.run(spec, run_id="r1")
    lakes.spark.run(spec, run_id="r1")  # a retried attempt after the commit landed
    assert ids(lakes.spark) == [1, 2, 3]
    lakes.spark.lake.write("bronze.trips", TRIPS.slice(3, 2))
    context = lakes.spark.run(spec, run_id="r2")
    assert ids(lakes.spark) == [1, 2, 3, 4, 5]
    assert context.metrics.rows_in == 2 and context.metrics.reads == {"bronze.trips": 1}
    version = lakes.spark.lake.version("silver.trips")
    lakes.spark.run(spec, run_id="r3")  # nothing new
    assert lakes.spark.lake.version("silver.trips") == version
    lakes.spark.run(spec, run_id="r4", full_refresh=True)
    assert ids(lakes.spark) == [1, 2, 3, 4, 5]


def test_a_crash_between_quarantine_and_target_commit_is_retried_once(
    lakes: Engines, monkeypatch: pytest.MonkeyPatch
) -> None:
    spark = lakes.spark
    spark.lake.write("bronze.trips", TRIPS)
    spec = task(query="SELECT trip_id, fare FROM bronze.trips", mode="append",
                expectations=[{"range": {"column": "fare", "min": 0}, "action": "drop"}])
    real = spark_quality.write_table

    def crash_on_target(lake: Any, name: Any, *args: Any, **kwargs: Any) -> int:
        if str(name) == "silver.trips":
            raise Killed()
        return real(lake, name, *args, **kwargs)

    monkeypatch.setattr(spark_quality, "write_table", crash_on_target)
    with pytest.raises(Killed):
        spark.run(spec, run_id="r1")
    assert spark.lake.read("silver.trips__quarantine").num_rows == 1
    monkeypatch.setattr(spark_quality, "write_table", real)
    spark.run(spec, run_id="r1")
    assert spark.lake.read("silver.trips__quarantine").num_rows == 1
    assert ids(spark) == [1, 3, 4, 5, 6]


def test_merge_upserts_as_on_duckdb(lakes: Engines) -> None:
    lakes.write("bronze.trips", TRIPS)
    spec = task(query="SELECT trip_id, fare, city FROM bronze.trips WHERE trip_id <= 3", mode="merge", keys="trip_id")
    lakes.run(spec)
    lakes.write("bronze.trips", pa.table({"trip_id": [3, 7], "fare": [99.0, 1.0], "payment_type": [1, 1],
                                          "city": ["sf", "la"], "tip": [0.0, 0.0],
                                          "pickup": pa.array([None, None], pa.timestamp("us"))}), mode="overwrite")
    lakes.run(task(query="SELECT trip_id, fare, city FROM bronze.trips", mode="merge", keys="trip_id"))
    merged = same_table(lakes, "silver.trips")
    assert {r["trip_id"]: r["fare"] for r in merged} == {1: 10.0, 2: -2.5, 3: 99.0, 7: 1.0}


def test_a_fail_expectation_writes_nothing(lakes: Engines) -> None:
    lakes.spark.lake.write("bronze.trips", TRIPS)
    spec = task(query="SELECT * FROM bronze.trips", expectations=[{"not_null": "fare", "action": "fail"}])
    with pytest.raises(ExpectationFailedError, match="'not_null\\(fare\\)' failed on 1 row of silver.trips"):
        lakes.spark.run(spec)
    assert not lakes.spark.lake.exists("silver.trips")
    assert not lakes.spark.lake.exists("silver.trips__quarantine")


def test_bad_sql_gives_one_line_errors_and_check_reports_untranslatable_sql(lakes: Engines) -> None:
    spark = lakes.spark
    spark.lake.write("bronze.trips", TRIPS)
    with pytest.raises(SqlError, match="nope") as error:
        spark.run(task(query="SELECT nope FROM bronze.trips"))
    assert "\n" not in str(error.value)
    with pytest.raises(TableNotFoundError):
        spark.run(task(query="SELECT * FROM bronze.missing"))
    with pytest.raises(SqlError, match="keys/partition_by"):
        spark.run(task(query="SELECT trip_id FROM bronze.trips", partition_by="city"))
    duckdb_only = task(query="SELECT hamming(city, city) AS h FROM bronze.trips")
    with pytest.raises(UntranslatableSqlError, match="hamming"):
        spark.run(duckdb_only)
    assert any("hamming" in problem for problem in spark.check(duckdb_only))
    assert not any("hamming" in problem for problem in lakes.duck.check(duckdb_only))
    assert not spark.lake.exists("silver.trips")


class Killed(BaseException):
    """Stands for the process being killed."""


def ids(house: House, name: str = "silver.trips") -> list[int]:
    return sorted(house.lake.read(name).column("trip_id").to_pylist())
