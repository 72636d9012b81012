"""The demo's pipelines on both engines over the same input give the same tables.

Two workspaces get the same raw files (100,000 seeded synthetic TLC rows with their dirty
rows, the real 2017 sample, Titanic) and the same pipelines; one runs them on DuckDB, the
other on Spark in local mode (about 2.5 minutes in all on 2 cores). Checked: every table but
the KMeans ones equal row for row after sorting, every value exactly (bronze, silver and
gold taxi tables, their quarantines, bronze.titanic, the Titanic predictions); the KMeans
clusters matched by centre, with shares within 0.01 and centres within 0.01 standard
deviations (both engines seed k-means++ from the same hashed sample: brickyard.ml.kmeans_init).
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

ROWS = 100_000
SHARE_TOLERANCE = 0.01
CENTRE_TOLERANCE = 0.01  # in standard deviations of the feature
TABLES = (
    "bronze.taxi_trips",
    "bronze.taxi_trips__quarantine",
    "silver.taxi_trips",
    "silver.taxi_trips__quarantine",
    "gold.taxi_daily",
    "bronze.titanic",
    "gold.titanic_predictions",
)
CENTRE = ("trip_distance_mean", "fare_amount_mean", "passenger_count_mean")
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
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
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
def test_tables_are_equal_row_for_row(workspaces: dict[str, Any], table: str) -> None:
    duck, spark = (rows_of(workspaces[e], table) for e in ("duckdb", "spark"))
    assert len(duck) == len(spark) > 0
    different = [(d, s) for d, s in zip(duck, spark, strict=True) if not all(map(same, d, s))]
    assert not different, f"{len(different)} rows differ in {table}, e.g. {different[:2]}"


def test_table_schemas_match(workspaces: dict[str, Any]) -> None:
    for table in TABLES[:5]:
        duck, spark = (workspaces[e].lake.read(table).schema for e in ("duckdb", "spark"))
        assert {f.name: str(f.type) for f in duck} == {f.name: str(f.type) for f in spark}, table


def test_segments_match_by_centre_with_shares_within_a_hundredth(workspaces: dict[str, Any]) -> None:
    """Both engines start KMeans from the same rows (k-means++ on the same hashed sample)
    and run the same Lloyd iterations, so they find the same clusters. Tolerances, as the
    issue sets them: each cluster's share within 0.01, at most 1 % of the trips in another
    cluster, and each centre's feature means within 0.01 of that feature's standard
    deviation (a trip on a boundary could change sides on float rounding: the engines sum
    and compute distances in different orders). Today the clusters come out identical,
    numbered alike."""
    profiles = {e: workspaces[e].lake.read("gold.taxi_segment_profile").to_pylist() for e in ("duckdb", "spark")}
    assert len(profiles["duckdb"]) == len(profiles["spark"]) == 4
    matched = match_by_centre(profiles["duckdb"], profiles["spark"])
    shares = [(duck["share"], spark["share"]) for duck, spark in matched]
    assert all(abs(duck - spark) <= SHARE_TOLERANCE for duck, spark in shares), shares
    (spread,) = workspaces["duckdb"].sql(
        "SELECT " + ", ".join(f"stddev_pop({name.removesuffix('_mean')})" for name in CENTRE) + " FROM silver.taxi_trips"
    ).fetchall()
    for duck, spark in matched:
        for name, deviation in zip(CENTRE, spread, strict=True):
            assert abs(duck[name] - spark[name]) <= CENTRE_TOLERANCE * deviation, (name, duck, spark)
    renumber = {duck["cluster"]: spark["cluster"] for duck, spark in matched}
    assert all(duck == spark for duck, spark in renumber.items()), f"clusters numbered differently: {renumber}"
    assigned = {e: dict(zip(*workspaces[e].lake.read("gold.taxi_segments").select(["trip_id", "cluster"]).to_pydict().values(),
                            strict=True)) for e in ("duckdb", "spark")}
    assert assigned["duckdb"].keys() == assigned["spark"].keys()
    moved = sum(renumber[cluster] != assigned["spark"][trip] for trip, cluster in assigned["duckdb"].items())
    assert moved <= SHARE_TOLERANCE * len(assigned["duckdb"]), f"{moved} trips in another cluster"


def match_by_centre(duck: list[dict[str, Any]], spark: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Each DuckDB cluster with the Spark cluster whose centre is nearest (the pairing with
    the least total distance, centres measured in each feature's spread)."""
    from itertools import permutations

    spread = [max(abs(row[name]) for row in duck + spark) or 1.0 for name in CENTRE]

    def distance(a: dict[str, Any], b: dict[str, Any]) -> float:
        return math.sqrt(sum(((a[n] - b[n]) / s) ** 2 for n, s in zip(CENTRE, spread, strict=True)))

    best = min(permutations(spark), key=lambda order: sum(map(distance, duck, order)))
    return list(zip(duck, best, strict=True))


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
