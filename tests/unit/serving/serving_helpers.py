"""Helpers for the serving tests (a uniquely named module: `conftest` is not importable safely)."""

from __future__ import annotations

from typing import Any

from brickyard import Workspace
from brickyard.config.models import EndpointConfig

COLUMNS = ["Age", "SibSp", "Parch", "Fare", "Pclass", "Sex", "Embarked"]
PASSENGER = [22.0, 1, 0, 7.25, 3, "male", "S"]


def with_endpoints(ws: Workspace, **endpoints: dict[str, Any]) -> Workspace:
    """The same workspace with `endpoints:` config (as brickyard.yaml would give it)."""
    config = ws.config.model_copy(update={"endpoints": {name: EndpointConfig(**cfg) for name, cfg in endpoints.items()}})
    return Workspace(ws.root, config)


def split_body(rows: list[list[Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {"dataframe_split": {"columns": COLUMNS, "data": rows or [PASSENGER]}, **extra}


def register_version(ws: Workspace, name: str, model_uri: str, *aliases: str) -> str:
    """Register an already logged model as a new version of `name` (cheap: no training)."""
    import mlflow
    from mlflow import MlflowClient

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(ws.mlflow_tracking_uri)
    try:
        version = str(mlflow.register_model(model_uri, name).version)
        client = MlflowClient(tracking_uri=ws.mlflow_tracking_uri)
        for alias in aliases:
            client.set_registered_model_alias(name, alias, version)
    finally:
        mlflow.set_tracking_uri(previous)
    return version


def set_alias(ws: Workspace, name: str, alias: str, version: str) -> None:
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=ws.mlflow_tracking_uri, registry_uri=ws.mlflow_tracking_uri).set_registered_model_alias(name, alias, version)


def read_log(ws: Workspace, table: str) -> list[dict[str, Any]]:
    return ws.lake.read(table).to_pylist()  # type: ignore[no-any-return]


# A pyfunc model whose signature declares a param, logged from code so that any process
# (`mlflow models serve` too) can load it.
SCALED_FARE_CODE = '''
import mlflow
import mlflow.pyfunc


class ScaledFare(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        scale = (params or {}).get("scale", 1.0)
        return [float(fare) * scale for fare in model_input["Fare"]]


mlflow.models.set_model(ScaledFare())
'''


def register_scaled_fare(ws: Workspace, name: str, frame: Any, folder: Any) -> str:
    """Register `name` version 1 (alias champion): predictions are Fare times params.scale
    (declared in its signature, default 1.0)."""
    import mlflow
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    code = folder / "scaled_fare.py"
    code.write_text(SCALED_FARE_CODE)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(ws.mlflow_tracking_uri)
    try:
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(
                name="scaled_fare", python_model=str(code),
                signature=infer_signature(frame, frame["Fare"].astype(float).tolist(), params={"scale": 1.0}),
            )
    finally:
        mlflow.set_tracking_uri(previous)
    return register_version(ws, name, info.model_uri, "champion")
