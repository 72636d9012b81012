"""The `sql` kind on Spark, where it needs Spark's internals or Spark-only behaviour: a
retried attempt and a crash between the two commits, and SQL Spark cannot translate. What
both engines do alike (rows, quarantine, incremental, merge, errors) is in
tests/conformance/test_conformance_sql.py. The helpers here also serve test_expect_spark.py."""

from __future__ import annotations

import itertools
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from brickyard import Workspace
from brickyard.core.pipeline import PipelineSpec
from brickyard.engines.spark import quality as spark_quality
from brickyard.engines.spark_sql import UntranslatableSqlError
from brickyard.tasks import get_kind
from brickyard.tasks.base import CheckContext, TaskContext

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


def test_a_retried_attempt_of_an_incremental_append_writes_nothing_twice(lakes: Engines) -> None:
    """A retried attempt of the same run after its commit landed: recognised, skipped.
    (Incremental reads, no-op runs and full refresh: tests/conformance/test_conformance_sql.py.)"""
    lakes.spark.lake.write("bronze.trips", TRIPS.slice(0, 3))
    spec = task(query="SELECT trip_id, fare FROM bronze.trips", mode="append", incremental=True)
    lakes.spark.run(spec, run_id="r1")
    lakes.spark.run(spec, run_id="r1")  # a retried attempt after the commit landed
    assert ids(lakes.spark) == [1, 2, 3]
    assert lakes.spark.lake.version("silver.trips") == 0


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


def test_sql_spark_cannot_translate_is_refused_by_run_and_by_check(lakes: Engines) -> None:
    """DuckDB-only SQL: an error naming the construct on Spark, at run and in `check`.
    (Errors both engines give alike: tests/conformance/test_conformance_sql.py.)"""
    spark = lakes.spark
    spark.lake.write("bronze.trips", TRIPS)
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
