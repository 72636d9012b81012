"""`automl: true` and ensembles on real data (Titanic, scikit-learn's bundled breast-cancer
and diabetes sets): what a user sees on the leaderboard, the ensemble chosen only when it
scores better than the best trial, and the registered model (ensemble or not) scoring its
held-out rows as logged, scored by the `score` kind and refitted by `reproduce`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from ml_helpers import TITANIC_FEATURES, run_task, titanic_pipeline

from brickyard import Workspace
from brickyard.ml import tracking
from brickyard.ml.tuning import TAG_PARENT, load_leaderboard

pytestmark = pytest.mark.slow
CLASSIFIERS = {"logistic_regression", "lightgbm", "gradient_boosting", "extra_trees", "random_forest"}
REGRESSORS = {"ridge", "elastic_net", "lightgbm", "gradient_boosting", "extra_trees", "random_forest"}
TITANIC_RUN, CANCER_RUN, DIABETES_RUN = "20260101-000000-auto01", "20260101-000000-auto02", "20260101-000000-auto03"


def automl_task(table: str, label: str, **overrides: Any) -> dict[str, Any]:
    task = {"name": "tune", "kind": "tune", "table": table, "label": label, "automl": True, "folds": 3,
            "ensemble_size": 3}
    task.update(overrides)
    return task


def sklearn_table(ws: Workspace, name: str, loader: str) -> str:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader)(as_frame=True)
    frame = bunch.frame.rename(columns=lambda c: c.replace(" ", "_"))
    ws.lake.write(f"silver.{name}", frame)
    return f"silver.{name}"


@pytest.fixture(scope="module")
def runs(shared_ws: Workspace) -> dict[str, dict[str, Any]]:
    """Three automl tunes in one workspace: Titanic, breast cancer, diabetes."""
    ws = shared_ws
    done = {}
    titanic = automl_task("silver.titanic", "Survived", features=TITANIC_FEATURES, trials=7)
    done["titanic"] = dict(run_task(ws, titanic_pipeline(titanic), "tune", run_id=TITANIC_RUN).metrics.extra)
    cancer = automl_task(sklearn_table(ws, "breast_cancer", "load_breast_cancer"), "target", trials=6)
    done["cancer"] = dict(run_task(ws, titanic_pipeline(cancer, name="cancer"), "tune", run_id=CANCER_RUN).metrics.extra)
    diabetes = automl_task(sklearn_table(ws, "diabetes", "load_diabetes"), "target", trials=7, problem="regression")
    done["diabetes"] = dict(run_task(ws, titanic_pipeline(diabetes, name="diabetes"), "tune",
                                     run_id=DIABETES_RUN).metrics.extra)
    return done


def check_board(board: list[dict[str, Any]], families: set[str], better: Any) -> dict[str, Any]:
    """The leaderboard as a user reads it; returns the chosen row."""
    trials = [row for row in board if row["trial"] is not None]
    ensembles = {row["family"]: row for row in board if row["trial"] is None}
    assert {row["family"] for row in trials} == families  # each family's defaults ran first
    assert set(ensembles) == {"voting", "stacking"}
    complete = sorted((row for row in trials if row["state"] == "COMPLETE"), key=lambda r: r["value"],
                      reverse=better is max)
    top = []
    for row in complete:  # the top 3 distinct configurations
        if (row["family"], row["params"]) not in [(t["family"], t["params"]) for t in top]:
            top.append(row)
    for row in ensembles.values():
        assert row["state"] == "COMPLETE", row["error"]
        assert row["members"] == [t["trial"] for t in top[:3]]
        assert [m["estimator"] for m in row["params"]["members"]] == [t["family"] for t in top[:3]]
    [chosen] = [row for row in board if row["chosen"]]
    best_trial = complete[0]
    best_ensemble = better(ensembles.values(), key=lambda r: r["value"])
    if better(best_ensemble["value"], best_trial["value"]) == best_ensemble["value"] and \
            best_ensemble["value"] != best_trial["value"]:
        assert chosen is not best_trial and chosen["family"] == best_ensemble["family"]
    else:
        assert chosen["trial"] == best_trial["trial"]
    values = [row["value"] for row in board if row["state"] == "COMPLETE"]
    assert values == sorted(values, reverse=better is max)  # best first, ensembles ranked among trials
    assert [row["rank"] for row in board] == list(range(1, len(board) + 1))
    return chosen


def test_titanic_leaderboard_has_the_automl_families_and_both_ensembles(shared_ws: Workspace, runs: Any) -> None:
    _, board = load_leaderboard(shared_ws, TITANIC_RUN)
    chosen = check_board(board, CLASSIFIERS, max)
    first = sorted((row for row in board if row["trial"] is not None), key=lambda r: r["trial"])[:5]
    assert [row["family"] for row in first] == \
        ["logistic_regression", "lightgbm", "gradient_boosting", "extra_trees", "random_forest"]  # cheapest first
    assert first[0]["params"] == {"C": 1.0}
    assert runs["titanic"]["best_trial"]["family"] == chosen["family"]
    assert runs["titanic"]["best_trial"]["members"] == chosen["members"]


def test_classification_and_regression_pick_their_own_families(shared_ws: Workspace, runs: Any) -> None:
    _, cancer = load_leaderboard(shared_ws, CANCER_RUN)
    check_board(cancer, CLASSIFIERS, max)
    _, diabetes = load_leaderboard(shared_ws, DIABETES_RUN)
    chosen = check_board(diabetes, REGRESSORS, min)  # rmse: smaller is better
    assert diabetes[0]["metric"] == "rmse"
    assert runs["diabetes"]["best_trial"]["value"] == pytest.approx(chosen["value"])


def test_an_ensemble_is_chosen_only_when_it_scores_better(shared_ws: Workspace, runs: Any) -> None:
    """Across the three sets, every pick follows the rule (check_board), and the tune's
    registered model is what was picked: the run records the ensemble or the trial."""
    client = tracking.connect(shared_ws)
    picked = {}
    for name, run in (("titanic", TITANIC_RUN), ("cancer", CANCER_RUN), ("diabetes", DIABETES_RUN)):
        _, board = load_leaderboard(shared_ws, run)
        [chosen] = [row for row in board if row["chosen"]]
        record = json.loads(Path(client.download_artifacts(runs[name]["mlflow_run_id"],
                                                            "brickyard/train_spec.json")).read_text())
        assert record["spec"]["estimator"] == chosen["family"]
        assert record["spec"]["params"] == chosen["params"]
        tags = client.get_run(runs[name]["mlflow_run_id"]).data.tags
        expected = str(chosen["trial"]) if chosen["trial"] is not None else \
            f"{chosen['family']}:{','.join(map(str, chosen['members']))}"
        assert tags["brickyard.best_trial"] == expected
        picked[name] = "ensemble" if chosen["trial"] is None else "trial"
    # seeded studies, so the same every time: both outcomes are exercised (on diabetes the
    # voting ensemble scores an rmse of 56.09 against elastic net's 56.05)
    assert picked == {"titanic": "ensemble", "cancer": "ensemble", "diabetes": "trial"}


def test_ensembles_are_child_runs_with_their_score(shared_ws: Workspace, runs: Any) -> None:
    client = tracking.connect(shared_ws)
    parent = runs["titanic"]["mlflow_run_id"]
    experiment = client.get_experiment_by_name("titanic").experiment_id
    children = client.search_runs([experiment], filter_string=f"tags.`{TAG_PARENT}` = '{parent}' and "
                                                              f"tags.`brickyard.kind` = 'tune_ensemble'")
    _, board = load_leaderboard(shared_ws, TITANIC_RUN)
    by_run = {row["mlflow_run_id"]: row for row in board if row["trial"] is None}
    assert {child.info.run_id for child in children} == set(by_run)
    for child in children:
        row = by_run[child.info.run_id]
        assert child.data.metrics["roc_auc"] == pytest.approx(row["value"], abs=1e-12)
        assert child.data.params["members"] == ",".join(map(str, row["members"]))
        assert child.info.status == "FINISHED"


@pytest.mark.parametrize(("name", "table", "label", "metric"), [
    ("titanic", "silver.titanic", "Survived", "roc_auc"),
    ("cancer", "silver.breast_cancer", "target", "roc_auc"),
    ("diabetes", "silver.diabetes", "target", "rmse"),
])
def test_the_registered_model_scores_the_holdout_as_logged(
    shared_ws: Workspace, runs: Any, name: str, table: str, label: str, metric: str
) -> None:
    import mlflow.sklearn
    from sklearn.metrics import mean_squared_error, roc_auc_score
    from sklearn.model_selection import train_test_split

    tracking.connect(shared_ws)
    run = runs[name]
    model = mlflow.sklearn.load_model(f"models:/{run['model_name']}/{run['model_version']}")
    frame = shared_ws.lake.read(table).to_pandas()
    y = frame[label].to_numpy()
    rows = np.arange(len(frame))
    classification = metric == "roc_auc"
    _, test = train_test_split(rows, test_size=0.2, random_state=42, stratify=y if classification else None)
    X_test = frame.drop(columns=[label]).iloc[np.sort(test)]
    truth = y[np.sort(test)]
    if classification:
        found = roc_auc_score(truth, model.predict_proba(X_test)[:, 1])
    else:
        found = float(np.sqrt(mean_squared_error(truth, model.predict(X_test))))
    assert found == pytest.approx(run["metrics"][metric], abs=1e-9)


def test_reproduce_refits_the_chosen_ensemble_to_the_same_metrics(shared_ws: Workspace, runs: Any) -> None:
    from brickyard.ml.reproduce import reproduce

    assert runs["titanic"]["best_trial"]["family"] == "voting"  # the tune registered an ensemble
    [reproduction] = reproduce(shared_ws, TITANIC_RUN)
    assert reproduction.mlflow_run_id == runs["titanic"]["mlflow_run_id"]
    assert reproduction.matches, [(c.metric, c.logged, c.reproduced) for c in reproduction.checks]
    assert {check.metric for check in reproduction.checks} >= {"roc_auc", "accuracy"}


def test_an_ensemble_model_scores_and_reproduces(ml_ws: Workspace) -> None:
    """`voting` and `stacking` as train estimators: registered, scored by the score kind,
    refitted to the same metrics by reproduce, with the members' packages as requirements."""
    import mlflow

    from brickyard.ml.reproduce import reproduce

    members = [{"estimator": "logistic_regression", "params": {"C": 0.5}},
               {"estimator": "lightgbm", "params": {"n_estimators": 50}}]
    for number, (kind, run_id) in enumerate((("voting", "20260101-000000-ens001"),
                                             ("stacking", "20260101-000000-ens002")), start=1):
        train = {"name": "train", "kind": "train", "table": "silver.titanic", "label": "Survived",
                 "features": TITANIC_FEATURES, "estimator": kind, "params": {"members": members}}
        extra = run_task(ml_ws, titanic_pipeline(train), "train", run_id=run_id).metrics.extra
        assert extra["model_version"] == number
        score = {"name": "score", "kind": "score", "model": f"titanic/{number}", "source": {"table": "silver.titanic"},
                 "target": f"gold.{kind}_predictions", "keys": ["PassengerId"]}
        run_task(ml_ws, titanic_pipeline(score), "score", run_id=run_id)
        scored = ml_ws.lake.read(f"gold.{kind}_predictions").to_pandas()
        assert len(scored) == 891 and set(scored["prediction"].unique()) <= {0, 1}
        [reproduction] = reproduce(ml_ws, run_id)
        assert reproduction.matches, [(c.metric, c.logged, c.reproduced) for c in reproduction.checks]
        requirements = Path(mlflow.artifacts.download_artifacts(
            f"runs:/{extra['mlflow_run_id']}/model/requirements.txt")).read_text()
        assert "lightgbm==" in requirements


def test_a_tight_timeout_skips_an_ensemble_out_loud(ml_ws: Workspace) -> None:
    """With timeout:, trials stop at 80% of it; an ensemble that would not finish in what is
    left is a SKIPPED row saying why, and the best trial is registered."""
    task = automl_task("silver.titanic", "Survived", features=TITANIC_FEATURES, timeout=2, ensemble_size=5)
    extra = run_task(ml_ws, titanic_pipeline(task), "tune", run_id="20260101-000000-tight1").metrics.extra
    _, board = load_leaderboard(ml_ws, "20260101-000000-tight1")
    ensembles = [row for row in board if row["trial"] is None]
    assert {row["family"] for row in ensembles} == {"voting", "stacking"}
    for row in ensembles:
        assert row["state"] in ("COMPLETE", "SKIPPED")
        if row["state"] == "SKIPPED":
            assert "left of timeout:" in row["error"] or "an ensemble needs 2" in row["error"]
    assert any(row["state"] == "SKIPPED" for row in ensembles)  # stacking costs 4x its members' trials
    assert extra["model_version"] == 1


def test_tune_show_prints_ensemble_rows_with_their_members(
    shared_ws: Workspace, runs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from brickyard.cli.app import main

    assert main(["tune", "show", TITANIC_RUN, "--workspace", str(shared_ws.root)]) == 0
    out = capsys.readouterr().out
    _, board = load_leaderboard(shared_ws, TITANIC_RUN)
    voting = next(row for row in board if row["family"] == "voting")
    assert f"ensemble of trials {voting['members']}" in out
    assert "* the registered result" in out


def test_validate_refuses_conflicting_automl_options(tmp_path: Path, titanic_frame: pd.DataFrame) -> None:
    from brickyard.runtime.validate import validate_workspace

    ws = Workspace.init(tmp_path / "ws")
    ws.lake.write("silver.titanic", titanic_frame)
    pipeline = ws.root / "pipelines" / "titanic.yaml"
    head = "tasks:\n  - name: tune\n    kind: tune\n    table: silver.titanic\n    label: Survived\n"
    pipeline.write_text(head + "    automl: true\n    estimators:\n      lightgbm:\n")
    [problem] = [str(p) for p in validate_workspace(ws)]
    assert "automl: true picks the families and their spaces itself, so it takes no estimators: (given: lightgbm)" \
        in problem
    assert problem.startswith("pipelines/titanic.yaml:")
    pipeline.write_text(head)
    [problem] = [str(p) for p in validate_workspace(ws)]
    assert "estimators: lists the families to search" in problem and "automl: true" in problem
    pipeline.write_text(head + "    estimators:\n      voting:\n")
    [problem] = [str(p) for p in validate_workspace(ws)]
    assert "voting is not searched as a family; set ensemble: true" in problem
    pipeline.write_text(head + "    automl: true\n    ensemble: false\n    trials: 3\n")
    assert validate_workspace(ws) == []
    train = ("tasks:\n  - name: train\n    kind: train\n    table: silver.titanic\n    label: Survived\n"
             "    estimator: voting\n    params:\n      members:\n        - {estimator: lightgbm}\n"
             "        - {estimator: random_forrest}\n")
    pipeline.write_text(train)
    [problem] = [str(p) for p in validate_workspace(ws)]
    assert "member 2: unknown estimator 'random_forrest' (hint: did you mean random_forest?)" in problem


def test_automl_scores_large_tables_on_a_holdout_unless_told(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from brickyard.ml.tune_spec import TuneSpec
    from brickyard.ml.tuning import AUTOML_HOLDOUT_ROWS, automl_validation

    log = logging.getLogger("test.automl")
    automl = TuneSpec.model_validate({"table": "silver.big", "label": "y", "automl": True})
    with caplog.at_level(logging.INFO):
        assert automl_validation(automl, AUTOML_HOLDOUT_ROWS, log).validation == "holdout"
    assert "trials are scored on a 20% holdout instead of 5-fold cv (set validation: cv to keep cv)" in caplog.text
    assert automl_validation(automl, AUTOML_HOLDOUT_ROWS - 1, log).validation == "cv"
    told = TuneSpec.model_validate({"table": "silver.big", "label": "y", "automl": True, "validation": "cv"})
    assert automl_validation(told, 10 * AUTOML_HOLDOUT_ROWS, log).validation == "cv"
    searched = TuneSpec.model_validate({"table": "silver.big", "label": "y", "estimators": {"lightgbm": None}})
    assert automl_validation(searched, 10 * AUTOML_HOLDOUT_ROWS, log).validation == "cv"


def test_automl_leaves_out_a_family_whose_library_does_not_import_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from brickyard.ml.search_space import AUTOML_FAMILIES, automl_families

    monkeypatch.setitem(sys.modules, "lightgbm", None)  # installed or not, `import lightgbm` fails
    families, left_out = automl_families("classification")
    assert "lightgbm" not in families
    assert [entry for entry in left_out if entry.startswith("lightgbm")] == ["lightgbm (import of lightgbm halted; None in sys.modules)"]
    assert set(families) | {entry.split(" ")[0] for entry in left_out} == set(AUTOML_FAMILIES["classification"])
