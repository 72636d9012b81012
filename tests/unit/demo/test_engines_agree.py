"""The demo's pipelines on both engines over the same input give the same tables.

Two workspaces get the same raw files (20,000 seeded synthetic TLC rows with their dirty
rows, the real 2017 sample, Titanic) and the same pipelines; one runs them on DuckDB, the
other on Spark in local mode. Checked: bronze, silver and gold taxi tables and their
quarantines equal row for row after sorting (floats to 1e-9 relative), the KMeans cluster
shares within 0.03 of each other (Spark MLlib's k-means|| and brickyard's k-means++ start
differently, so clusters are matched by share, not by number), and the Titanic scores equal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest

from brickyard.demo.context import DemoContext
from brickyard.demo.pipelines import install_workspace_files, seed_passengers_database
from brickyard.demo.runner import land_raw_files
from brickyard.runtime import PipelineRunner

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROWS = 20_000
SHARE_TOLERANCE = 0.03
TABLES = (
    "bronze.taxi_trips",
    "bronze.taxi_trips__quarantine",
    "silver.taxi_trips",
    "silver.taxi_trips__quarantine",
    "gold.taxi_daily",
)
# Columns that differ by design: when a row was loaded, and by which run.
VOLATILE = {"_loaded_at", "_run_id", "scored_at", "score_date"}


class Silent:
    def step(self, title: str) -> None: ...
    def say(self, text: str) -> None: ...
    def table(self, columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...


def prepared(ws: Any) -> Any:
    context = DemoContext(ws, ROWS, 42, Silent())
    land_raw_files(context)
    install_workspace_files(context)
    seed_passengers_database(context)
    return ws


def run(ws: Any, pipeline: str, engine: str) -> None:
    result = PipelineRunner(ws).run(pipeline, engine=engine, trigger="test")
    assert result.ok, f"{pipeline} on {engine}: {result.error}"


def rows_of(ws: Any, table: str) -> list[tuple[Any, ...]]:
    data = ws.lake.read(table)
    names = sorted(name for name in data.column_names if name not in VOLATILE)
    records = data.select(names).to_pylist()
    return sorted((tuple(record[name] for name in names) for record in records), key=repr)


def same(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(left) and math.isnan(right))
    return left == right


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from brickyard import Workspace

    made = {}
    for engine in ("duckdb", "spark"):
        ws = prepared(Workspace.init(tmp_path_factory.mktemp(engine) / "ws"))
        for pipeline in ("taxi_trips", "taxi_segmentation", "titanic"):
            run(ws, pipeline, engine)
        made[engine] = ws
    return made


@pytest.mark.parametrize("table", TABLES)
def test_taxi_tables_are_equal_row_for_row(workspaces: dict[str, Any], table: str) -> None:
    duck, spark = (rows_of(workspaces[e], table) for e in ("duckdb", "spark"))
    assert len(duck) == len(spark) > 0
    different = [(d, s) for d, s in zip(duck, spark, strict=True) if not all(map(same, d, s))]
    assert not different, f"{len(different)} rows differ in {table}, e.g. {different[:2]}"


def test_taxi_table_schemas_match(workspaces: dict[str, Any]) -> None:
    for table in TABLES:
        duck, spark = (workspaces[e].lake.read(table).schema for e in ("duckdb", "spark"))
        assert {f.name: str(f.type) for f in duck} == {f.name: str(f.type) for f in spark}, table


def test_segment_shares_agree(workspaces: dict[str, Any]) -> None:
    shares = {
        engine: sorted(workspaces[engine].lake.read("gold.taxi_segment_profile").column("share").to_pylist())
        for engine in ("duckdb", "spark")
    }
    assert len(shares["duckdb"]) == len(shares["spark"]) == 4
    for duck, spark in zip(shares["duckdb"], shares["spark"], strict=True):
        assert abs(duck - spark) <= SHARE_TOLERANCE, shares
    assigned = {e: workspaces[e].lake.read("gold.taxi_segments").num_rows for e in ("duckdb", "spark")}
    assert assigned["duckdb"] == assigned["spark"] == workspaces["duckdb"].lake.read("silver.taxi_trips").num_rows


def test_titanic_scores_are_equal(workspaces: dict[str, Any]) -> None:
    scored = {}
    for engine in ("duckdb", "spark"):
        data = workspaces[engine].lake.read("gold.titanic_predictions")
        scored[engine] = sorted(
            zip(data.column("PassengerId").to_pylist(), data.column("prediction").to_pylist(),
                data.column("probability").to_pylist(), strict=True)
        )
    assert len(scored["duckdb"]) == len(scored["spark"]) == 891
    for (id_d, pred_d, prob_d), (id_s, pred_s, prob_s) in zip(scored["duckdb"], scored["spark"], strict=True):
        assert (id_d, pred_d) == (id_s, pred_s)
        assert math.isclose(prob_d, prob_s, rel_tol=1e-9)
