"""`brickyard validate` as a user runs it: every mistake a run would find one at a time,
10 s in, reported at once, each at its file and line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import brickyard

from brickyard import Workspace

pytestmark = pytest.mark.e2e

DATA = Path(__file__).resolve().parents[2] / "src" / "brickyard" / "demo" / "data"


def test_validate_reports_ml_mistakes_at_once_and_passes_once_fixed(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    ws.lake.write("silver.titanic", pd.read_csv(DATA / "titanic.csv"))
    pipeline = ws.root / "pipelines" / "titanic.yaml"
    pipeline.write_text("""\
tasks:
  - name: prepare
    kind: transform
  - name: train
    kind: train
    depnds_on: [prepare]
    table: silver.titanic
    label: survived
    features: [Pclass, Sex, Fare]
    estimator: gradient_boosting
    params: {max_iters: 50}
  - name: promote
    kind: promote
    depends_on: [train]
    rules: ["f1_score >= 0.7"]
""")
    result = brickyard("validate", cwd=ws.root)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "pipelines/titanic.yaml:3: unknown task kind 'transform' (hint: known kinds: evaluate, expect, export, features, "
        "ingest, materialize, monitor, promote, python, score, sql, train, tune)",
        "pipelines/titanic.yaml:6: tasks[1] (train).depnds_on: unknown key (hint: did you mean depends_on or version?)",
        "pipelines/titanic.yaml:8: task 'train': label column 'survived' does not exist in table silver.titanic "
        "(hint: did you mean Survived?)",
        "pipelines/titanic.yaml:11: task 'train': estimator 'gradient_boosting' (HistGradientBoostingClassifier or "
        "HistGradientBoostingRegressor) takes no parameter 'max_iters' (hint: did you mean max_iter or max_bins or max_features?)",
        "pipelines/titanic.yaml:15: task 'promote': gate rule 'f1_score >= 0.7': model 'titanic' gets no metric "
        "'f1_score' from train and evaluate (hint: did you mean f1? a classification or regression model's "
        "metrics: accuracy, f1, fit_seconds, log_loss, mae, precision, r2, recall, rmse, roc_auc)",
    ]
    assert result.stderr.startswith("error: 5 problems found")

    pipeline.write_text("""\
tasks:
  - name: train
    kind: train
    table: silver.titanic
    label: Survived
    features: [Pclass, Sex, Fare]
    estimator: gradient_boosting
    params: {max_iter: 50}
  - name: promote
    kind: promote
    depends_on: [train]
    rules: ["f1 >= 0.7"]
""")
    result = brickyard("validate", cwd=ws.root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 pipeline, 0 contracts valid" in result.stdout
