"""The MLflow model registry, seen from serving: resolve an alias, load a version, warm it.

This is the only serving module that imports MLflow (lazily). A loaded model is a
`LoadedModel`: its name, version, input schema and a predictor, either the compiled fast path
(`fastpath.py`) or the MLflow pyfunc model itself.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from brickyard.errors import suggest
from brickyard.serving.errors import InvalidInputError, ModelNotFoundError, SignatureMismatchError
from brickyard.serving.schema import ANY, Batch, ColumnSpec, InputSchema, ParamSpec, convert_column

log = logging.getLogger("brickyard.serving")


class Predictor(Protocol):
    kind: str
    classes: Any

    def predict(self, batch: Batch) -> Any: ...

    def predict_proba(self, batch: Batch) -> Any: ...


@dataclass(frozen=True)
class LoadedModel:
    """One registered model version, ready to score."""

    name: str
    version: str
    schema: InputSchema | None  # None: the model has no column signature
    predictor: Predictor
    fast_path_problem: str  # why the fast path is not used ("" when it is)
    loaded_at: float

    @property
    def kind(self) -> str:
        return self.predictor.kind


class PyfuncPredictor:
    """Scores through the MLflow pyfunc model (any flavor); probabilities through the raw
    model's ``predict_proba`` when it has one."""

    kind = "pyfunc"

    def __init__(self, model: Any) -> None:
        self._model = model
        raw = None
        try:
            raw = model.get_raw_model()
        except Exception:
            raw = None
        self._proba = raw if hasattr(raw, "predict_proba") and hasattr(raw, "classes_") else None
        self.classes = np.asarray(self._proba.classes_) if self._proba is not None else None

    def predict(self, batch: Batch, params: dict[str, Any] | None = None) -> Any:
        """The model's predictions; `params` (ones its signature declares) go to the model."""
        if params:
            return _predict_error(lambda frame: self._model.predict(frame, params=params), batch.frame())
        return _predict_error(self._model.predict, batch.frame())

    def predict_proba(self, batch: Batch) -> Any:
        if self._proba is None:
            raise InvalidInputError("this model does not give class probabilities", hint="drop predict_proba")
        return _predict_error(self._proba.predict_proba, batch.frame())


def _predict_error(function: Any, frame: Any) -> Any:
    """MLflow's schema enforcement errors are the caller's fault (400, with MLflow's error
    code, as its own server answers); anything else is ours."""
    from mlflow.exceptions import MlflowException

    try:
        return function(frame)
    except MlflowException as exc:
        code = getattr(exc, "error_code", "")
        if code == "INVALID_PARAMETER_VALUE":
            raise SignatureMismatchError(f"the model rejected the input: {exc.message}") from None
        if code == "BAD_REQUEST":
            raise InvalidInputError(f"the model rejected the input: {exc.message}") from None
        raise


class Registry:
    """Model versions and aliases in the workspace's MLflow registry."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    def resolve(self, name: str, alias: str | None = None, version: str | None = None) -> str:
        """The version an alias points at (or check that a pinned version exists).

        Raises:
            ModelNotFoundError: no such model, alias or version (with close names).
        """
        from mlflow.exceptions import MlflowException

        try:
            if version is not None:
                return str(self.client.get_model_version(name, version).version)
            return str(self.client.get_model_version_by_alias(name, alias or "champion").version)
        except MlflowException as exc:
            raise self._not_found(name, alias, version) from exc

    def _not_found(self, name: str, alias: str | None, version: str | None) -> ModelNotFoundError:
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(name)
        except MlflowException:
            try:
                names = [m.name for m in self.client.search_registered_models(max_results=1000)]
            except MlflowException:
                names = []
            return ModelNotFoundError(
                f"no registered model {name!r} in {self.tracking_uri}",
                hint=suggest(name, names) or (f"registered models: {', '.join(names)}" if names else "train and register a model first"),
            )
        if version is not None:
            return ModelNotFoundError(f"model {name!r} has no version {version}", hint=f"serve {name}@champion or another version")
        aliases = sorted(getattr(model, "aliases", {}) or {})
        return ModelNotFoundError(
            f"model {name!r} has no alias {alias!r}",
            hint=suggest(alias or "", aliases) or (f"its aliases: {', '.join(aliases)}" if aliases else f"set one, e.g. champion, or serve {name}/VERSION"),
        )

    def load(self, name: str, version: str) -> LoadedModel:
        """Load a model version, compile its fast path when it has one, and warm it."""
        import mlflow
        import mlflow.pyfunc

        with self._lock:  # MLflow's global tracking URI is process state
            mlflow.set_tracking_uri(self.tracking_uri)
            uri = self.client.get_model_version_download_uri(name, version)
            _spark_for(f"models:/{name}/{version}")
            pyfunc = mlflow.pyfunc.load_model(uri)
        schema = signature_schema(pyfunc.metadata)
        predictor: Predictor = PyfuncPredictor(pyfunc)
        problem = "the model has no column signature"
        if schema is not None:
            from brickyard.serving.fastpath import compile_pipeline

            raw = None
            try:
                raw = pyfunc.get_raw_model()
            except Exception:
                raw = None
            if raw is None or pyfunc.metadata.flavors.get("python_function", {}).get("loader_module") != "mlflow.sklearn":
                problem = "not a scikit-learn model"
            else:
                compiled, problem = compile_pipeline(raw, schema)
                if compiled is not None:
                    predictor = compiled
        if problem:
            log.info("serving %s version %s through the MLflow pyfunc model (%s)", name, version, problem)
        loaded = LoadedModel(name, version, schema, predictor, problem, time.time())
        warm(loaded)
        return loaded


def _spark_for(uri: str) -> None:
    """For a Spark MLlib model at `uri` (`models:/name/version`), start the loopback,
    UI-less Spark session it runs in before MLflow starts its own; nothing for others."""
    from mlflow.models import get_model_info

    if "spark" in get_model_info(uri).flavors:
        from brickyard.engines.spark_session import model_session

        model_session()


def signature_schema(metadata: Any) -> InputSchema | None:
    """The column schema of a model's signature; None when it has none or takes tensors."""
    schema = metadata.get_input_schema() if metadata is not None else None
    if schema is None or not getattr(schema, "has_input_names", lambda: False)() or schema.is_tensor_spec():
        return None
    columns = []
    for spec in schema.inputs:
        type_name = getattr(spec.type, "name", None) or str(spec.type)
        columns.append(ColumnSpec(spec.name, str(type_name), bool(getattr(spec, "required", True))))
    declared = metadata.get_params_schema() if hasattr(metadata, "get_params_schema") else None
    params = tuple(
        ParamSpec(param.name, str(getattr(param.dtype, "name", param.dtype)), param.default, tuple(param.shape) if param.shape else None)
        for param in (declared.params if declared is not None else ())
    )
    return InputSchema(tuple(columns), params)


def warm(model: LoadedModel) -> None:
    """Score one typical row (first calls pay for lazy imports and allocations)."""
    if model.schema is None:
        return
    columns: dict[str, Any] = {}
    for spec in model.schema.columns:
        kind = spec.kind
        if kind == ANY:
            columns[spec.name] = (None,)
        else:
            value = {"float": 1.0, "int": 1, "bool": True, "str": "a", "datetime": "2026-01-01T00:00:00"}[kind]

            columns[spec.name] = convert_column(ColumnSpec(spec.name, spec.type, False), (value,))
    batch = Batch(columns, 1)
    try:
        model.predictor.predict(batch)
        if model.predictor.classes is not None:
            model.predictor.predict_proba(batch)
    except Exception as exc:  # a model that cannot score a made-up row still serves real ones
        log.debug("warm-up of %s/%s failed: %s", model.name, model.version, exc)
