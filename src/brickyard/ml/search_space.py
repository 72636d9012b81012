"""Search spaces: each family's default space, and a trial's parameters drawn from a space.

| family                | searched by default |
|-----------------------|---------------------|
| `logistic_regression` | `C` (0.001-100, log) |
| `linear_regression`   | nothing (one fit) |
| `random_forest`       | `n_estimators` (50-300), `max_depth` (2-16), `min_samples_leaf` (1-10), `max_features` (sqrt, 0.5, 1.0) |
| `gradient_boosting`   | `learning_rate` (0.01-0.3, log), `max_iter` (50-300), `max_leaf_nodes` (8-64), `l2_regularization` (1e-6-10, log) |
| `lightgbm`            | `learning_rate` (0.01-0.3, log), `n_estimators` (50-400), `num_leaves` (8-64), `min_child_samples` (5-50), `colsample_bytree` (0.5-1.0), `reg_lambda` (1e-6-10, log) |
| `extra_trees`         | as `random_forest` |
| `ridge`               | `alpha` (1e-4-100, log) |
| `elastic_net`         | `alpha` (1e-4-10, log), `l1_ratio` (0.05-1.0) |
| `xgboost`             | `learning_rate` (0.01-0.3, log), `n_estimators` (50-400), `max_depth` (2-10), `min_child_weight` (1-20, log), `subsample` (0.5-1.0), `colsample_bytree` (0.5-1.0), `reg_lambda` (1e-6-10, log) |

`automl: true` searches `AUTOML_FAMILIES` of the problem (XGBoost only when it is
installed) in these spaces, except `gradient_boosting`, which there stops early on a 10%
validation part (`early_stopping: true`, `max_iter` up to 500), and LightGBM and XGBoost,
which reach further (`AUTOML_OVERRIDES`: `n_estimators` 50-1000, `num_leaves` 4-512,
`min_child_samples` 2-100, `max_depth` 2-12, log scales), and the forests, whose
`max_depth` is one of 8, 16, 32 or unlimited; each family's first trial
is its `STARTS` point (scikit-learn's or the library's defaults), cheapest family first.

A declared space replaces the family's default one; a family given without a space
(`random_forest:` with nothing after it) gets its default. Optuna sees each parameter as
`<family>.<name>`, so families that share a parameter name do not share its history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from brickyard.ml.spec import Problem
from brickyard.ml.tune_spec import Dimension, Space

if TYPE_CHECKING:
    import optuna


def _int(low: int, high: int, step: int | None = None) -> Dimension:
    return Dimension.model_validate({"int": [low, high], **({"step": step} if step else {})})


def _float(low: float, high: float, log: bool = False) -> Dimension:
    return Dimension.model_validate({"float": [low, high], "log": log})


def _choice(*values: Any) -> Dimension:
    return Dimension.model_validate({"choice": list(values)})


DEFAULT_SPACES: dict[str, Space] = {
    "logistic_regression": {"C": _float(1e-3, 100.0, log=True)},
    "linear_regression": {},
    "random_forest": {
        "n_estimators": _int(50, 300, step=50),
        "max_depth": _int(2, 16),
        "min_samples_leaf": _int(1, 10),
        "max_features": _choice("sqrt", 0.5, 1.0),
    },
    "gradient_boosting": {
        "learning_rate": _float(0.01, 0.3, log=True),
        "max_iter": _int(50, 300, step=50),
        "max_leaf_nodes": _int(8, 64),
        "l2_regularization": _float(1e-6, 10.0, log=True),
    },
    "lightgbm": {
        "learning_rate": _float(0.01, 0.3, log=True),
        "n_estimators": _int(50, 400, step=50),
        "num_leaves": _int(8, 64),
        "min_child_samples": _int(5, 50),
        "colsample_bytree": _float(0.5, 1.0),
        "reg_lambda": _float(1e-6, 10.0, log=True),
    },
    "ridge": {"alpha": _float(1e-4, 100.0, log=True)},
    "elastic_net": {"alpha": _float(1e-4, 10.0, log=True), "l1_ratio": _float(0.05, 1.0)},
    "xgboost": {
        "learning_rate": _float(0.01, 0.3, log=True),
        "n_estimators": _int(50, 400, step=50),
        "max_depth": _int(2, 10),
        "min_child_weight": _float(1.0, 20.0, log=True),
        "subsample": _float(0.5, 1.0),
        "colsample_bytree": _float(0.5, 1.0),
        "reg_lambda": _float(1e-6, 10.0, log=True),
    },
}
DEFAULT_SPACES["extra_trees"] = dict(DEFAULT_SPACES["random_forest"])

# automl's families by problem, cheapest first (the order their first trials run in).
AUTOML_FAMILIES: dict[str, tuple[str, ...]] = {
    "classification": ("logistic_regression", "lightgbm", "xgboost", "gradient_boosting", "extra_trees", "random_forest"),
    "regression": ("ridge", "elastic_net", "lightgbm", "xgboost", "gradient_boosting", "extra_trees", "random_forest"),
}
# automl's boosted trees reach past the default spaces' capacity (a large table can want
# hundreds of leaves and a thousand trees: the CDNOW churn set's AUC went 0.74 -> 0.84 with
# LightGBM at 255 leaves), searched on log scales so small tables still try small trees.
AUTOML_OVERRIDES: dict[str, Space] = {
    "gradient_boosting": {"max_iter": _int(50, 500, step=50), "early_stopping": True},
    "lightgbm": {
        "n_estimators": Dimension.model_validate({"int": [50, 1000], "log": True}),
        "num_leaves": Dimension.model_validate({"int": [4, 512], "log": True}),
        "min_child_samples": Dimension.model_validate({"int": [2, 100], "log": True}),
    },
    "xgboost": {
        "n_estimators": Dimension.model_validate({"int": [50, 1000], "log": True}),
        "max_depth": _int(2, 12),
    },
    # Forests may grow full trees (scikit-learn's default): on the churn set depth 16 gave
    # 0.80 and unlimited depth 0.87.
    "random_forest": {"max_depth": _choice(8, 16, 32, None)},
    "extra_trees": {"max_depth": _choice(8, 16, 32, None)},
}
# Each family's first automl trial: the library's defaults, inside the space.
STARTS: dict[str, dict[str, Any]] = {
    "logistic_regression": {"C": 1.0},
    "ridge": {"alpha": 1.0},
    "elastic_net": {"alpha": 0.01, "l1_ratio": 0.5},
    "lightgbm": {"learning_rate": 0.1, "n_estimators": 100, "num_leaves": 31, "min_child_samples": 20,
                 "colsample_bytree": 1.0, "reg_lambda": 1e-6},
    "xgboost": {"learning_rate": 0.1, "n_estimators": 100, "max_depth": 6, "min_child_weight": 1.0, "subsample": 1.0,
                "colsample_bytree": 1.0, "reg_lambda": 1.0},
    "gradient_boosting": {"learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 31, "l2_regularization": 1e-6},
    "extra_trees": {"n_estimators": 100, "max_depth": None, "min_samples_leaf": 1, "max_features": 1.0},
    "random_forest": {"n_estimators": 100, "max_depth": None, "min_samples_leaf": 1, "max_features": "sqrt"},
}


def automl_families(problem: Problem) -> tuple[dict[str, Space], list[str]]:
    """automl's families for `problem` with their spaces, and the families left out
    (an optional library that is not installed), each with the reason."""
    from brickyard.ml.estimators import cannot_import, estimator_path

    families: dict[str, Space] = {}
    left_out = []
    for family in AUTOML_FAMILIES[problem]:
        why = cannot_import(estimator_path(family, problem).split(":")[0])
        if why is not None:
            left_out.append(f"{family} ({why})")
            continue
        families[family] = {**DEFAULT_SPACES[family], **AUTOML_OVERRIDES.get(family, {})}
    return families, left_out


def start_point(family: str, space: Space, several: bool) -> dict[str, Any]:
    """The Optuna parameters (`<family>.<name>`, and `estimator` when there are several
    families) of a family's first trial: its `STARTS` values for the searched parameters."""
    point: dict[str, Any] = {"estimator": family} if several else {}
    for name, value in STARTS.get(family, {}).items():
        if isinstance(space.get(name), Dimension):
            point[f"{family}.{name}"] = value
    return point


def space_of(family: str, declared: Space | None) -> Space | None:
    """The space a family is searched in: the declared one, else its default (None: an
    import-path family without a declared space, which has no default)."""
    if declared is not None:
        return declared
    return DEFAULT_SPACES.get(family)


def suggest(trial: optuna.Trial, family: str, space: Space) -> dict[str, Any]:
    """The estimator parameters of `trial` for `family`, drawn from `space`."""
    params: dict[str, Any] = {}
    for name, dimension in space.items():
        key = f"{family}.{name}"
        if not isinstance(dimension, Dimension):
            params[name] = dimension
        elif dimension.int_range is not None:
            low, high = dimension.int_range
            params[name] = trial.suggest_int(key, low, high, step=int(dimension.step or 1), log=dimension.log)
        elif dimension.float_range is not None:
            low_f, high_f = dimension.float_range
            params[name] = trial.suggest_float(key, low_f, high_f, step=dimension.step, log=dimension.log)
        else:
            assert dimension.choice is not None
            params[name] = trial.suggest_categorical(key, dimension.choice)
    return params


def describe(space: Space) -> dict[str, Any]:
    """A space as plain data (the YAML it came from), for records and fingerprints."""
    return {
        name: value.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True)
        if isinstance(value, Dimension) else value
        for name, value in space.items()
    }
