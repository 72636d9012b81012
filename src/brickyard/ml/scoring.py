"""Batch scoring: a registered MLflow model applied to Arrow record batches.

A model reference (`registry.ModelRef`) is `name@alias` (`titanic@champion`) or
`name/version` (`titanic/3`). `load_model` resolves it in the workspace's registry and
loads it (`registry.load_version`): the scikit-learn estimator when it is one (so
classifiers give `predict_proba`), else the pyfunc model.
`score_batches` turns input batches into output batches of

    <keys...>, prediction, probability, model_name, model_version, scored_at, score_date

`probability` is the probability of the positive class for a binary classifier (the
second of `classes_`, i.e. 1 / True, unless `positive_class` says otherwise) and the
probability of the predicted class for a multi-class one. Regressors, clusterers and other
models without class probabilities get no `probability` column (`probability=True` keeps
it, all null: for a table made when it was always there). Every row of one scoring run has
the same `scored_at`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from brickyard.errors import BrickyardError
from brickyard.ml.errors import NoChampionError
from brickyard.ml.registry import ModelRef

if TYPE_CHECKING:
    import pandas as pd

    from brickyard.workspace import Workspace

OUTPUT_COLUMNS = ("prediction", "probability", "model_name", "model_version", "scored_at", "score_date")

log = logging.getLogger("brickyard.score")


@dataclass
class ScoringModel:
    """A loaded model version and how to get predictions and probabilities from it."""

    name: str
    version: str
    run_id: str | None
    model: Any
    features: list[str] | None
    positive_index: int | None = None
    classes: np.ndarray | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def has_proba(self) -> bool:
        return self.classes is not None and hasattr(self.model, "predict_proba")

    def predict(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions and probabilities (None when the model gives none) for `frame`."""
        if self.has_proba:
            proba = np.asarray(self.model.predict_proba(frame))
            best = proba.argmax(axis=1)
            prediction = np.asarray(self.classes)[best]
            if self.positive_index is not None:
                return prediction, proba[:, self.positive_index]
            return prediction, proba[np.arange(len(best)), best]
        output = self.model.predict(frame)
        if hasattr(output, "columns"):
            output = output.iloc[:, 0]
        return np.asarray(output).reshape(-1), None


def load_model(
    workspace: Workspace, ref: str | ModelRef, *, positive_class: Any = None, download_to: str | None = None
) -> ScoringModel:
    """Load a registered model version from the workspace's MLflow registry. Its files are
    downloaded to `download_to` (default: a temporary folder); a Spark MLlib model is read
    from there by Spark's executors, so on a cluster that must be a folder every node sees.

    Raises:
        NoChampionError: `name@champion` and the model has no champion.
        ModelNotFoundError: no such model, version or alias (with close names).
        ModelError: the model's files cannot be loaded.
    """
    from brickyard.ml import registry, tracking

    parsed = ref if isinstance(ref, ModelRef) else ModelRef.parse(ref, bare=False)
    client = tracking.connect(workspace)
    try:
        version = registry.resolve_version(client, parsed.name, parsed.selector)
    except NoChampionError as exc:
        raise NoChampionError(
            f"model {parsed.name} has no {registry.CHAMPION}",
            hint=f"run the {parsed.name} pipeline or `brickyard models promote`",
        ) from exc
    loaded = registry.load_version(client, parsed.name, version, download_to=download_to)
    model = loaded.native
    classes = getattr(model, "classes_", None)
    return ScoringModel(
        name=parsed.name,
        version=loaded.version,
        run_id=loaded.run_id,
        model=model,
        features=_features(loaded.metadata, model),
        positive_index=_positive_index(classes, positive_class, parsed.name),
        classes=np.asarray(classes) if classes is not None else None,
    )


def output_schema(key_fields: Sequence[pa.Field], prediction_type: pa.DataType, *, probability: bool = True) -> pa.Schema:
    """The schema of scored rows (`probability`: with the probability column)."""
    return pa.schema([
        *key_fields,
        pa.field("prediction", prediction_type),
        *([pa.field("probability", pa.float64())] if probability else []),
        pa.field("model_name", pa.string()),
        pa.field("model_version", pa.string()),
        pa.field("scored_at", pa.timestamp("us", tz="UTC")),
        pa.field("score_date", pa.date32()),
    ])


def score_batches(
    model: ScoringModel,
    batches: Iterator[pa.RecordBatch],
    keys: Sequence[str],
    scored_at: datetime | None = None,
    *,
    probability: bool | None = None,
) -> Iterator[pa.RecordBatch]:
    """Score each input batch; yields output batches (see the module docstring). The
    `probability` column is there when the model gives class probabilities, or `probability`
    is True (None: when the model gives them).

    Raises:
        BrickyardError: a key or feature column is missing from the input.
    """
    moment = (scored_at or datetime.now(UTC)).astimezone(UTC)
    with_probability = model.has_proba if probability is None else probability or model.has_proba
    schema: pa.Schema | None = None
    for batch in batches:
        if batch.num_rows == 0:
            continue
        require_columns(batch.schema.names, [*keys, *(model.features or [])])
        features = model.features or [name for name in batch.schema.names if name not in keys]
        prediction, probabilities = model.predict(_frame(batch, features))
        n = batch.num_rows
        arrays = [batch.column(key) for key in keys]
        prediction_array = pa.array(prediction)
        if schema is None:
            key_fields = [batch.schema.field(key) for key in keys]
            key_fields = [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in key_fields]
            schema = output_schema(key_fields, prediction_array.type, probability=with_probability)
        arrays.append(prediction_array)
        if with_probability:
            arrays.append(pa.array(probabilities, pa.float64()) if probabilities is not None else pa.nulls(n, pa.float64()))
        arrays.append(pa.repeat(pa.scalar(model.name, pa.string()), n))
        arrays.append(pa.repeat(pa.scalar(model.version, pa.string()), n))
        arrays.append(pa.repeat(pa.scalar(moment, pa.timestamp("us", tz="UTC")), n))
        arrays.append(pa.repeat(pa.scalar(moment.date(), pa.date32()), n))
        out = pa.RecordBatch.from_arrays(arrays, names=schema.names)
        yield out.cast(schema) if out.schema != schema else out


def _frame(batch: pa.RecordBatch, features: Sequence[str]) -> pd.DataFrame:
    return batch.select(list(features)).to_pandas()


def require_columns(columns: Sequence[str], needed: Sequence[str]) -> None:
    """Raises: BrickyardError: naming the `needed` columns missing from `columns`."""
    missing = [name for name in dict.fromkeys(needed) if name not in columns]
    if missing:
        raise BrickyardError(
            f"the source has no column(s) {', '.join(missing)} that scoring needs",
            hint=f"its columns: {', '.join(columns)}; select or rename them in the source (keys: and the model's features)",
        )


def _features(meta: Any, model: Any) -> list[str] | None:
    """The model's input columns: its MLflow signature's names, else `feature_names_in_`."""
    signature = getattr(meta, "signature", None)
    if signature is not None and signature.inputs is not None and signature.inputs.has_input_names():
        return list(signature.inputs.input_names())
    names = getattr(model, "feature_names_in_", None)
    return [str(name) for name in names] if names is not None else None


def _positive_index(classes: Any, positive_class: Any, name: str) -> int | None:
    if classes is None:
        return None
    values = list(np.asarray(classes).tolist())
    if positive_class is not None:
        for index, value in enumerate(values):
            if value == positive_class or str(value) == str(positive_class):
                return index
        raise BrickyardError(
            f"model {name} has no class {positive_class!r}",
            hint=f"its classes: {', '.join(map(str, values))}",
        )
    return 1 if len(values) == 2 else None


def mllib_model(model: ScoringModel) -> Any | None:
    """The Spark MLlib model inside `model` (MLflow's `spark` flavor), else None: an
    engine scores it with the model's own `transform` (`ScoreRequest.native_model`)."""
    flavors = getattr(getattr(model.model, "metadata", None), "flavors", None) or {}
    return model.model.get_raw_model() if "spark" in flavors else None
