"""The fast path beyond logistic regression: tree ensembles, linear regressors and KMeans.

Each compiled form must answer what the pipeline answers (the MLflow model's sklearn flavor
predicts with it) on the held-out Titanic rows, nulls and all, in both pipeline shapes
brickyard trains (`brickyard.ml.preprocess.fit_pipeline`: a ColumnTransformer with
categories, or select → impute → scale for numeric columns only), through the batch path,
the one-row lane and, for classifiers, probabilities. Labels must be equal; numbers equal
to TOLERANCE (relative), the rounding of a different order of additions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pytest

from brickyard import Workspace
from brickyard.ml.preprocess import fit_pipeline
from brickyard.serving.fastpath import compile_pipeline
from brickyard.serving.registry import Registry
from brickyard.serving.schema import ColumnSpec, InputSchema, parse_body
from titanic_example import CATEGORICAL, NUMERIC, titanic_frame

TOLERANCE = 1e-9
REGRESSION_NUMERIC = ["Age", "SibSp", "Parch", "Pclass"]


def request_body(frame: pd.DataFrame) -> bytes:
    return orjson.dumps({"dataframe_split": {"columns": list(frame.columns), "data": orjson.loads(frame.to_json(orient="values"))}})


def schema_of(frame: pd.DataFrame) -> InputSchema:
    """The input schema MLflow infers for the training frame (as logged with the model)."""
    from mlflow.models import infer_signature

    inputs = infer_signature(frame).inputs.inputs
    return InputSchema(tuple(ColumnSpec(spec.name, spec.type.name, spec.required) for spec in inputs))


def split(label: str, numeric: list[str], categorical: list[str]) -> tuple[pd.DataFrame, Any, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    data = titanic_frame()
    x_train, x_test, y_train, _ = train_test_split(data[numeric + categorical], data[label], test_size=0.25, random_state=0)
    return x_train, y_train, x_test


def estimators() -> dict[str, Callable[[], Any]]:
    from lightgbm import LGBMClassifier, LGBMRegressor
    from sklearn.cluster import KMeans
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import ElasticNet, LinearRegression, Ridge
    from sklearn.tree import DecisionTreeClassifier

    return {
        "random_forest": lambda: RandomForestClassifier(n_estimators=25, random_state=0),
        "extra_trees": lambda: ExtraTreesClassifier(n_estimators=25, random_state=0),
        "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(random_state=0),
        "gradient_boosting": lambda: GradientBoostingClassifier(n_estimators=30, random_state=0),
        "decision_tree": lambda: DecisionTreeClassifier(random_state=0),
        "lightgbm": lambda: LGBMClassifier(n_estimators=30, verbose=-1, random_state=0),
        "random_forest_regressor": lambda: RandomForestRegressor(n_estimators=25, random_state=0),
        "hist_gradient_boosting_regressor": lambda: HistGradientBoostingRegressor(random_state=0),
        "gradient_boosting_regressor": lambda: GradientBoostingRegressor(n_estimators=30, random_state=0),
        "lightgbm_regressor": lambda: LGBMRegressor(n_estimators=30, verbose=-1, random_state=0),
        "linear_regression": LinearRegression,
        "ridge": lambda: Ridge(alpha=0.5),
        "elastic_net": lambda: ElasticNet(alpha=0.01),
        "kmeans": lambda: KMeans(n_clusters=4, n_init=1, random_state=0),
    }


CASES = [
    # (estimator, label, categorical columns too)
    *[(name, "Survived", True) for name in
      ("random_forest", "extra_trees", "hist_gradient_boosting", "gradient_boosting", "decision_tree", "lightgbm")],
    ("random_forest", "Survived", False),
    ("hist_gradient_boosting", "Survived", False),
    *[(name, "Fare", True) for name in
      ("random_forest_regressor", "hist_gradient_boosting_regressor", "gradient_boosting_regressor", "lightgbm_regressor",
       "linear_regression", "ridge", "elastic_net")],
    ("linear_regression", "Fare", False),
    ("random_forest_regressor", "Fare", False),
    ("kmeans", None, False),
]


def assert_same(expected: Any, got: Any) -> None:
    expected, got = np.asarray(expected), np.asarray(got)
    assert expected.shape == got.shape
    if expected.dtype.kind == "f":
        assert np.allclose(got, expected, rtol=TOLERANCE, atol=TOLERANCE), np.abs(got - expected).max()
    else:
        assert np.array_equal(got, expected)


@pytest.mark.parametrize(("estimator", "label", "with_categories"), CASES, ids=[f"{e}-{'mixed' if c else 'numeric'}" for e, _, c in CASES])
def test_compiled_form_answers_what_the_pipeline_answers(estimator: str, label: str | None, with_categories: bool) -> None:
    numeric = REGRESSION_NUMERIC if label == "Fare" else NUMERIC
    categorical = CATEGORICAL if with_categories else []
    x_train, y_train, x_test = split(label or "Survived", numeric, categorical)
    pipeline = fit_pipeline(estimators()[estimator](), x_train, None if label is None else y_train, numeric, categorical)
    assert ("preprocess" in pipeline.named_steps) == with_categories  # both shapes brickyard trains
    schema = schema_of(x_train)
    predictor, reason = compile_pipeline(pipeline, schema)
    assert predictor is not None, reason
    assert x_test.isna().any().any(), "the held-out rows should hold nulls (Age, Embarked)"

    for rows in (x_test, x_test.head(50)):  # a large batch, and one small enough to score inline
        batch = schema.batch(parse_body(request_body(rows)))
        assert_same(pipeline.predict(rows), predictor.predict(batch))
        if hasattr(pipeline, "predict_proba"):
            assert np.abs(predictor.predict_proba(batch) - pipeline.predict_proba(rows)).max() <= TOLERANCE
            assert list(predictor.classes) == list(pipeline.classes_)
        else:
            assert predictor.classes is None
    expected = pipeline.predict(x_test)
    for index in range(20):
        row = schema.one_row(parse_body(request_body(x_test.iloc[[index]])))
        assert row is not None
        assert_same(expected[index : index + 1], [predictor.predict_one(row)])


def test_unseen_categories_score_like_the_pipeline() -> None:
    from sklearn.ensemble import RandomForestRegressor

    x_train, y_train, _ = split("Fare", REGRESSION_NUMERIC, CATEGORICAL)
    pipeline = fit_pipeline(RandomForestRegressor(n_estimators=10, random_state=0), x_train, y_train, REGRESSION_NUMERIC, CATEGORICAL)
    odd = pd.DataFrame({"Age": [None, 80.0], "SibSp": [0, 8], "Parch": [0, 6], "Pclass": [1, 3],
                        "Sex": ["female", "unknown"], "Embarked": [None, "Q"]})
    predictor, reason = compile_pipeline(pipeline, schema_of(x_train))
    assert predictor is not None, reason
    assert_same(pipeline.predict(odd), predictor.predict(schema_of(x_train).batch(parse_body(request_body(odd)))))


@pytest.fixture(scope="module")
def trained(serving_ws: Workspace) -> Workspace:
    """Titanic in the serving workspace's lake, for models trained by brickyard's train path."""
    serving_ws.lake.write("silver.titanic_fast", pa.Table.from_pandas(titanic_frame(), preserve_index=False), mode="overwrite")
    return serving_ws


@pytest.mark.parametrize(
    ("estimator", "label", "features"),
    [
        ("gradient_boosting", "Survived", NUMERIC + CATEGORICAL),
        ("random_forest", "Fare", REGRESSION_NUMERIC + CATEGORICAL),
        ("linear_regression", "Fare", REGRESSION_NUMERIC),
    ],
)
def test_models_brickyard_trains_are_served_fast_and_equal_to_the_mlflow_model(
    trained: Workspace, estimator: str, label: str, features: list[str]
) -> None:
    import mlflow.pyfunc

    from brickyard.ml.spec import TrainSpec
    from brickyard.ml.training import train

    name = f"fast_{estimator}_{label.lower()}"
    spec = TrainSpec.model_validate({
        "table": "silver.titanic_fast", "label": label, "features": features, "estimator": estimator,
        "problem": "regression" if label == "Fare" else "classification", "model_name": name,
    })
    result = train(trained, spec, experiment="fastpath", model_name=name)
    registry = Registry(trained.mlflow_tracking_uri)
    loaded = registry.load(name, str(result.model_version))
    assert loaded.kind == "fastpath", loaded.fast_path_problem
    test = result.fitted.data.test()[0]
    pyfunc = mlflow.pyfunc.load_model(registry.client.get_model_version_download_uri(name, str(result.model_version)))
    batch = loaded.schema.batch(parse_body(request_body(test)))  # type: ignore[union-attr]
    assert_same(pyfunc.predict(test), loaded.predictor.predict(batch))
