"""The `train` task kind: an MLflow run, a registered version, the data pinned."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from ml_helpers import RUN_ID, TITANIC_FEATURES, run_task, titanic_pipeline, train_task

from brickyard import Workspace
from brickyard.ml import tracking
from brickyard.ml.spec import TrainSpec
from brickyard.ml.training import SPEC_ARTIFACT, fit


def test_logistic_regression_on_titanic_is_registered_with_signature_example_and_pins(ml_ws: Workspace) -> None:
    ml_ws.lake.write("silver.titanic", ml_ws.lake.read("silver.titanic"), mode="overwrite")  # now at version 1
    context = run_task(ml_ws, titanic_pipeline(train_task()), "train")

    extra = context.metrics.extra
    assert extra["model_name"] == "titanic" and extra["model_version"] == 1
    assert context.metrics.reads == {"silver.titanic": 1}
    assert context.metrics.rows_in == 891
    assert 0.75 < extra["metrics"]["accuracy"] < 0.9 and 0.8 < extra["metrics"]["roc_auc"] < 0.95

    client = tracking.connect(ml_ws)
    run = client.get_run(extra["mlflow_run_id"])
    assert client.get_experiment(run.info.experiment_id).name == "titanic"
    assert client.get_experiment(run.info.experiment_id).artifact_location.startswith((ml_ws.root / "mlartifacts").as_uri())
    tags = run.data.tags
    assert tags["brickyard.input.silver.titanic"] == "1"
    assert tags["brickyard.run_id"] == RUN_ID
    assert tags["brickyard.pipeline"] == "titanic" and tags["brickyard.task"] == "train"
    params = run.data.params
    assert params["split_seed"] == "42" and params["split_test_size"] == "0.2" and params["split_stratify"] == "True"
    assert params["features"] == ",".join(TITANIC_FEATURES) and params["label"] == "Survived"
    assert params["estimator"] == "logistic_regression" and params["model.max_iter"] == "1000"
    assert params["rows_train"] == "712" and params["rows_test"] == "179"
    assert {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "fit_seconds"} <= set(run.data.metrics)

    version = client.get_model_version("titanic", "1")
    assert version.run_id == run.info.run_id
    assert version.tags["brickyard.input.silver.titanic"] == "1"
    assert version.tags["brickyard.run_id"] == RUN_ID

    info = mlflow.models.get_model_info("models:/titanic/1")
    inputs = {column.name: column.type.name for column in info.signature.inputs.inputs}
    assert list(inputs) == TITANIC_FEATURES
    assert inputs["Sex"] == "string" and inputs["Age"] == "double"
    assert info.saved_input_example_info is not None
    model = mlflow.pyfunc.load_model("models:/titanic/1")
    example = ml_ws.lake.read("silver.titanic").to_pandas()[TITANIC_FEATURES].head(3)
    assert len(model.predict(example)) == 3

    record = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/{SPEC_ARTIFACT}")
    assert record["inputs"] == {"silver.titanic": 1} and record["features"] == TITANIC_FEATURES


def test_default_features_are_all_columns_but_label_and_exclude(ml_ws: Workspace) -> None:
    spec = TrainSpec(table="silver.titanic", label="Survived", exclude=["PassengerId", "Name", "Ticket", "Cabin"])
    fitted = fit(ml_ws, spec)
    assert fitted.data.features == TITANIC_FEATURES
    assert fitted.data.numeric == ["Pclass", "Age", "SibSp", "Parch", "Fare"]
    assert fitted.data.categorical == ["Sex", "Embarked"]


def test_query_source_pins_every_table_it_reads_and_time_travels(ml_ws: Workspace) -> None:
    query = "SELECT * FROM silver.titanic WHERE Embarked IS NOT NULL ORDER BY PassengerId"
    first = fit(ml_ws, TrainSpec(query=query, label="Survived", features=TITANIC_FEATURES))
    assert first.data.reads == {"silver.titanic": 0} and len(first.data.frame) == 889
    ml_ws.lake.write("silver.titanic", ml_ws.lake.read("silver.titanic").slice(0, 300), mode="overwrite")
    again = fit(ml_ws, TrainSpec(query=query, label="Survived", features=TITANIC_FEATURES), pinned={"silver.titanic": 0})
    assert len(again.data.frame) == 889 and again.metrics == first.metrics
    latest = fit(ml_ws, TrainSpec(query=query, label="Survived", features=TITANIC_FEATURES))
    assert latest.data.reads == {"silver.titanic": 1} and len(latest.data.frame) == 299  # one of them has no Embarked


def test_table_version_option_reads_a_past_snapshot(ml_ws: Workspace) -> None:
    ml_ws.lake.write("silver.titanic", ml_ws.lake.read("silver.titanic").slice(0, 100), mode="overwrite")
    fitted = fit(ml_ws, TrainSpec(table="silver.titanic", version=0, label="Survived", features=TITANIC_FEATURES))
    assert len(fitted.data.frame) == 891 and fitted.data.reads == {"silver.titanic": 0}


@pytest.mark.parametrize(
    ("estimator", "params", "expected"),
    [
        ("random_forest", {"n_estimators": 20}, "sklearn.ensemble:RandomForestClassifier"),
        ("gradient_boosting", {"max_iter": 20}, "sklearn.ensemble:HistGradientBoostingClassifier"),
        ("lightgbm", {"n_estimators": 20}, "lightgbm:LGBMClassifier"),
        ("sklearn.tree:DecisionTreeClassifier", {"max_depth": 3}, "sklearn.tree:DecisionTreeClassifier"),
    ],
)
def test_other_estimators_by_short_name_or_import_path(ml_ws: Workspace, estimator: str, params: dict, expected: str) -> None:
    fitted = fit(ml_ws, TrainSpec(table="silver.titanic", label="Survived", features=TITANIC_FEATURES, estimator=estimator, params=params))
    assert fitted.estimator == expected
    assert fitted.estimator_params.get("random_state") == 42
    assert fitted.metrics["accuracy"] > 0.7


def test_lightgbm_model_is_logged_and_loads(ml_ws: Workspace) -> None:
    context = run_task(ml_ws, titanic_pipeline(train_task(estimator="lightgbm", params={"n_estimators": 20})), "train")
    model = mlflow.sklearn.load_model("models:/titanic/1")
    frame = ml_ws.lake.read("silver.titanic").to_pandas()[TITANIC_FEATURES]
    assert set(model.predict(frame.head(20))) <= {0, 1}
    requirements = mlflow.pyfunc.get_model_dependencies("models:/titanic/1")
    assert "lightgbm==" in Path(requirements).read_text()
    assert context.metrics.extra["model_version"] == 1


def test_regression_is_inferred_from_a_float_label(ml_ws: Workspace) -> None:
    fitted = fit(ml_ws, TrainSpec(table="silver.titanic", label="Fare", features=["Pclass", "Sex", "Age"], estimator="random_forest", params={"n_estimators": 20}))
    assert fitted.data.problem == "regression"
    assert set(fitted.metrics) == {"rmse", "mae", "r2"}


def test_model_name_option_and_versions_accumulate(ml_ws: Workspace) -> None:
    pipeline = titanic_pipeline(train_task(model_name="survival"))
    run_task(ml_ws, pipeline, "train", run_id="20260101-000000-000001")
    second = run_task(ml_ws, pipeline, "train", run_id="20260101-000000-000002")
    assert second.metrics.extra["model_name"] == "survival" and second.metrics.extra["model_version"] == 2
    spec = json.dumps(second.metrics.extra, default=str)
    assert "mlflow_run_id" in spec


def test_the_signature_of_a_large_table_is_inferred_from_a_sample_but_knows_every_null() -> None:
    """Types come from at most SIGNATURE_ROWS rows (MLflow checks each value of a text
    column); a column with a single null anywhere is still optional, and one that is null in
    almost every row still gets its type."""
    import numpy as np
    import pandas as pd

    from brickyard.ml.training import SIGNATURE_ROWS, signature

    rows = SIGNATURE_ROWS * 20
    frame = pd.DataFrame({
        "dense": np.arange(rows, dtype="int64"),
        "one_null": np.ones(rows),
        "rare_text": [None] * (rows - 1) + ["x"],
    })
    frame.loc[rows - 3, "one_null"] = np.nan

    class Zeros:
        def predict(self, X: pd.DataFrame) -> np.ndarray:
            return np.zeros(len(X))

    inputs = {spec.name: (spec.type.name, spec.required) for spec in signature(frame, Zeros(), 42).inputs.inputs}
    assert inputs == {"dense": ("long", True), "one_null": ("double", False), "rare_text": ("string", False)}
