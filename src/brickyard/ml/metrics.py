"""Held-out metrics and evaluation plots.

Classification: `accuracy`, `precision`, `recall`, `f1` (of the positive class — the second
of the model's sorted classes — for two classes; weighted over classes otherwise),
`roc_auc` and `log_loss` (when the model gives probabilities). Regression: `rmse`, `mae`,
`r2`. Clustering: `silhouette` (on a seeded sample) and `inertia`. These names are what
gate rules compare (`roc_auc >= champion.roc_auc + 0.01`), with those the evaluate task's
options add (`EVALUATE_METRICS`: fairness, robustness, explainability drift).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brickyard.ml.spec import Problem

if TYPE_CHECKING:
    import pandas as pd

GREATER_IS_BETTER = {
    "accuracy": True, "precision": True, "recall": True, "f1": True, "roc_auc": True,
    "log_loss": False, "rmse": False, "mae": False, "r2": True, "silhouette": True, "inertia": False,
}
# Every metric train and evaluate log on a model version's run, by problem: what gate
# rules can compare (`fit_seconds` too: the time the fit took).
LOGGED_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "fit_seconds"),
    "regression": ("rmse", "mae", "r2", "fit_seconds"),
    "clustering": ("silhouette", "inertia", "k", "n_iter", "silhouette_by_k", "inertia_by_k", "fit_seconds"),
}
# The metrics the evaluate task's options add (see docs/explainability.md), by the option
# that makes evaluate measure them: gate rules may compare them when that option is set.
EVALUATE_METRICS: dict[str, str] = {
    "demographic_parity_difference": "sensitive_features",
    "equalized_odds_difference": "sensitive_features",
    "demographic_parity_difference_ci_high": "sensitive_features",
    "equalized_odds_difference_ci_high": "sensitive_features",
    "robustness_drop": "robustness",
    "robustness_drop_noise": "robustness",
    "robustness_drop_missing": "robustness",
    "importance_rank_change": "explain",
    "demographic_parity_difference_ci_low": "sensitive_features",
    "equalized_odds_difference_ci_low": "sensitive_features",
}
# Families of those metrics, by name prefix: `fairness.<feature>.<value>.<metric>`,
# `shap_importance.<feature>`.
EVALUATE_METRIC_PREFIXES: dict[str, str] = {"fairness.": "sensitive_features", "shap_importance.": "explain"}


def evaluate_option_for(metric: str) -> str | None:
    """The evaluate option that makes evaluate log `metric`, or None for the metrics it
    always logs (and unknown ones)."""
    if metric in EVALUATE_METRICS:
        return EVALUATE_METRICS[metric]
    return next((option for prefix, option in EVALUATE_METRIC_PREFIXES.items() if metric.startswith(prefix)), None)
KEY_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "f1", "roc_auc"),
    "regression": ("rmse", "mae", "r2"),
    "clustering": ("silhouette", "k"),
}


def score(model: Any, X: pd.DataFrame, y: Any, problem: Problem) -> dict[str, float]:
    """The held-out metrics of `model` on `X`/`y`."""
    if problem == "classification":
        return classification_metrics(model, X, y)
    if problem == "regression":
        return regression_metrics(model.predict(X), y)
    raise ValueError(f"score() does not do {problem}")


def classification_metrics(model: Any, X: pd.DataFrame, y: Any) -> dict[str, float]:
    truth = np.asarray(y)
    classes = list(getattr(model, "classes_", np.unique(truth)))
    return label_metrics(truth, model.predict(X), probabilities(model, X), classes)


def label_metrics(truth: Any, predicted: Any, proba: np.ndarray | None, classes: list[Any]) -> dict[str, float]:
    """Classification metrics from labels, predictions and (optionally) class probabilities
    (one column per class, in `classes`' order): what `classification_metrics` computes
    for a model, for predictions already made (a monitor's window)."""
    from sklearn import metrics

    truth = np.asarray(truth)
    binary = len(classes) == 2
    average: dict[str, Any] = {"average": "binary", "pos_label": classes[1]} if binary else {"average": "weighted"}
    found = {
        "accuracy": metrics.accuracy_score(truth, predicted),
        "precision": metrics.precision_score(truth, predicted, zero_division=0, **average),
        "recall": metrics.recall_score(truth, predicted, zero_division=0, **average),
        "f1": metrics.f1_score(truth, predicted, zero_division=0, **average),
    }
    if proba is not None and len(np.unique(truth)) > 1:
        if binary:
            found["roc_auc"] = metrics.roc_auc_score(truth == classes[1], proba[:, 1])
        elif set(np.unique(truth)) <= set(classes):
            found["roc_auc"] = metrics.roc_auc_score(truth, proba, multi_class="ovr", average="weighted", labels=classes)
        found["log_loss"] = metrics.log_loss(truth, proba, labels=classes)
    return {name: float(value) for name, value in found.items()}


def regression_metrics(predicted: Any, y: Any) -> dict[str, float]:
    from sklearn import metrics

    truth = np.asarray(y, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    return {
        "rmse": float(math.sqrt(metrics.mean_squared_error(truth, predicted))),
        "mae": float(metrics.mean_absolute_error(truth, predicted)),
        "r2": float(metrics.r2_score(truth, predicted)),
    }


def probabilities(model: Any, X: pd.DataFrame) -> np.ndarray | None:
    if not hasattr(model, "predict_proba"):
        return None
    try:
        return np.asarray(model.predict_proba(X))
    except (AttributeError, NotImplementedError):
        return None


def plots(model: Any, X: pd.DataFrame, y: Any, problem: Problem, folder: Path) -> list[Path]:
    """Write the evaluation PNGs into `folder`; returns their paths.

    Classification: roc_curve.png, precision_recall_curve.png (when the model gives
    probabilities), confusion_matrix.png. Regression: predicted_vs_actual.png.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(fig: Any, name: str) -> None:
        path = folder / name
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    truth = np.asarray(y)
    if problem == "classification":
        classes = list(getattr(model, "classes_", np.unique(truth)))
        proba = probabilities(model, X)
        if proba is not None:
            for display, name, title in (
                (RocCurveDisplay, "roc_curve.png", "ROC curve (held-out rows)"),
                (PrecisionRecallDisplay, "precision_recall_curve.png", "Precision-recall curve (held-out rows)"),
            ):
                fig, ax = plt.subplots(figsize=(6, 5), constrained_layout=True)
                columns = [1] if len(classes) == 2 else range(len(classes))
                for column in columns:
                    positive = classes[column]
                    if not (truth == positive).any():
                        continue
                    label = None if len(classes) == 2 else f"class {positive}"
                    display.from_predictions(truth == positive, proba[:, column], ax=ax, name=label)
                ax.set_title(title)
                save(fig, name)
        fig, ax = plt.subplots(figsize=(6, 5), constrained_layout=True)
        ConfusionMatrixDisplay.from_predictions(truth, model.predict(X), labels=classes, ax=ax, colorbar=False)
        ax.set_title("Confusion matrix (held-out rows)")
        save(fig, "confusion_matrix.png")
    elif problem == "regression":
        predicted = np.asarray(model.predict(X), dtype=float)
        fig, ax = plt.subplots(figsize=(6, 5), constrained_layout=True)
        ax.scatter(truth.astype(float), predicted, s=6, alpha=0.5)
        low, high = float(np.nanmin(truth)), float(np.nanmax(truth))
        ax.plot([low, high], [low, high], color="black", linewidth=0.8)
        ax.set_xlabel("actual")
        ax.set_ylabel("predicted")
        ax.set_title("Predicted vs actual (held-out rows)")
        save(fig, "predicted_vs_actual.png")
    return written
