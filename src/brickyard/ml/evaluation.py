"""Evaluate a registered model version on the held-out rows it was trained without.

The version's MLflow run holds `brickyard/train_spec.json`: the data source, the Delta
version of every input table, the features and the seeded split. `evaluate` reads the same
snapshots (Delta time travel), rebuilds the same split, loads the version from the
registry and scores the held-out rows. Metrics go on the version's own run (so the registry
shows them next to the version) and the plots under its `evaluation/` artifacts:
`roc_curve.png`, `precision_recall_curve.png`, `confusion_matrix.png` for classification,
`predicted_vs_actual.png` for regression; a clustering model gets `silhouette` (on the
seeded sample) and `inertia`.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brickyard.ml import tracking
from brickyard.ml.errors import ModelError
from brickyard.ml.registry import load_version, resolve_version
from brickyard.ml.training import load_spec_record, prepared_from_record

if TYPE_CHECKING:
    from brickyard.workspace import Workspace

_log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """What `evaluate` measured and where it put it."""

    model_name: str
    model_version: int
    run_id: str
    problem: str
    metrics: dict[str, float]
    artifacts: list[str] = field(default_factory=list)
    reads: dict[str, int] = field(default_factory=dict)
    rows: int = 0


def evaluate(
    ws: Workspace,
    name: str,
    version: int | str | None = None,
    *,
    run_id: str | None = None,
    log: logging.Logger | None = None,
) -> Evaluation:
    """Evaluate version `version` of model `name` (see `registry.resolve_version`; with
    None, the version brickyard run `run_id` trained) and log the results to its run.

    Raises:
        ModelNotFoundError, NoChampionError, ModelError, LakeError.
    """
    log = log or _log
    client = tracking.connect(ws)
    mv = resolve_version(client, name, version, run_id=run_id)
    if mv.run_id is None:
        raise ModelError(
            f"model {name!r} version {mv.version} has no MLflow run, so no training record to evaluate against",
            hint="evaluate a version that a `kind: train` task registered",
        )
    record = load_spec_record(mv.run_id)
    data = prepared_from_record(ws, record)
    loaded = load_version(client, name, mv)
    if not loaded.is_sklearn:
        raise ModelError(
            f"model {name} version {mv.version} is not a scikit-learn model; evaluate scores scikit-learn models",
            hint="evaluate it where it was trained (its MLflow run has the training metrics)",
        )
    model = loaded.native
    problem = record["problem"]
    X_test, y_test = data.test()
    with tempfile.TemporaryDirectory() as folder:
        if problem == "clustering":
            metrics = _clustering_metrics(model, X_test, record)
            written: list[Path] = []
        else:
            from brickyard.ml.metrics import plots, score

            metrics = score(model, X_test, y_test, problem)
            written = plots(model, X_test, y_test, problem, Path(folder))
        if written:
            client.log_artifacts(mv.run_id, folder, "evaluation")
    from mlflow.entities import Metric

    now = int(datetime.now(UTC).timestamp() * 1000)
    client.log_batch(mv.run_id, metrics=[Metric(key, float(value), now, 0) for key, value in metrics.items()])
    client.set_model_version_tag(name, mv.version, "brickyard.evaluated_at", datetime.now(UTC).isoformat(timespec="seconds"))
    log.info("evaluated %s version %s on %d held-out rows: %s", name, mv.version, len(X_test), _brief(metrics))
    return Evaluation(
        name, int(mv.version), mv.run_id, problem, metrics,
        [f"evaluation/{path.name}" for path in written], dict(data.reads), len(X_test),
    )


def _clustering_metrics(model: Any, X: Any, record: dict[str, Any]) -> dict[str, float]:
    from sklearn.metrics import silhouette_score

    from brickyard.ml.kmeans import sample_rows

    spec = record["spec"]
    Z = np.asarray(model[:-1].transform(X), dtype=np.float64)
    labels = model.predict(X)
    sample = sample_rows(len(Z), int(spec.get("silhouette_sample", 10_000)), int(spec["split"]["seed"]))
    found = {"inertia": float(-model[-1].score(Z))}
    if len(np.unique(labels[sample])) > 1:
        found["silhouette"] = float(silhouette_score(Z[sample], labels[sample]))
    return found


def _brief(metrics: dict[str, float]) -> str:
    return ", ".join(f"{key} {value:.4g}" for key, value in sorted(metrics.items()))
