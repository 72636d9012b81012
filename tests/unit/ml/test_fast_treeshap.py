"""brickyard.ml.fast_treeshap gives shap.TreeExplainer's values, element by element."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import shap
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from brickyard.ml import fast_treeshap
from brickyard.ml.explanations import explain
from brickyard.ml.spec import ExplainSpec


def _data(seed: int, rows: int = 300, columns: int = 6, classes: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, columns))
    X[:, 1] = np.round(X[:, 1])  # ties and few distinct values
    signal = X[:, 0] + X[:, 1] * X[:, -1] + np.sin(3 * X[:, -2]) + 0.3 * rng.normal(size=rows)
    if classes:
        return X, np.digitize(signal, np.quantile(signal, np.linspace(0, 1, classes + 1)[1:-1]))
    return X, signal


def _same_as_shap(model: Any, X: np.ndarray) -> None:
    ours = fast_treeshap.shap_values(model, X)
    explainer = shap.TreeExplainer(model)
    theirs = np.asarray(explainer.shap_values(X, check_additivity=False), dtype=np.float64)
    if theirs.ndim == 2:
        theirs = theirs[:, :, None]
    scale = max(1.0, float(np.abs(theirs).max()))
    np.testing.assert_allclose(ours.values, theirs, rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(ours.expected_value, np.atleast_1d(explainer.expected_value), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("depth", [2, 5, None])
def test_forests_match_shap(seed: int, depth: int | None) -> None:
    X, y = _data(seed)
    _same_as_shap(RandomForestRegressor(12, max_depth=depth, random_state=seed).fit(X, y), X[:80])
    X, labels = _data(seed, classes=2)
    _same_as_shap(RandomForestClassifier(12, max_depth=depth, random_state=seed).fit(X, labels), X[:80])
    X, labels = _data(seed, classes=3)
    _same_as_shap(ExtraTreesClassifier(12, max_depth=depth, random_state=seed).fit(X, labels), X[:80])


def test_sample_weights_max_features_and_no_bootstrap() -> None:
    X, labels = _data(3, classes=2)
    weights = np.random.default_rng(3).uniform(0.1, 5.0, len(X))
    forest = RandomForestClassifier(10, max_features=2, bootstrap=False, random_state=3)
    _same_as_shap(forest.fit(X, labels, sample_weight=weights), X[:60])
    X, y = _data(4)
    _same_as_shap(ExtraTreesRegressor(10, max_features=0.5, random_state=4).fit(X, y, sample_weight=weights), X[:60])


def test_repeated_features_on_a_path() -> None:
    X, y = _data(5, columns=2)  # two columns: every deep path splits on them again and again
    tree = DecisionTreeRegressor(max_depth=12, random_state=5).fit(X, y)
    assert fast_treeshap._read(tree).leaf_d.max() == 2
    _same_as_shap(tree, X[:100])
    X, labels = _data(5, columns=3, classes=4)
    _same_as_shap(DecisionTreeClassifier(random_state=5).fit(X, labels), X[:100])


def test_gradient_boosting_matches_shap() -> None:
    X, y = _data(6)
    _same_as_shap(GradientBoostingRegressor(n_estimators=30, max_depth=4, random_state=6).fit(X, y), X[:80])
    _same_as_shap(GradientBoostingRegressor(n_estimators=20, loss="absolute_error", random_state=6).fit(X, y), X[:80])
    X, labels = _data(6, classes=2)
    model = GradientBoostingClassifier(n_estimators=30, max_depth=3, subsample=0.8, random_state=6).fit(X, labels)
    _same_as_shap(model, X[:80])
    assert fast_treeshap.shap_values(model, X[:5]).unit == "log-odds"


def test_wide_leaves_are_computed_per_row() -> None:
    X, y = _data(7, rows=600, columns=16)
    forest = RandomForestRegressor(4, random_state=7).fit(X, y)
    assert fast_treeshap._read(forest).leaf_d.max() > fast_treeshap.TABLE_MAX_FEATURES
    _same_as_shap(forest, X[:40])


def test_missing_values_follow_the_trees_default() -> None:
    X, y = _data(8)
    X[np.random.default_rng(8).random(X.shape) < 0.1] = np.nan
    _same_as_shap(RandomForestRegressor(8, max_depth=6, random_state=8).fit(X, y), X[:80])


def test_unsupported_models_fall_back_to_shap_with_a_note() -> None:
    X, labels = _data(9, classes=3)
    with pytest.raises(fast_treeshap.UnsupportedModel, match="3 classes"):
        fast_treeshap.shap_values(GradientBoostingClassifier(n_estimators=5).fit(X, labels), X)
    X, labels = _data(9, classes=2)
    model = HistGradientBoostingClassifier(max_iter=10).fit(X, labels)
    with pytest.raises(fast_treeshap.UnsupportedModel, match="HistGradientBoostingClassifier"):
        fast_treeshap.shap_values(model, X)
    import pandas as pd

    frame = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    explained = explain(model, frame, "classification", ExplainSpec(explainer="tree", max_rows=50, plots=False))
    assert any("shap.TreeExplainer" in note and "HistGradientBoosting" in note for note in explained.notes)
    assert explained.values.shape == (50, X.shape[1], 1)
