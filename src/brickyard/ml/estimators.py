"""Estimators by short name, or by import path `package.module:Class`.

| name                  | classification                       | regression                          |
|-----------------------|--------------------------------------|-------------------------------------|
| `logistic_regression` | `sklearn.linear_model.LogisticRegression` | -                              |
| `linear_regression`   | -                                    | `sklearn.linear_model.LinearRegression` |
| `random_forest`       | `sklearn.ensemble.RandomForestClassifier` | `...RandomForestRegressor`     |
| `gradient_boosting`   | `sklearn.ensemble.HistGradientBoostingClassifier` | `...Regressor`         |
| `lightgbm`            | `lightgbm.LGBMClassifier`            | `lightgbm.LGBMRegressor`            |
| `extra_trees`         | `sklearn.ensemble.ExtraTreesClassifier` | `...ExtraTreesRegressor`         |
| `ridge`               | -                                    | `sklearn.linear_model.Ridge`        |
| `elastic_net`         | -                                    | `sklearn.linear_model.ElasticNet`   |
| `xgboost`             | `xgboost.XGBClassifier` (when installed) | `xgboost.XGBRegressor`          |
| `voting`, `stacking`  | ensembles of other estimators (see `brickyard.ml.ensembles`) |              |
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
from brickyard.ml.ensembles import CLASSES, ENSEMBLES, build_ensemble, ensemble_problems
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
    "extra_trees": {
        "classification": "sklearn.ensemble:ExtraTreesClassifier",
        "regression": "sklearn.ensemble:ExtraTreesRegressor",
    },
    "ridge": {"regression": "sklearn.linear_model:Ridge"},
    "elastic_net": {"regression": "sklearn.linear_model:ElasticNet"},
    "xgboost": {"classification": "xgboost:XGBClassifier", "regression": "xgboost:XGBRegressor"},
    "kmeans": {"clustering": "sklearn.cluster:KMeans"},
    **CLASSES,
}
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "logistic_regression": {"max_iter": 1000},
    "lightgbm": {"verbose": -1, "n_jobs": 1, "deterministic": True},
    "xgboost": {"n_jobs": 1, "verbosity": 0},
    "elastic_net": {"max_iter": 5000},
}
INSTALL_HINTS = {"lightgbm": "pip install 'brickyard[ml]' (or pip install lightgbm)", "xgboost": "pip install xgboost"}
# What a short name stands for, when its params are refused.
PARAM_NOTES = {
    "gradient_boosting": "gradient_boosting is scikit-learn's histogram-based {cls} (max_iter counts its trees, "
    "not n_estimators; for the classic one use sklearn.ensemble:GradientBoosting{kind})",
}


def cannot_import(module: str) -> str | None:
    """Why `module` does not import (None when it does): not installed, or a native library
    it needs is missing (LightGBM's libgomp), which finding the package would not tell."""
    try:
        importlib.import_module(module)
    except (ImportError, OSError) as exc:
        return str(exc)
    return None


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
    if name in ENSEMBLES:
        estimator_path(name, problem)  # raises: not this problem
        return build_ensemble(name, problem, params, seed)
    path = estimator_path(name, problem)
    cls = _import_class(path, name)
    unknown = _unknown_params(name, [cls], params)
    if unknown:
        _, message, hint = unknown[0]
        more = f" (and {len(unknown) - 1} more: {', '.join(key for key, _, _ in unknown[1:])})" if len(unknown) > 1 else ""
        note = _param_note(cls, name)
        raise EstimatorError(message + more, hint=hint if not note or note in hint else f"{hint}; {note}")
    try:
        estimator = _construct(cls, name, params, seed)
    except TypeError as exc:
        raise EstimatorError(f"estimator {name!r} rejects its params: {exc}", hint=_accepted_hint(cls, name)) from exc
    if not (hasattr(estimator, "fit") and (hasattr(estimator, "predict") or hasattr(estimator, "transform"))):
        raise EstimatorError(f"{path} is not a scikit-learn style estimator (no fit/predict)")
    return estimator


def estimator_problems(name: str, problem: Problem | None, params: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """What is wrong with an estimator and its params, found without data and without
    fitting, as (key, message): an unknown name or a class that does not import
    (`("estimator",)`), each parameter no class of the name takes (`("params", key)`), and
    values the class rejects (scikit-learn's own parameter validation, `("params",)`).

    With `problem` None (not known before the label is read) a short name that does both
    classification and regression is checked against both classes: a parameter is wrong
    only if neither takes it. An ensemble's members are checked each (`("params", "members", i, ...)`).
    """
    if name in ENSEMBLES:
        return ensemble_problems(name, problem, params)
    try:
        classes = [_import_class(path, name) for path in _candidate_paths(name, problem)]
    except EstimatorError as exc:
        return [(("estimator",), str(exc))]
    unknown = _unknown_params(name, classes, params)
    if unknown:
        return [(("params", key), f"{message} (hint: {hint})") for key, message, hint in unknown]
    rejections = []
    for cls in classes:
        rejection = _rejection(cls, name, params)
        if rejection is None:
            return []
        rejections.append(rejection)
    return [(("params",), f"estimator {name!r} ({cls.__name__}) rejects params: {rejections[0]}")]


def _candidate_paths(name: str, problem: Problem | None) -> list[str]:
    if problem is not None or ":" in name:
        return [estimator_path(name, problem or "classification")]
    if name not in SHORT_NAMES:
        estimator_path(name, "classification")  # raises: unknown name
    return list(SHORT_NAMES[name].values())


def _import_class(path: str, name: str) -> type:
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EstimatorError(
            f"cannot import {module_name!r} for estimator {name!r}: {exc}",
            hint=INSTALL_HINTS.get(module_name, f"install the package that provides {module_name}"),
        ) from exc
    cls = getattr(module, class_name, None)
    if cls is None or not inspect.isclass(cls):
        raise EstimatorError(
            f"{module_name} has no class {class_name!r} (estimator {name!r})",
            hint=suggest(class_name, [n for n in dir(module) if not n.startswith("_")]) or "check the import path",
        )
    return cls


def _accepted(cls: type) -> list[str] | None:
    """The parameters `cls` takes; None when it takes any keyword (`**kwargs`)."""
    parameters = inspect.signature(cls).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.kind is not inspect.Parameter.VAR_POSITIONAL]


def _accepted_hint(cls: type, name: str) -> str:
    takes = f"{cls.__name__} takes: {', '.join(_accepted(cls) or ['any keyword'])}"
    return f"{_param_note(cls, name)}; {takes}" if name in PARAM_NOTES else takes


def _param_note(cls: type, name: str) -> str:
    return PARAM_NOTES.get(name, "").format(cls=cls.__name__, kind=cls.__name__.rsplit("Boosting", 1)[-1])


def _unknown_params(name: str, classes: list[type], params: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(key, message, hint) for each parameter that none of `classes` takes."""
    accepted = [_accepted(cls) for cls in classes]
    if any(names is None for names in accepted):
        return []
    known = sorted({n for names in accepted for n in names or ()})
    shown = " or ".join(cls.__name__ for cls in classes)
    return [
        (
            key,
            f"estimator {name!r} ({shown}) takes no parameter {key!r}",
            suggest(key, known) or _param_note(classes[0], name) or f"it takes: {', '.join(known)}",
        )
        for key in params
        if key not in known
    ]


def _construct(cls: type, name: str, params: dict[str, Any], seed: int) -> Any:
    merged = {**DEFAULT_PARAMS.get(name, {}), **params}
    if "random_state" in inspect.signature(cls).parameters and "random_state" not in merged:
        merged["random_state"] = seed
    return cls(**merged)


def _rejection(cls: type, name: str, params: dict[str, Any]) -> str | None:
    """Why `cls` rejects `params` (its constructor, then scikit-learn's parameter
    constraints, which `fit` would check first); None when it accepts them."""
    try:
        estimator = _construct(cls, name, params, 0)
        validate = getattr(estimator, "_validate_params", None)
        # a scikit-learn style class without constraints (LightGBM's) has the method but not the table
        if callable(validate) and hasattr(estimator, "_parameter_constraints"):
            validate()
    except (TypeError, ValueError) as exc:
        return " ".join(str(exc).split())
    return None


def simple_params(estimator: Any) -> dict[str, Any]:
    """The estimator's parameters that are plain values (for MLflow params)."""
    found = {}
    for key, value in estimator.get_params(deep=False).items():
        if value is None or isinstance(value, bool | int | float | str):
            found[key] = value
    return found
