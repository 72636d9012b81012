"""A model's performance over a window: realised when labels have arrived, estimated from
the classifier's calibrated scores until then, and its drop against the metrics the model
version was evaluated with.

The estimate is confidence-based (CBPE): for a calibrated binary classifier a row scored
`p` is positive with probability `p`, so the expected accuracy of predicting the likelier
class is the mean of `max(p, 1 - p)`, and the expected ROC curve has, above each score
threshold, `sum(p)` expected true positives and `sum(1 - p)` expected false positives. It
is only as good as the calibration; results mark it `estimated`. Regression has no
estimate (nothing in a prediction says how wrong it is).

>>> import numpy as np
>>> est = estimated_metrics(np.array([0.9, 0.8, 0.2, 0.1]))
>>> round(est["accuracy"], 2), round(est["roc_auc"], 3)
(0.85, 0.875)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brickyard.ml.metrics import GREATER_IS_BETTER, label_metrics, regression_metrics

ESTIMATED = ("accuracy", "roc_auc")


@dataclass
class Performance:
    """The metrics of one window: `realised` from labels (when enough rows had one),
    `estimate` from the scores (a classifier with probabilities), and the `drops` of the
    metrics that count (realised when there are any, else the estimate) against the model
    version's `reference` metrics (positive: worse)."""

    realised: dict[str, float] = field(default_factory=dict)
    estimate: dict[str, float] = field(default_factory=dict)
    drops: dict[str, float] = field(default_factory=dict)
    reference: dict[str, float] = field(default_factory=dict)
    labelled_rows: int | None = None  # None: the monitor has no labels

    @property
    def estimated(self) -> bool:
        """Whether the metrics that count are estimates (no realised metrics)."""
        return not self.realised and bool(self.estimate)

    @property
    def metrics(self) -> dict[str, float]:
        """The metrics that count: realised, else estimated."""
        return self.realised or self.estimate

    def values(self) -> dict[str, float]:
        """The values alert rules compare: each metric that counts, `<metric>_drop`,
        `estimated_<metric>`, and `labelled_rows`."""
        found: dict[str, float] = dict(self.metrics)
        found.update({f"{name}_drop": value for name, value in self.drops.items()})
        found.update({f"estimated_{name}": value for name, value in self.estimate.items()})
        if self.labelled_rows is not None:
            found["labelled_rows"] = float(self.labelled_rows)
        return found


def estimated_metrics(probability: np.ndarray) -> dict[str, float]:
    """Expected accuracy and ROC AUC of a calibrated binary classifier from its scores
    (the probability of the positive class); AUC is left out when every expected label is
    certain (all scores 0 or all 1)."""
    p = np.clip(np.asarray(probability, dtype=float), 0.0, 1.0)
    p = p[~np.isnan(p)]
    if p.size == 0:
        return {}
    found = {"accuracy": float(np.mean(np.maximum(p, 1.0 - p)))}
    positives, negatives = float(p.sum()), float((1.0 - p).sum())
    if positives > 0 and negatives > 0:
        order = np.argsort(-p, kind="stable")
        ranked = p[order]
        tp, fp = np.cumsum(ranked), np.cumsum(1.0 - ranked)
        last_of_tie = np.r_[ranked[1:] != ranked[:-1], True]  # one ROC point per distinct score
        tpr = np.r_[0.0, tp[last_of_tie] / positives]
        fpr = np.r_[0.0, fp[last_of_tie] / negatives]
        found["roc_auc"] = float(np.trapezoid(tpr, fpr))
    return found


def realised_metrics(
    problem: str, truth: np.ndarray, predicted: np.ndarray, probability: np.ndarray | None,
    positive_class: Any = None,
) -> dict[str, float]:
    """The metrics `brickyard.ml.metrics` logs at training, on a window's labelled rows."""
    if problem == "regression":
        return regression_metrics(predicted, truth)
    classes = sorted(set(truth.tolist()) | set(predicted.tolist()), key=str)
    if positive_class is not None and len(classes) == 2 and classes[1] != positive_class:
        classes.reverse()
    proba = None
    if probability is not None and len(classes) == 2:
        p = np.asarray(probability, dtype=float)
        proba = np.column_stack([1.0 - p, p])
    return label_metrics(truth, predicted, proba, classes)


def drops(metrics: Mapping[str, float], reference: Mapping[str, float]) -> dict[str, float]:
    """How much worse each metric is than its reference (positive: worse), for the metrics
    both have and whose direction is known."""
    found = {}
    for name, value in metrics.items():
        if name in reference and name in GREATER_IS_BETTER:
            delta = float(reference[name]) - float(value)
            found[name] = delta if GREATER_IS_BETTER[name] else -delta
    return found
