"""The `score` and `export` kinds on every engine, with a real MLflow registry: a lake table
and a SQL source scored in one idempotent commit carrying the run's metadata, the scores
equal to the model's own predictions, clear errors that commit nothing, and `export`
loading the batch into the SQL database — the same on each engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa
from conformance_kit import TITANIC, Project, types

FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
SCORE = {
    "name": "score_passengers", "kind": "score", "model": "titanic@champion",
    "source": {"table": "silver.passengers"}, "target": "gold.titanic_predictions",
    "keys": ["PassengerId"], "batch_size": 100,
}
FARE = {**SCORE, "model": "fare@champion", "target": "gold.fare_predictions"}
EXPORT = {
    "name": "export_predictions", "kind": "export", "depends_on": ["score_passengers"],
    "source": {"task": "score_passengers"}, "table": "titanic_predictions", "keys": ["PassengerId"],
    "mode": "upsert", "batch_rows": 200,
}
SCORED_TYPES = {
    "PassengerId": "int64", "prediction": "int64", "probability": "double", "model_name": "string",
    "model_version": "string", "scored_at": "timestamp[us, tz=UTC]", "score_date": "date32[day]",
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An MLflow tracking store (SQLite) and artifact folder holding `titanic` (a logistic
    regression) and `fare` (a linear regression), each with the alias `champion`; and the
    fitted models, to predict with directly."""
    import mlflow
    import skops.io
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("conformance", artifact_location=(folder / "mlartifacts").as_uri())
    frame = pd.read_csv(TITANIC)

    def fit(features: list[str], label: str, estimator: Any) -> Pipeline:
        numeric = [f for f in features if f not in ("Sex", "Embarked")]
        prep = ColumnTransformer([
            ("num", SimpleImputer(strategy="median"), numeric),
            ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
             ["Sex", "Embarked"]),
        ])
        return Pipeline([("prep", prep), ("model", estimator)]).fit(frame[features], frame[label])

    fitted = {
        "titanic": (fit(FEATURES, "Survived", LogisticRegression(max_iter=2000)), FEATURES),
        "fare": (fit([f for f in FEATURES if f != "Fare"], "Fare", LinearRegression()), [f for f in FEATURES if f != "Fare"]),
    }
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        for name, (model, features) in fitted.items():
            X = frame[features]
            with mlflow.start_run(experiment_id=experiment):
                mlflow.sklearn.log_model(
                    model, name="model", signature=infer_signature(X, model.predict(X)), registered_model_name=name,
                    serialization_format="skops", pip_requirements=["scikit-learn", "skops"],
                    skops_trusted_types=list(skops.io.get_untrusted_types(data=skops.io.dumps(model))),
                )
            client.set_registered_model_alias(name, "champion", "1")
    finally:
        mlflow.set_tracking_uri(previous)
    return {"uri": uri, "artifacts": folder / "mlartifacts", "fitted": fitted}


@pytest.fixture
def scoring(project: Project, models: dict[str, Any]) -> Project:
    """A project on the registry's MLflow, with silver.passengers (two commits) in its lake
    and the passengers in its SQLite warehouse."""
    text = project.ws.config_path.read_text()
    text = text.replace("tracking_uri: sqlite:///mlflow.db", f"tracking_uri: {models['uri']}")
    text = text.replace("artifact_location: mlartifacts", f"artifact_location: {models['artifacts']}")
    project.ws.config_path.write_text(text)
    frame = pd.read_csv(TITANIC)
    project.ws.lake.write("silver.passengers", pa.Table.from_pandas(frame.iloc[:500], preserve_index=False))
    project.ws.lake.write("silver.passengers", pa.Table.from_pandas(frame.iloc[500:], preserve_index=False),
                          mode="append")
    with sa.create_engine(project.ws.local_url("sqlite:///warehouse.db")).begin() as conn:
        frame.to_sql("passengers", conn, index=False)
    return project


def expected(models: dict[str, Any], name: str, rows: pd.DataFrame) -> pd.DataFrame:
    """What model `name` itself predicts for `rows`, by PassengerId."""
    model, features = models["fitted"][name]
    out = pd.DataFrame({"PassengerId": rows["PassengerId"].to_numpy(), "prediction": model.predict(rows[features])})
    if hasattr(model, "predict_proba"):
        out["probability"] = model.predict_proba(rows[features])[:, 1]
    return out.sort_values("PassengerId").reset_index(drop=True)


def scored(project: Project, table: str) -> pd.DataFrame:
    frame = project.read(table).to_pandas()
    columns = [c for c in ("PassengerId", "prediction", "probability") if c in frame.columns]
    return frame[columns].sort_values("PassengerId").reset_index(drop=True)


def assert_scores_equal(actual: pd.DataFrame, wanted: pd.DataFrame) -> None:
    """Same keys; classes equal, regression values and probabilities within 1e-12 (Spark
    scores the same model in its Python workers, on batches of other sizes)."""
    assert actual["PassengerId"].tolist() == wanted["PassengerId"].tolist()
    for column in wanted.columns.drop("PassengerId"):
        assert (actual[column] - wanted[column]).abs().max() < 1e-9, column


def test_a_lake_table_is_scored_in_one_commit_as_the_model_predicts(scoring: Project, models: dict[str, Any]) -> None:
    scoring.pipeline("titanic", SCORE)

    run = scoring.run_ok("titanic")

    table = scoring.read("gold.titanic_predictions")
    assert table.num_rows == 891
    assert types(table) == SCORED_TYPES
    assert_scores_equal(scored(scoring, "gold.titanic_predictions"), expected(models, "titanic", pd.read_csv(TITANIC)))
    assert set(table.column("model_name").to_pylist()) == {"titanic"}
    assert set(table.column("model_version").to_pylist()) == {"1"}
    assert len(set(table.column("scored_at").to_pylist())) == 1
    assert scoring.lake.describe("gold.titanic_predictions").partition_columns == ["score_date"]
    assert scoring.lake.version("gold.titanic_predictions") == 0
    task = run.task("score_passengers")
    assert (task.reads, task.writes, task.rows_out) == ({"silver.passengers": 1}, {"gold.titanic_predictions": 0}, 891)
    extra = task.metrics
    assert (extra["model_name"], extra["model_version"], extra["rows_scored"], extra["engine"]) == (
        "titanic", "1", 891, scoring.engine
    )
    assert extra["batches"] >= 9  # batch_size 100: at least 9 model calls
    entry = scoring.lake.history("gold.titanic_predictions", limit=1)[0]
    assert (entry["brickyard.run_id"], entry["brickyard.task"], entry["brickyard.model"]) == (
        run.run_id, "score_passengers", "titanic/1"
    )


def test_a_regressors_scores_have_no_probability_column(scoring: Project, models: dict[str, Any]) -> None:
    scoring.pipeline("fare", FARE)

    scoring.run_ok("fare")

    table = scoring.read("gold.fare_predictions")
    assert table.column_names == ["PassengerId", "prediction", "model_name", "model_version", "scored_at", "score_date"]
    assert types(table)["prediction"] == "double"
    assert_scores_equal(scored(scoring, "gold.fare_predictions"), expected(models, "fare", pd.read_csv(TITANIC)))


def test_a_sql_source_is_scored_and_leaves_no_staging(scoring: Project, models: dict[str, Any]) -> None:
    source = {"database": "default", "query": "SELECT * FROM passengers WHERE Sex = 'female'"}
    scoring.pipeline("titanic", {**SCORE, "source": source})

    task = scoring.run_ok("titanic").task("score_passengers")

    frame = pd.read_csv(TITANIC)
    assert_scores_equal(scored(scoring, "gold.titanic_predictions"),
                        expected(models, "titanic", frame[frame["Sex"] == "female"]))
    assert types(scoring.read("gold.titanic_predictions")) == SCORED_TYPES
    assert task.metrics["rows_scored"] == 314
    assert task.reads == {}
    staging = Path(scoring.ws.lake.location.uri("staging"))
    assert not staging.exists() or not any(p.is_file() for p in staging.rglob("*"))


def test_a_value_the_model_cannot_take_fails_clearly_and_commits_nothing(scoring: Project) -> None:
    with sa.create_engine(scoring.ws.local_url("sqlite:///warehouse.db")).begin() as conn:
        conn.execute(sa.text("UPDATE passengers SET Age = 'unknown' WHERE PassengerId = 850"))
    scoring.pipeline("titanic", {**SCORE, "source": {"database": "default", "table": "passengers"}})
    error = scoring.run_failing("titanic")
    assert "scoring default:passengers with titanic version 1 failed: " in error and "unknown" in error
    assert not scoring.exists("gold.titanic_predictions")

    scoring.ws.lake.write("silver.odd", pa.table({
        "PassengerId": [1, 2], "Pclass": [3, 1], "Sex": ["male", "female"], "Age": ["x", "y"], "SibSp": [0, 0],
        "Parch": [0, 0], "Fare": [7.0, 70.0], "Embarked": ["S", "C"],
    }))
    scoring.pipeline("titanic", {**SCORE, "source": {"table": "silver.odd"}})
    # scikit-learn's message has two lines, quoted as they are (on every engine)
    assert "scoring silver.odd with titanic version 1 failed" in scoring.run_failing("titanic", one_line=False)
    assert not scoring.exists("gold.titanic_predictions")


def test_export_after_score_loads_the_scores_into_the_database(scoring: Project) -> None:
    scoring.pipeline("titanic", [SCORE, EXPORT])

    run = scoring.run_ok("titanic")

    export = run.task("export_predictions").metrics
    assert (export["loaded"], export["rows_loaded"]) == (True, 891)
    with sa.create_engine(scoring.ws.local_url("sqlite:///warehouse.db")).connect() as conn:
        counted = conn.execute(sa.text("SELECT COUNT(*), COUNT(DISTINCT PassengerId) FROM titanic_predictions")).one()
        exported = pd.read_sql("SELECT PassengerId, prediction, probability FROM titanic_predictions", conn)
    assert tuple(counted) == (891, 891)
    merged = exported.merge(scored(scoring, "gold.titanic_predictions"), on="PassengerId", suffixes=("_sql", ""))
    assert (merged["prediction_sql"] == merged["prediction"]).all()
    assert (merged["probability_sql"] - merged["probability"]).abs().max() < 1e-12


def test_an_empty_lake_table_commits_an_empty_batch_with_the_sources_key_type(scoring: Project) -> None:
    empty = pa.Table.from_pandas(pd.read_csv(TITANIC).iloc[:0], preserve_index=False)
    scoring.ws.lake.write("silver.nobody", empty)
    scoring.pipeline("titanic", {**SCORE, "source": {"table": "silver.nobody"}})

    task = scoring.run_ok("titanic").task("score_passengers")

    assert task.metrics["rows_scored"] == 0
    table = scoring.read("gold.titanic_predictions")
    assert table.num_rows == 0
    assert table.column_names == list(SCORED_TYPES)
    assert types(table)["PassengerId"] == "int64"  # the source's key type, though no row was scored
