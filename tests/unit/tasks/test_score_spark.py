"""`score` and `export` on Spark, where a test needs a retried attempt of the same run or a
machine without Java (real Spark local[2], a real MLflow registry). What both engines do
alike (scores, errors, SQL sources, export) is in tests/conformance/test_conformance_score.py."""

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


def test_a_retried_spark_attempt_does_not_score_again(sws: Workspace) -> None:
    run(sws, [SCORE], "score_passengers", "spark", run_id="run-a")
    again = run(sws, [SCORE], "score_passengers", "spark", run_id="run-a")
    assert again.metrics.extra["already_committed"] is True
    assert sws.lake.version("gold.titanic_predictions") == 0
    assert sws.lake.read("gold.titanic_predictions").num_rows == 891


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


