"""`evaluate` (metrics and plots on the version's run) and `promote` (the gate and aliases)."""

from __future__ import annotations

import json

import pytest
from ml_helpers import run_task, titanic_pipeline, train_task

from brickyard import Workspace
from brickyard.ml import gate, registry, tracking
from brickyard.ml.errors import GateRuleError, ModelNotFoundError

RULES = ["roc_auc >= champion.roc_auc + 0.01", "accuracy >= 0.6"]


def pipeline(features: list[str], rules: list[str] = RULES) -> dict:
    return titanic_pipeline(
        train_task(features=features),
        {"name": "evaluate", "kind": "evaluate", "depends_on": ["train"]},
        {"name": "promote", "kind": "promote", "depends_on": ["evaluate"], "rules": rules},
    )


def test_evaluate_logs_metrics_and_plots_on_the_versions_run(ml_ws: Workspace) -> None:
    spec = pipeline(["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"])
    trained = run_task(ml_ws, spec, "train")
    evaluated = run_task(ml_ws, spec, "evaluate")

    extra = evaluated.metrics.extra
    assert extra["model_version"] == 1 and extra["mlflow_run_id"] == trained.metrics.extra["mlflow_run_id"]
    assert set(extra["metrics"]) == {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}
    assert extra["metrics"] == pytest.approx(trained.metrics.extra["metrics"], abs=1e-12)
    assert evaluated.metrics.reads == {"silver.titanic": 0} and evaluated.metrics.rows_in == 179
    client = tracking.connect(ml_ws)
    files = {item.path: item.file_size for item in client.list_artifacts(extra["mlflow_run_id"], "evaluation")}
    assert set(files) == {
        "evaluation/roc_curve.png", "evaluation/precision_recall_curve.png", "evaluation/confusion_matrix.png",
    }
    assert all(size > 1000 for size in files.values())
    assert client.get_model_version("titanic", "1").tags["brickyard.evaluated_at"]


def test_evaluate_regression_and_an_explicit_version(ml_ws: Workspace) -> None:
    spec = titanic_pipeline(
        train_task(label="Fare", features=["Pclass", "Sex", "Age"], estimator="linear_regression", model_name="fares"),
        {"name": "evaluate", "kind": "evaluate", "model": "fares", "version": "latest"},
    )
    run_task(ml_ws, spec, "train", run_id="20260101-000000-000001")
    evaluated = run_task(ml_ws, spec, "evaluate", run_id="20260101-000000-000002")
    assert set(evaluated.metrics.extra["metrics"]) == {"rmse", "mae", "r2"}
    assert evaluated.metrics.extra["artifacts"] == ["evaluation/predicted_vs_actual.png"]


def test_evaluate_finds_only_the_version_this_run_trained(ml_ws: Workspace) -> None:
    spec = pipeline(["Fare"])
    run_task(ml_ws, spec, "train", run_id="20260101-000000-000001")
    with pytest.raises(ModelNotFoundError, match="no version of model 'titanic' was trained in run"):
        run_task(ml_ws, spec, "evaluate", run_id="20260101-000000-000002")


def test_promotion_first_champion_then_challenger_then_better_champion(ml_ws: Workspace) -> None:
    client = tracking.connect(ml_ws)

    def cycle(features: list[str], run_id: str) -> dict:
        spec = pipeline(features)
        for task in ("train", "evaluate"):
            run_task(ml_ws, spec, task, run_id=run_id)
        return run_task(ml_ws, spec, "promote", run_id=run_id).metrics.extra

    first = cycle(["Fare"], "20260101-000000-000001")
    assert first["decision"] == "promoted" and first["model_version"] == 1
    skipped, absolute = first["rules"]
    assert skipped["skipped"] and skipped["detail"] == "skipped: no champion yet" and skipped["champion"] is None
    assert absolute["passed"] and absolute["threshold"] == 0.6 and absolute["candidate"] > 0.6
    assert client.get_registered_model("titanic").aliases == {"champion": 1}

    worse = cycle(["Parch"], "20260101-000000-000002")
    assert worse["decision"] == "rejected" and worse["passed"] is False
    rule = worse["rules"][0]
    assert rule["passed"] is False and rule["champion"] == pytest.approx(first["rules"][0]["candidate"])
    assert rule["threshold"] == pytest.approx(rule["champion"] + 0.01)
    assert client.get_registered_model("titanic").aliases == {"champion": 1, "challenger": 2}
    tags = client.get_model_version("titanic", "2").tags
    assert tags["brickyard.gate.decision"] == "rejected"
    recorded = json.loads(tags["brickyard.gate.rule.0"])
    assert recorded["metric"] == "roc_auc" and recorded["passed"] is False and recorded["threshold"] == rule["threshold"]

    better = cycle(["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"], "20260101-000000-000003")
    assert better["decision"] == "promoted" and better["champion_version_before"] == 1
    assert all(rule["passed"] for rule in better["rules"])
    aliases = client.get_registered_model("titanic").aliases
    assert aliases == {"champion": 3, "previous_champion": 1, "challenger": 2}
    assert [int(v.version) for v in registry.versions(client, "titanic")] == [3, 2, 1]  # the old champion is kept
    assert client.get_model_version("titanic", "3").tags["brickyard.gate.champion_before"] == "1"


def test_force_promotes_a_failing_version_and_records_it(ml_ws: Workspace) -> None:
    spec = pipeline(["Fare"])
    run_task(ml_ws, spec, "train")
    client = tracking.connect(ml_ws)
    result = gate.promote(client, "titanic", 1, ["accuracy >= 0.99"], force=True)
    assert result.decision == "forced" and not result.gate.passed
    tags = client.get_model_version("titanic", "1").tags
    assert tags["brickyard.gate.decision"] == "forced" and tags["brickyard.gate.forced"] == "true"
    assert client.get_registered_model("titanic").aliases == {"champion": 1}


def test_fail_on_reject_fails_the_task(ml_ws: Workspace) -> None:
    spec = titanic_pipeline(
        train_task(features=["Fare"]),
        {"name": "promote", "kind": "promote", "depends_on": ["train"], "rules": ["accuracy >= 0.99"], "fail_on_reject": True},
    )
    run_task(ml_ws, spec, "train")
    with pytest.raises(Exception, match="failed the gate and became challenger"):
        run_task(ml_ws, spec, "promote")


@pytest.mark.parametrize(
    ("rule", "kind", "greater", "expected"),
    [
        ("accuracy >= 0.75", "absolute", True, {"threshold": 0.75}),
        ("log_loss <= 0.5", "absolute", False, {"threshold": 0.5}),
        ("roc_auc >= champion.roc_auc + 0.01", "champion", True, {"min_absolute_change": 0.01}),
        ("rmse <= champion.rmse - 0.5", "champion", False, {"min_absolute_change": 0.5}),
        ("f1 >= champion.f1 * 1.02", "champion", True, {"min_relative_change": pytest.approx(0.02)}),
        ("roc_auc >= champion.roc_auc", "champion", True, {"min_relative_change": 0.0}),
    ],
)
def test_rules_translate_to_mlflow_metric_thresholds(rule: str, kind: str, greater: bool, expected: dict) -> None:
    from mlflow.models import MetricThreshold

    parsed = gate.parse_rule(rule)
    assert parsed.kind == kind and parsed.greater_is_better is greater
    threshold, baseline = parsed.threshold(0.8 if kind == "champion" else None)
    assert isinstance(threshold, MetricThreshold) and threshold.greater_is_better is greater
    for attribute, value in expected.items():
        assert getattr(threshold, attribute) == value
    assert baseline == (0.8 if kind == "champion" else None)


def test_a_tolerance_rule_checks_against_the_lowered_bound() -> None:
    parsed = gate.parse_rule("roc_auc >= champion.roc_auc - 0.02")
    threshold, baseline = parsed.threshold(0.8)
    assert threshold.min_relative_change == 0.0 and baseline == pytest.approx(0.78)


@pytest.mark.parametrize(
    ("rule", "needle"),
    [
        ("accuracy > 0.7", "use >= (greater is better)"),
        ("accuracy >= champion.roc_auc", "compares accuracy with champion.roc_auc"),
        ("accuracy is good", "does not parse"),
    ],
)
def test_bad_rules_are_clear_errors(rule: str, needle: str) -> None:
    with pytest.raises(GateRuleError) as caught:
        gate.parse_rule(rule)
    assert needle in str(caught.value)


def test_a_rule_on_a_metric_that_was_never_logged_names_the_close_one(ml_ws: Workspace) -> None:
    run_task(ml_ws, pipeline(["Fare"]), "train")
    with pytest.raises(GateRuleError, match="did you mean roc_auc"):
        gate.check(tracking.connect(ml_ws), "titanic", 1, ["roc_acu >= 0.5"])


def test_rules_are_found_in_the_pipeline_whose_promote_task_names_the_model(ml_ws: Workspace) -> None:
    (ml_ws.root / "pipelines" / "titanic.yaml").write_text(
        "tasks:\n"
        "  - {name: train, kind: train, table: silver.titanic, label: Survived, model_name: survival}\n"
        "  - name: promote\n    kind: promote\n    depends_on: [train]\n"
        "    rules: ['accuracy >= 0.7', 'roc_auc >= champion.roc_auc']\n"
    )
    assert gate.rules_for_model(ml_ws, "survival") == (
        ["accuracy >= 0.7", "roc_auc >= champion.roc_auc"], "pipelines/titanic.yaml: promote",
    )
    assert gate.rules_for_model(ml_ws, "titanic") == ([], None)
