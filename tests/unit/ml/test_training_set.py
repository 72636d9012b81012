"""`train` with a `training_set`: features looked up as of each entity row's timestamp,
no entity row dropped, the lineage artifact `feature_store/training_set.json` exactly as
the shared contract says, and `evaluate` rebuilding the same rows at the pinned versions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import mlflow
import pyarrow as pa
import pytest
from ml_helpers import run_task

from brickyard import Workspace
from brickyard.ml import tracking
from brickyard.ml.errors import TrainingDataError

START = datetime(2024, 1, 1)
CUSTOMERS = 40


def seed(ws: Workspace) -> None:
    """features.activity (visits, spend per customer, every 10 days; 30-day TTL) and
    gold.snapshots (one entity row per customer and month, label = spend known then > 50)."""
    rows = [
        {"customer_id": c, "seen_at": START + timedelta(days=10 * step), "visits": step + c % 3, "spend": float((c * 7 + step * 13) % 100)}
        for c in range(CUSTOMERS) for step in range(9)
    ]
    ws.lake.write("features.activity", pa.Table.from_pylist(rows))
    (ws.root / "features" / "activity.yaml").write_text(
        "keys: [customer_id]\nevent_time: seen_at\nttl: 30d\nsource: {table: silver.activity}\n", encoding="utf-8")
    snapshots = []
    for c in range(CUSTOMERS + 2):  # two customers with no feature rows at all
        for month in range(3):
            at = START + timedelta(days=31 * month + 5)
            known = [r for r in rows if r["customer_id"] == c and r["seen_at"] <= at]
            spend = known[-1]["spend"] if known else 0.0
            snapshots.append({"customer_id": c, "at": at, "channel": ["web", "shop"][c % 2], "churned": int(spend > 50)})
    ws.lake.write("gold.snapshots", pa.Table.from_pylist(snapshots))


def training_set(**overrides: Any) -> dict[str, Any]:
    block = {"table": "gold.snapshots", "keys": ["customer_id"], "timestamp": "at", "label": "churned",
             "features": [{"table": "features.activity", "columns": ["spend", "visits"]}]}
    block.update(overrides)
    return block


def pipeline(**overrides: Any) -> dict[str, Any]:
    return {"name": "churn", "tasks": [
        {"name": "train", "kind": "train", "training_set": training_set(**overrides), "estimator": "logistic_regression"},
        {"name": "evaluate", "kind": "evaluate", "depends_on": ["train"]},
    ]}


def test_train_from_a_training_set_records_its_lineage(ml_ws: Workspace) -> None:
    seed(ml_ws)
    context = run_task(ml_ws, pipeline(), "train")
    assert context.metrics.rows_in == (CUSTOMERS + 2) * 3  # no entity row dropped
    assert context.metrics.reads == {"gold.snapshots": 0, "features.activity": 0}
    tracking.connect(ml_ws)
    run_id = context.metrics.extra["mlflow_run_id"]
    lineage = mlflow.artifacts.load_dict(f"runs:/{run_id}/feature_store/training_set.json")
    assert lineage == {
        "entity_keys": ["customer_id"], "timestamp": "at", "label": "churned",
        "lookups": [{"table": "features.activity", "version": 0, "keys": ["customer_id"],
                     "features": ["spend", "visits"], "ttl_seconds": 30 * 86400.0}],
        "request_features": ["channel"],
    }
    spec = mlflow.artifacts.load_dict(f"runs:/{run_id}/brickyard/train_spec.json")
    assert spec["features"] == ["channel", "spend", "visits"]
    evaluated = run_task(ml_ws, pipeline(), "evaluate")
    assert evaluated.metrics.extra  # evaluate rebuilt the training set at the pinned versions


def test_training_set_names_are_checked(ml_ws: Workspace) -> None:
    seed(ml_ws)
    with pytest.raises(TrainingDataError, match="feature column 'spnd' is not in features.activity.*spend"):
        run_task(ml_ws, pipeline(features=[{"table": "features.activity", "columns": ["spnd"]}]), "train")
    with pytest.raises(TrainingDataError, match="timestamp column 'when' is not a column"):
        run_task(ml_ws, pipeline(timestamp="when"), "train")


def test_validate_checks_a_training_set(ml_ws: Workspace) -> None:
    from brickyard.runtime.validate import validate_workspace

    seed(ml_ws)
    (ml_ws.root / "pipelines" / "churn.yaml").write_text(
        "tasks:\n"
        "  - name: train\n"
        "    kind: train\n"
        "    training_set:\n"
        "      table: gold.snapshots\n"
        "      keys: [customer_id]\n"
        "      timestamp: at\n"
        "      label: churnd\n"
        "      features:\n"
        "        - {table: features.activty}\n"
        "        - {table: features.activity}\n", encoding="utf-8")
    found = [str(p) for p in validate_workspace(ml_ws, engine="duckdb")]
    assert any(p.startswith("pipelines/churn.yaml:8:") and "label column 'churnd'" in p and "churned" in p for p in found), found
    assert any(p.startswith("pipelines/churn.yaml:10:") and "no feature table 'activty'" in p for p in found), found
    assert not any(":11:" in p for p in found)


@pytest.mark.spark
def test_spark_trains_the_same_model_from_the_same_training_set(spark_workspace: Workspace, migrated_mlflow_db: Any,
                                                                 tmp_path: Any) -> None:
    import logging
    import shutil

    from brickyard.core.pipeline import PipelineSpec
    from brickyard.tasks import TaskContext, get_kind

    shutil.copyfile(migrated_mlflow_db, spark_workspace.root / "mlflow.db")
    seed(spark_workspace)
    metrics = {}
    for engine in ("duckdb", "spark"):
        spec = PipelineSpec.model_validate(pipeline())
        task = spec.task("train")
        kind = get_kind("train")
        context = TaskContext(spark_workspace, spec, task, f"run-{engine}", 1, False, logging.getLogger("t"), engine=engine)
        kind.run(kind.Options.model_validate(task.options), context)
        assert context.metrics.rows_in == (CUSTOMERS + 2) * 3
        metrics[engine] = context.metrics.extra["metrics"]
    assert metrics["spark"] == metrics["duckdb"]
