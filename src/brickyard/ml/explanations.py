"""SHAP explanations of a fitted model's held-out rows, per original feature.

A brickyard model is a scikit-learn `Pipeline`: preprocessing (`brickyard.ml.preprocess`),
then the estimator. The estimator is explained on the rows as it sees them (after imputing,
scaling and one-hot encoding), with the explainer that fits it:

- `tree`: exact path-dependent TreeSHAP, the values `shap.TreeExplainer` gives: for
  scikit-learn decision trees, forests and gradient boosting (binary or regression)
  brickyard's own (`brickyard.ml.fast_treeshap`, numba threads); for the others (LightGBM,
  XGBoost, HistGradientBoosting, multi-class GradientBoosting) `shap.TreeExplainer` in
  forked processes, with the reason in the notes. The values add up to the trees' raw
  output (a probability for forests, log-odds for boosted classifiers, the prediction for
  regressors);
- `linear`: `shap.LinearExplainer` (linear and logistic regression) against a background
  sample: the values add up to the linear output (log-odds for logistic regression);
- `permutation`: `shap.PermutationExplainer` on the prediction function (the positive
  class's probability, or the prediction), on a sample of rows, stopped when its time
  budget is spent (the rows explained by then are kept, and the result says so).

The values of the columns one source column became (its one-hot columns) are summed back
into that column, so importances are per original feature; when the preprocessing cannot
be mapped back, they stay per transformed column and `grouping` says so.

>>> explained = explain(model, X_test, "classification", ExplainSpec())   # doctest: +SKIP
>>> explained.importance()                                                # doctest: +SKIP
{'Sex': 0.21, 'Pclass': 0.09, ...}
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brickyard.ml.spec import ExplainSpec, Problem

if TYPE_CHECKING:
    import pandas as pd

IMPORTANCE_PREFIX = "shap_importance."
CHUNK_ROWS = 10  # rows per permutation-explainer call, between budget checks
_METRIC_UNSAFE = re.compile(r"[^\w\-. /:]")
_log = logging.getLogger(__name__)


@dataclass
class Explained:
    """SHAP values of the explained rows: `values[row, column, output]` over the
    transformed columns, adding up (with `base_values[row, output]`) to `outputs[output]`."""

    explainer: str
    outputs: list[str]
    values: np.ndarray
    base_values: np.ndarray
    data: np.ndarray
    columns: list[str]
    sources: list[str] | None
    rows_available: int
    seconds: float
    stopped_by_budget: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def rows_explained(self) -> int:
        return int(self.values.shape[0])

    @property
    def sampled(self) -> bool:
        return self.rows_explained < self.rows_available

    @property
    def grouping(self) -> str:
        return "source columns" if self.sources is not None else "transformed columns"

    def by_feature(self) -> tuple[list[str], np.ndarray]:
        """Feature names and values `[row, feature, output]`, one-hot columns summed into
        their source column (per transformed column when the sources are unknown)."""
        if self.sources is None:
            return list(self.columns), self.values
        names = list(dict.fromkeys(self.sources))
        grouped = np.zeros((self.values.shape[0], len(names), self.values.shape[2]))
        for column, source in enumerate(self.sources):
            grouped[:, names.index(source), :] += self.values[:, column, :]
        return names, grouped

    def importance(self) -> dict[str, float]:
        """Mean |SHAP| per feature over the explained rows (summed over outputs), largest first."""
        names, grouped = self.by_feature()
        means = np.abs(grouped).mean(axis=0).sum(axis=1) if len(grouped) else np.zeros(len(names))
        order = sorted(range(len(names)), key=lambda i: -means[i])
        return {names[i]: float(means[i]) for i in order}

    def summary(self) -> dict[str, Any]:
        """What was explained and how (the artifact `shap_importance.json` holds this)."""
        return {
            "explainer": self.explainer,
            "outputs": self.outputs,
            "grouping": self.grouping,
            "rows_available": self.rows_available,
            "rows_explained": self.rows_explained,
            "sampled": self.sampled,
            "stopped_by_budget": self.stopped_by_budget,
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
            "mean_abs_shap": self.importance(),
        }


def explain(model: Any, X: pd.DataFrame, problem: Problem, spec: ExplainSpec) -> Explained:
    """SHAP values of `model` (a fitted Pipeline, or a bare estimator) on a seeded sample of
    at most `spec.max_rows` rows of `X`.

    Raises:
        ValueError: the explainer asked for does not fit the model (e.g. `tree` for a
            logistic regression), or clustering (nothing to explain).
    """
    if problem == "clustering":
        raise ValueError("explain: a clustering model has no prediction to explain")
    started = time.perf_counter()
    estimator, transform = _split(model)
    rows = _sample(len(X), spec.max_rows, spec.seed)
    background_rows = _sample(len(X), spec.background_rows, spec.seed + 1)
    Z_all = _dense(transform(X)) if transform is not None else np.asarray(X, dtype=np.float64)
    Z = Z_all[rows]
    columns = _column_names(model, Z.shape[1])
    sources = source_columns(model, Z.shape[1])
    kind = spec.explainer if spec.explainer != "auto" else _fitting_explainer(estimator)
    notes: list[str] = []
    stopped = False
    if kind == "tree":
        values, base, outputs = _tree_values(estimator, Z, spec.n_jobs, notes)
    elif kind == "linear":
        values, base, outputs = _linear_values(estimator, Z, Z_all[background_rows])
    else:
        values, base, outputs, stopped = _permutation_values(
            estimator, Z, Z_all[background_rows], problem, spec.budget_seconds, spec.seed
        )
        if stopped:
            notes.append(f"stopped by the {spec.budget_seconds:g} s budget after {len(values)} of {len(Z)} rows")
        Z = Z[: len(values)]
    if len(Z) < len(X):
        notes.append(f"explained a seeded sample of {len(Z)} of {len(X)} held-out rows")
    if sources is None:
        notes.append("the preprocessing could not be mapped back to source columns: values are per transformed column")
    return Explained(
        kind, outputs, values, base, Z, columns, sources, len(X), time.perf_counter() - started, stopped, notes
    )


def _split(model: Any) -> tuple[Any, Any]:
    """(final estimator, the transform of the steps before it, or None)."""
    steps = getattr(model, "steps", None)
    if not steps:
        return model, None
    if len(steps) == 1:
        return steps[0][1], None
    return steps[-1][1], model[:-1].transform


def _dense(Z: Any) -> np.ndarray:
    if hasattr(Z, "toarray"):
        Z = Z.toarray()
    return np.asarray(Z, dtype=np.float64)


def _sample(n: int, limit: int, seed: int) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def _column_names(model: Any, width: int) -> list[str]:
    from brickyard.ml.preprocess import feature_names_out

    names = feature_names_out(model) if getattr(model, "steps", None) else []
    return names if len(names) == width else [f"x{i}" for i in range(width)]


def source_columns(model: Any, width: int) -> list[str] | None:
    """The source column of each of the `width` columns the estimator sees, or None when
    the pipeline's first step is not a ColumnTransformer whose parts map back (one output
    per input column, or a one-hot encoder's categories)."""
    steps = getattr(model, "steps", None)
    if not steps or len(steps) < 2:
        return None
    first = steps[0][1]
    parts = getattr(first, "transformers_", None)
    if parts is None:
        return None
    found: list[str] = []
    for _, transformer, columns in parts:
        if transformer == "drop" or (isinstance(columns, list | tuple) and not columns):
            continue
        names = [str(c) for c in (columns if isinstance(columns, list | tuple) else [columns])]
        if transformer == "passthrough":
            found += names
            continue
        last = transformer.steps[-1][1] if hasattr(transformer, "steps") else transformer
        categories = getattr(last, "categories_", None)
        if categories is not None:
            dropped = getattr(last, "drop_idx_", None)
            for index, (name, values) in enumerate(zip(names, categories, strict=True)):
                count = len(values) - (1 if dropped is not None and dropped[index] is not None else 0)
                found += [name] * count
            continue
        try:
            out = len(transformer.get_feature_names_out(names))
        except (AttributeError, ValueError, TypeError):
            return None
        if out != len(names):
            return None
        found += names
    return found if len(found) == width else None


def _fitting_explainer(estimator: Any) -> str:
    module = type(estimator).__module__
    if module.startswith("sklearn.linear_model") or module.startswith("sklearn.svm") and hasattr(estimator, "coef_"):
        return "linear"
    if _tree_explainer(estimator) is not None:
        return "tree"
    return "permutation"


def _tree_explainer(estimator: Any) -> Any | None:
    import shap

    try:
        return shap.TreeExplainer(estimator)
    except Exception:  # noqa: BLE001 - shap raises several kinds for models it cannot read
        return None


def _as_outputs(values: np.ndarray, base: Any, n: int, labels: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Values as [row, column, output] and base values as [row, output]; a binary
    classifier's two outputs become the positive class's only."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2:
        values = values[:, :, None]
    base = np.asarray(base, dtype=np.float64)
    if base.ndim == 0:
        base = np.full((n, 1), float(base))
    elif base.ndim == 1:
        base = base[:, None] if base.shape[0] == n and values.shape[2] == 1 else np.tile(base, (n, 1))
    if values.shape[2] == 2 and len(labels) == 2:
        return values[:, :, 1:], base[:, 1:], labels[1:]
    if values.shape[2] == 1 and len(labels) == 2:
        return values, base, labels[1:]  # a binary classifier's one output is the positive class's
    if len(labels) != values.shape[2]:
        labels = [f"output {i}" for i in range(values.shape[2])]
    return values, base, labels


def _class_labels(estimator: Any, unit: str) -> list[str]:
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return [unit]
    return [f"{unit} of class {c}" for c in classes]


def _tree_values(
    estimator: Any, Z: np.ndarray, n_jobs: int, notes: list[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from brickyard.ml import fast_treeshap

    try:
        fast = fast_treeshap.shap_values(estimator, Z, threads=n_jobs)
    except fast_treeshap.UnsupportedModel as exc:
        note = f"tree SHAP by shap.TreeExplainer: brickyard's fast TreeSHAP does not read {exc}"
        _log.info("explain: %s", note)
        notes.append(note)
    else:
        return _as_outputs(fast.values, fast.expected_value, len(Z), _class_labels(estimator, fast.unit))
    explainer = _tree_explainer(estimator)
    if explainer is None:
        raise ValueError(f"explainer: tree does not read a {type(estimator).__name__}; use auto or permutation")
    unit = {"probability": "probability", "log_odds": "log-odds"}.get(str(explainer.model.tree_output), "raw output")
    if getattr(estimator, "classes_", None) is None:
        unit = "prediction"
    values = _tree_shap(explainer, Z, n_jobs)
    base = explainer.expected_value
    return _as_outputs(values, base, len(Z), _class_labels(estimator, unit))


_FORKED: Any = None  # the explainer a forked worker inherits


def _tree_shap(explainer: Any, Z: np.ndarray, n_jobs: int) -> np.ndarray:
    """TreeSHAP values of the rows, in `n_jobs` forked processes when asked (shap's
    tree code holds the GIL, so threads would not help)."""
    import multiprocessing
    import os

    workers = (os.cpu_count() or 1) if n_jobs == 0 else n_jobs
    workers = min(workers, max(1, len(Z) // 200))
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return np.asarray(explainer.shap_values(Z, check_additivity=False))
    global _FORKED
    _FORKED = explainer
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_forked_tree_shap, np.array_split(Z, workers * 4))
    finally:
        _FORKED = None
    return np.concatenate([np.asarray(part) for part in parts], axis=0)


def _forked_tree_shap(rows: np.ndarray) -> np.ndarray:
    return np.asarray(_FORKED.shap_values(rows, check_additivity=False))


def _linear_values(estimator: Any, Z: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    import shap

    if not hasattr(estimator, "coef_"):
        raise ValueError(f"explainer: linear needs a linear model (coef_), not a {type(estimator).__name__}")
    explainer = shap.LinearExplainer(estimator, shap.maskers.Independent(background, max_samples=len(background)))
    explained = explainer(Z)
    unit = "log-odds" if hasattr(estimator, "predict_proba") else "decision value"
    if getattr(estimator, "classes_", None) is None:
        unit = "prediction"
    labels = _class_labels(estimator, unit)
    if np.asarray(explained.values).ndim == 2 and len(labels) == 2:
        labels = labels[1:]  # a binary linear classifier has one output: the positive class
    return _as_outputs(explained.values, explained.base_values, len(Z), labels)


def _permutation_values(
    estimator: Any, Z: np.ndarray, background: np.ndarray, problem: Problem, budget: float, seed: int
) -> tuple[np.ndarray, np.ndarray, list[str], bool]:
    import shap

    classes = getattr(estimator, "classes_", None)
    if problem == "classification" and hasattr(estimator, "predict_proba"):
        binary = classes is not None and len(classes) == 2

        def predict(rows: np.ndarray) -> np.ndarray:
            proba = np.asarray(estimator.predict_proba(rows))
            return proba[:, 1] if binary else proba

        labels = _class_labels(estimator, "probability")
        labels = labels[1:] if binary else labels
    else:
        def predict(rows: np.ndarray) -> np.ndarray:
            return np.asarray(estimator.predict(rows), dtype=np.float64)

        labels = ["prediction"]
    explainer = shap.PermutationExplainer(predict, shap.maskers.Independent(background, max_samples=len(background)), seed=seed)
    evals = max(200, 2 * (2 * Z.shape[1] + 1))  # at least two full permutations of the columns
    deadline = time.perf_counter() + budget
    values: list[np.ndarray] = []
    bases: list[np.ndarray] = []
    stopped = False
    start, chunk = 0, 1  # one row first, to learn the time a row takes
    while start < len(Z):
        left = deadline - time.perf_counter()
        if values and left <= 0:
            stopped = True
            break
        began = time.perf_counter()
        part = explainer(Z[start:start + chunk], max_evals=evals, silent=True)
        values.append(np.asarray(part.values))
        bases.append(np.asarray(part.base_values))
        per_row = (time.perf_counter() - began) / min(chunk, len(Z) - start)
        start += chunk
        chunk = max(1, min(CHUNK_ROWS, int((deadline - time.perf_counter()) / max(per_row, 1e-6))))
    found, base, labels = _as_outputs(np.concatenate(values), np.concatenate(bases), sum(len(v) for v in values), labels)
    return found, base, labels, stopped


def importance_metrics(importance: dict[str, float]) -> dict[str, float]:
    """The importances as MLflow metric names: `shap_importance.<feature>`."""
    return {IMPORTANCE_PREFIX + _METRIC_UNSAFE.sub("_", name): value for name, value in importance.items()}


def importance_from_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The importances logged on a run (`importance_metrics`' names), by feature."""
    return {key[len(IMPORTANCE_PREFIX):]: value for key, value in metrics.items() if key.startswith(IMPORTANCE_PREFIX)}


def importance_rank_change(candidate: dict[str, float], baseline: dict[str, float]) -> float:
    """How much the ranking of features by importance moved: (1 - Spearman's rho) / 2 over
    the features either names (a feature one lacks has importance 0), so 0 is the same
    order, 0.5 no relation and 1 the reverse order. Ties take their average rank. A
    ranking with no order (every importance equal) against one with an order counts as no
    relation (0.5); two such rankings as the same (0)."""
    from scipy.stats import rankdata

    features = sorted(set(candidate) | set(baseline))
    if len(features) < 2:
        return 0.0
    a = rankdata([candidate.get(name, 0.0) for name in features])
    b = rankdata([baseline.get(name, 0.0) for name in features])
    flat_a, flat_b = bool(np.all(a == a[0])), bool(np.all(b == b[0]))
    if flat_a or flat_b:
        return 0.0 if flat_a and flat_b else 0.5
    rho = float(np.corrcoef(a, b)[0, 1])  # Pearson's r of the ranks is Spearman's rho
    return min(1.0, max(0.0, (1.0 - rho) / 2.0))


def plot(explained: Explained, folder: Path) -> list[Path]:
    """`shap_summary.png` (beeswarm over the transformed columns, first output) and
    `shap_importance.png` (mean |SHAP| per feature); returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    plt.figure()
    shap.summary_plot(
        explained.values[:, :, 0], explained.data, feature_names=explained.columns, show=False, max_display=20
    )
    figure = plt.gcf()
    figure.suptitle(f"SHAP values ({explained.outputs[0]}, {explained.rows_explained} held-out rows)", fontsize=10)
    path = folder / "shap_summary.png"
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    written.append(path)

    importance = explained.importance()
    shown = list(importance.items())[:20][::-1]
    figure, ax = plt.subplots(figsize=(6, max(2.5, 0.3 * len(shown) + 1)), constrained_layout=True)
    ax.barh([name for name, _ in shown], [value for _, value in shown])
    ax.set_xlabel(f"mean |SHAP| ({explained.outputs[0] if len(explained.outputs) == 1 else 'summed over classes'})")
    ax.set_title(f"Feature importance ({explained.explainer} explainer, per {explained.grouping.split()[0]} column)")
    path = folder / "shap_importance.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    written.append(path)
    return written
