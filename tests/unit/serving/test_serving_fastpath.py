"""The compiled fast path answers exactly what the MLflow model answers."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd

from brickyard import Workspace
from brickyard.serving.fastpath import compile_pipeline
from brickyard.serving.registry import PyfuncPredictor, Registry
from brickyard.serving.schema import parse_body
from titanic_example import RegisteredExample

TOLERANCE = 1e-5


def request_body(frame: pd.DataFrame) -> bytes:
    """The frame as a client would send it (NaN as null), in dataframe_split format."""
    return orjson.dumps({"dataframe_split": {"columns": list(frame.columns), "data": orjson.loads(frame.to_json(orient="values"))}})


def test_fast_path_equals_the_mlflow_model_on_the_test_split(serving_ws: Workspace, titanic: RegisteredExample) -> None:
    import mlflow.pyfunc
    import mlflow.sklearn

    registry = Registry(serving_ws.mlflow_tracking_uri)
    loaded = registry.load("titanic", titanic.version)
    assert loaded.kind == "fastpath", loaded.fast_path_problem
    uri = registry.client.get_model_version_download_uri("titanic", titanic.version)
    sklearn_model = mlflow.sklearn.load_model(uri)
    pyfunc_model = mlflow.pyfunc.load_model(uri)
    test = titanic.test_frame
    assert test.isna().any().any(), "the split should hold nulls (Age, Embarked)"

    batch = loaded.schema.batch(parse_body(request_body(test)))  # type: ignore[union-attr]
    expected = sklearn_model.predict_proba(test)
    got = loaded.predictor.predict_proba(batch)
    assert got.shape == expected.shape == (len(test), 2)
    assert np.abs(got - expected).max() <= TOLERANCE
    assert list(loaded.predictor.classes) == list(sklearn_model.classes_)
    assert np.array_equal(loaded.predictor.predict(batch), np.asarray(pyfunc_model.predict(test)))


def test_unseen_categories_and_nulls_score_like_sklearn(titanic: RegisteredExample, serving_ws: Workspace) -> None:
    loaded = Registry(serving_ws.mlflow_tracking_uri).load("titanic", titanic.version)
    frame = pd.DataFrame(
        {"Age": [None, 80.0], "SibSp": [0, 8], "Parch": [0, 6], "Fare": [0.0, 512.3], "Pclass": [1, 3],
         "Sex": ["female", "unknown"], "Embarked": [None, "Q"]}
    )
    batch = loaded.schema.batch(parse_body(request_body(frame)))  # type: ignore[union-attr]
    assert np.abs(loaded.predictor.predict_proba(batch) - titanic.model.predict_proba(frame)).max() <= TOLERANCE


def test_other_pipelines_are_not_compiled(titanic: RegisteredExample, serving_ws: Workspace) -> None:
    from sklearn.pipeline import Pipeline
    from sklearn.svm import SVC

    loaded = Registry(serving_ws.mlflow_tracking_uri).load("titanic", titanic.version)
    svm = Pipeline([("preprocess", titanic.model.steps[0][1]), ("model", SVC())])
    predictor, reason = compile_pipeline(svm, loaded.schema)  # type: ignore[arg-type]
    assert predictor is None and "SVC" in reason
    predictor, reason = compile_pipeline(object(), loaded.schema)  # type: ignore[arg-type]
    assert predictor is None and "Pipeline" in reason


def test_pyfunc_fallback_gives_the_same_answers(titanic: RegisteredExample, serving_ws: Workspace) -> None:
    import mlflow.pyfunc

    registry = Registry(serving_ws.mlflow_tracking_uri)
    fast = registry.load("titanic", titanic.version)
    slow = PyfuncPredictor(mlflow.pyfunc.load_model(registry.client.get_model_version_download_uri("titanic", titanic.version)))
    batch = fast.schema.batch(parse_body(request_body(titanic.test_frame.head(50))))  # type: ignore[union-attr]
    assert np.array_equal(np.asarray(slow.predict(batch)), fast.predictor.predict(batch))
    assert np.abs(np.asarray(slow.predict_proba(batch)) - fast.predictor.predict_proba(batch)).max() <= TOLERANCE


def test_one_row_lane_gives_the_batch_paths_labels(titanic: RegisteredExample, serving_ws: Workspace) -> None:
    from titanic_example import FEATURES, titanic_frame

    loaded = Registry(serving_ws.mlflow_tracking_uri).load("titanic", titanic.version)
    frame = titanic_frame()[FEATURES]
    odd = pd.DataFrame(
        {"Age": [None, 80.0], "SibSp": [0, 8], "Parch": [0, 6], "Fare": [0.0, 512.3], "Pclass": [1, 3],
         "Sex": ["female", "unknown"], "Embarked": [None, "Q"]}
    )
    frame = pd.concat([frame, odd], ignore_index=True)
    expected = titanic.model.predict(frame)
    laned = 0
    for index in range(len(frame)):
        payload = parse_body(request_body(frame.iloc[[index]]))
        row = loaded.schema.one_row(payload)  # type: ignore[union-attr]
        batch_label = loaded.predictor.predict(loaded.schema.batch(payload))[0]  # type: ignore[union-attr]
        if row is not None:
            laned += 1
            assert loaded.predictor.predict_one(row) == batch_label == expected[index], frame.iloc[index].to_dict()
    assert laned == len(frame)  # every Titanic row (nulls included) takes the one-row lane


def test_one_row_lane_leaves_doubtful_rows_to_the_checked_path(titanic: RegisteredExample, serving_ws: Workspace) -> None:
    loaded = Registry(serving_ws.mlflow_tracking_uri).load("titanic", titanic.version)
    schema = loaded.schema
    good = {"Age": 22.0, "SibSp": 1, "Parch": 0, "Fare": 7.25, "Pclass": 3, "Sex": "male", "Embarked": "S"}

    def body(**changes: object) -> bytes:
        row = {**good, **changes}
        return orjson.dumps({"dataframe_split": {"columns": list(row), "data": [list(row.values())]}})

    assert schema.one_row(parse_body(body())) is not None  # type: ignore[union-attr]
    for changes in ({"Age": "22"}, {"SibSp": 1.5}, {"Pclass": True}, {"Sex": 3}, {"Pclass": None}):
        assert schema.one_row(parse_body(body(**changes))) is None, changes  # type: ignore[union-attr]
    two = orjson.dumps({"dataframe_split": {"columns": list(good), "data": [list(good.values())] * 2}})
    assert schema.one_row(parse_body(two)) is None  # type: ignore[union-attr]
