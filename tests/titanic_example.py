"""The Titanic example model: fit, log and register it, for tests and benchmarks
(bench/serving.py) that need a served model without running a training pipeline.
Importable as `titanic_example` from every test (tests/ is on pytest's path).

This is a fixture, not the training path (that is `ml/`): a scikit-learn Pipeline
(median impute + scale for numbers, most-frequent impute + one-hot for categories, then
logistic regression) on the shipped Titanic data, logged with its signature and an input
example and registered with an alias.

>>> import tempfile, brickyard
>>> ws = brickyard.Workspace.init(tempfile.mkdtemp())
>>> register_titanic_example(ws).version          # doctest: +SKIP
'1'
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from brickyard.workspace import Workspace

NUMERIC = ["Age", "SibSp", "Parch", "Fare", "Pclass"]
CATEGORICAL = ["Sex", "Embarked"]
FEATURES = NUMERIC + CATEGORICAL
TARGET = "Survived"


@dataclass(frozen=True)
class RegisteredExample:
    """What `register_titanic_example` made."""

    name: str
    version: str
    run_id: str
    model_uri: str  # the logged model (register more versions from it with mlflow.register_model)
    model: Any  # the fitted sklearn Pipeline
    test_frame: pd.DataFrame  # the held-out split (features only)


def titanic_frame() -> pd.DataFrame:
    """The shipped 891-row Titanic training set."""
    import pandas as pd

    with resources.as_file(resources.files("brickyard.demo") / "data" / "titanic.csv") as path:
        return pd.read_csv(path)


def fit_titanic(frame: pd.DataFrame | None = None, *, C: float = 1.0, seed: int = 0) -> tuple[Any, pd.DataFrame, pd.DataFrame]:
    """Fit the example pipeline; returns (pipeline, train features, test features)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    data = titanic_frame() if frame is None else frame
    x_train, x_test, y_train, _ = train_test_split(
        data[FEATURES], data[TARGET], test_size=0.25, random_state=seed, stratify=data[TARGET]
    )
    pipeline = Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer(
                    [
                        (
                            "numeric",
                            Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                            NUMERIC,
                        ),
                        (
                            "categorical",
                            Pipeline(
                                [
                                    ("impute", SimpleImputer(strategy="most_frequent")),
                                    ("onehot", OneHotEncoder(handle_unknown="ignore")),
                                ]
                            ),
                            CATEGORICAL,
                        ),
                    ]
                ),
            ),
            ("model", LogisticRegression(C=C, max_iter=1000)),
        ]
    )
    pipeline.fit(x_train, y_train)
    return pipeline, x_train, x_test


def register_titanic_example(
    ws: Workspace, *, name: str = "titanic", alias: str | None = "champion", C: float = 1.0, seed: int = 0  # noqa: N803
) -> RegisteredExample:
    """Fit the example, log it to the workspace's MLflow with signature and input example,
    register it as `name` and point `alias` at the new version."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    from brickyard.ml.tracking import initialize_store

    pipeline, x_train, x_test = fit_titanic(C=C, seed=seed)
    uri = ws.mlflow_tracking_uri
    initialize_store(ws)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        experiment = "brickyard-serving-example"
        client = MlflowClient(tracking_uri=uri)
        if client.get_experiment_by_name(experiment) is None:
            client.create_experiment(experiment, artifact_location=(ws.root / ws.config.mlflow.artifact_location).as_uri())
        mlflow.set_experiment(experiment)
        with mlflow.start_run() as run:
            signature = infer_signature(x_train, pipeline.predict(x_train))
            info = mlflow.sklearn.log_model(
                pipeline,
                name="model",
                signature=signature,
                input_example=x_train.head(3),
                registered_model_name=name,
                skops_trusted_types=["numpy.dtype"],
            )
        version = str(info.registered_model_version)
        if alias:
            client.set_registered_model_alias(name, alias, version)
    finally:
        mlflow.set_tracking_uri(previous)
    return RegisteredExample(name, version, run.info.run_id, info.model_uri, pipeline, x_test)
