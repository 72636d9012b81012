"""`score` and `export` on the Spark engine (real Spark local[2], a real MLflow registry):
the scores equal the DuckDB engine's row for row, for a lake and a SQL source; the commit
is one, idempotent and carries the run's metadata, so `export` loads it exactly once."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa
from test_score import DATA, EXPORT, SCORE, registry  # noqa: F401 - the module-scoped registry fixture

from brickyard import Workspace
from brickyard.core.pipeline import PipelineSpec
from brickyard.ml.errors import ModelError
from brickyard.tasks import get_kind
from brickyard.tasks.base import TaskContext

COMPARED = ["PassengerId", "prediction", "probability", "model_name", "model_version", "score_date"]


@pytest.fixture
def sws(registry: Workspace, spark_workspace: Workspace) -> Workspace:  # noqa: F811
    """A Spark workspace sharing the registry's MLflow, with silver.passengers in two files
    and the passengers in its SQLite warehouse."""
    text = spark_workspace.config_path.read_text()
    text = text.replace("tracking_uri: sqlite:///mlflow.db", f"tracking_uri: {registry.mlflow_tracking_uri}")
    text = text.replace("artifact_location: mlartifacts", f"artifact_location: {registry.root / 'mlartifacts'}")
    spark_workspace.config_path.write_text(text)
    ws = Workspace.open(spark_workspace.root)
    frame = pd.read_csv(DATA)
    ws.lake.write("silver.passengers", pa.Table.from_pandas(frame.iloc[:500], preserve_index=False))
    ws.lake.write("silver.passengers", pa.Table.from_pandas(frame.iloc[500:], preserve_index=False), mode="append")
    with sa.create_engine(ws.local_url("sqlite:///warehouse.db")).begin() as conn:
        frame.to_sql("passengers", conn, index=False)
    return ws


def run(ws: Workspace, tasks: list[dict[str, Any]], name: str, engine: str, run_id: str = "20261123-100000-spark") -> TaskContext:
    pipeline = PipelineSpec.model_validate({"name": "titanic", "tasks": tasks})
    task = pipeline.task(name)
    kind = get_kind(task.kind)
    context = TaskContext(ws, pipeline, task, run_id, 1, False, logging.getLogger(f"test.{name}"), engine=engine)
    kind.run(kind.Options.model_validate(task.options), context)
    return context


def scores(ws: Workspace, table: str) -> pd.DataFrame:
    return ws.lake.read(table).to_pandas()[COMPARED].sort_values("PassengerId").reset_index(drop=True)


def test_score_on_spark_equals_score_on_duckdb_row_for_row(sws: Workspace) -> None:
    duck = run(sws, [{**SCORE, "target": "gold.duckdb_predictions"}], "score_passengers", "duckdb")
    spark = run(sws, [{**SCORE, "target": "gold.spark_predictions"}], "score_passengers", "spark")
    on_duckdb, on_spark = scores(sws, "gold.duckdb_predictions"), scores(sws, "gold.spark_predictions")
    assert len(on_spark) == 891
    pd.testing.assert_frame_equal(on_spark, on_duckdb)
    assert sws.lake.read("gold.spark_predictions").schema == sws.lake.read("gold.duckdb_predictions").schema
    assert sws.lake.describe("gold.spark_predictions").partition_columns == ["score_date"]
    assert sws.lake.version("gold.spark_predictions") == 0
    assert len(set(sws.lake.read("gold.spark_predictions").column("scored_at").to_pylist())) == 1
    assert spark.metrics.reads == duck.metrics.reads == {"silver.passengers": 1}
    assert spark.metrics.writes == {"gold.spark_predictions": 0}
    extra = spark.metrics.extra
    assert (extra["model_name"], extra["model_version"], extra["rows_scored"], extra["engine"]) == ("titanic", "1", 891, "spark")
    assert extra["batches"] >= 9  # batch_size 100: at least 9 model calls
    assert spark.metrics.rows_out == 891
    entry = sws.lake.history("gold.spark_predictions", limit=1)[0]
    assert (entry["brickyard.run_id"], entry["brickyard.task"], entry["brickyard.model"]) == (
        "20261123-100000-spark", "score_passengers", "titanic/1"
    )


def test_a_regressors_scores_on_spark_have_no_probability_column_either(sws: Workspace) -> None:
    from test_score import FARE, FARE_COLUMNS

    run(sws, [{**FARE, "target": "gold.duckdb_fares"}], "score_passengers", "duckdb")
    run(sws, [{**FARE, "target": "gold.spark_fares"}], "score_passengers", "spark")
    on_spark, on_duckdb = sws.lake.read("gold.spark_fares"), sws.lake.read("gold.duckdb_fares")
    assert on_spark.column_names == on_duckdb.column_names == FARE_COLUMNS
    columns = ["PassengerId", "prediction", "model_version"]
    pd.testing.assert_frame_equal(
        on_spark.to_pandas()[columns].sort_values("PassengerId").reset_index(drop=True),
        on_duckdb.to_pandas()[columns].sort_values("PassengerId").reset_index(drop=True),
    )


def test_a_retried_spark_attempt_does_not_score_again(sws: Workspace) -> None:
    run(sws, [SCORE], "score_passengers", "spark", run_id="run-a")
    again = run(sws, [SCORE], "score_passengers", "spark", run_id="run-a")
    assert again.metrics.extra["already_committed"] is True
    assert sws.lake.version("gold.titanic_predictions") == 0
    assert sws.lake.read("gold.titanic_predictions").num_rows == 891


def test_a_sql_source_on_spark_scores_like_duckdb_and_leaves_no_staging(sws: Workspace) -> None:
    source = {"database": "default", "query": "SELECT * FROM passengers WHERE Sex = 'female'"}
    run(sws, [{**SCORE, "source": source, "target": "gold.sql_duckdb"}], "score_passengers", "duckdb", run_id="d")
    spark = run(sws, [{**SCORE, "source": source, "target": "gold.sql_spark"}], "score_passengers", "spark", run_id="s")
    pd.testing.assert_frame_equal(scores(sws, "gold.sql_spark"), scores(sws, "gold.sql_duckdb"))
    assert spark.metrics.extra["rows_scored"] == 314
    assert spark.metrics.reads == {}
    staging = Path(sws.lake.location.uri("staging"))
    assert not staging.exists() or not any(p.is_file() for p in staging.rglob("*"))


def test_a_bad_value_on_spark_fails_clearly_and_commits_nothing(sws: Workspace) -> None:
    with sa.create_engine(sws.local_url("sqlite:///warehouse.db")).begin() as conn:
        conn.execute(sa.text("UPDATE passengers SET Age = 'unknown' WHERE PassengerId = 850"))
    with pytest.raises(ModelError, match="scoring default:passengers with titanic version 1 failed: .*unknown"):
        run(sws, [{**SCORE, "source": {"database": "default", "table": "passengers"}}], "score_passengers", "spark")
    assert not sws.lake.exists("gold.titanic_predictions")
    sws.lake.write("silver.odd", pa.table({"PassengerId": [1, 2], "Pclass": [3, 1], "Sex": ["male", "female"],
                                           "Age": ["x", "y"], "SibSp": [0, 0], "Parch": [0, 0], "Fare": [7.0, 70.0],
                                           "Embarked": ["S", "C"]}))
    with pytest.raises(ModelError, match="scoring silver.odd with titanic version 1 failed"):
        run(sws, [{**SCORE, "source": {"table": "silver.odd"}}], "score_passengers", "spark")
    assert not sws.lake.exists("gold.titanic_predictions")


def test_export_after_score_on_spark_loads_the_batch_once(sws: Workspace) -> None:
    tasks = [SCORE, EXPORT]
    run(sws, tasks, "score_passengers", "spark", run_id="r1")
    first = run(sws, tasks, "export_predictions", "spark", run_id="r1")
    assert (first.metrics.extra["loaded"], first.metrics.extra["rows_loaded"]) == (True, 891)
    again = run(sws, tasks, "export_predictions", "spark", run_id="r1")
    assert (again.metrics.extra["loaded"], again.metrics.extra["batch_id"]) == (False, first.metrics.extra["batch_id"])
    with sa.create_engine(sws.local_url("sqlite:///warehouse.db")).connect() as conn:
        counted = conn.execute(sa.text("SELECT COUNT(*), COUNT(DISTINCT PassengerId) FROM titanic_predictions")).one()
        exported = pd.read_sql("SELECT PassengerId, prediction, probability FROM titanic_predictions", conn)
    assert tuple(counted) == (891, 891)
    scored = scores(sws, "gold.titanic_predictions")
    merged = exported.merge(scored, on="PassengerId", suffixes=("_sql", ""))
    assert (merged["prediction_sql"] == merged["prediction"]).all()
    assert (merged["probability_sql"] - merged["probability"]).abs().max() < 1e-12


def test_the_kinds_declare_both_engines() -> None:
    for name in ("train", "score", "export"):
        assert get_kind(name).engines == ("duckdb", "spark")


def test_without_java_the_spark_kinds_fail_clearly(sws: Workspace, tmp_path: Path) -> None:
    """In a fresh process with no Java, train and score on Spark raise SparkUnavailableError."""
    import os
    import subprocess
    import sys

    script = tmp_path / "no_java.py"
    script.write_text(
        "import logging, sys\n"
        "from brickyard import Workspace\n"
        "from brickyard.core.pipeline import PipelineSpec\n"
        "from brickyard.engines.spark_session import SparkUnavailableError\n"
        "from brickyard.tasks import get_kind\n"
        "from brickyard.tasks.base import TaskContext\n"
        "ws = Workspace.open(sys.argv[1])\n"
        "tasks = [\n"
        f"    {SCORE!r},\n"
        "    {'name': 'segment', 'kind': 'train', 'table': 'silver.passengers', 'features': ['Age', 'Fare'],\n"
        "     'estimator': 'kmeans', 'k': 2},\n"
        "    {'name': 'train', 'kind': 'train', 'table': 'silver.passengers', 'label': 'Survived', 'features': ['Age']},\n"
        "]\n"
        "spec = PipelineSpec.model_validate({'name': 'titanic', 'tasks': tasks})\n"
        "for task in spec.tasks:\n"
        "    kind = get_kind(task.kind)\n"
        "    context = TaskContext(ws, spec, task, 'r', 1, False, logging.getLogger('t'), engine='spark')\n"
        "    try:\n"
        "        kind.run(kind.Options.model_validate(task.options), context)\n"
        "    except SparkUnavailableError as exc:\n"
        "        print(task.name, exc)\n"
    )
    env = {key: value for key, value in os.environ.items() if key not in ("JAVA_HOME", "SPARK_HOME")}
    env["PATH"] = str(tmp_path)  # no java on it
    done = subprocess.run([sys.executable, str(script), str(sws.root)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["score_passengers", "segment", "train"]
    assert all("engine spark needs Java 17 or newer" in line for line in lines)


def test_an_empty_source_commits_an_empty_batch_on_both_engines(sws: Workspace) -> None:
    empty = pa.Table.from_pandas(pd.read_csv(DATA).iloc[:0], preserve_index=False)
    sws.lake.write("silver.nobody", empty)
    for engine in ("duckdb", "spark"):
        context = run(sws, [{**SCORE, "source": {"table": "silver.nobody"}, "target": f"gold.empty_{engine}"}],
                      "score_passengers", engine, run_id=engine)
        assert context.metrics.extra["rows_scored"] == 0
        assert sws.lake.read(f"gold.empty_{engine}").num_rows == 0
    on_spark, on_duckdb = sws.lake.read("gold.empty_spark").schema, sws.lake.read("gold.empty_duckdb").schema
    assert on_spark.names == on_duckdb.names
    # DuckDB sees no batch, so no key type, and writes the key as text; Spark has the source's schema
    assert (on_spark.field("PassengerId").type, on_duckdb.field("PassengerId").type) == (pa.int64(), pa.string())
    assert on_spark.remove(0) == on_duckdb.remove(0)
