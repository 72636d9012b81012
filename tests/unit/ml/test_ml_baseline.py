"""The monitoring baseline a `train` task records, and the one computed later for an older version."""

from __future__ import annotations

import json

import mlflow
import pyarrow as pa
import pytest
from ml_helpers import TITANIC_FEATURES, run_task, titanic_pipeline, train_task

from brickyard import Workspace
from brickyard.ml import tracking
from brickyard.ml.spec import TrainSpec
from brickyard.ml.training import train
from brickyard.monitoring import BaselineNotFoundError, compare
from brickyard.monitoring.store import BASELINE_ARTIFACT, BASELINE_TABLE, baseline_for, load_baseline
from brickyard.monitoring.training import backfill_baseline


def test_train_records_the_versions_baseline_in_the_table_and_as_an_artifact(ml_ws: Workspace) -> None:
    context = run_task(ml_ws, titanic_pipeline(train_task()), "train")
    extra = context.metrics.extra

    rows = ml_ws.lake.read(BASELINE_TABLE).to_pylist()
    by_column = {(row["role"], row["column"]): row for row in rows}
    assert set(by_column) == {("feature", name) for name in TITANIC_FEATURES} | {("output", "prediction"), ("output", "probability")}
    assert all(row["model_name"] == "titanic" and row["model_version"] == 1 for row in rows)
    age = by_column[("feature", "Age")]
    assert age["kind"] == "numeric" and age["rows"] == 891 and age["nulls"] == 177
    assert age["min"] == pytest.approx(0.42) and age["max"] == 80.0
    sex = json.loads(by_column[("feature", "Sex")]["sketch"])
    assert sex["counts"] == {"male": 577, "female": 314} and sex["other"] == 0
    assert json.loads(by_column[("output", "prediction")]["sketch"])["rows"] == 179  # the held-out rows
    assert context.metrics.writes[BASELINE_TABLE] == extra["baseline"]["table_version"]

    tracking.connect(ml_ws)
    artifact = mlflow.artifacts.load_dict(f"runs:/{extra['mlflow_run_id']}/{BASELINE_ARTIFACT}")
    assert artifact["model_version"] == 1 and list(artifact["features"]) == TITANIC_FEATURES
    assert baseline_for(ml_ws, "titanic").to_dict() == artifact


def test_the_training_data_does_not_drift_from_its_baseline_and_a_shifted_batch_does(ml_ws: Workspace) -> None:
    run_task(ml_ws, titanic_pipeline(train_task()), "train")
    baseline = baseline_for(ml_ws, "titanic/1")
    training = ml_ws.lake.read("silver.titanic")

    same = compare(baseline.sketches(), training)
    assert same.drifted_features == [] and same.drift_share == 0.0

    frame = training.to_pandas()
    frame["Sex"] = "female"
    frame["Age"] = frame["Age"] + 30
    shifted = compare(baseline.sketches(), pa.Table.from_pandas(frame, preserve_index=False))
    assert shifted.drifted_features == ["Sex", "Age"]


def test_a_version_trained_without_a_baseline_gets_a_clear_error_then_one_computed_from_its_recorded_data(
    ml_ws: Workspace,
) -> None:
    spec = TrainSpec.model_validate({
        "table": "silver.titanic", "label": "Survived", "features": TITANIC_FEATURES, "estimator": "logistic_regression",
    })
    train(ml_ws, spec, experiment="titanic", model_name="titanic")  # ml.training alone: no baseline
    with pytest.raises(BaselineNotFoundError) as caught:
        baseline_for(ml_ws, "titanic/1")
    assert "model titanic version 1 has no monitoring baseline" in str(caught.value)
    assert "brickyard monitor baseline titanic/1" in str(caught.value)

    ml_ws.lake.write("silver.titanic", ml_ws.lake.read("silver.titanic"))  # the table moved on: 1782 rows
    recorded = backfill_baseline(ml_ws, "titanic")
    assert recorded.baseline.model_version == 1 and recorded.baseline.rows == 891  # read at the recorded version 0

    loaded = load_baseline(ml_ws, "titanic", 1)
    assert loaded.to_dict() == recorded.baseline.to_dict()
    assert loaded.features["Sex"].counts == {"male": 577, "female": 314}  # type: ignore[union-attr]
