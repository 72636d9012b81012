"""KMeans initial centres that every engine draws alike: k-means++ on a hashed sample.

scikit-learn's k-means++ walks the rows in their order and MLlib's k-means|| samples
partitions, so the two engines started from different centres and could settle in
different local optima (at 100k demo trips one cluster held 71.1 % of the rows on DuckDB
and 67.5 % on Spark). Both engines now start from the same rows of the data:

1. every row gets a hash of its raw feature values, each cast to double (Spark's
   `xxhash64(CAST(seed AS BIGINT), x1, ..., xn)`, with null as NaN; `row_hashes`
   computes the same numbers with NumPy, so the result does not depend on how the rows
   are ordered or partitioned);
2. the sample is the `SAMPLE_SIZE` distinct rows (of the features) with the smallest
   hashes, each weighted by how many rows of the data hold it, in hash order (rows that
   repeat a value are counted, not drawn more than once, so the sample does not clump);
3. k-means++ (scikit-learn's `kmeans_plusplus`, the task's seed) runs on that weighted
   sample, standardized by its own weighted mean and deviation (null as the mean), and
   picks k of its rows;
4. each engine puts those rows through its own fitted preprocessing (median impute,
   standardize); the results are the initial centres of Lloyd's iterations, which both
   engines run with scikit-learn's stopping rule (`brickyard.engines.spark.kmeans` on Spark).

With at most `SAMPLE_SIZE` distinct rows the sample is the whole data, by weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

SAMPLE_SIZE = 10_000  # distinct rows k-means++ chooses from
SPARK_HASH_SEED = 42  # the seed Spark's xxhash64 starts from

# xxHash64's primes, as Spark's XXH64 uses them
_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_P3 = np.uint64(0x165667B19E3779F9)
_P4 = np.uint64(0x85EBCA77C2B2AE63)
_P5 = np.uint64(0x27D4EB2F165667C5)


@dataclass
class SeedSample:
    """Distinct feature rows in hash order: their raw values (NaN for null), how many rows
    of the data hold each, and (on the NumPy path) the position of one such row."""

    values: np.ndarray
    weights: np.ndarray
    positions: np.ndarray | None = None


def row_hashes(columns: Sequence[np.ndarray], seed: int) -> np.ndarray:
    """Spark's `xxhash64(CAST(seed AS BIGINT), c1, c2, ...)` of float64 columns whose
    nulls are NaN (Spark: `coalesce(CAST(c AS DOUBLE), 'NaN')`), as int64."""
    rows = len(columns[0]) if columns else 0
    hashed = _hash_long(np.full(rows, seed, dtype=np.int64).view(np.uint64), np.full(rows, SPARK_HASH_SEED, np.uint64))
    for column in columns:
        # Spark hashes -0.0 as 0.0 and every NaN as the one canonical NaN.
        values = np.where(np.isnan(column), np.nan, np.asarray(column, dtype=np.float64) + 0.0)
        hashed = _hash_long(values.view(np.uint64), hashed)
    return hashed.view(np.int64)


def _hash_long(values: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """XXH64.hashLong of Spark's unsafe hashing, element-wise (uint64 arithmetic wraps)."""
    h = seed + _P5 + np.uint64(8)
    h ^= _rotate_left(values * _P2, 31) * _P1
    h = _rotate_left(h, 27) * _P1 + _P4
    h ^= h >> np.uint64(33)
    h *= _P2
    h ^= h >> np.uint64(29)
    h *= _P3
    h ^= h >> np.uint64(32)
    return h


def _rotate_left(values: np.ndarray, bits: int) -> np.ndarray:
    return (values << np.uint64(bits)) | (values >> np.uint64(64 - bits))


def feature_columns(X: pd.DataFrame, features: list[str]) -> list[np.ndarray]:
    """Each feature as float64 with NaN for null (a view where it already is one)."""
    return [X[name].to_numpy(dtype=np.float64, na_value=np.nan) for name in features]


def distinct_sample(X: pd.DataFrame, features: list[str], seed: int, size: int = SAMPLE_SIZE) -> SeedSample:
    """The sample of the module docstring, from a pandas frame."""
    columns = feature_columns(X, features)
    hashes = row_hashes(columns, seed)
    first, counts = _smallest_distinct(hashes, size)
    values = np.column_stack([column[first] for column in columns]) if len(first) else np.empty((0, len(columns)))
    return SeedSample(values=values, weights=counts.astype(np.float64), positions=first)


def _smallest_distinct(hashes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """For the `size` smallest distinct hashes, in order: one row holding each, and how many
    rows hold it. Looks at the smallest rows first (a partition, O(rows)) and widens the
    window until it holds more than `size` distinct hashes or every row."""
    window = min(len(hashes), 2 * size)
    while True:
        if window >= len(hashes):
            candidates = np.arange(len(hashes))
        else:
            candidates = np.argpartition(hashes, window)[:window]
        distinct, first, counts = np.unique(hashes[candidates], return_index=True, return_counts=True)
        # Every row below the window's largest hash is in the window, so all counts but
        # that last hash's are whole; it is dropped unless the window is every row.
        whole = len(distinct) if window >= len(hashes) else len(distinct) - 1
        if whole >= size or window >= len(hashes):
            keep = min(whole, size)
            return candidates[first[:keep]], counts[:keep]
        window = min(len(hashes), window * 2)


def choose_seeds(sample: SeedSample, k: int, seed: int) -> np.ndarray:
    """k-means++ on the weighted sample: the positions in the sample of the k rows chosen.

    Raises:
        TrainingDataError: the sample holds fewer than k distinct rows.
    """
    from sklearn.cluster import kmeans_plusplus

    from brickyard.ml.errors import TrainingDataError

    if len(sample.values) < k:
        raise TrainingDataError(
            f"the features hold only {len(sample.values)} distinct rows; kmeans cannot make {k} clusters of them",
            hint="lower k, or add features that tell the rows apart",
        )
    values = sample.values
    weights = sample.weights
    present = ~np.isnan(values)
    total = np.where(present, weights[:, None], 0.0).sum(axis=0)
    mean = np.where(present, values * weights[:, None], 0.0).sum(axis=0) / np.where(total > 0, total, 1.0)
    centred = np.where(present, values - mean, 0.0)
    spread = np.sqrt((centred**2 * weights[:, None]).sum(axis=0) / np.where(total > 0, total, 1.0))
    standardized = np.ascontiguousarray(centred / np.where(spread > 0, spread, 1.0))
    _, chosen = kmeans_plusplus(standardized, k, sample_weight=weights, random_state=seed)
    return np.asarray(chosen)
