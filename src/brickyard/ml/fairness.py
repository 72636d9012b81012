"""Fairness of a binary classifier's held-out predictions by sensitive feature.

Fairlearn's `MetricFrame` computes, per group of the sensitive features (their
combinations when there are several), the selection rate (share predicted positive),
accuracy, recall (true positive rate) and false positive rate; fairlearn's
`demographic_parity_difference` (largest minus smallest group selection rate) and
`equalized_odds_difference` (the larger of the true and false positive rate gaps) sum it
up. Confidence intervals come from a seeded percentile bootstrap of the held-out rows:
`bootstrap` resamples, each recomputing every group's numbers and both differences
(vectorised with NumPy; a group absent from a resample is left out of that resample's
numbers). A rate with nothing to measure (the recall of a group with no actual positives,
the false positive rate of one with no negatives) is 0, fairlearn's convention, and the
result's notes name each such group.

The positive class is the second of the model's sorted classes, as for the other metrics
(`brickyard.ml.metrics`). A missing sensitive value is its own group, `(null)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from brickyard.ml.spec import FairnessSpec

if TYPE_CHECKING:
    import pandas as pd

GROUP_METRICS = ("selection_rate", "accuracy", "recall", "false_positive_rate")
DIFFERENCES = ("demographic_parity_difference", "equalized_odds_difference")
MAX_GROUP_METRICS = 50  # groups whose numbers are also logged as MLflow metrics
NULL_GROUP = "(null)"
_METRIC_UNSAFE = re.compile(r"[^\w\-. /:]")


@dataclass
class Fairness:
    """Group numbers, the two differences and their bootstrap intervals."""

    features: list[str]
    positive: Any
    groups: list[dict[str, Any]]  # one per group: the feature values, count, metrics and intervals
    differences: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    bootstrap: int
    confidence: float
    seed: int
    notes: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        """What is logged on the version's run: the differences with `_ci_low`/`_ci_high`,
        and `fairness.<feature>.<value>...<metric>` for up to MAX_GROUP_METRICS groups."""
        found: dict[str, float] = {}
        for name, value in self.differences.items():
            found[name] = value
            if name in self.intervals:
                found[f"{name}_ci_low"], found[f"{name}_ci_high"] = self.intervals[name]
        for group in self.groups[:MAX_GROUP_METRICS]:
            label = ".".join(f"{feature}.{group[feature]}" for feature in self.features)
            for metric in GROUP_METRICS:
                value = group[metric]
                if value == value:  # not NaN
                    found[_METRIC_UNSAFE.sub("_", f"fairness.{label}.{metric}")] = value
        return found

    def table(self) -> pd.DataFrame:
        """One row per group: feature values, rows, each metric and its interval."""
        import pandas as pd

        return pd.DataFrame(self.groups)

    def summary(self) -> dict[str, Any]:
        return {
            "sensitive_features": self.features,
            "positive_class": _plain(self.positive),
            "differences": self.differences,
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "bootstrap": self.bootstrap,
            "confidence": self.confidence,
            "seed": self.seed,
            "groups": len(self.groups),
            "notes": self.notes,
        }


def assess(truth: Any, predicted: Any, sensitive: pd.DataFrame, classes: list[Any], spec: FairnessSpec) -> Fairness:
    """Fairness of `predicted` against `truth` by the columns of `sensitive` (same rows).

    Raises:
        ValueError: the model does not have two classes.
    """
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
    )
    from sklearn.metrics import accuracy_score, recall_score

    if len(classes) != 2:
        raise ValueError(
            f"fairness by sensitive_features needs a binary classifier; this one has {len(classes)} classes"
        )
    positive = classes[1]
    y_true = (np.asarray(truth) == positive).astype(int)
    y_pred = (np.asarray(predicted) == positive).astype(int)
    groups = _group_frame(sensitive)
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "accuracy": accuracy_score,
            "recall": lambda t, p: recall_score(t, p, zero_division=0),
            "false_positive_rate": false_positive_rate,
        },
        y_true=y_true, y_pred=y_pred, sensitive_features=groups,
    )
    differences = {
        "demographic_parity_difference": float(demographic_parity_difference(y_true, y_pred, sensitive_features=groups)),
        "equalized_odds_difference": float(equalized_odds_difference(y_true, y_pred, sensitive_features=groups)),
    }
    by_group = frame.by_group
    keys = [key if isinstance(key, tuple) else (key,) for key in by_group.index]
    codes = _codes(groups, keys)
    counts = np.bincount(codes, minlength=len(keys))
    rows: list[dict[str, Any]] = []
    for index, key in enumerate(keys):
        row: dict[str, Any] = dict(zip(list(groups.columns), key, strict=True))
        row["rows"] = int(counts[index])
        for metric in GROUP_METRICS:
            row[metric] = float(by_group.iloc[index][metric])
        rows.append(row)
    intervals: dict[str, tuple[float, float]] = {}
    notes: list[str] = []
    if spec.bootstrap:
        group_ci, diff_ci = _bootstrap(y_true, y_pred, codes, len(keys), spec)
        for index, row in enumerate(rows):
            for metric in GROUP_METRICS:
                row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = group_ci[metric][index]
        intervals = diff_ci
    else:
        notes.append("bootstrap: 0, so no confidence intervals")
    labels = [", ".join(f"{name}={row[name]}" for name in groups.columns) for row in rows]
    for label, index in zip(labels, range(len(rows)), strict=True):
        member = codes == index
        for have, rate in ((y_true[member] == 1, "recall"), (y_true[member] == 0, "false positive rate")):
            if not have.any():
                notes.append(f"group {label} has no actual {'positives' if rate == 'recall' else 'negatives'}: "
                             f"its {rate} is reported as 0 (fairlearn's convention)")
    small = [row for row in rows if row["rows"] < 30]
    if small:
        notes.append(f"{len(small)} group(s) have fewer than 30 held-out rows: their numbers are noisy")
    if len(rows) > MAX_GROUP_METRICS:
        notes.append(f"{len(rows)} groups: the first {MAX_GROUP_METRICS} are logged as metrics, all are in the table")
    return Fairness(
        list(groups.columns), positive, rows, differences, intervals, spec.bootstrap, spec.confidence, spec.seed, notes
    )


def _group_frame(sensitive: pd.DataFrame) -> pd.DataFrame:
    """The sensitive columns as text labels, a missing value as its own group."""
    import pandas as pd

    return pd.DataFrame({
        str(name): [NULL_GROUP if _missing(value) else str(_plain(value)) for value in sensitive[name]]
        for name in sensitive.columns
    })


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _codes(groups: pd.DataFrame, keys: list[tuple[Any, ...]]) -> np.ndarray:
    position = {key: index for index, key in enumerate(keys)}
    return np.array([position[tuple(row)] for row in groups.itertuples(index=False, name=None)], dtype=np.int64)


def _bootstrap(
    y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, n_groups: int, spec: FairnessSpec
) -> tuple[dict[str, list[tuple[float, float]]], dict[str, tuple[float, float]]]:
    """Percentile intervals of each group metric and of both differences."""
    rng = np.random.default_rng(spec.seed)
    n = len(codes)
    chunk = max(1, 2_000_000 // max(n, 1))
    samples: dict[str, list[np.ndarray]] = {metric: [] for metric in (*GROUP_METRICS, *DIFFERENCES)}
    done = 0
    with np.errstate(invalid="ignore", divide="ignore"):
        while done < spec.bootstrap:
            size = min(chunk, spec.bootstrap - done)
            index = rng.integers(0, n, size=(size, n))
            t, p, g = y_true[index].astype(bool), y_pred[index].astype(bool), codes[index]
            rates: dict[str, np.ndarray] = {metric: np.empty((size, n_groups)) for metric in GROUP_METRICS}
            for group in range(n_groups):
                member = g == group
                positives, negatives = member & t, member & ~t
                rates["selection_rate"][:, group] = (member & p).sum(1) / member.sum(1)
                rates["accuracy"][:, group] = (member & (t == p)).sum(1) / member.sum(1)
                absent = member.sum(1) == 0
                # fairlearn's convention: a rate with nothing to measure is 0 (a group that is
                # absent from the resample has no numbers at all)
                rates["recall"][:, group] = np.where(
                    absent, np.nan, np.nan_to_num((positives & p).sum(1) / positives.sum(1), nan=0.0))
                rates["false_positive_rate"][:, group] = np.where(
                    absent, np.nan, np.nan_to_num((negatives & p).sum(1) / negatives.sum(1), nan=0.0))
            for metric in GROUP_METRICS:
                samples[metric].append(rates[metric])
            samples["demographic_parity_difference"].append(_gap(rates["selection_rate"]))
            samples["equalized_odds_difference"].append(
                np.fmax(_gap(rates["recall"]), _gap(rates["false_positive_rate"]))
            )
            done += size
    low, high = (1 - spec.confidence) / 2, 1 - (1 - spec.confidence) / 2

    def interval(values: np.ndarray) -> tuple[float, float]:
        values = values[~np.isnan(values)]
        if not len(values):
            return float("nan"), float("nan")
        found = np.quantile(values, [low, high])
        return float(found[0]), float(found[1])

    group_ci = {
        metric: [interval(np.concatenate(samples[metric])[:, group]) for group in range(n_groups)]
        for metric in GROUP_METRICS
    }
    diff_ci = {name: interval(np.concatenate(samples[name])) for name in DIFFERENCES}
    return group_ci, diff_ci


def _gap(rates: np.ndarray) -> np.ndarray:
    """Largest minus smallest rate per resample, over the groups that have one."""
    with np.errstate(invalid="ignore"):
        present = ~np.isnan(rates)
        enough = present.sum(1) >= 2
        gap = np.nanmax(np.where(present, rates, -np.inf), 1) - np.nanmin(np.where(present, rates, np.inf), 1)
    return np.where(enough, gap, np.nan)
