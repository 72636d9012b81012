"""The MLflow model registry, seen from serving: resolve an alias, load a version, warm it.

Resolving and loading are `brickyard.ml.registry`'s (the same references, errors and loader
as scoring); this module adds what serving needs on top: a `LoadedModel` with its input
schema and a predictor, either the compiled fast path (`fastpath.py`) or the MLflow pyfunc
model itself, warmed with one made-up row. It is the only serving module that imports
MLflow (lazily).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

import numpy as np

from brickyard.ml import registry
from brickyard.serving.errors import InvalidInputError, SignatureMismatchError
from brickyard.serving.schema import (
    ANY,
    Batch,
    ColumnSpec,
    InputSchema,
    ParamSpec,
    convert_column,
)

if TYPE_CHECKING:
    from brickyard.features.online import OnlineStore
    from brickyard.features.online_lookup import OnlineLookup

log = logging.getLogger("brickyard.serving")


class Predictor(Protocol):
    kind: str
    classes: Any

    def predict(self, batch: Batch) -> Any: ...

    def predict_proba(self, batch: Batch) -> Any: ...


class FastPredictor(Predictor, Protocol):
    """A predictor of `brickyard.serving.fastpath` (kind "fastpath"): scores one row without
    building a batch, and small batches on the event loop."""

    inline_rows: int  # batches up to this many rows are scored inline, larger ones in a thread

    def predict_one(self, row: dict[str, Any]) -> Any: ...


def is_fast(predictor: Predictor) -> TypeGuard[FastPredictor]:
    """True for the in-process fast-path predictors."""
    return predictor.kind == "fastpath"


@dataclass(frozen=True)
class LoadedModel:
    """One registered model version, ready to score."""

    name: str
    version: str
    schema: InputSchema | None  # None: the model has no column signature
    predictor: Predictor
    fast_path_problem: str  # why the fast path is not used ("" when it is)
    loaded_at: float
    # trained from a training set: its features are looked up online for keys-only requests
    lookup: OnlineLookup | None = None

    @property
    def kind(self) -> str:
        return self.predictor.kind

    @cached_property
    def takes(self) -> frozenset[str] | None:
        """The columns its signature names (None: no signature), computed once."""
        return frozenset(self.schema.names) if self.schema is not None else None


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
    """Model versions and aliases in the workspace's MLflow registry (`ml.registry`)."""

    def __init__(self, tracking_uri: str, online_store: Callable[[], OnlineStore] | None = None) -> None:
        self.tracking_uri = tracking_uri
        self._client: Any = None
        self._online_store = online_store

    @property
    def client(self) -> Any:
        if self._client is None:
            from brickyard.ml.tracking import client_for

            self._client = client_for(self.tracking_uri)
        return self._client

    def resolve(self, name: str, alias: str | None = None, version: str | None = None) -> str:
        """The version an alias (default: champion) points at, or a pinned version's number
        once checked to exist.

        Raises:
            ModelNotFoundError: no such model, alias or version (with close names);
                NoChampionError: the model has no champion.
        """
        selector = version if version is not None else (alias or registry.CHAMPION)
        return str(registry.resolve_version(self.client, name, selector).version)

    def load(self, name: str, version: str) -> LoadedModel:
        """Load a model version, compile its fast path when it has one, and warm it.

        Raises:
            ModelError: its files cannot be loaded.
        """
        _spark_for(self.client, name, version)
        loaded = registry.load_version(self.client, name, version)
        pyfunc = loaded.pyfunc
        schema = signature_schema(pyfunc.metadata)
        predictor: Predictor = PyfuncPredictor(pyfunc)
        problem = "the model has no column signature"
        if schema is not None:
            from brickyard.serving.fastpath import compile_pipeline

            if pyfunc.metadata.flavors.get("python_function", {}).get("loader_module") != "mlflow.sklearn":
                problem = "not a scikit-learn model"
            else:
                compiled, problem = compile_pipeline(loaded.native, schema)
                if compiled is not None:
                    predictor = compiled
        if problem:
            log.info("serving %s version %s through the MLflow pyfunc model (%s)", name, version, problem)
        lookup = self._lookup(loaded.run_id, name, version)
        model = LoadedModel(name, version, schema, predictor, problem, time.time(), lookup)
        warm(model)
        return model

    def _lookup(self, run_id: str | None, name: str, version: str) -> OnlineLookup | None:
        """The online lookup of a version whose run has `feature_store/training_set.json`.

        Raises:
            TrainingSetError: the artifact breaks the contract.
        """
        if run_id is None or self._online_store is None:
            return None
        text = training_set_artifact(self.client, run_id)
        if text is None:
            return None
        from brickyard.features.online_lookup import OnlineLookup, TrainingSetInfo

        info = TrainingSetInfo.parse(text, where=f"model {name} version {version}: {ARTIFACT_PATH}")
        log.info(
            "serving %s version %s: keys-only requests look up %d feature(s) online by %s",
            name, version, len(info.features), ", ".join(info.entity_keys),
        )
        return OnlineLookup(info, self._online_store())


ARTIFACT_PATH = "feature_store/training_set.json"


def training_set_artifact(client: Any, run_id: str) -> bytes | None:
    """The text of a run's `feature_store/training_set.json`, or None when it has none."""
    import mlflow.artifacts

    folder, _, _ = ARTIFACT_PATH.rpartition("/")
    if not any(item.path == ARTIFACT_PATH for item in client.list_artifacts(run_id, folder)):
        return None
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=ARTIFACT_PATH, tracking_uri=client.tracking_uri)
    with open(path, "rb") as file:
        return file.read()


def _spark_for(client: Any, name: str, version: str) -> None:
    """For a Spark MLlib model version, start the loopback, UI-less Spark session it runs
    in before MLflow starts its own; nothing for others."""
    import mlflow.artifacts
    from mlflow.models import Model

    uri = client.get_model_version_download_uri(name, version)
    path = mlflow.artifacts.download_artifacts(artifact_uri=f"{uri.rstrip('/')}/MLmodel", tracking_uri=client.tracking_uri)
    if "spark" in Model.load(path).flavors:
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
