"""The `features` kind on both engines: a feature table from a table source (incremental by
source version; nothing written when nothing is new, and the log says so), from SQL,
null keys and times quarantined with a reason, a missing key column named."""

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
from brickyard.errors import ConfigError
from brickyard.tasks import get_kind
from brickyard.tasks.base import CheckContext, TaskContext

_runs = itertools.count(1)
SPARK_CONFIG = """
engine: spark
spark:
  master: local[2]
  conf:
    spark.sql.shuffle.partitions: "2"
    spark.default.parallelism: "2"
"""
ORDERS = pa.table({
    "customer_id": pa.array([1, 2, None, 1], pa.int64()),
    "ordered_at": pa.array([datetime(2024, 1, 1), datetime(2024, 1, 2), datetime(2024, 1, 3), None], pa.timestamp("us")),
    "amount": [10.0, 20.0, 30.0, 40.0],
})
MORE = pa.table({
    "customer_id": pa.array([3], pa.int64()),
    "ordered_at": pa.array([datetime(2024, 2, 1)], pa.timestamp("us")),
    "amount": [5.0],
})


class Feature:
    """A workspace on one engine with a feature table definition, and its task run as the runner runs it."""

    def __init__(self, ws: Workspace, engine: str) -> None:
        self.ws, self.engine = ws, engine

    def define(self, name: str, text: str) -> None:
        (self.ws.root / "features" / f"{name}.yaml").write_text(text, encoding="utf-8")

    def run(self, options: dict[str, Any], *, full_refresh: bool = False, caplog: Any = None) -> TaskContext:
        spec = PipelineSpec.model_validate({"name": "p", "tasks": [{"name": "feats", "kind": "features", **options}]})
        task = spec.tasks[0]
        kind = get_kind("features")
        context = TaskContext(
            workspace=self.ws, pipeline=spec, task=task, run_id=f"run-{next(_runs)}", attempt=1,
            full_refresh=full_refresh, log=logging.getLogger("test.features"), engine=self.engine,
        )
        kind.run(kind.Options.model_validate(task.options), context)
        return context

    def check(self, options: dict[str, Any]) -> list[str]:
        spec = PipelineSpec.model_validate({"name": "p", "tasks": [{"name": "feats", "kind": "features", **options}]})
        kind = get_kind("features")
        parsed = kind.Options.model_validate(spec.tasks[0].options)
        return kind.check(parsed, CheckContext(self.ws, spec, frozenset(kind.writes(parsed)), engine=self.engine))


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def feature(request: pytest.FixtureRequest, tmp_path: Path) -> Feature:
    ws = Workspace.init(tmp_path / "ws")
    if request.param == "spark":
        text = ws.config_path.read_text(encoding="utf-8").replace("engine: duckdb\n", "")
        ws.config_path.write_text(text + SPARK_CONFIG, encoding="utf-8")
        ws = Workspace.open(ws.root)
    return Feature(ws, request.param)


def test_init_makes_the_features_folder(tmp_path: Path) -> None:
    assert (Workspace.init(tmp_path / "ws").root / "features").is_dir()


def test_a_table_source_is_materialized_incrementally(feature: Feature, caplog: pytest.LogCaptureFixture) -> None:
    lake = feature.ws.lake
    lake.write("silver.orders", ORDERS)
    feature.define("spend", "keys: [customer_id]\nevent_time: ordered_at\nttl: 30d\nsource: {table: silver.orders}\n")
    first = feature.run({"table": "spend"})
    rows = sorted(lake.read("features.spend").to_pylist(), key=lambda r: (r["customer_id"], r["ordered_at"]))
    assert [(r["customer_id"], r["amount"]) for r in rows] == [(1, 10.0), (2, 20.0)]
    quarantine = sorted(lake.read("features.spend__quarantine").column("_reason").to_pylist())
    assert quarantine == ["event_time ordered_at: value is NULL", "key customer_id: value is NULL"]
    assert first.metrics.reads == {"silver.orders": 0}
    version = lake.version("features.spend")

    caplog.set_level(logging.INFO, logger="test.features")
    again = feature.run({"table": "spend"})
    assert lake.version("features.spend") == version
    assert "no source has a new version since the last run" in caplog.text
    assert again.metrics.extra["unchanged"] == ["features.spend"]

    lake.write("silver.orders", MORE, mode="append")
    feature.run({"tables": ["features.spend"]})
    assert lake.read("features.spend").num_rows == 3  # only the new row appended
    assert sorted(lake.read("features.spend").column("customer_id").to_pylist()) == [1, 2, 3]


def test_a_sql_source_replaces_the_table_and_a_missing_key_is_named(feature: Feature) -> None:
    lake = feature.ws.lake
    lake.write("silver.orders", ORDERS)
    (feature.ws.root / "sql" / "spend.sql").write_text(
        "SELECT customer_id, ordered_at, sum(amount) OVER (PARTITION BY customer_id ORDER BY ordered_at) AS total "
        "FROM silver.orders WHERE customer_id IS NOT NULL AND ordered_at IS NOT NULL", encoding="utf-8")
    feature.define("spend", "keys: customer_id\nevent_time: ordered_at\nsource: {sql: sql/spend.sql}\n")
    feature.run({"table": "spend"})
    feature.run({"table": "spend"}, full_refresh=True)
    assert sorted(lake.read("features.spend").column("total").to_pylist()) == [10.0, 20.0]

    feature.define("bad", "keys: [client]\nevent_time: ordered_at\nsource: {table: silver.orders}\n")
    with pytest.raises(ConfigError, match="key column 'client' is not a column of its source"):
        feature.run({"table": "bad"})
    assert not lake.exists("features.bad")
    assert any("'client'" in problem for problem in feature.check({"table": "bad"}))
    assert feature.check({"table": "spend"}) == []


def test_each_write_stores_its_rows_in_key_then_event_time_order(feature: Feature) -> None:
    """The point-in-time join reads a feature table in file order and sorts it only when it
    is out of order: every batch the kind writes is in key, then event-time order (rows with
    a null key or time are quarantined, so none is in the table)."""
    import numpy as np

    from brickyard.lake.datasets import arrow_dataset

    rng = np.random.default_rng(7)
    rows = 3000

    def shuffled(first_day: int) -> pa.Table:
        return pa.table({
            "region": pa.array(rng.choice(["north", "south", "east"], rows)),
            "customer_id": pa.array(rng.integers(0, 400, rows), pa.int64()),
            "ordered_at": pa.array(rng.integers(first_day, first_day + 30, rows) * 86_400_000_000, pa.timestamp("us")),
            "amount": rng.uniform(0, 100, rows),
        })

    lake = feature.ws.lake
    lake.write("silver.orders", shuffled(19_000))
    feature.define("spend", "keys: [region, customer_id]\nevent_time: ordered_at\nsource: {table: silver.orders}\n")
    feature.run({"table": "spend"})
    lake.write("silver.orders", shuffled(19_100), mode="append")
    feature.run({"table": "spend"})

    stored = arrow_dataset(lake.delta("features.spend")).to_table().to_pylist()
    assert len(stored) == 2 * rows
    order = [(r["region"], r["customer_id"], r["ordered_at"]) for r in stored]
    first, second = order[:rows], order[rows:]
    if first[0] > second[0]:  # the files of the two commits may be listed either way round
        first, second = second, first
    assert first == sorted(first) and second == sorted(second)
