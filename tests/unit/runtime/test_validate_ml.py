"""`brickyard validate` finds what only a run used to find: estimators, their params, the
label and feature columns a train task names, and the metrics a gate rule compares."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from brickyard import Workspace
from brickyard.runtime.validate import validate_workspace

DATA = Path(__file__).resolve().parents[3] / "src" / "brickyard" / "demo" / "data"
KINDS = "evaluate, expect, export, features, ingest, materialize, monitor, promote, python, score, sql, train, tune"

MISTAKES = """\
tasks:
  - name: land
    kind: ingest
    source: raw/titanic/*.csv
    target: bronze.passengers
  - name: clean
    kind: transform
    sql: SELECT 1
  - name: train
    kind: train
    depnds_on: [land]
    table: bronze.passengers
    label: Survivd
    features: [Pclass, Sexx, Age]
    estimator: random_forrest
  - name: train_lr
    kind: train
    table: silver.titanic
    label: Survived
    estimator: logistic_regression
    params: {C: 1.0, max_iters: 10}
    model_name: titanic_lr
  - name: evaluate
    kind: evaluate
    depends_on: [train_lr]
  - name: promote
    kind: promote
    depends_on: [evaluate]
    rules:
      - "accuracy >= 0.7"
      - "aucc >= champion.aucc + 0.01"
"""


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = Workspace.init(tmp_path / "ws")
    workspace.lake.write("silver.titanic", pd.read_csv(DATA / "titanic.csv"))
    raw = Path(workspace.lake.location.uri("raw/titanic/titanic.csv"))
    raw.parent.mkdir(parents=True)
    shutil.copyfile(DATA / "titanic.csv", raw)
    return workspace


def problems(ws: Workspace, name: str, text: str, engine: str | None = None) -> list[str]:
    (ws.root / "pipelines" / f"{name}.yaml").write_text(text)
    return [str(problem) for problem in validate_workspace(ws, engine)]


def test_every_mistake_of_a_pipeline_is_reported_at_once_at_its_line(ws: Workspace) -> None:
    assert problems(ws, "titanic", MISTAKES) == [
        f"pipelines/titanic.yaml:7: unknown task kind 'transform' (hint: known kinds: {KINDS})",
        "pipelines/titanic.yaml:11: tasks[2] (train).depnds_on: unknown key (hint: did you mean depends_on or version?)",
        "pipelines/titanic.yaml:13: task 'train': label column 'Survivd' does not exist in table "
        "bronze.passengers (hint: did you mean Survived?)",
        "pipelines/titanic.yaml:14: task 'train': feature column 'Sexx' does not exist in table "
        "bronze.passengers (hint: did you mean Sex?)",
        "pipelines/titanic.yaml:15: task 'train': unknown estimator 'random_forrest' "
        "(hint: did you mean random_forest?)",
        "pipelines/titanic.yaml:21: task 'train_lr': estimator 'logistic_regression' (LogisticRegression) "
        "takes no parameter 'max_iters' (hint: did you mean max_iter?)",
        "pipelines/titanic.yaml:31: task 'promote': gate rule 'aucc >= champion.aucc + 0.01': model "
        "'titanic_lr' gets no metric 'aucc' from train and evaluate (hint: did you mean roc_auc or accuracy? "
        "a classification or regression model's metrics: accuracy, f1, fit_seconds, log_loss, mae, precision, "
        "r2, recall, rmse, roc_auc)",
    ]


def test_a_close_typo_of_a_kind_gets_a_did_you_mean_and_the_kinds(ws: Workspace) -> None:
    assert problems(ws, "p", "tasks:\n  - {name: a, kind: pyton}\n") == [
        f"pipelines/p.yaml:2: unknown task kind 'pyton' (hint: did you mean python? known kinds: {KINDS})"
    ]


def test_param_values_the_estimator_rejects_are_reported_without_fitting(ws: Workspace) -> None:
    found = problems(ws, "p", """\
tasks:
  - name: train
    kind: train
    table: silver.titanic
    label: Survived
    features: [Pclass, Fare]
    estimator: logistic_regression
    params: {C: -1}
""")
    assert found == [
        "pipelines/p.yaml:8: task 'train': estimator 'logistic_regression' (LogisticRegression) rejects "
        "params: The 'C' parameter of LogisticRegression must be a float in the range (0.0, inf]. Got -1 instead."
    ]


def test_a_valid_ml_pipeline_has_no_problems(ws: Workspace) -> None:
    assert problems(ws, "p", """\
tasks:
  - name: land
    kind: ingest
    source: raw/titanic/*.csv
    target: bronze.passengers
  - name: train
    kind: train
    depends_on: [land]
    table: bronze.passengers
    label: Survived
    features: [Pclass, Sex, Age, _source_file]
    estimator: random_forest
    params: {n_estimators: 10, class_weight: balanced}
  - name: segments
    kind: train
    table: silver.titanic
    features: [Fare, Age]
    estimator: kmeans
    params: {k: 3, n_init: 2}
    model_name: segments
  - name: evaluate
    kind: evaluate
    depends_on: [train]
  - name: promote
    kind: promote
    depends_on: [evaluate]
    rules: ["roc_auc >= champion.roc_auc", "log_loss <= 0.6", "fit_seconds <= 60"]
  - name: promote_segments
    kind: promote
    model: segments
    rules: ["silhouette >= 0.2"]
""") == []


def test_gate_metrics_follow_the_problem_the_train_task_solves(ws: Workspace) -> None:
    found = problems(ws, "p", """\
tasks:
  - name: segments
    kind: train
    table: silver.titanic
    features: [Fare, Age]
    estimator: kmeans
    params: {k: 3}
  - name: promote
    kind: promote
    depends_on: [segments]
    rules: ["accuracy >= 0.7"]
""")
    assert found == [
        "pipelines/p.yaml:11: task 'promote': gate rule 'accuracy >= 0.7': model 'p' gets no metric "
        "'accuracy' from train and evaluate (hint: a clustering model's metrics: fit_seconds, inertia, "
        "inertia_by_k, k, n_iter, silhouette, silhouette_by_k)"
    ]


def test_columns_of_an_ingest_target_come_from_its_contract(ws: Workspace) -> None:
    raw = Path(ws.lake.location.uri("raw/people/people.csv"))
    raw.parent.mkdir(parents=True)
    pd.read_csv(DATA / "titanic.csv")[["PassengerId", "Survived"]].to_csv(raw, index=False)
    (ws.root / "contracts" / "bronze.people.yaml").write_text("""\
columns:
  - {name: passenger_id, type: bigint, source: PassengerId}
  - {name: Survived, type: int}
evolution: fail
""")
    found = problems(ws, "p", """\
tasks:
  - name: land
    kind: ingest
    source: raw/people/*.csv
    target: bronze.people
    contract: bronze.people
  - name: train
    kind: train
    depends_on: [land]
    table: bronze.people
    label: Survived
    features: [passenger_id, Fare]
""")
    assert found == [
        "pipelines/p.yaml:12: task 'train': feature column 'Fare' does not exist in table bronze.people "
        "(hint: its columns are: passenger_id, Survived, _source_file, _loaded_at)"
    ]


def test_columns_of_a_sql_target_are_not_guessed(ws: Workspace) -> None:
    """A sql task's columns are known only once it runs: no false alarm before that."""
    assert problems(ws, "p", """\
tasks:
  - name: clean
    kind: sql
    query: "SELECT PassengerId, Survived, Fare * 2 AS double_fare FROM silver.titanic"
    target: silver.clean
  - name: train
    kind: train
    depends_on: [clean]
    table: silver.clean
    label: Survived
    features: [double_fare]
""") == []


def test_on_spark_kmeans_takes_mllib_params_and_other_estimators_are_checked_as_on_duckdb(ws: Workspace) -> None:
    found = problems(ws, "p", """\
engine: spark
tasks:
  - name: segments
    kind: train
    table: silver.titanic
    features: [Fare, Age]
    estimator: kmeans
    params: {k: 3, maxIter: 10, initMode: random}
    model_name: segments
  - name: train
    kind: train
    table: silver.titanic
    label: Survived
    features: [Fare, Age]
    estimator: logistic_regression
    params: {maxIter: 10}
""", engine="spark")
    assert found == [
        "pipelines/p.yaml:16: task 'train': estimator 'logistic_regression' (LogisticRegression) takes no "
        "parameter 'maxIter' (hint: did you mean max_iter?)"
    ]
    # Without --engine, also for DuckDB, which `brickyard run --engine duckdb` would use.
    on_both = [str(problem) for problem in validate_workspace(ws)]
    assert on_both == [
        "pipelines/p.yaml:8: task 'segments' on engine 'duckdb': estimator 'kmeans' (KMeans) takes no parameter "
        "'maxIter' (hint: did you mean max_iter?)",
        "pipelines/p.yaml:8: task 'segments' on engine 'duckdb': estimator 'kmeans' (KMeans) takes no parameter "
        "'initMode' (hint: did you mean init or n_init?)",
        *found,
    ]


def test_evaluate_options_and_the_gate_rules_over_them_are_checked_at_their_lines(ws: Workspace) -> None:
    found = problems(ws, "p", """\
tasks:
  - name: train
    kind: train
    table: silver.titanic
    label: Survived
    features: [Pclass, Age]
  - name: evaluate
    kind: evaluate
    depends_on: [train]
    sensitive_features: [Sexx]
  - name: promote
    kind: promote
    depends_on: [evaluate]
    rules:
      - "demographic_parity_difference <= 0.1"
      - "robustness_drop <= 0.02"
      - "importance_rank_change <= 0.3"
      - "fairness.Sex.female.recall >= 0.5"
      - "shap_importance.Age <= 1"
""")
    assert found == [
        "pipelines/p.yaml:10: task 'evaluate': sensitive_features: column 'Sexx' is not a column of "
        "silver.titanic, which 'p' is trained from (hint: did you mean Sex?)",
        "pipelines/p.yaml:16: task 'promote': gate rule 'robustness_drop <= 0.02': robustness_drop is measured "
        "by an evaluate task with robustness: and no evaluate task of model 'p' in this pipeline sets it "
        "(hint: add robustness: to the evaluate task; see docs/explainability.md)",
        "pipelines/p.yaml:17: task 'promote': gate rule 'importance_rank_change <= 0.3': importance_rank_change "
        "is measured by an evaluate task with explain: and no evaluate task of model 'p' in this pipeline sets it "
        "(hint: add explain: to the evaluate task; see docs/explainability.md)",
        "pipelines/p.yaml:19: task 'promote': gate rule 'shap_importance.Age <= 1': shap_importance.Age "
        "is measured by an evaluate task with explain: and no evaluate task of model 'p' in this pipeline sets it "
        "(hint: add explain: to the evaluate task; see docs/explainability.md)",
    ]


def test_a_bad_evaluate_option_is_reported_at_its_line(ws: Workspace) -> None:
    found = problems(ws, "p", """\
tasks:
  - name: train
    kind: train
    table: silver.titanic
    label: Survived
  - name: evaluate
    kind: evaluate
    depends_on: [train]
    explain: {explainer: deep}
    robustness: {metric: auc}
""")
    assert len(found) == 2, found
    assert found[0].startswith("pipelines/p.yaml:9:") and "explainer" in found[0]
    assert found[1].startswith("pipelines/p.yaml:10:") and "unknown metric 'auc' (did you mean roc_auc?)" in found[1]
