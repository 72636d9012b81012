"""The preprocessing in front of every model, chosen from the column types.

- numeric columns: median imputation, then `StandardScaler`;
- text, categorical and boolean columns: most-frequent imputation, then
  `OneHotEncoder(handle_unknown="ignore")`.

A model is a scikit-learn `Pipeline` that takes the raw feature frame, so the MLflow model
scores raw rows. With categorical columns the first step is a `ColumnTransformer`
(`preprocess`), fitted by scikit-learn as usual. With numeric columns only (the common case
for clustering, where inputs are large) the pipeline is `select` (a `ColumnTransformer`
that passes the columns through by name) → `impute` → `scale` → `model`, and the imputer's
medians and the scaler's means and deviations are computed with NumPy instead of
scikit-learn's fit (its median goes through a masked-array sort, slower than the KMeans fit
that follows on millions of rows): per column, in parallel threads, one O(n) partition
(or a count, for integers) for the median, one pass each for the mean and the variance, and
one scratch buffer that then holds the scaled values. The fitted objects are ordinary
`SimpleImputer` / `StandardScaler` instances with the same medians scikit-learn computes and
the same means and scales to rounding (tests check), so the model needs nothing from
brickyard to load or score.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

PARALLEL_ROWS = 200_000  # below this, threads cost more than they save
INTEGER_MEDIAN_RANGE = 10_000_000  # widest integer range whose median is found by counting


def column_transformer(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    """The unfitted preprocessing for these columns."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric))
    if categorical:
        parts.append((
            "categorical",
            Pipeline([
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]),
            categorical,
        ))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)


def fit_pipeline(estimator: Any, X: pd.DataFrame, y: Any, numeric: list[str], categorical: list[str]) -> Pipeline:
    """Fit preprocessing + `estimator` on the raw frame `X`; returns the fitted Pipeline."""
    from sklearn.pipeline import Pipeline

    if categorical:
        pipeline = Pipeline([("preprocess", column_transformer(numeric, categorical)), ("model", estimator)])
        return pipeline.fit(X, y) if y is not None else pipeline.fit(X)
    steps, Z = fit_numeric(X, numeric)
    if y is not None:
        estimator.fit(Z, np.asarray(y))
    else:
        estimator.fit(Z)
    return Pipeline([*steps, ("model", estimator)])


def fit_numeric(X: pd.DataFrame, numeric: list[str]) -> tuple[list[tuple[str, Any]], np.ndarray]:
    """Fitted `select`, `impute`, `scale` steps for numeric columns, and the transformed
    rows as a C-ordered float64 array (what the estimator is then fitted on)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    head = X[numeric].iloc[:2]
    select = ColumnTransformer([("numeric", "passthrough", numeric)], remainder="drop", verbose_feature_names_out=False)
    select.fit(head)
    rows = len(X)

    def column(name: str) -> tuple[float, float, float, np.ndarray]:
        # NumPy releases the GIL in these loops, so columns are worked on in parallel.
        # One scratch buffer per column: first the median's partition, then the scaled values.
        source = X[name].to_numpy()
        integers = source.dtype.kind in "iu"
        if source.dtype == np.float64:
            values = source  # a view: NaN are NaN already, no copy
        else:
            values = X[name].to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(values) if not integers else None
        if missing is not None and missing.any():
            middle = median(values[~missing], overwrite=True)
            values = np.where(missing, middle, values)
            scratch = values
        elif integers:
            middle = integer_median(source)
            scratch = values  # converted from integers: a copy of our own
        else:
            scratch = values.copy()  # partitioned, then overwritten with the scaled values
            middle = median(scratch, overwrite=True)
        mean = float(values.mean())
        np.subtract(values, mean, out=scratch)
        variance = float(np.dot(scratch, scratch)) / rows
        scratch /= _handle_zeros(np.array([np.sqrt(variance)]))[0]
        return middle, mean, variance, scratch

    workers = min(len(numeric), os.cpu_count() or 1) if rows >= PARALLEL_ROWS else 1
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            columns = list(pool.map(column, numeric))
    else:
        columns = [column(name) for name in numeric]
    Z = np.empty((rows, len(numeric)), dtype=np.float64)
    for j, (_, _, _, scaled) in enumerate(columns):
        Z[:, j] = scaled
    medians = np.array([c[0] for c in columns])
    means = np.array([c[1] for c in columns])
    variances = np.array([c[2] for c in columns])
    imputer = SimpleImputer(strategy="median").fit(Z[:2])
    imputer.statistics_ = medians
    scaler = StandardScaler().fit(Z[:2])
    scaler.mean_ = means
    scaler.var_ = variances
    scaler.scale_ = _handle_zeros(np.sqrt(variances))
    scaler.n_samples_seen_ = rows
    return [("select", select), ("impute", imputer), ("scale", scaler)], Z


def median(values: np.ndarray, overwrite: bool = False) -> float:
    """The median of non-empty, NaN-free values, by one O(n) partition (np.median's
    two-point partition is several times slower on millions of rows). `overwrite`
    partitions `values` in place instead of a copy."""
    n = len(values)
    half = n // 2
    if overwrite:
        values.partition(half)
        part = values
    else:
        part = np.partition(values, half)
    if n % 2:
        return float(part[half])
    return (float(part[:half].max()) + float(part[half])) / 2


def integer_median(values: np.ndarray) -> float:
    """The median of non-empty integers by counting (partitioning many repeated values,
    as in counts and codes, is slow); falls back to `median` for a very wide range."""
    low, high = int(values.min()), int(values.max())
    if high - low > INTEGER_MEDIAN_RANGE:
        return median(values.astype(np.float64), overwrite=True)
    # bincount counts from 0: small non-negative values as they are, others shifted by `low`
    offset = 0 if low >= 0 and high <= INTEGER_MEDIAN_RANGE else low
    shifted = values if offset == 0 else values - offset
    counts = np.cumsum(np.bincount(shifted.astype(np.intp, copy=False)))
    n = len(values)

    def nth(k: int) -> float:  # the k-th smallest value, 0-based
        return float(offset + int(np.searchsorted(counts, k, side="right")))

    if n % 2:
        return nth(n // 2)
    return (nth(n // 2 - 1) + nth(n // 2)) / 2


def _handle_zeros(scale: np.ndarray) -> np.ndarray:
    """Like scikit-learn: a constant column keeps scale 1 instead of dividing by zero."""
    eps = 10 * np.finfo(scale.dtype).eps
    return np.where(scale < eps, 1.0, scale)


def feature_names_out(model: Pipeline) -> list[str]:
    """The names of the columns the model's estimator sees (after one-hot encoding)."""
    first = model.steps[0][1]
    try:
        return [str(name) for name in first.get_feature_names_out()]
    except (AttributeError, ValueError):
        return []
