"""Evaluate a registered model version on the held-out rows it was trained without.

The version's MLflow run holds `brickyard/train_spec.json`: the data source, the Delta
version of every input table, the features and the seeded split. `evaluate` reads the same
snapshots (Delta time travel), rebuilds the same split, loads the version from the
registry and scores the held-out rows. Metrics go on the version's own run (so the registry
shows them next to the version) and the plots under its `evaluation/` artifacts:
`roc_curve.png`, `precision_recall_curve.png`, `confusion_matrix.png` for classification,
`predicted_vs_actual.png` for regression; a clustering model gets `silhouette` (on the
seeded sample) and `inertia`.

With the evaluate task's options (`brickyard.ml.spec.EvaluateSpec`, docs/explainability.md)
it also explains the model with SHAP (`brickyard.ml.explanations`: `shap_importance.<feature>`
metrics, `importance_rank_change` against the champion, `shap_summary.png`,
`shap_importance.png`, `shap_importance.json`), measures fairness by `sensitive_features`
(`brickyard.ml.fairness`: `demographic_parity_difference`, `equalized_odds_difference` with
intervals, per-group metrics, `fairness_by_group.csv`, `fairness.json`) and robustness
(`brickyard.ml.robustness`: `robustness_drop`, `robustness.json`).
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
from brickyard.ml.registry import champion, load_version, resolve_version, run_metrics
from brickyard.ml.spec import EvaluateSpec
from brickyard.ml.training import load_spec_record, prepared_from_record

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from brickyard.ml.data import Prepared
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
    details: dict[str, Any] = field(default_factory=dict)  # explain / fairness / robustness summaries


def evaluate(
    ws: Workspace,
    name: str,
    version: int | str | None = None,
    *,
    run_id: str | None = None,
    log: logging.Logger | None = None,
    options: EvaluateSpec | None = None,
) -> Evaluation:
    """Evaluate version `version` of model `name` (see `registry.resolve_version`; with
    None, the version brickyard run `run_id` trained) and log the results to its run;
    `options` adds SHAP, fairness and robustness (see the module's docstring).

    Raises:
        ModelNotFoundError, NoChampionError, ModelError, LakeError.
    """
    log = log or _log
    options = options or EvaluateSpec()
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
    details: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        if problem == "clustering":
            metrics = _clustering_metrics(model, X_test, record)
            written: list[Path] = []
            if options.explain or options.sensitive_features or options.robustness:
                raise ModelError(
                    f"model {name} version {mv.version} is a clustering model: explain, sensitive_features and "
                    "robustness need a prediction to measure",
                    hint="drop those options from the evaluate task of a kmeans model",
                )
        else:
            from brickyard.ml.metrics import plots, score

            metrics = score(model, X_test, y_test, problem)
            written = plots(model, X_test, y_test, problem, Path(folder))
            extra = _extras(client, name, mv, options, model, data, X_test, y_test, metrics, Path(folder), log)
            metrics.update(extra.metrics)
            written += extra.written
            details = extra.details
        if written:
            client.log_artifacts(mv.run_id, folder, "evaluation")
    from mlflow.entities import Metric

    now = int(datetime.now(UTC).timestamp() * 1000)
    logged = [Metric(key, float(value), now, 0) for key, value in metrics.items() if value == value]  # NaN: not logged
    for start in range(0, len(logged), 1000):  # MLflow's batch limit
        client.log_batch(mv.run_id, metrics=logged[start:start + 1000])
    client.set_model_version_tag(name, mv.version, "brickyard.evaluated_at", datetime.now(UTC).isoformat(timespec="seconds"))
    log.info("evaluated %s version %s on %d held-out rows: %s", name, mv.version, len(X_test), _brief(metrics))
    return Evaluation(
        name, int(mv.version), mv.run_id, problem, metrics,
        [f"evaluation/{path.name}" for path in written], dict(data.reads), len(X_test), details,
    )


@dataclass
class _Extras:
    metrics: dict[str, float] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def _extras(
    client: MlflowClient, name: str, mv: ModelVersion, options: EvaluateSpec, model: Any, data: Prepared,
    X_test: pd.DataFrame, y_test: Any, metrics: dict[str, float], folder: Path, log: logging.Logger,
) -> _Extras:
    """SHAP, fairness and robustness, as `options` asks."""
    found = _Extras()
    problem = data.problem
    if options.explain is not None:
        from brickyard.ml import explanations

        explained = explanations.explain(model, X_test, problem, options.explain)
        importance = explained.importance()
        found.metrics.update(explanations.importance_metrics(importance))
        summary = explained.summary()
        drift = _rank_change(client, name, mv, importance)
        summary["importance_rank_change"] = drift
        if drift.get("value") is not None:
            found.metrics["importance_rank_change"] = drift["value"]
        if options.explain.plots:
            found.written += explanations.plot(explained, folder)
        found.written.append(_write_json(folder / "shap_importance.json", summary))
        found.details["explain"] = summary
        log.info(
            "SHAP (%s explainer, %s): %d of %d held-out rows in %.1f s%s; top features: %s",
            explained.explainer, ", ".join(explained.outputs), explained.rows_explained, explained.rows_available,
            explained.seconds, " (stopped by the time budget)" if explained.stopped_by_budget else "",
            ", ".join(f"{k} {v:.3g}" for k, v in list(importance.items())[:5]),
        )
        for note in [*explained.notes, drift["detail"]]:
            log.info("SHAP: %s", note)
    if options.sensitive_features:
        from brickyard.ml import fairness

        if problem != "classification":
            raise ModelError(
                f"sensitive_features: fairness needs a classifier; model {name} version {mv.version} does {problem}",
                hint="drop sensitive_features: from this evaluate task",
            )
        sensitive = _sensitive_columns(data, options.sensitive_features, name)
        classes = list(getattr(model, "classes_", np.unique(np.asarray(y_test))))
        try:
            assessed = fairness.assess(y_test, model.predict(X_test), sensitive, classes, options.fairness_settings)
        except ValueError as exc:
            raise ModelError(f"model {name} version {mv.version}: {exc}", hint="drop sensitive_features:") from None
        found.metrics.update(assessed.metrics())
        path = folder / "fairness_by_group.csv"
        assessed.table().to_csv(path, index=False)
        found.written += [path, _write_json(folder / "fairness.json", assessed.summary())]
        found.details["fairness"] = assessed.summary()
        log.info(
            "fairness by %s: demographic_parity_difference %.4g, equalized_odds_difference %.4g (%d groups)",
            ", ".join(assessed.features), assessed.differences["demographic_parity_difference"],
            assessed.differences["equalized_odds_difference"], len(assessed.groups),
        )
        for note in assessed.notes:
            log.info("fairness: %s", note)
    if options.robustness is not None:
        from brickyard.ml import robustness

        try:
            checked = robustness.check(model, X_test, y_test, problem, data.numeric, options.robustness, metrics)
        except ValueError as exc:
            raise ModelError(f"model {name} version {mv.version}: {exc}", hint="set robustness.metric to one of them") from None
        found.metrics.update(checked.metrics())
        found.written.append(_write_json(folder / "robustness.json", checked.summary()))
        found.details["robustness"] = checked.summary()
        log.info(
            "robustness (%s %.4g clean): drop %.4g under noise, %.4g with missing values",
            checked.metric, checked.clean, checked.drop_noise, checked.drop_missing,
        )
    return found


def _rank_change(client: MlflowClient, name: str, mv: ModelVersion, importance: dict[str, float]) -> dict[str, Any]:
    """`importance_rank_change` against the champion's importances, with what it compared
    (value None, and why, when there is nothing to compare with)."""
    from brickyard.ml.explanations import importance_from_metrics, importance_rank_change

    current = champion(client, name)
    if current is None:
        return {"value": None, "champion_version": None, "detail": "no champion yet: importance_rank_change not measured"}
    if current.version == mv.version:
        return {"value": None, "champion_version": int(current.version),
                "detail": "this version is the champion: importance_rank_change not measured"}
    baseline = importance_from_metrics(run_metrics(client, current))
    if not baseline:
        return {"value": None, "champion_version": int(current.version),
                "detail": f"the champion (version {current.version}) has no SHAP importances (evaluate it with explain:): "
                          "importance_rank_change not measured"}
    from brickyard.ml.explanations import importance_metrics

    ours = importance_from_metrics(importance_metrics(importance))  # the same names as the champion's
    value = importance_rank_change(ours, baseline)
    return {"value": value, "champion_version": int(current.version),
            "detail": f"importance_rank_change {value:.4g} against the champion (version {current.version})"}


def _sensitive_columns(data: Prepared, names: list[str], model: str) -> pd.DataFrame:
    from brickyard.errors import suggest

    frame = data.frame
    missing = [column for column in names if column not in frame.columns]
    if missing:
        columns = list(frame.columns)
        raise ModelError(
            f"sensitive_features: column {missing[0]!r} is not in the rows model {model!r} was trained from",
            hint=suggest(missing[0], columns) or f"its columns are: {', '.join(map(str, columns))}",
        )
    return frame[names].iloc[data.test_index].reset_index(drop=True)


def _write_json(path: Path, content: dict[str, Any]) -> Path:
    import json

    path.write_text(json.dumps(content, indent=2, sort_keys=True, default=str) + "\n")
    return path


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
