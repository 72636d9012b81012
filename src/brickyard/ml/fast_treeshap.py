"""Exact path-dependent TreeSHAP for scikit-learn tree models, in parallel numba.

The values are those of `shap.TreeExplainer(model).shap_values(X)` (its default
`feature_perturbation="tree_path_dependent"`), for decision trees, random and extra-trees
forests (classifiers and regressors), `GradientBoostingRegressor` and a binary
`GradientBoostingClassifier` (log-odds). Anything else raises `UnsupportedModel`, and the
caller falls back to shap.

How: a leaf's part in feature k's value depends on the row only through the set F of the
leaf's path features the row agrees with (it follows every split on that feature along the
path). With z_j the fraction of the training cover that reaches the leaf through the splits
on feature j, d the number of distinct path features and w(s) = s!(d-s-1)!/d!:

    phi_k += v * (1[k in F] - z_k) * P(F - {k}) * prod(z_j, j not in F and j != k)
    P(A) = sum over S in A of w(|S|) * prod(z_j, j in A - S)

A leaf with few path features keeps this for every F in a table of 2^d x d numbers, so a
row costs one comparison per split and d look-ups per leaf; a leaf with many path features
is computed per row from the polynomial prod(1 + z_j t) over F (O(d^2)).

>>> explained = shap_values(forest, X)                                    # doctest: +SKIP
>>> explained.values.shape, explained.expected_value, explained.unit      # doctest: +SKIP
((1000, 12, 2), array([0.61, 0.39]), 'probability')
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numba import prange

MAX_PATH_FEATURES = 62  # a row's agreement with a leaf's path features is a bit mask in an int64
TABLE_MAX_FEATURES = 12  # larger leaves are computed per row (a table would take 2^d x d numbers)
GROUP_TABLE_NUMBERS = 1 << 20  # tables built at a time (8 MB): trees are explained in groups
CHUNK_ROWS = 256  # rows a thread takes at a time (their masks and values stay in its caches)

_LOCK = threading.Lock()  # numba's workqueue threading layer runs one parallel call at a time


class UnsupportedModel(ValueError):
    """The model is not one this module reads; the message says why."""


@dataclass(frozen=True)
class TreeShap:
    """`values[row, column, output]`, adding up with `expected_value[output]` to the model's
    raw output in `unit` ("probability", "log-odds" or "prediction")."""

    values: np.ndarray
    expected_value: np.ndarray
    unit: str


def _jit(parallel: bool) -> Callable[[Any], Any]:
    """numba.njit with the compiled code cached on disk; without the cache (and a warning)
    where numba finds no folder it may write to."""

    def decorate(function: Any) -> Any:
        try:
            return numba.njit(cache=True, parallel=parallel)(function)
        except RuntimeError as exc:  # numba: "cannot cache function ... no locator available"
            warnings.warn(f"fast_treeshap: numba cannot cache its compiled code ({exc})", stacklevel=2)
            return numba.njit(parallel=parallel)(function)

    return decorate


@dataclass(frozen=True)
class _Forest:
    """The trees of a model, concatenated: nodes (indices local to their tree) and leaves."""

    node_start: np.ndarray
    node_count: np.ndarray
    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    default_left: np.ndarray
    slot: np.ndarray  # a split's place among the distinct features of its path
    leaf_start: np.ndarray  # per tree, into the leaf arrays
    leaf_node: np.ndarray
    leaf_d: np.ndarray
    path_start: np.ndarray  # per leaf, into path_feature / path_z
    path_feature: np.ndarray
    path_z: np.ndarray
    leaf_value: np.ndarray  # [leaf, output]
    last_class_derived: bool  # class probabilities add up to the same in every leaf: the last is -(the others)
    expected_value: np.ndarray
    unit: str


def shap_values(estimator: Any, X: Any, threads: int = 0) -> TreeShap:
    """TreeSHAP values of `estimator` on the rows of `X`, on `threads` numba threads
    (0: numba's default, one per CPU).

    Raises:
        UnsupportedModel: not a model this module reads (the caller can use shap instead).
    """
    forest = _read(estimator)
    rows = np.ascontiguousarray(np.asarray(X, dtype=np.float32))  # as scikit-learn compares
    if rows.ndim != 2:
        raise ValueError(f"fast_treeshap: rows must be a 2-d array, not {rows.ndim}-d")
    computed = forest.leaf_value.shape[1]
    values = np.zeros((rows.shape[0], rows.shape[1], computed + (1 if forest.last_class_derived else 0)))
    with _parallel(threads):
        _explain(forest, rows, values)
    if forest.last_class_derived:
        values[:, :, -1] = -values[:, :, :-1].sum(axis=2)
    return TreeShap(values, forest.expected_value, forest.unit)


@contextmanager
def _parallel(threads: int) -> Iterator[None]:
    """One parallel section at a time, on numba's workqueue layer unless the user chose one."""
    with _LOCK:
        config: Any = numba.config  # its settings are set from the environment at import
        if "NUMBA_THREADING_LAYER" not in os.environ:
            config.THREADING_LAYER = "workqueue"  # always installed; read at the first parallel call
        most = config.NUMBA_NUM_THREADS
        numba.set_num_threads(max(1, min(threads or most, most)))
        yield


def _explain(forest: _Forest, rows: np.ndarray, values: np.ndarray) -> None:
    """Adds each group of trees' values: its leaves' tables first, then the rows."""
    d = forest.leaf_d
    tabulated = (d <= TABLE_MAX_FEATURES) & ((1 << d) < max(len(rows), 1) * np.maximum(d, 1))
    sizes = np.where(tabulated, (1 << d) * d, 0)
    per_tree = np.add.reduceat(sizes, forest.leaf_start[:-1]) if len(sizes) else np.zeros(0, dtype=np.int64)
    chunk = int(min(CHUNK_ROWS, max(16, len(rows) // (4 * numba.get_num_threads()) or 16)))
    tree, trees = 0, len(forest.node_start)
    while tree < trees:
        end, total = tree + 1, int(per_tree[tree])
        while end < trees and total + per_tree[end] <= GROUP_TABLE_NUMBERS:
            total += int(per_tree[end])
            end += 1
        first, last = forest.leaf_start[tree], forest.leaf_start[end]
        offsets = np.full(last - first, -1, dtype=np.int64)
        chosen = np.flatnonzero(tabulated[first:last])
        group_sizes = sizes[first:last][chosen]
        offsets[chosen] = np.cumsum(group_sizes) - group_sizes
        tables = np.empty(int(group_sizes.sum()))
        _build_tables(chosen + first, d, forest.path_start, forest.path_z, offsets[chosen], tables)
        _apply_trees(
            rows,
            tree,
            end,
            chunk,
            forest.node_start,
            forest.node_count,
            forest.left,
            forest.right,
            forest.feature,
            forest.threshold,
            forest.default_left,
            forest.slot,
            forest.leaf_start,
            forest.leaf_node,
            d,
            forest.path_start,
            forest.path_feature,
            forest.path_z,
            forest.leaf_value,
            offsets,
            tables,
            values,
        )
        tree = end


def _read(estimator: Any) -> _Forest:
    trees, scale, normalize, offset, unit = _model(estimator)
    parts = []
    for tree in trees:
        value = np.asarray(tree.value, dtype=np.float64).reshape(tree.node_count, -1)
        if normalize:
            sums = value.sum(axis=1, keepdims=True)
            value = np.divide(value, sums, out=np.zeros_like(value), where=sums != 0)
        parts.append((tree, value * scale))
    counts = np.array([tree.node_count for tree, _ in parts], dtype=np.int64)
    left = np.concatenate([tree.children_left for tree, _ in parts]).astype(np.int64)
    right = np.concatenate([tree.children_right for tree, _ in parts]).astype(np.int64)
    feature = np.concatenate([tree.feature for tree, _ in parts]).astype(np.int64)
    weight = np.concatenate([tree.weighted_n_node_samples for tree, _ in parts]).astype(np.float64)
    missing_left = [
        np.asarray(getattr(tree, "missing_go_to_left", np.ones(tree.node_count)), dtype=bool) for tree, _ in parts
    ]
    node_start = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    slot, leaf_node, leaf_tree, leaf_d, path_start, path_feature, path_z, widest = _paths(
        left, right, feature, weight, node_start, counts
    )
    if widest > MAX_PATH_FEATURES:
        raise UnsupportedModel(f"a leaf's path splits on {widest} distinct features (at most {MAX_PATH_FEATURES})")
    value = np.concatenate([value for _, value in parts])
    leaf_start = np.searchsorted(leaf_tree, np.arange(len(parts) + 1)).astype(np.int64)
    derived = normalize and value.shape[1] > 1
    leaves = leaf_node + node_start[leaf_tree]
    leaf_value = value[leaves]
    # the mean of the leaves over the training cover (a boosted tree's inner nodes may hold other values)
    cover = weight[leaves] / weight[node_start[leaf_tree]]
    expected = (leaf_value * cover[:, None]).sum(axis=0) + offset
    return _Forest(
        node_start,
        counts,
        left,
        right,
        feature,
        np.concatenate([tree.threshold for tree, _ in parts]).astype(np.float64),
        np.concatenate(missing_left).astype(np.uint8),
        slot,
        leaf_start,
        leaf_node,
        leaf_d,
        path_start,
        path_feature,
        path_z,
        np.ascontiguousarray(leaf_value[:, :-1] if derived else leaf_value),
        derived,
        expected,
        unit,
    )


def _model(estimator: Any) -> tuple[list[Any], float, bool, np.ndarray, str]:
    """(trees, scale of their values, whether the values are class counts to normalize,
    base offset per output, unit) as shap reads the model."""
    from scipy.special import logit
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    name = type(estimator).__name__
    if not hasattr(estimator, "n_features_in_"):
        raise UnsupportedModel(f"a {name} that is not fitted, or not a scikit-learn tree model")
    classifier = isinstance(estimator, DecisionTreeClassifier | RandomForestClassifier | ExtraTreesClassifier)
    if classifier and getattr(estimator, "n_outputs_", 1) > 1:
        raise UnsupportedModel(f"a multi-output {name}")
    zero = np.zeros(1)
    if isinstance(estimator, DecisionTreeClassifier | DecisionTreeRegressor):
        return [estimator.tree_], 1.0, classifier, zero, "probability" if classifier else "prediction"
    if isinstance(
        estimator, RandomForestClassifier | ExtraTreesClassifier | RandomForestRegressor | ExtraTreesRegressor
    ):
        trees = [member.tree_ for member in estimator.estimators_]
        return trees, 1.0 / len(trees), classifier, zero, "probability" if classifier else "prediction"
    if isinstance(estimator, GradientBoostingRegressor):
        if not isinstance(estimator.init_, DummyRegressor):
            raise UnsupportedModel(f"a GradientBoostingRegressor whose init is a {type(estimator.init_).__name__}")
        offset = np.asarray(estimator.init_.constant_, dtype=np.float64).reshape(-1)[:1]
        return (
            [member.tree_ for member in estimator.estimators_[:, 0]],
            estimator.learning_rate,
            False,
            offset,
            "prediction",
        )
    if isinstance(estimator, GradientBoostingClassifier):
        if estimator.estimators_.shape[1] > 1:
            raise UnsupportedModel(f"a GradientBoostingClassifier of {estimator.estimators_.shape[1]} classes")
        if estimator.loss != "log_loss" or not isinstance(estimator.init_, DummyClassifier):
            raise UnsupportedModel("a GradientBoostingClassifier with another loss than log_loss or a custom init")
        offset = np.array([logit(estimator.init_.class_prior_[1])], dtype=np.float64)
        return (
            [member.tree_ for member in estimator.estimators_[:, 0]],
            estimator.learning_rate,
            False,
            offset,
            "log-odds",
        )
    raise UnsupportedModel(f"a {name} (fast TreeSHAP reads scikit-learn decision trees, forests and gradient boosting)")


@_jit(parallel=False)
def _paths(
    left: np.ndarray,
    right: np.ndarray,
    feature: np.ndarray,
    weight: np.ndarray,
    node_start: np.ndarray,
    node_count: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Each split's slot (the place of its feature among the distinct features of the path
    from the root, repeats sharing the first one's), and each leaf's path features with
    their zero fractions z (products of the cover ratios of the splits on them)."""
    total = len(left)
    slot = np.full(total, -1, dtype=np.int64)
    parent = np.full(total, -1, dtype=np.int64)
    distinct = np.zeros(total, dtype=np.int64)  # distinct features on the path above the node
    leaves = 0
    widest = 0
    for t in range(len(node_start)):
        base = node_start[t]
        for n in range(node_count[t]):  # scikit-learn numbers a child after its parent
            g = base + n
            if left[g] < 0:
                leaves += 1
                widest = max(widest, distinct[g])
                continue
            parent[base + left[g]] = n
            parent[base + right[g]] = n
            found = -1
            a = parent[g]
            while a >= 0:
                if feature[base + a] == feature[g]:
                    found = slot[base + a]
                a = parent[base + a]
            slot[g] = found if found >= 0 else distinct[g]
            grown = distinct[g] + (1 if found < 0 else 0)
            distinct[base + left[g]] = grown
            distinct[base + right[g]] = grown
    leaf_node = np.empty(leaves, dtype=np.int64)
    leaf_tree = np.empty(leaves, dtype=np.int64)
    leaf_d = np.empty(leaves, dtype=np.int64)
    path_start = np.empty(leaves + 1, dtype=np.int64)
    path_start[0] = 0
    i = 0
    for t in range(len(node_start)):
        for n in range(node_count[t]):
            if left[node_start[t] + n] < 0:
                leaf_node[i] = n
                leaf_tree[i] = t
                leaf_d[i] = distinct[node_start[t] + n]
                path_start[i + 1] = path_start[i] + leaf_d[i]
                i += 1
    path_feature = np.empty(path_start[leaves], dtype=np.int64)
    path_z = np.ones(path_start[leaves])
    for i in range(leaves):
        base = node_start[leaf_tree[i]]
        child = leaf_node[i]
        a = parent[base + child]
        while a >= 0:
            k = path_start[i] + slot[base + a]
            path_feature[k] = feature[base + a]
            path_z[k] *= weight[base + child] / weight[base + a]
            child = a
            a = parent[base + a]
    return slot, leaf_node, leaf_tree, leaf_d, path_start, path_feature, path_z, widest


@_jit(parallel=False)
def _weights(d: int) -> np.ndarray:
    """Shapley weights w(s) = s!(d-s-1)!/d! for s = 0..d-1."""
    w = np.empty(max(d, 1))
    w[0] = 1.0 / max(d, 1)
    for s in range(d - 1):
        w[s + 1] = w[s] * (s + 1) / (d - s - 1)
    return w


@_jit(parallel=True)
def _build_tables(
    leaves: np.ndarray,
    leaf_d: np.ndarray,
    path_start: np.ndarray,
    path_z: np.ndarray,
    offsets: np.ndarray,
    tables: np.ndarray,
) -> None:
    """For each leaf, the table [F, k] of its part in feature k's value per unit of leaf value."""
    for i in prange(len(leaves)):
        leaf = leaves[i]
        d = leaf_d[leaf]
        z = path_z[path_start[leaf] : path_start[leaf] + d]
        n = 1 << d
        inside = np.empty(n)  # prod(z_j, j in mask)
        count = np.zeros(n, dtype=np.int64)
        poly = np.zeros((n, d + 1))  # coefficients of prod(1 + z_j t, j in mask)
        inside[0] = 1.0
        poly[0, 0] = 1.0
        for k in range(d):
            for m in range(1 << k, 1 << (k + 1)):
                prev = m - (1 << k)
                inside[m] = inside[prev] * z[k]
                count[m] = count[prev] + 1
                poly[m, 0] = 1.0
                for c in range(1, count[m] + 1):
                    poly[m, c] = poly[prev, c] + z[k] * poly[prev, c - 1]
        w = _weights(d)
        shares = np.zeros(n)  # P(mask)
        for m in range(n - 1):
            a = count[m]
            total = 0.0
            for c in range(a + 1):
                total += w[a - c] * poly[m, c]
            shares[m] = total
        full = n - 1
        out = offsets[i]
        for f in range(n):
            for k in range(d):
                bit = 1 << k
                if f & bit:
                    tables[out + f * d + k] = (1.0 - z[k]) * shares[f ^ bit] * inside[full ^ f]
                else:
                    tables[out + f * d + k] = -z[k] * shares[f] * inside[full ^ f ^ bit]


@_jit(parallel=False)
def _direct(
    agree: int,
    d: int,
    z: np.ndarray,
    features: np.ndarray,
    value: np.ndarray,
    phi_row: np.ndarray,
    poly: np.ndarray,
    less: np.ndarray,
    w: np.ndarray,
) -> None:
    """One leaf's part in one row's values, from the polynomial over the agreed features."""
    a = 0
    poly[0] = 1.0
    outside = 1.0
    for j in range(d):
        if agree & (1 << j):
            a += 1
            poly[a] = 0.0
            for c in range(a, 0, -1):
                poly[c] += z[j] * poly[c - 1]
        else:
            outside *= z[j]
    share_all = 0.0
    for c in range(a + 1):
        share_all += w[a - c] * poly[c]
    for k in range(d):
        if agree & (1 << k):
            less[0] = 1.0
            share = w[a - 1]
            for c in range(1, a):
                less[c] = poly[c] - z[k] * less[c - 1]
                share += w[a - 1 - c] * less[c]
            part = (1.0 - z[k]) * share * outside
        else:
            rest = 1.0
            for j in range(d):
                if j != k and not agree & (1 << j):
                    rest *= z[j]
            part = -z[k] * share_all * rest
        for o in range(len(value)):
            phi_row[features[k], o] += part * value[o]


@_jit(parallel=True)
def _apply_trees(
    rows: np.ndarray,
    first: int,
    end: int,
    chunk: int,
    node_start: np.ndarray,
    node_count: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    default_left: np.ndarray,
    slot: np.ndarray,
    leaf_start: np.ndarray,
    leaf_node: np.ndarray,
    leaf_d: np.ndarray,
    path_start: np.ndarray,
    path_feature: np.ndarray,
    path_z: np.ndarray,
    leaf_value: np.ndarray,
    offsets: np.ndarray,
    tables: np.ndarray,
    values: np.ndarray,
) -> None:
    """Adds trees first..end-1's values to `values`, a chunk of rows per thread."""
    n_rows = rows.shape[0]
    outputs = leaf_value.shape[1]
    widest_tree = 1
    for t in range(first, end):
        widest_tree = max(widest_tree, node_count[t])
    group_leaf = leaf_start[first]
    for c in prange((n_rows + chunk - 1) // chunk):
        r0 = c * chunk
        count = min(chunk, n_rows - r0)
        masks = np.empty((widest_tree, count), dtype=np.int64)  # features each row agrees with, per node
        poly = np.empty(MAX_PATH_FEATURES + 2)
        less = np.empty(MAX_PATH_FEATURES + 2)
        for t in range(first, end):
            base = node_start[t]
            masks[0, :] = -1
            for n in range(node_count[t]):
                g = base + n
                lo = left[g]
                if lo < 0:
                    continue
                hi = right[g]
                f = feature[g]
                cut = threshold[g]
                clear = ~(np.int64(1) << slot[g])
                missing_left = default_left[g] != 0
                for r in range(count):
                    x = rows[r0 + r, f]
                    goes_left = missing_left if np.isnan(x) else x <= cut
                    m = masks[n, r]
                    masks[lo, r] = m if goes_left else m & clear
                    masks[hi, r] = m & clear if goes_left else m
            for leaf in range(leaf_start[t], leaf_start[t + 1]):
                d = leaf_d[leaf]
                node = leaf_node[leaf]
                full = (np.int64(1) << d) - 1
                p0 = path_start[leaf]
                value = leaf_value[leaf]
                out = offsets[leaf - group_leaf]
                if out >= 0:
                    if outputs == 1:
                        v = value[0]
                        for r in range(count):
                            cell = out + (masks[node, r] & full) * d
                            for k in range(d):
                                values[r0 + r, path_feature[p0 + k], 0] += tables[cell + k] * v
                    else:
                        for r in range(count):
                            cell = out + (masks[node, r] & full) * d
                            for k in range(d):
                                part = tables[cell + k]
                                f = path_feature[p0 + k]
                                for o in range(outputs):
                                    values[r0 + r, f, o] += part * value[o]
                else:
                    w = _weights(d)
                    z = path_z[p0 : p0 + d]
                    features = path_feature[p0 : p0 + d]
                    for r in range(count):
                        _direct(masks[node, r] & full, d, z, features, value, values[r0 + r], poly, less, w)
