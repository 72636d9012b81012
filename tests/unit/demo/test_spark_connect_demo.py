"""The demo's pipelines through Spark Connect give the tables the local Spark engine gives.

A Spark Connect server from the installed pyspark package runs on loopback (the
`spark_connect` fixture); one workspace says `spark: {remote: sc://127.0.0.1:PORT}`, the
other runs Spark in local mode in the test process. Both get the same raw files (5,000
seeded synthetic TLC rows with their dirty rows, the real 2017 sample, Titanic) and run
the same pipelines. Every table of both lakes, quarantines included, must hold the same
rows (floats to 1e-9 relative), and the SQL database the Titanic pipeline exports to the
same predictions. Over Connect the engine has no SparkContext: scoring counts its rows
with `observe`, ingest needs no JVM for file paths.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from brickyard.demo.context import DemoContext
from brickyard.demo.pipelines import install_workspace_files, seed_passengers_database
from brickyard.demo.runner import land_raw_files
from brickyard.runtime import PipelineRunner

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROWS = 5_000
PIPELINES = ("taxi_trips", "taxi_segmentation", "titanic")
# Columns that differ by design: when a row was loaded or scored, and by which run.
VOLATILE = {"_loaded_at", "_run_id", "scored_at", "score_date", "run_id", "created"}  # run_id, created: gold.model_baselines
LOCAL = """
engine: spark
spark:
  master: local[2]
  conf:
    spark.sql.shuffle.partitions: "2"
    spark.default.parallelism: "2"
"""


def connect_config(remote: str) -> str:
    return f"""
engine: spark
spark:
  remote: {remote}
  conf:
    spark.sql.shuffle.partitions: "2"
"""


class Silent:
    def step(self, title: str) -> None: ...
    def say(self, text: str) -> None: ...
    def table(self, columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...


def spark_workspace_at(folder: Path, config: str) -> Any:
    from brickyard import Workspace

    ws = Workspace.init(folder)
    text = ws.config_path.read_text(encoding="utf-8").replace("engine: duckdb\n", "")
    ws.config_path.write_text(text + config, encoding="utf-8")
    ws = Workspace.open(ws.root)
    context = DemoContext(ws, ROWS, 42, Silent())
    land_raw_files(context)
    install_workspace_files(context)
    seed_passengers_database(context)
    return ws


def run_all(ws: Any) -> dict[str, Any]:
    results = {}
    for pipeline in PIPELINES:
        result = PipelineRunner(ws).run(pipeline, trigger="test")
        assert result.ok, f"{pipeline} on {ws.config.spark}: {result.error}"
        results[pipeline] = result
    return results


def rows_of(ws: Any, table: str) -> list[tuple[Any, ...]]:
    data = ws.lake.read(table)
    names = sorted(name for name in data.column_names if name not in VOLATILE)
    records = data.select(names).to_pylist()
    return sorted((tuple(record[name] for name in names) for record in records), key=repr)


def same(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(left) and math.isnan(right))
    return left == right


def database_rows(ws: Any, table: str) -> list[tuple[Any, ...]]:
    import sqlalchemy as sa

    engine = sa.create_engine(ws.local_url(ws.config.databases["default"].url))
    try:
        with engine.connect() as connection:
            found = connection.execute(sa.text(f'SELECT "PassengerId", prediction, probability FROM {table}'))
            return sorted(tuple(row) for row in found)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def workspaces(spark_connect: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from brickyard.engines.spark_session import stop_spark

    made = {}
    try:
        for name, config in (("local", LOCAL), ("connect", connect_config(spark_connect.remote))):
            ws = spark_workspace_at(tmp_path_factory.mktemp(name) / "ws", config)
            made[name] = (ws, run_all(ws))
    finally:
        stop_spark()  # the next Spark test starts its own local session
    return made


def test_the_connect_workspace_ran_on_the_server(workspaces: dict[str, Any], spark_connect: Any) -> None:
    ws = workspaces["connect"][0]
    assert ws.config.spark.remote == spark_connect.remote
    assert "brickyard-test-connect" in spark_connect.log.read_text(errors="replace")
    # rows counted without accumulators, the same as in local mode
    for name in ("local", "connect"):
        scored = {task.name: task for task in workspaces[name][1]["titanic"].tasks}["score_passengers"]
        assert (scored.rows_in, scored.rows_out) == (891, 891), name


def test_every_table_is_equal_row_for_row(workspaces: dict[str, Any]) -> None:
    local, connect = workspaces["local"][0], workspaces["connect"][0]
    tables = local.lake.tables()
    assert connect.lake.tables() == tables
    assert {"bronze.taxi_trips", "silver.taxi_trips__quarantine", "gold.taxi_daily", "gold.taxi_segments",
            "gold.titanic_predictions"} <= set(tables)
    for table in tables:
        left, right = rows_of(local, table), rows_of(connect, table)
        assert len(left) == len(right), f"{table}: {len(left)} rows locally, {len(right)} over Connect"
        different = [(a, b) for a, b in zip(left, right, strict=True) if not all(map(same, a, b))]
        assert not different, f"{len(different)} rows differ in {table}, e.g. {different[:2]}"


def test_table_schemas_are_equal(workspaces: dict[str, Any]) -> None:
    local, connect = workspaces["local"][0], workspaces["connect"][0]
    for table in local.lake.tables():
        left, right = (ws.lake.read(table).schema for ws in (local, connect))
        assert {f.name: str(f.type) for f in left} == {f.name: str(f.type) for f in right}, table


def test_the_exported_predictions_are_equal(workspaces: dict[str, Any]) -> None:
    local, connect = workspaces["local"][0], workspaces["connect"][0]
    left, right = database_rows(local, "titanic_predictions"), database_rows(connect, "titanic_predictions")
    assert len(left) == len(right) == 891
    assert left == right


def logged_spark_model(ws: Any) -> Path:
    """The folder of the KMeans model logged by taxi_segmentation (the only `spark` flavor)."""
    found = [path.parent for path in (ws.root / "mlartifacts").rglob("MLmodel") if "\n  spark:\n" in path.read_text()]
    assert len(found) == 1, found
    return found[0]


def test_the_mllib_model_is_logged_as_mlflow_spark_logs_it(workspaces: dict[str, Any]) -> None:
    """Over Connect mlflow.spark.log_model cannot run (it copies through the JVM); the model
    the server saved must be the same `spark` flavor model, with the same cluster centres."""
    import pyarrow.parquet as pq
    import yaml

    folders = {name: logged_spark_model(workspaces[name][0]) for name in ("local", "connect")}
    flavors = {name: yaml.safe_load((folder / "MLmodel").read_text())["flavors"] for name, folder in folders.items()}
    assert flavors["local"] == flavors["connect"]
    assert flavors["connect"]["spark"]["model_class"] == "pyspark.ml.pipeline.PipelineModel"
    assert (folders["connect"] / "requirements.txt").read_text() == (folders["local"] / "requirements.txt").read_text()

    def stages(folder: Path) -> list[str]:
        return sorted(path.name.rsplit("_", 1)[0] for path in (folder / "sparkml" / "stages").iterdir())

    assert stages(folders["local"]) == stages(folders["connect"]) == [
        "0_SQLTransformer", "1_Imputer", "2_VectorAssembler", "3_StandardScaler", "4_KMeans",
    ]

    def centres(folder: Path) -> list[Any]:
        (kmeans,) = (folder / "sparkml" / "stages").glob("4_KMeans_*")
        table = pq.read_table(kmeans / "data")
        return sorted(map(str, table.to_pylist()))

    assert centres(folders["local"]) == centres(folders["connect"])
