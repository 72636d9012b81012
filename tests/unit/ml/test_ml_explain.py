"""SHAP explanations, fairness by group and robustness, each checked against an independent
reference on the real Titanic data: SHAP values add up to the model's own output, the
fairness numbers match a brute-force pandas groupby, noise 0 drops nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brickyard.ml import explanations, fairness, robustness
from brickyard.ml.explanations import importance_rank_change
from brickyard.ml.preprocess import fit_pipeline
from brickyard.ml.spec import ExplainSpec, FairnessSpec, RobustnessSpec

NUMERIC = ["Pclass", "Age", "SibSp", "Parch", "Fare"]
CATEGORICAL = ["Sex", "Embarked"]


@pytest.fixture(scope="module")
def split(titanic_frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    from sklearn.model_selection import train_test_split

    X, y = titanic_frame[NUMERIC + CATEGORICAL], titanic_frame["Survived"]
    x_train, x_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=7, stratify=y)
    return x_train, y_train, x_test.reset_index(drop=True), y_test.reset_index(drop=True)


def fitted(estimator: object, split: tuple) -> object:
    x_train, y_train, _, _ = split
    return fit_pipeline(estimator, x_train, y_train, NUMERIC, CATEGORICAL)


def model_output(model: object, Z: np.ndarray, output: str) -> np.ndarray:
    """What SHAP values must add up to, computed by the estimator itself."""
    estimator = model[-1]
    if output.startswith("probability"):
        return estimator.predict_proba(Z)[:, 1]
    return estimator.decision_function(Z)


@pytest.mark.parametrize(
    ("make", "explainer", "output"),
    [
        (lambda: __import__("sklearn.linear_model").linear_model.LogisticRegression(max_iter=1000), "linear", "log-odds of class 1"),
        (lambda: __import__("sklearn.ensemble").ensemble.RandomForestClassifier(50, random_state=0), "tree", "probability of class 1"),
        (lambda: __import__("sklearn.ensemble").ensemble.HistGradientBoostingClassifier(max_iter=50), "tree", "log-odds of class 1"),
        (lambda: __import__("sklearn.neighbors").neighbors.KNeighborsClassifier(), "permutation", "probability of class 1"),
    ],
    ids=["logistic", "random_forest", "hist_gradient_boosting", "knn"],
)
def test_shap_values_add_up_to_the_prediction_minus_the_expected_value(split, make, explainer, output) -> None:
    model = fitted(make(), split)
    X = split[2]
    spec = ExplainSpec(max_rows=40, budget_seconds=60)
    explained = explanations.explain(model, X, "classification", spec)
    assert explained.explainer == explainer and explained.outputs == [output]
    Z = model[:-1].transform(X)[explanations._sample(len(X), 40, spec.seed)][: explained.rows_explained]
    np.testing.assert_allclose(
        explained.values[:, :, 0].sum(axis=1) + explained.base_values[:, 0], model_output(model, Z, output), atol=1e-8
    )
    assert explained.sampled and explained.rows_available == len(X) == 223


def test_one_hot_columns_are_summed_back_into_their_source_column(split) -> None:
    from sklearn.ensemble import RandomForestClassifier

    model = fitted(RandomForestClassifier(30, random_state=0), split)
    explained = explanations.explain(model, split[2], "classification", ExplainSpec())
    names, grouped = explained.by_feature()
    assert sorted(names) == sorted(NUMERIC + CATEGORICAL) and explained.grouping == "source columns"
    sex_columns = [i for i, name in enumerate(explained.columns) if name.startswith("Sex_")]
    assert len(sex_columns) == 2
    by_hand = np.abs(explained.values[:, sex_columns, 0].sum(axis=1)).mean()
    assert explained.importance()["Sex"] == pytest.approx(by_hand)
    np.testing.assert_allclose(grouped.sum(axis=1), explained.values.sum(axis=1))


def test_the_tree_path_matches_a_plain_tree_explainer_and_forked_workers_agree(split) -> None:
    import shap
    from sklearn.ensemble import RandomForestClassifier

    model = fitted(RandomForestClassifier(30, random_state=0), split)
    X = split[2]
    serial = explanations.explain(model, X, "classification", ExplainSpec())
    forked = explanations.explain(model, X, "classification", ExplainSpec(n_jobs=2, max_rows=1000))
    plain = shap.TreeExplainer(model[-1])(model[:-1].transform(X)).values[:, :, 1]
    np.testing.assert_allclose(serial.values[:, :, 0], plain, atol=1e-12)
    np.testing.assert_allclose(forked.values[:, :, 0], plain, atol=1e-12)


def test_the_permutation_explainer_stops_at_its_budget_and_says_so(split) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    model = fitted(KNeighborsClassifier(), split)
    explained = explanations.explain(
        model, split[2], "classification", ExplainSpec(explainer="permutation", budget_seconds=0.01)
    )
    assert explained.stopped_by_budget and 1 <= explained.rows_explained < 223
    assert any("stopped by the 0.01 s budget" in note for note in explained.notes)
    assert explained.summary()["stopped_by_budget"] is True


def test_an_explainer_that_does_not_fit_the_model_is_refused(split) -> None:
    from sklearn.linear_model import LogisticRegression

    model = fitted(LogisticRegression(max_iter=1000), split)
    with pytest.raises(ValueError, match="explainer: tree does not read a LogisticRegression"):
        explanations.explain(model, split[2], "classification", ExplainSpec(explainer="tree"))


def test_importance_rank_change_on_hand_worked_examples() -> None:
    # ranks (1, 2, 3) against (1, 3, 2): sum d^2 = 2, rho = 1 - 6*2/(3*(9-1)) = 0.5, change (1-0.5)/2
    assert importance_rank_change({"A": 3, "B": 2, "C": 1}, {"A": 3, "B": 1, "C": 2}) == pytest.approx(0.25)
    assert importance_rank_change({"A": 3, "B": 2, "C": 1}, {"A": 30, "B": 20, "C": 10}) == pytest.approx(0.0)
    assert importance_rank_change({"A": 3, "B": 2, "C": 1}, {"A": 1, "B": 2, "C": 3}) == pytest.approx(1.0)
    # C missing from the first counts as importance 0: ranks (2, 3, 1) against (1, 2, 3),
    # d = (1, 1, -2), sum d^2 = 6, rho = 1 - 36/24 = -0.5, change 0.75
    assert importance_rank_change({"A": 1, "B": 2}, {"A": 1, "B": 2, "C": 3}) == pytest.approx(0.75)
    assert importance_rank_change({"A": 1, "B": 1}, {"A": 1, "B": 1}) == 0.0
    assert importance_rank_change({"A": 1, "B": 1}, {"A": 1, "B": 2}) == 0.5


def brute_force(frame: pd.DataFrame, by: list[str]) -> tuple[pd.DataFrame, float, float]:
    """Group rates with a pandas groupby, and the two differences from them (a rate with
    nothing to measure, e.g. the recall of a group with no positives, is 0 as in fairlearn)."""
    rows = []
    for key, group in frame.groupby(by):
        positives, negatives = group[group.truth == 1], group[group.truth == 0]
        rows.append({
            "key": tuple(str(k) for k in (key if isinstance(key, tuple) else (key,))),
            "rows": len(group),
            "selection_rate": (group.predicted == 1).mean(),
            "accuracy": (group.predicted == group.truth).mean(),
            "recall": (positives.predicted == 1).mean() if len(positives) else 0.0,
            "false_positive_rate": (negatives.predicted == 1).mean() if len(negatives) else 0.0,
        })
    table = pd.DataFrame(rows).set_index("key")
    dp = table.selection_rate.max() - table.selection_rate.min()
    eo = max(table.recall.max() - table.recall.min(), table.false_positive_rate.max() - table.false_positive_rate.min())
    return table, float(dp), float(eo)


@pytest.mark.parametrize("by", [["Sex"], ["Sex", "Pclass"]])
def test_fairness_numbers_match_a_brute_force_groupby(split, titanic_frame: pd.DataFrame, by: list[str]) -> None:
    from sklearn.linear_model import LogisticRegression

    model = fitted(LogisticRegression(max_iter=1000), split)
    X, y = split[2], split[3]
    predicted = model.predict(X)
    assessed = fairness.assess(y, predicted, X[by], [0, 1], FairnessSpec(bootstrap=200, seed=3))
    frame = X[by].assign(truth=y.to_numpy(), predicted=predicted)
    table, dp, eo = brute_force(frame, by)
    assert assessed.differences["demographic_parity_difference"] == pytest.approx(dp)
    assert assessed.differences["equalized_odds_difference"] == pytest.approx(eo)
    assert len(assessed.groups) == len(table)
    for group in assessed.groups:
        expected = table.loc[[tuple(str(group[name]) for name in by)]].iloc[0]
        assert group["rows"] == expected["rows"]
        for metric in fairness.GROUP_METRICS:
            assert group[metric] == pytest.approx(expected[metric]), (group, metric)
            low, high = group[f"{metric}_ci_low"], group[f"{metric}_ci_high"]
            assert low <= high
    low, high = assessed.intervals["demographic_parity_difference"]
    assert low <= dp <= high
    again = fairness.assess(y, predicted, X[by], [0, 1], FairnessSpec(bootstrap=200, seed=3))
    other = fairness.assess(y, predicted, X[by], [0, 1], FairnessSpec(bootstrap=200, seed=4))
    assert again.intervals == assessed.intervals and again.groups == assessed.groups
    assert other.groups != assessed.groups  # another seed, other resamples
    logged = assessed.metrics()
    assert logged["demographic_parity_difference_ci_low"] == low
    if by == ["Sex"]:
        assert logged["fairness.Sex.female.selection_rate"] == pytest.approx(table.loc[[("female",)]].iloc[0].selection_rate)


def test_fairness_needs_two_classes() -> None:
    with pytest.raises(ValueError, match="needs a binary classifier; this one has 3 classes"):
        fairness.assess([0, 1, 2], [0, 1, 2], pd.DataFrame({"g": ["a", "b", "a"]}), [0, 1, 2], FairnessSpec())


def test_robustness_drop_is_zero_without_noise_and_seeded_with_it(split) -> None:
    from sklearn.ensemble import RandomForestClassifier

    from brickyard.ml.metrics import score

    model = fitted(RandomForestClassifier(50, random_state=0), split)
    X, y = split[2], split[3]
    clean = score(model, X, y, "classification")
    nothing = robustness.check(model, X, y, "classification", NUMERIC, RobustnessSpec(noise=0, missing=0), clean)
    assert nothing.metric == "roc_auc" and nothing.drop_noise == 0.0 and nothing.drop_missing == 0.0 and nothing.drop == 0.0
    noisy = RobustnessSpec(noise=0.5, missing=0.3, seed=5)
    first = robustness.check(model, X, y, "classification", NUMERIC, noisy, clean)
    second = robustness.check(model, X, y, "classification", NUMERIC, noisy, clean)
    assert first.drop_noise == second.drop_noise and first.drop_missing == second.drop_missing
    assert first.drop_noise != 0 and first.drop_missing > 0
    assert first.metrics()["robustness_drop"] == max(first.drop_noise, first.drop_missing)
    accuracy = robustness.check(model, X, y, "classification", NUMERIC, RobustnessSpec(metric="accuracy"), clean)
    assert accuracy.metric == "accuracy" and accuracy.clean == clean["accuracy"]


def test_missing_values_keep_each_column_kind(split) -> None:
    X = split[2]
    holed = robustness.with_missing(X, 0.5, np.random.default_rng(0))
    assert holed["Sex"].isna().sum() > 50 and set(holed["Sex"].dropna()) <= {"male", "female"}
    assert holed["Pclass"].isna().sum() > 50 and holed["Pclass"].dtype.kind == "f"
    assert robustness.with_noise(X, NUMERIC, 0.0, np.random.default_rng(0))[NUMERIC].equals(X[NUMERIC].astype(float))


def test_a_pipeline_that_cannot_be_mapped_back_is_explained_per_transformed_column_and_says_so(split) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    x_train, y_train, X, _ = split
    columns = ["Pclass", "SibSp", "Parch"]
    model = Pipeline([
        ("poly", PolynomialFeatures(degree=2)), ("scale", StandardScaler()), ("model", LogisticRegression(max_iter=1000))
    ]).fit(x_train[columns], y_train)
    explained = explanations.explain(model, X[columns], "classification", ExplainSpec())
    assert explained.grouping == "transformed columns" and explained.sources is None
    assert len(explained.importance()) == 10  # 1 + 3 + 6 polynomial terms
    assert any("could not be mapped back to source columns" in note for note in explained.notes)
    assert explained.summary()["grouping"] == "transformed columns"
