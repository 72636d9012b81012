"""brickyard.ml.scoring: model references, loading from a real MLflow registry, scoring batches.

The models are a logistic regression and a linear regression trained on the real Titanic
data and registered in a temporary workspace's MLflow (SQLite store, local artifacts).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from brickyard import BrickyardError, Workspace
from brickyard.ml.errors import ModelNotFoundError, NoChampionError
from brickyard.ml.registry import ModelRef
from brickyard.ml.scoring import ScoringModel, load_model, score_batches

DATA = Path(__file__).resolve().parents[3] / "src" / "brickyard" / "demo" / "data" / "titanic.csv"
FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]


def register(ws: Workspace, name: str, estimator: object, label: str, alias: str | None = "champion") -> None:
    """Fit `estimator` behind Titanic preprocessing, log it (skops) and register it as `name`."""
    import mlflow
    import skops.io
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from brickyard.ml import tracking

    frame = pd.read_csv(DATA)
    X, y = frame[[f for f in FEATURES if f != label]], frame[label]
    numeric = [c for c in X.columns if c not in ("Sex", "Embarked")]
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), ["Sex", "Embarked"]),
    ])
    model = Pipeline([("prep", prep), ("model", estimator)]).fit(X, y)
    client = tracking.connect(ws)
    experiment = tracking.experiment_id(client, ws, "scoring_tests")
    with mlflow.start_run(experiment_id=experiment):
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X, model.predict(X)),
            registered_model_name=name,
            serialization_format="skops",
            skops_trusted_types=list(skops.io.get_untrusted_types(data=skops.io.dumps(model))),
            pip_requirements=["scikit-learn", "skops"],  # no requirement inference (a slow subprocess)
        )
    if alias:
        latest = max(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
        client.set_registered_model_alias(name, alias, str(latest))


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    from sklearn.linear_model import LinearRegression, LogisticRegression

    workspace = Workspace.init(tmp_path_factory.mktemp("scoring") / "ws")
    register(workspace, "titanic", LogisticRegression(max_iter=1000), "Survived")
    register(workspace, "titanic_candidate", LogisticRegression(C=0.1, max_iter=1000), "Survived", alias=None)
    register(workspace, "fare", LinearRegression(), "Fare")
    return workspace


@pytest.fixture(scope="module")
def titanic(ws: Workspace) -> ScoringModel:
    return load_model(ws, "titanic@champion")


def passengers() -> pa.Table:
    return pa.Table.from_pandas(pd.read_csv(DATA), preserve_index=False)


def test_model_references_parse() -> None:
    assert ModelRef.parse("titanic@champion") == ModelRef("titanic", alias="champion")
    assert ModelRef.parse(" titanic/12 ") == ModelRef("titanic", version="12")
    assert str(ModelRef.parse("titanic/12")) == "titanic/12"
    assert ModelRef.parse("titanic") == ModelRef("titanic")  # serving's default alias
    for bad, why in (
        ("titanic", "'titanic' is not a model reference"),  # scoring names the alias or version
        ("titanic@", "'titanic@': empty alias after '@'"),
        ("titanic/v1", "'titanic/v1': a version is a number"),
        ("@champion", "'@champion': a model name is letters, digits"),
        ("a b@c", "'a b@c': a model name is letters, digits"),
    ):
        with pytest.raises(BrickyardError) as caught:
            ModelRef.parse(bad, bare=False)
        assert caught.value.message.startswith(why)


def test_champion_loads_with_the_sklearn_flavor_and_signature_features(titanic: ScoringModel) -> None:
    assert (titanic.name, titanic.version, titanic.uri) == ("titanic", "1", "models:/titanic/1")
    assert sorted(titanic.features or []) == sorted(FEATURES)
    assert titanic.has_proba and titanic.classes.tolist() == [0, 1] and titanic.positive_index == 1
    assert titanic.run_id


def test_predictions_match_the_model_and_are_better_than_chance(titanic: ScoringModel) -> None:
    frame = pd.read_csv(DATA)
    prediction, probability = titanic.predict(frame[FEATURES])
    assert probability is not None
    np.testing.assert_allclose(probability, titanic.model.predict_proba(frame[FEATURES])[:, 1])
    np.testing.assert_array_equal(prediction, titanic.model.predict(frame[FEATURES]))
    assert ((prediction == frame["Survived"]).mean()) > 0.75


def test_a_version_number_loads_that_version(ws: Workspace) -> None:
    model = load_model(ws, "titanic_candidate/1")
    assert (model.name, model.version) == ("titanic_candidate", "1")


def test_a_model_without_a_champion_is_a_clear_error(ws: Workspace) -> None:
    with pytest.raises(NoChampionError) as caught:
        load_model(ws, "titanic_candidate@champion")
    assert caught.value.message == "model titanic_candidate has no champion"
    assert caught.value.hint == "run the titanic_candidate pipeline or `brickyard models promote`"


def test_unknown_models_versions_and_aliases_name_what_exists(ws: Workspace) -> None:
    with pytest.raises(ModelNotFoundError, match="no registered model 'titanc'") as caught:
        load_model(ws, "titanc@champion")
    assert "titanic" in (caught.value.hint or "")
    with pytest.raises(ModelNotFoundError, match="has no version 7"):
        load_model(ws, "titanic/7")
    with pytest.raises(ModelNotFoundError, match="no version or alias 'challenger'"):
        load_model(ws, "titanic@challenger")


def test_score_batches_keeps_keys_and_stamps_every_row_alike(titanic: ScoringModel) -> None:
    table = passengers()
    moment = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
    out = pa.Table.from_batches(list(score_batches(titanic, iter(table.to_batches(max_chunksize=200)), ["PassengerId"], moment)))
    assert out.column_names == [
        "PassengerId", "prediction", "probability", "model_name", "model_version", "scored_at", "score_date"
    ]
    assert out.num_rows == 891
    assert out.column("PassengerId").to_pylist() == table.column("PassengerId").to_pylist()
    assert set(out.column("model_name").to_pylist()) == {"titanic"}
    assert set(out.column("model_version").to_pylist()) == {"1"}
    assert set(out.column("scored_at").to_pylist()) == {moment}
    assert set(out.column("score_date").to_pylist()) == {moment.date()}
    assert out.schema.field("prediction").type == pa.int64()
    expected = titanic.model.predict_proba(table.to_pandas()[FEATURES])[:, 1]
    np.testing.assert_allclose(out.column("probability").to_numpy(), expected)


def test_a_missing_feature_column_is_named(titanic: ScoringModel) -> None:
    table = passengers().drop_columns(["Age", "Fare"])
    with pytest.raises(BrickyardError, match="no column.s. Age, Fare"):
        list(score_batches(titanic, iter(table.to_batches()), ["PassengerId"]))


def test_a_regressor_has_no_probability(ws: Workspace) -> None:
    model = load_model(ws, "fare@champion")
    assert not model.has_proba
    out = pa.Table.from_batches(list(score_batches(model, iter(passengers().to_batches()), ["PassengerId"])))
    assert "probability" not in out.column_names
    assert pa.types.is_floating(out.schema.field("prediction").type)
    kept = pa.Table.from_batches(list(score_batches(model, iter(passengers().to_batches()), ["PassengerId"], probability=True)))
    assert kept.column("probability").null_count == 891  # for a table that already has the column


def test_positive_class_can_be_chosen(ws: Workspace) -> None:
    model = load_model(ws, "titanic@champion", positive_class=0)
    frame = pd.read_csv(DATA)[FEATURES]
    _, probability = model.predict(frame)
    np.testing.assert_allclose(probability, model.model.predict_proba(frame)[:, 0])
    with pytest.raises(BrickyardError, match="has no class 'yes'"):
        load_model(ws, "titanic@champion", positive_class="yes")
