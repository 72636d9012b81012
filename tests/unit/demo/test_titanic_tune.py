"""The demo's Titanic pipeline tunes logistic regression, random forest and LightGBM with a
small budget, says what budget it used and how to run the full one, prints the top of
the leaderboard, and evaluates, promotes and scores the tuned model."""

from __future__ import annotations

from typing import Any

import pytest
from test_demo_runs import Recorder

from brickyard import Workspace
from brickyard.demo.context import DemoContext
from brickyard.demo.pipelines import install_workspace_files, run_titanic
from brickyard.demo.runner import land_raw_files
from brickyard.ml.tuning import load_leaderboard

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Recorder, DemoContext]:
    workspace = Workspace.init(tmp_path_factory.mktemp("titanic") / "ws")
    recorder = Recorder()
    context = DemoContext(workspace, rows=100, seed=42, report=recorder)
    land_raw_files(context)
    install_workspace_files(context)
    run_titanic(context)
    return workspace, recorder, context


def test_the_demo_says_the_budget_and_how_to_run_the_full_search(demo: Any) -> None:
    _, recorder, _ = demo
    [line] = [text for text in recorder.said if text.startswith("  Tuned ")]
    assert line == ("  Tuned logistic regression, random forest and LightGBM (trials: 10, folds: 3; 10 trials in the "
                    "study; the full search: timeout: 60 in place of trials: in pipelines/titanic.yaml). Top trials:")


def test_the_demo_prints_the_top_of_the_leaderboard(demo: Any) -> None:
    workspace, recorder, context = demo
    _, board = load_leaderboard(workspace, context.runs["titanic"])
    assert {row["family"] for row in board} <= {"logistic_regression", "random_forest", "lightgbm"}
    [(columns, rows)] = [(c, r) for c, r in recorder.tables if c[:3] == ["rank", "trial", "family"]]
    assert columns == ["rank", "trial", "family", "roc_auc", "seconds"]
    assert [(row[0], row[1], row[2], row[3]) for row in rows] == \
        [(r["rank"], str(r["trial"]), r["family"], round(r["value"], 4)) for r in board[:5]]


def test_the_tuned_model_is_what_evaluate_promote_and_score_used(demo: Any) -> None:
    from brickyard.ml.registry import champion
    from brickyard.ml.tracking import connect

    workspace, _, _ = demo
    client = connect(workspace)
    current = champion(client, "titanic")
    assert current is not None and int(current.version) == 2  # 1: the train task's logistic regression
    tags = client.get_run(current.run_id).data.tags
    assert tags["brickyard.kind"] == "tune" and tags["brickyard.task"] == "tune"
    assert len(workspace.lake.read("gold.titanic_predictions").to_pandas()) == 891
