"""Search spaces: each family's default space, and a trial's parameters drawn from a space.

| family                | searched by default |
|-----------------------|---------------------|
| `logistic_regression` | `C` (0.001-100, log) |
| `linear_regression`   | nothing (one fit) |
| `random_forest`       | `n_estimators` (50-300), `max_depth` (2-16), `min_samples_leaf` (1-10), `max_features` (sqrt, 0.5, 1.0) |
| `gradient_boosting`   | `learning_rate` (0.01-0.3, log), `max_iter` (50-300), `max_leaf_nodes` (8-64), `l2_regularization` (1e-6-10, log) |
| `lightgbm`            | `learning_rate` (0.01-0.3, log), `n_estimators` (50-400), `num_leaves` (8-64), `min_child_samples` (5-50), `colsample_bytree` (0.5-1.0), `reg_lambda` (1e-6-10, log) |

A declared space replaces the family's default one; a family given without a space
(`random_forest:` with nothing after it) gets its default. Optuna sees each parameter as
`<family>.<name>`, so families that share a parameter name do not share its history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
}


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
