"""`brickyard gate MODEL [--version N]` over fairness, robustness and explainability-drift
rules, through the real command: the rule table and the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import brickyard

from brickyard import Workspace

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DATA = Path(__file__).resolve().parents[2] / "src" / "brickyard" / "demo" / "data"
PIPELINE = """\
tasks:
  - name: train
    kind: train
    table: silver.titanic
    label: Survived
    features: [Pclass, Sex, Age, SibSp, Parch, Fare, Embarked]
    estimator: {estimator}
  - name: evaluate
    kind: evaluate
    depends_on: [train]
    explain: true
    sensitive_features: [Sex]
    robustness: {{noise: 0.1, missing: 0.1}}
  - name: promote
    kind: promote
    depends_on: [evaluate]
    rules:
      - "roc_auc >= champion.roc_auc + 0.5"
      - "demographic_parity_difference <= 0.95"
      - "robustness_drop <= 0.5"
      - "importance_rank_change <= 1"
"""


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Version 1 (logistic regression) is the champion; version 2 (a random forest) failed
    the AUC rule and is the challenger."""
    workspace = Workspace.init(tmp_path_factory.mktemp("gate") / "ws")
    workspace.lake.write("silver.titanic", pd.read_csv(DATA / "titanic.csv"))
    env = {"MLFLOW_DISABLE_TELEMETRY": "true"}
    for estimator in ("logistic_regression", "random_forest"):
        (workspace.root / "pipelines" / "titanic.yaml").write_text(PIPELINE.format(estimator=estimator))
        ran = brickyard("run", "titanic", cwd=workspace.root, env=env)
        assert ran.returncode == 0, ran.stdout + ran.stderr
    return workspace.root


def rows(stdout: str) -> dict[str, list[str]]:
    """The gate table's rows by rule: [metric, value, champion, threshold, result]."""
    found = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 6 and cells[0] != "rule":
            found[cells[0]] = cells[1:]
    return found


def test_gate_prints_every_rule_with_its_values_and_exits_1_when_one_fails(ws: Path) -> None:
    checked = brickyard("gate", "titanic", cwd=ws)  # latest: version 2
    assert checked.returncode == 1, checked.stdout + checked.stderr
    table = rows(checked.stdout)
    assert list(table) == [
        "roc_auc >= champion.roc_auc + 0.5", "demographic_parity_difference <= 0.95",
        "robustness_drop <= 0.5", "importance_rank_change <= 1",
    ]
    assert table["roc_auc >= champion.roc_auc + 0.5"][-1] == "FAIL"
    assert table["demographic_parity_difference <= 0.95"][-1] == "pass"
    assert float(table["demographic_parity_difference <= 0.95"][1]) > 0.5  # survival by sex, as the data says
    assert table["importance_rank_change <= 1"][-1] == "pass"
    assert 0 <= float(table["importance_rank_change <= 1"][1]) <= 1
    assert "FAIL: titanic version 2 (champion: version 1)" in checked.stdout


def test_gate_version_option_and_explicit_rules(ws: Path) -> None:
    strict = brickyard("gate", "titanic", "--version", "1", "--rules", "demographic_parity_difference <= 0.1", cwd=ws)
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert rows(strict.stdout)["demographic_parity_difference <= 0.1"][-1] == "FAIL"
    passing = brickyard(
        "gate", "titanic", "--version", "2",
        "--rules", "demographic_parity_difference <= 0.95; robustness_drop <= 0.5; importance_rank_change <= 1",
        cwd=ws,
    )
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "PASS: titanic version 2" in passing.stdout
    both = brickyard("gate", "titanic", "2", "--version", "1", cwd=ws)
    assert both.returncode == 2 and "version '2' and --version '1' differ" in both.stderr


def test_the_promote_decision_recorded_every_rule_with_its_values(ws: Path) -> None:
    listed = json.loads(brickyard("models", "--name", "titanic", "--format", "json", cwd=ws).stdout)
    by_version = {row["version"]: row for row in listed}
    assert by_version[1]["gate"] == "promoted" and by_version[2]["gate"] == "rejected"
    metrics = by_version[2]["metrics"]
    assert {"demographic_parity_difference", "equalized_odds_difference", "robustness_drop",
            "importance_rank_change", "shap_importance.Sex"} <= set(metrics)
