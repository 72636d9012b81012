"""Baselines made from training: at `train` time, or later for a version trained without one.

`record_training_baseline` is the one call the `train` kind makes after a version is
registered: it sketches every row the training read (features) and the model's outputs on
the held-out test rows, and stores the baseline (`brickyard.monitoring.store`).
`backfill_baseline` does the same for a version registered before baselines existed: it
reads the training data again at the Delta versions its run recorded (`brickyard/train_spec.json`)
and loads the version's model — once, so monitors never rescan it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from brickyard.monitoring.baseline import Baseline, output_sketches, profile
from brickyard.monitoring.store import BASELINE_ARTIFACT, BASELINE_TABLE, save_baseline

if TYPE_CHECKING:
    from brickyard.ml.data import Prepared
    from brickyard.ml.scoring import ScoringModel
    from brickyard.ml.training import TrainResult
    from brickyard.workspace import Workspace

_log = logging.getLogger(__name__)


@dataclass
class RecordedBaseline:
    """A stored baseline and where it went."""

    baseline: Baseline
    table: str
    table_version: int
    artifact: str | None

    def summary(self) -> dict[str, Any]:
        """For a task's metrics: where the baseline is and what it covers."""
        return {
            "table": self.table,
            "table_version": self.table_version,
            "artifact": self.artifact,
            "features": len(self.baseline.features),
            "outputs": sorted(self.baseline.predictions),
            "rows": self.baseline.rows,
            "prediction_rows": self.baseline.prediction_rows,
        }


def record_training_baseline(ws: Workspace, result: TrainResult, log: logging.Logger | None = None) -> RecordedBaseline:
    """Make and store the baseline of the version `result` registered (see the module text).

    Raises:
        LakeError: `gold.model_baselines` cannot be written.
    """
    from brickyard.ml.scoring import ScoringModel

    fitted = result.fitted
    classes = getattr(fitted.model, "classes_", None)
    model = ScoringModel(
        name=result.model_name,
        version=str(result.model_version),
        run_id=result.run_id,
        model=fitted.model,
        features=list(fitted.data.features),
        positive_index=1 if classes is not None and len(classes) == 2 else None,
        classes=np.asarray(classes) if classes is not None else None,
    )
    baseline = baseline_of(fitted.data, model)
    return _store(ws, baseline, log or _log)


def baseline_of(data: Prepared, model: ScoringModel) -> Baseline:
    """The baseline of a model version: its training rows' features, and its outputs on the
    held-out test rows (on every row for clustering, which has no split)."""
    table = pa.Table.from_pandas(data.frame[data.features], preserve_index=False)
    sketches, rows = profile(table, data.numeric, data.categorical)
    features = {name: sketches[name] for name in data.features}
    clustering = data.problem == "clustering"
    X = data.X if clustering else data.test()[0]
    prediction, probability = model.predict(X)
    outputs = output_sketches(prediction, probability, numeric_prediction=data.problem == "regression")
    return Baseline(
        model_name=model.name,
        model_version=int(model.version),
        run_id=model.run_id,
        features=features,
        predictions=outputs,
        rows=rows,
        problem=data.problem,
        source=", ".join(f"{table} v{version}" for table, version in data.reads.items()) or None,
        reads=dict(data.reads),
        prediction_rows=len(X),
        prediction_source="every training row" if clustering else "held-out test rows",
    )


def backfill_baseline(ws: Workspace, ref: str, log: logging.Logger | None = None) -> RecordedBaseline:
    """Compute and store the baseline of a registered version (`NAME`, `NAME/VERSION`,
    `NAME@alias`) from the training data its run recorded, read at the recorded versions.

    Raises:
        ModelNotFoundError: no such model or version.
        ModelError: the version's run has no train spec (not trained by `kind: train`).
        LakeError: a recorded table version is gone (vacuumed), or the table cannot be written.
    """
    from brickyard.ml.registry import ModelRef
    from brickyard.ml.scoring import load_model
    from brickyard.ml.training import load_spec_record, prepared_from_record

    model = load_model(ws, ModelRef.parse(ref))  # a bare NAME: its latest version
    if model.run_id is None:
        from brickyard.ml.errors import ModelError

        raise ModelError(f"model {model.name} version {model.version} has no MLflow run to read its training from")
    record = load_spec_record(model.run_id)
    data = prepared_from_record(ws, record)
    return _store(ws, baseline_of(data, model), log or _log)


def _store(ws: Workspace, baseline: Baseline, log: logging.Logger) -> RecordedBaseline:
    version = save_baseline(ws, baseline)
    log.info(
        "monitoring baseline of %s version %s: %d features, outputs %s, from %d rows; in %s v%d and %s",
        baseline.model_name, baseline.model_version, len(baseline.features), ", ".join(sorted(baseline.predictions)) or "none",
        baseline.rows, BASELINE_TABLE, version, BASELINE_ARTIFACT,
    )
    return RecordedBaseline(baseline, BASELINE_TABLE, version, BASELINE_ARTIFACT if baseline.run_id else None)
