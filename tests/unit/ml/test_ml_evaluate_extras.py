"""The evaluate task's SHAP, fairness and robustness options on a registered version, and
the gate's rules over them (importance_rank_change against the current champion)."""

from __future__ import annotations

import json

import pytest
from ml_helpers import TITANIC_FEATURES, run_task, titanic_pipeline, train_task

from brickyard import Workspace
from brickyard.core.pipeline import PipelineSpec
from brickyard.ml import gate, tracking
from brickyard.ml.errors import ModelError
from brickyard.tasks import get_kind

EXTRAS = {"explain": True, "sensitive_features": ["Sex"], "robustness": True}
RULES = [
    "roc_auc >= champion.roc_auc + 0.01",
    "demographic_parity_difference <= 0.9",
    "robustness_drop <= 0.05",
    "importance_rank_change <= 0.3",
]


def pipeline(features: list[str], estimator: str = "logistic_regression", **evaluate: object) -> dict:
    return titanic_pipeline(
        train_task(features=features, estimator=estimator),
        {"name": "evaluate", "kind": "evaluate", "depends_on": ["train"], **(evaluate or EXTRAS)},
        {"name": "promote", "kind": "promote", "depends_on": ["evaluate"], "rules": RULES},
    )


def cycle(ws: Workspace, spec: dict, run_id: str) -> tuple[dict, dict]:
    for task in ("train",):
        run_task(ws, spec, task, run_id=run_id)
    evaluated = run_task(ws, spec, "evaluate", run_id=run_id).metrics.extra
    return evaluated, run_task(ws, spec, "promote", run_id=run_id).metrics.extra


def test_evaluate_logs_shap_fairness_and_robustness_on_the_versions_run(ml_ws: Workspace) -> None:
    evaluated, promoted = cycle(ml_ws, pipeline(TITANIC_FEATURES), "20260101-000000-000001")
    metrics = evaluated["metrics"]
    assert {"demographic_parity_difference", "equalized_odds_difference", "robustness_drop",
            "fairness.Sex.female.selection_rate", "shap_importance.Sex"} <= set(metrics)
    assert "importance_rank_change" not in metrics  # no champion yet, and the output says so
    assert evaluated["explain"]["importance_rank_change"]["detail"] == "no champion yet: importance_rank_change not measured"
    assert evaluated["explain"]["explainer"] == "linear" and evaluated["explain"]["rows_explained"] == 179
    assert sorted(evaluated["explain"]["mean_abs_shap"]) == sorted(TITANIC_FEATURES)
    client = tracking.connect(ml_ws)
    files = {item.path for item in client.list_artifacts(evaluated["mlflow_run_id"], "evaluation")}
    assert {"evaluation/shap_summary.png", "evaluation/shap_importance.png", "evaluation/shap_importance.json",
            "evaluation/fairness_by_group.csv", "evaluation/fairness.json", "evaluation/robustness.json"} <= files
    logged = client.get_run(evaluated["mlflow_run_id"]).data.metrics
    assert logged["demographic_parity_difference"] == metrics["demographic_parity_difference"]
    assert logged["shap_importance.Sex"] == evaluated["explain"]["mean_abs_shap"]["Sex"]

    assert promoted["decision"] == "promoted"
    rules = {rule["rule"]: rule for rule in promoted["rules"]}
    assert rules["importance_rank_change <= 0.3"]["skipped"] and rules["roc_auc >= champion.roc_auc + 0.01"]["skipped"]
    parity = rules["demographic_parity_difference <= 0.9"]
    assert parity["passed"] and parity["candidate"] == metrics["demographic_parity_difference"] and parity["threshold"] == 0.9
    decision, outcomes = gate.recorded(client, "titanic", 1)
    assert decision == "promoted" and [o.rule for o in outcomes] == RULES
    assert outcomes[2].candidate == metrics["robustness_drop"]


def test_importance_rank_change_is_measured_against_the_champion(ml_ws: Workspace) -> None:
    cycle(ml_ws, pipeline(TITANIC_FEATURES), "20260101-000000-000001")
    # the same features, another model: Sex and Pclass lead both, the tail moves
    evaluated, promoted = cycle(ml_ws, pipeline(TITANIC_FEATURES, "random_forest"), "20260101-000000-000002")
    from brickyard.ml.explanations import importance_rank_change

    client = tracking.connect(ml_ws)
    first = json.loads(json.dumps(client.get_run(client.get_model_version("titanic", "1").run_id).data.metrics))
    champion_importance = {k.removeprefix("shap_importance."): v for k, v in first.items() if k.startswith("shap_importance.")}
    expected = importance_rank_change(evaluated["explain"]["mean_abs_shap"], champion_importance)
    assert evaluated["metrics"]["importance_rank_change"] == pytest.approx(expected)
    assert evaluated["explain"]["importance_rank_change"]["champion_version"] == 1
    rule = {r["rule"]: r for r in promoted["rules"]}["importance_rank_change <= 0.3"]
    assert not rule["skipped"] and rule["candidate"] == pytest.approx(expected) and rule["threshold"] == 0.3
    assert rule["passed"] == (expected <= 0.3) and "against the champion, version 1" in rule["detail"]


def test_a_version_evaluated_without_explain_fails_the_rank_rule_saying_why(ml_ws: Workspace) -> None:
    cycle(ml_ws, pipeline(TITANIC_FEATURES), "20260101-000000-000001")
    spec = pipeline(TITANIC_FEATURES, sensitive_features=["Sex"], robustness=True)
    _, promoted = cycle(ml_ws, spec, "20260101-000000-000002")
    rule = {r["rule"]: r for r in promoted["rules"]}["importance_rank_change <= 0.3"]
    assert rule["passed"] is False and rule["detail"] == (
        "version 2 has no SHAP importances: evaluate with explain: to measure it"
    )
    assert promoted["decision"] == "rejected"


def test_sensitive_features_not_among_the_model_features_come_from_the_training_rows(ml_ws: Workspace) -> None:
    spec = pipeline(["Pclass", "Age", "Fare"], sensitive_features=["Sex"])
    run_task(ml_ws, spec, "train")
    extra = run_task(ml_ws, spec, "evaluate").metrics.extra
    assert extra["fairness"]["sensitive_features"] == ["Sex"] and 0 <= extra["metrics"]["demographic_parity_difference"] <= 1


def test_an_unknown_sensitive_column_and_a_regression_are_refused_at_run_time(ml_ws: Workspace) -> None:
    spec = pipeline(["Pclass", "Age"], sensitive_features=["Gender"])
    run_task(ml_ws, spec, "train")
    with pytest.raises(ModelError, match="sensitive_features: column 'Gender' is not in the rows") as caught:
        run_task(ml_ws, spec, "evaluate")
    assert "Sex" in (caught.value.hint or "")  # the hint lists the columns
    fares = titanic_pipeline(
        train_task(label="Fare", features=["Pclass", "Age"], estimator="linear_regression", model_name="fares"),
        {"name": "evaluate", "kind": "evaluate", "depends_on": ["train"], "sensitive_features": ["Sex"]},
        name="fares",
    )
    run_task(ml_ws, fares, "train")
    with pytest.raises(ModelError, match="fairness needs a classifier; model fares version 1 does regression"):
        run_task(ml_ws, fares, "evaluate")


def test_regression_models_are_explained_and_checked_for_robustness(ml_ws: Workspace) -> None:
    fares = titanic_pipeline(
        train_task(label="Fare", features=["Pclass", "Age", "Sex"], estimator="random_forest", model_name="fares",
                   params={"n_estimators": 20}),
        {"name": "evaluate", "kind": "evaluate", "depends_on": ["train"], "explain": True,
         "robustness": {"noise": 0, "missing": 0}},
        name="fares",
    )
    run_task(ml_ws, fares, "train")
    extra = run_task(ml_ws, fares, "evaluate").metrics.extra
    assert extra["explain"]["explainer"] == "tree" and extra["explain"]["outputs"] == ["prediction"]
    assert extra["robustness"]["metric"] == "r2" and extra["metrics"]["robustness_drop"] == 0.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fairness": {"bootstrap": 10}}, "fairness: needs sensitive_features:"),
        ({"robustness": {"metric": "auc"}}, "unknown metric 'auc'"),
        ({"explain": {"explainer": "deep"}}, "explainer"),
        ({"explain": {"budget_seconds": 0}}, "budget_seconds"),
        ({"sensitive_features": ["Sex", "Sex"]}, "names a column twice"),
    ],
)
def test_bad_options_are_refused_with_their_key(options: dict, message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        get_kind("evaluate").Options.model_validate(options)


def test_on_and_off_switches() -> None:
    Options = get_kind("evaluate").Options
    on = Options.model_validate({"explain": True, "robustness": True, "sensitive_features": "Sex"})
    assert on.explain is not None and on.explain.max_rows == 2000 and on.robustness is not None
    assert on.sensitive_features == ["Sex"]
    off = Options.model_validate({"explain": False})
    assert off.explain is None and off.robustness is None
    # promote does not take evaluate's options
    spec = PipelineSpec.model_validate(titanic_pipeline({"name": "p", "kind": "promote", "explain": True}))
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="explain"):
        get_kind("promote").Options.model_validate(spec.task("p").options)
