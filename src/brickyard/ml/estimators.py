"""Estimators by short name, or by import path `package.module:Class`.

| name                  | classification                       | regression                          |
|-----------------------|--------------------------------------|-------------------------------------|
| `logistic_regression` | `sklearn.linear_model.LogisticRegression` | -                              |
| `linear_regression`   | -                                    | `sklearn.linear_model.LinearRegression` |
| `random_forest`       | `sklearn.ensemble.RandomForestClassifier` | `...RandomForestRegressor`     |
| `gradient_boosting`   | `sklearn.ensemble.HistGradientBoostingClassifier` | `...Regressor`         |
| `lightgbm`            | `lightgbm.LGBMClassifier`            | `lightgbm.LGBMRegressor`            |
| `kmeans`              | clustering: `sklearn.cluster.KMeans` (see `brickyard.ml.kmeans`) |          |

`gradient_boosting` is scikit-learn's histogram-based gradient boosting
(`HistGradientBoostingClassifier` / `HistGradientBoostingRegressor`), not the classic
`GradientBoostingClassifier`: it bins features, is far faster from thousands of rows up and
takes its own `params` (`max_iter`, `learning_rate`, `max_leaf_nodes`, ...; not
`n_estimators`). For the classic one, name it: `sklearn.ensemble:GradientBoostingClassifier`.
The MLflow run records the class as the `estimator_class` param.

An estimator that takes `random_state` gets the split seed unless `params` sets it, so a
training is reproducible by default.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from brickyard.errors import suggest
from brickyard.ml.errors import EstimatorError
from brickyard.ml.spec import Problem

SHORT_NAMES: dict[str, dict[str, str]] = {
    "logistic_regression": {"classification": "sklearn.linear_model:LogisticRegression"},
    "linear_regression": {"regression": "sklearn.linear_model:LinearRegression"},
    "random_forest": {
        "classification": "sklearn.ensemble:RandomForestClassifier",
        "regression": "sklearn.ensemble:RandomForestRegressor",
    },
    "gradient_boosting": {
        "classification": "sklearn.ensemble:HistGradientBoostingClassifier",
        "regression": "sklearn.ensemble:HistGradientBoostingRegressor",
    },
    "lightgbm": {"classification": "lightgbm:LGBMClassifier", "regression": "lightgbm:LGBMRegressor"},
    "kmeans": {"clustering": "sklearn.cluster:KMeans"},
}
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "logistic_regression": {"max_iter": 1000},
    "lightgbm": {"verbose": -1, "n_jobs": 1, "deterministic": True},
}
INSTALL_HINTS = {"lightgbm": "pip install 'brickyard[ml]' (or pip install lightgbm)"}
# What a short name stands for, when its params are refused.
PARAM_NOTES = {
    "gradient_boosting": "gradient_boosting is scikit-learn's histogram-based {cls} (max_iter counts its trees, "
    "not n_estimators; for the classic one use sklearn.ensemble:GradientBoosting{kind})",
}


def estimator_path(name: str, problem: Problem) -> str:
    """The `module:Class` an estimator name stands for, for this kind of problem.

    Raises:
        EstimatorError: an unknown short name, or one that does not do this problem.
    """
    if ":" in name:
        return name
    choices = SHORT_NAMES.get(name)
    if choices is None:
        raise EstimatorError(
            f"unknown estimator {name!r}",
            hint=suggest(name, SHORT_NAMES)
            or f"use one of {', '.join(SHORT_NAMES)}, or an import path such as sklearn.svm:SVC",
        )
    if problem not in choices:
        does = " or ".join(choices)
        raise EstimatorError(
            f"estimator {name!r} does {does}, but this label makes it {problem}",
            hint="pick an estimator for that problem, or set problem: explicitly",
        )
    return choices[problem]


def build_estimator(name: str, problem: Problem, params: dict[str, Any], seed: int) -> Any:
    """An unfitted estimator with `params` (plus brickyard's defaults for short names).

    Raises:
        EstimatorError: unknown name, failed import, or parameters the class rejects.
    """
    path = estimator_path(name, problem)
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EstimatorError(
            f"cannot import {module_name!r} for estimator {name!r}: {exc}",
            hint=INSTALL_HINTS.get(module_name, f"install the package that provides {module_name}"),
        ) from None
    cls = getattr(module, class_name, None)
    if cls is None or not inspect.isclass(cls):
        raise EstimatorError(
            f"{module_name} has no class {class_name!r} (estimator {name!r})",
            hint=suggest(class_name, [n for n in dir(module) if not n.startswith("_")]) or "check the import path",
        )
    merged = {**DEFAULT_PARAMS.get(name, {}), **params}
    accepted = inspect.signature(cls).parameters
    if "random_state" in accepted and "random_state" not in merged:
        merged["random_state"] = seed
    try:
        estimator = cls(**merged)
    except TypeError as exc:
        takes = f"{class_name} takes: {', '.join(p for p in accepted if p not in ('self', 'args', 'kwargs'))}"
        note = PARAM_NOTES.get(name, "").format(cls=class_name, kind=class_name.rsplit("Boosting", 1)[-1])
        raise EstimatorError(f"estimator {name!r} rejects its params: {exc}", hint=f"{note}; {takes}" if note else takes) from None
    if not (hasattr(estimator, "fit") and (hasattr(estimator, "predict") or hasattr(estimator, "transform"))):
        raise EstimatorError(f"{path} is not a scikit-learn style estimator (no fit/predict)")
    return estimator


def simple_params(estimator: Any) -> dict[str, Any]:
    """The estimator's parameters that are plain values (for MLflow params)."""
    found = {}
    for key, value in estimator.get_params(deep=False).items():
        if value is None or isinstance(value, bool | int | float | str):
            found[key] = value
    return found
