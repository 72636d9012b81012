"""The `tune` kind against the real thing: an Optuna study on the Titanic table, trials as
MLflow child runs, a leaderboard, a resumed study, the best model registered and scored,
and the best trial's metric checked against scikit-learn by hand under the same folds."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from ml_helpers import TITANIC_FEATURES, run_task, titanic_pipeline

from brickyard import Workspace
from brickyard.ml import tracking
from brickyard.ml.errors import TuningError
from brickyard.ml.tuning import STOPPED, TAG_ERROR, TAG_PARENT, TAG_TRIAL_STATE, load_leaderboard

FIRST_RUN, SECOND_RUN = "20260101-000000-tune01", "20260101-000000-tune02"
SPACE = {"logistic_regression": None, "random_forest": {"n_estimators": {"int": [10, 30]}, "max_depth": {"int": [2, 6]}}}


def tune_task(**overrides: Any) -> dict[str, Any]:
    task = {"name": "tune", "kind": "tune", "table": "silver.titanic", "label": "Survived",
            "features": TITANIC_FEATURES, "estimators": SPACE, "trials": 4, "folds": 3}
    task.update(overrides)
    return task


@pytest.fixture(scope="module")
def tuned(shared_ws: Workspace) -> dict[str, Any]:
    context = run_task(shared_ws, titanic_pipeline(tune_task()), "tune", run_id=FIRST_RUN)
    return dict(context.metrics.extra)


def child_runs(ws: Workspace, parent: str) -> list[Any]:
    client = tracking.connect(ws)
    experiment = client.get_experiment_by_name("titanic").experiment_id
    return list(client.search_runs([experiment], filter_string=f"tags.`{TAG_PARENT}` = '{parent}'", max_results=100))


def test_every_trial_is_a_child_run_and_the_leaderboard_agrees(shared_ws: Workspace, tuned: dict[str, Any]) -> None:
    run_id, board = load_leaderboard(shared_ws, FIRST_RUN)
    assert run_id == tuned["mlflow_run_id"]
    assert sorted(row["trial"] for row in board) == [0, 1, 2, 3]
    children = {run.info.run_id: run for run in child_runs(shared_ws, run_id)}
    assert len(children) == 4
    for row in board:
        child = children[row["mlflow_run_id"]]
        assert child.data.tags[TAG_TRIAL_STATE] == row["state"]
        assert child.data.params["estimator"] == row["family"]
        assert {k: child.data.params[k] for k in row["params"]} == {k: str(v) for k, v in row["params"].items()}
        if row["state"] == "COMPLETE":
            assert child.info.status == "FINISHED"
            assert child.data.metrics["roc_auc"] == pytest.approx(row["value"], abs=1e-12)
        assert child.data.metrics["seconds"] > 0
    assert board[0]["state"] == "COMPLETE" and board[0]["trial"] == tuned["best_trial"]["trial"]
    complete = [row["value"] for row in board if row["state"] == "COMPLETE"]
    assert complete == sorted(complete, reverse=True)  # roc_auc: best first
    parent = tracking.connect(shared_ws).get_run(run_id)
    assert parent.data.tags["brickyard.kind"] == "tune"
    assert parent.data.metrics["best_cv_roc_auc"] == pytest.approx(board[0]["value"])
    assert parent.data.metrics["trials_run"] == 4
    assert parent.data.metrics["cpu_seconds"] > 0


def test_cost_per_experiment_is_cpu_seconds_at_the_workspace_rate(shared_ws: Workspace, tuned: dict[str, Any]) -> None:
    rate = shared_ws.config.pricing.cpu_hour
    assert rate == 0.05  # Workspace.init's default pricing
    run_id = tuned["mlflow_run_id"]
    for child in child_runs(shared_ws, run_id):
        assert child.data.metrics["cost"] == pytest.approx(child.data.metrics["cpu_seconds"] / 3600 * rate)
    parent = tracking.connect(shared_ws).get_run(run_id).data.metrics
    assert parent["cost"] == pytest.approx(parent["cpu_seconds"] / 3600 * rate)
    assert tuned["cost"] == pytest.approx(parent["cost"])
    assert parent["cpu_seconds"] >= sum(c.data.metrics["cpu_seconds"] for c in child_runs(shared_ws, run_id))


def test_best_trial_metric_equals_sklearn_by_hand_under_the_same_folds(shared_ws: Workspace, tuned: dict[str, Any]) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    best = tuned["best_trial"]
    frame = shared_ws.lake.read("silver.titanic").to_pandas()
    X, y = frame[TITANIC_FEATURES], frame["Survived"].to_numpy()
    rows = np.arange(len(frame))
    train_rows, _ = train_test_split(rows, test_size=0.2, random_state=42, stratify=y)
    train_rows = np.sort(train_rows)
    numeric = ["Pclass", "Age", "SibSp", "Parch", "Fare"]
    categorical = ["Sex", "Embarked"]
    scores = []
    for fit, valid in StratifiedKFold(3, shuffle=True, random_state=42).split(train_rows, y[train_rows]):
        if best["family"] == "logistic_regression":
            estimator: Any = LogisticRegression(max_iter=1000, random_state=42, **best["params"])
        else:
            estimator = RandomForestClassifier(random_state=42, **best["params"])
        model = make_pipeline(ColumnTransformer([
            ("n", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("c", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                OneHotEncoder(handle_unknown="ignore", sparse_output=False)), categorical),
        ]), estimator)
        model.fit(X.iloc[train_rows[fit]], y[train_rows[fit]])
        scores.append(roc_auc_score(y[train_rows[valid]], model.predict_proba(X.iloc[train_rows[valid]])[:, 1]))
    assert best["value"] == pytest.approx(float(np.mean(scores)), abs=1e-9)


def test_the_registered_best_model_scores_with_the_score_kind(shared_ws: Workspace, tuned: dict[str, Any]) -> None:
    score = {"name": "score", "kind": "score", "model": f"titanic/{tuned['model_version']}",
             "source": {"table": "silver.titanic"}, "target": "gold.tuned_predictions", "keys": ["PassengerId"]}
    run_task(shared_ws, titanic_pipeline(score), "score", run_id=FIRST_RUN)
    scored = shared_ws.lake.read("gold.tuned_predictions").to_pandas()
    assert len(scored) == 891
    assert set(scored["prediction"].unique()) <= {0, 1}


def test_reproduce_refits_the_tuned_model_to_the_same_metrics(shared_ws: Workspace, tuned: dict[str, Any]) -> None:
    from brickyard.ml.reproduce import reproduce

    [reproduction] = reproduce(shared_ws, FIRST_RUN)
    assert reproduction.mlflow_run_id == tuned["mlflow_run_id"]
    assert reproduction.matches
    assert {check.metric for check in reproduction.checks} >= {"roc_auc", "accuracy"}


def test_a_second_run_resumes_the_study_in_two_processes(shared_ws: Workspace, tuned: dict[str, Any]) -> None:
    context = run_task(shared_ws, titanic_pipeline(tune_task(trials=2, parallel=2)), "tune", run_id=SECOND_RUN)
    extra = context.metrics.extra
    assert extra["study"] == tuned["study"] == "titanic.tune"
    assert extra["trials"]["run"] == 2 and extra["trials"]["in_study"] == 6
    run_id, board = load_leaderboard(shared_ws, SECOND_RUN)
    assert sorted(row["trial"] for row in board) == [0, 1, 2, 3, 4, 5]
    assert {row["run"] for row in board if row["trial"] >= 4} == {SECOND_RUN}
    assert len(child_runs(shared_ws, run_id)) == 2
    assert extra["model_version"] == tuned["model_version"] + 1


def test_changed_settings_do_not_resume_silently(shared_ws: Workspace, tuned: dict[str, Any]) -> None:
    with pytest.raises(TuningError, match=r"other settings \(changed: folds\)") as caught:
        run_task(shared_ws, titanic_pipeline(tune_task(folds=4, trials=1)), "tune", run_id="20260101-000000-tune03")
    assert "resume: false" in str(caught.value.hint)


def test_failed_trials_are_recorded_and_no_completed_trial_fails_the_task(ml_ws: Workspace) -> None:
    task = tune_task(estimators={"random_forest": {"max_depth": {"int": [-3, -1]}}}, trials=2, pruner="none")
    optuna_log, handler = io.StringIO(), logging.StreamHandler()
    handler.setStream(optuna_log)
    logging.getLogger("optuna").addHandler(handler)  # beside Optuna's own, which writes to stderr
    try:
        with pytest.raises(TuningError, match="no trial completed: 2 ran within the budget .*, 0 pruned, 2 failed; "
                                              "trial 0 failed: .*max_depth"):
            run_task(ml_ws, titanic_pipeline(task), "tune", run_id=FIRST_RUN)
    finally:
        logging.getLogger("optuna").removeHandler(handler)
    logged = optuna_log.getvalue()  # one line per failed trial, no traceback
    assert "Trial 0 failed with parameters" in logged and "max_depth" in logged
    assert "Traceback" not in logged and "failed with value None" not in logged
    client = tracking.connect(ml_ws)
    experiment = client.get_experiment_by_name("titanic").experiment_id
    parent = client.search_runs([experiment], filter_string="tags.`brickyard.kind` = 'tune'")[0]
    assert parent.info.status == "FAILED"
    children = child_runs(ml_ws, parent.info.run_id)
    assert [c.info.status for c in children] == ["FAILED", "FAILED"]
    assert all("max_depth" in c.data.tags[TAG_ERROR] for c in children)
    _, board = load_leaderboard(ml_ws, FIRST_RUN)
    assert [row["state"] for row in board] == ["FAIL", "FAIL"]


def test_tune_show_prints_the_leaderboard(shared_ws: Workspace, tuned: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from brickyard.cli.app import main

    assert main(["tune", "show", FIRST_RUN, "--format", "json", "--workspace", str(shared_ws.root)]) == 0
    shown = json.loads(capsys.readouterr().out)
    _, board = load_leaderboard(shared_ws, FIRST_RUN)
    assert [(r["trial"], r["family"], r["state"], r["value"]) for r in shown] == \
        [(r["trial"], r["family"], r["state"], r["value"]) for r in board]


def test_validate_locates_an_unknown_family_a_bad_parameter_and_a_bad_space(
    tmp_path: Path, titanic_frame: pd.DataFrame
) -> None:
    from brickyard.runtime.validate import validate_workspace

    ws = Workspace.init(tmp_path / "ws")
    ws.lake.write("silver.titanic", titanic_frame)
    pipeline = ws.root / "pipelines" / "titanic.yaml"
    head = "tasks:\n  - name: tune\n    kind: tune\n    table: silver.titanic\n    label: Survived\n    estimators:\n"
    pipeline.write_text(head + "      random_forrest:\n      lightgbm:\n      random_forest:\n"
                        "        max_dept: {int: [2, 5]}\n    metric: auc\n")
    assert [str(p) for p in validate_workspace(ws)] == [
        "pipelines/titanic.yaml:7: task 'tune': unknown estimator 'random_forrest' (hint: did you mean random_forest?)",
        "pipelines/titanic.yaml:10: task 'tune': estimator 'random_forest' (RandomForestClassifier or "
        "RandomForestRegressor) takes no parameter 'max_dept' (hint: did you mean max_depth or max_features or max_leaf_nodes?)",
        "pipelines/titanic.yaml:11: task 'tune': metric 'auc' is not a metric tune can optimize "
        "(hint: did you mean roc_auc?)",
    ]
    pipeline.write_text(head + "      random_forest:\n        max_depth: {int: [12, 2]}\n")
    [problem] = [str(p) for p in validate_workspace(ws)]
    assert problem.startswith("pipelines/titanic.yaml:8: tasks[0] (tune).estimators.random_forest.max_depth")
    assert "int: [12, 2] has its high bound below its low bound" in problem


def test_a_family_whose_library_does_not_import_fails_before_any_trial(
    ml_ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # `import lightgbm` raises ImportError
    task = tune_task(estimators={**SPACE, "lightgbm": None})
    with pytest.raises(TuningError, match=r"estimators: cannot import lightgbm \(.*lightgbm.*\): every trial of it would fail") as caught:
        run_task(ml_ws, titanic_pipeline(task), "tune", run_id=FIRST_RUN)
    assert "pip install 'brickyard[ml]'" in str(caught.value) and "take it out of estimators:" in str(caught.value)
    client = tracking.connect(ml_ws)
    experiment = client.get_experiment_by_name("titanic")
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{TAG_PARENT}` != ''") if experiment else []
    assert runs == []  # no trial ran


def test_a_trial_running_when_the_budget_ends_stops_after_its_fold(ml_ws: Workspace) -> None:
    task = tune_task(estimators={"random_forest": {"n_estimators": {"int": [1000, 1001]}}}, trials=None, timeout=1,
                     folds=5, pruner="none")
    with pytest.raises(TuningError, match=r"no trial completed: 1 ran within the budget \(at most 1 s\), 1 pruned, 0 failed"):
        run_task(ml_ws, titanic_pipeline(task), "tune", run_id=FIRST_RUN)
    _, board = load_leaderboard(ml_ws, FIRST_RUN)
    assert [(row["state"], row["error"]) for row in board] == [("PRUNED", STOPPED)]
    client = tracking.connect(ml_ws)
    experiment = client.get_experiment_by_name("titanic").experiment_id
    parent = client.search_runs([experiment], filter_string="tags.`brickyard.kind` = 'tune'")[0]
    [child] = child_runs(ml_ws, parent.info.run_id)
    folds_scored = client.get_metric_history(child.info.run_id, "roc_auc_fold")
    assert 1 <= len(folds_scored) < 5
    assert child.info.status == "KILLED" and child.data.tags[TAG_ERROR] == STOPPED
