"""Robustness: how much a held-out metric drops when the inputs get a little worse.

Two perturbations of the held-out features, each `repeats` times with seeds `seed`,
`seed + 1`, ...: Gaussian noise with a standard deviation of `noise` times each numeric
column's own (nulls stay null), and a `missing` share of the cells of every feature
column set to null (the model's imputers fill them as in production). The drop is the
metric on the clean rows minus the metric on the perturbed rows (for a metric where lower
is better, the other way round), averaged over the repeats; `robustness_drop` is the
larger of the two drops. With `noise: 0` and `missing: 0` every drop is exactly 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from brickyard.ml.metrics import GREATER_IS_BETTER, score
from brickyard.ml.spec import Problem, RobustnessSpec

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Robustness:
    """The metric on clean rows and its drop under each perturbation."""

    metric: str
    clean: float
    drop_noise: float
    drop_missing: float
    spec: RobustnessSpec

    @property
    def drop(self) -> float:
        return max(self.drop_noise, self.drop_missing)

    def metrics(self) -> dict[str, float]:
        return {
            "robustness_drop": self.drop,
            "robustness_drop_noise": self.drop_noise,
            "robustness_drop_missing": self.drop_missing,
        }

    def summary(self) -> dict[str, Any]:
        return {
            "metric": self.metric, "clean": self.clean, "drop_noise": self.drop_noise,
            "drop_missing": self.drop_missing, "robustness_drop": self.drop, **self.spec.model_dump(exclude={"metric"}),
        }


def metric_for(problem: Problem, metrics: dict[str, float], spec: RobustnessSpec) -> str:
    """The metric the drop is measured on: `spec.metric`, else roc_auc (accuracy when the
    model gives no probabilities) for classification, r2 for regression.

    Raises:
        ValueError: the model's held-out metrics do not include `spec.metric`.
    """
    if spec.metric is not None:
        if spec.metric not in metrics:
            raise ValueError(
                f"robustness.metric {spec.metric!r} is not one of this {problem} model's metrics: {', '.join(sorted(metrics))}"
            )
        return spec.metric
    if problem == "classification":
        return "roc_auc" if "roc_auc" in metrics else "accuracy"
    return "r2"


def check(model: Any, X: pd.DataFrame, y: Any, problem: Problem, numeric: list[str], spec: RobustnessSpec,
          clean_metrics: dict[str, float]) -> Robustness:
    """Measure the drops (see the module's docstring)."""
    metric = metric_for(problem, clean_metrics, spec)
    clean = clean_metrics[metric]
    sign = 1.0 if GREATER_IS_BETTER[metric] else -1.0
    noisy, holed = [], []
    for repeat in range(spec.repeats):
        rng = np.random.default_rng(spec.seed + repeat)
        noisy.append(score(model, with_noise(X, numeric, spec.noise, rng), y, problem)[metric])
        holed.append(score(model, with_missing(X, spec.missing, rng), y, problem)[metric])
    return Robustness(
        metric, clean, sign * (clean - float(np.mean(noisy))), sign * (clean - float(np.mean(holed))), spec
    )


def with_noise(X: pd.DataFrame, numeric: list[str], scale: float, rng: np.random.Generator) -> pd.DataFrame:
    """`X` with Gaussian noise of `scale` standard deviations added to each numeric column."""
    out = X.copy()
    for name in numeric:
        values = out[name].to_numpy(dtype=np.float64, na_value=np.nan)
        spread = float(np.nanstd(values)) if np.isfinite(values).any() else 0.0
        out[name] = values + rng.normal(0.0, 1.0, len(values)) * (scale * spread)
    return out


def with_missing(X: pd.DataFrame, share: float, rng: np.random.Generator) -> pd.DataFrame:
    """`X` with a `share` of the cells of every column set to null."""
    out = X.copy()
    holes = rng.random(out.shape) < share
    for position, name in enumerate(out.columns):
        mask = holes[:, position]
        if mask.any():
            column = out[name]
            if column.dtype.kind in "iu":  # integers hold no null; booleans stay categories
                column = column.astype(np.float64)
            out[name] = column.mask(mask)
    return out
