"""The ML lifecycle through the `brickyard` command: run a titanic pipeline (train ->
evaluate -> promote), then `models`, `gate`, `models promote`, `reproduce`, `mlflow-ui`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from brickyard import Workspace

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DATA = Path(__file__).resolve().parents[2] / "src" / "brickyard" / "demo" / "data"
PIPELINE = """\
description: Titanic survival, trained, evaluated and promoted through the gate.
tasks:
  - name: train
    kind: train
    table: silver.titanic
    label: Survived
    features: [{features}]
    split: {{test_size: 0.2, seed: 42, stratify: true}}
    estimator: logistic_regression
    params: {{C: 1.0}}
  - name: evaluate
    kind: evaluate
    depends_on: [train]
  - name: promote
    kind: promote
    depends_on: [evaluate]
    rules:
      - "roc_auc >= champion.roc_auc + 0.01"
      - "accuracy >= 0.6"
"""


def brickyard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("BRICKYARD_WORKSPACE", None)
    return subprocess.run(
        [sys.executable, "-m", "brickyard.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def write_pipeline(ws: Path, features: str) -> None:
    (ws / "pipelines" / "titanic.yaml").write_text(PIPELINE.format(features=features))


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workspace = Workspace.init(tmp_path_factory.mktemp("models") / "ws")
    workspace.lake.write("silver.titanic", pd.read_csv(DATA / "titanic.csv"))
    write_pipeline(workspace.root, "Fare")
    first = brickyard("run", "titanic", cwd=workspace.root)
    assert first.returncode == 0, first.stdout + first.stderr
    write_pipeline(workspace.root, "Pclass, Sex, Age, SibSp, Parch, Fare, Embarked")
    second = brickyard("run", "titanic", cwd=workspace.root)
    assert second.returncode == 0, second.stdout + second.stderr
    return workspace.root


def test_pipeline_run_trains_evaluates_and_promotes(ws: Path) -> None:
    listing = brickyard("models", cwd=ws)
    assert listing.returncode == 0, listing.stderr
    lines = {line.split("│")[2].strip(): line for line in listing.stdout.splitlines() if "│ titanic" in line}
    assert "champion" in lines["2"] and "promoted" in lines["2"] and "roc_auc=" in lines["2"]
    assert "previous_champion" in lines["1"]


def test_models_as_json_and_csv(ws: Path) -> None:
    import csv
    import io
    import json

    listed = json.loads(brickyard("models", "--name", "titanic", "--format", "json", cwd=ws).stdout)
    by_version = {row["version"]: row for row in listed}
    assert by_version[2]["aliases"] == ["champion"] and by_version[2]["gate"] == "promoted"
    assert 0.5 < by_version[2]["metrics"]["roc_auc"] <= 1
    assert by_version[2]["created"].endswith("+00:00")
    rows = list(csv.DictReader(io.StringIO(brickyard("models", "--format", "csv", cwd=ws).stdout)))
    titanic = {row["version"]: row for row in rows if row["model"] == "titanic"}
    assert titanic["2"]["aliases"] == "champion" and float(titanic["2"]["roc_auc"]) == by_version[2]["metrics"]["roc_auc"]


def test_gate_exit_codes(ws: Path) -> None:
    passing = brickyard("gate", "titanic", "2", cwd=ws)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "rules from pipelines/titanic.yaml: promote" in passing.stdout
    assert "skipped: the candidate is the champion" in passing.stdout and "PASS" in passing.stdout
    failing = brickyard("gate", "titanic", "1", cwd=ws)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "FAIL" in failing.stdout and "roc_auc >= champion.roc_auc + 0.01" in failing.stdout
    explicit = brickyard("gate", "titanic", "champion", "--rules", "accuracy >= 0.99", cwd=ws)
    assert explicit.returncode == 1 and "0.99" in explicit.stdout


def test_models_promote_with_force_and_back(ws: Path) -> None:
    refused = brickyard("models", "promote", "titanic", "1", cwd=ws)
    assert refused.returncode == 1 and "is now challenger" in refused.stdout
    forced = brickyard("models", "promote", "titanic", "1", "--force", cwd=ws)
    assert forced.returncode == 0 and "--force; tagged as forced" in forced.stdout
    back = brickyard("models", "promote", "titanic", "2", "--rules", "accuracy >= 0.7", cwd=ws)
    assert back.returncode == 0 and "version 2 is now champion" in back.stdout
    listing = brickyard("models", "--name", "titanic", cwd=ws).stdout
    assert "forced" in listing


def test_reproduce_by_brickyard_run_id(ws: Path) -> None:
    from mlflow import MlflowClient

    uri = Workspace.open(ws).mlflow_tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run_id = client.get_model_version("titanic", "2").tags["brickyard.run_id"]
    result = brickyard("reproduce", run_id, cwd=ws)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "silver.titanic@v0" in result.stdout and "REPRODUCED" in result.stdout
    assert "roc_auc" in result.stdout and " NO " not in result.stdout


def test_errors_are_one_line(ws: Path) -> None:
    missing = brickyard("gate", "titanik", "1", "--rules", "accuracy >= 0.5", cwd=ws)
    assert missing.returncode == 1 and missing.stderr.startswith("error: no registered model 'titanik'")
    assert "did you mean titanic" in missing.stderr and "Traceback" not in missing.stderr
    no_rules = brickyard("gate", "other", "1", cwd=ws)
    assert no_rules.returncode == 2 and "no gate rules for model 'other'" in no_rules.stderr


def test_no_champion_is_a_clear_error(tmp_path: Path) -> None:
    workspace = Workspace.init(tmp_path / "fresh")
    workspace.lake.write("silver.titanic", pd.read_csv(DATA / "titanic.csv"))
    (workspace.root / "pipelines" / "survival.yaml").write_text(
        "tasks:\n  - {name: train, kind: train, table: silver.titanic, label: Survived, features: [Fare, Sex]}\n"
    )
    assert brickyard("run", "survival", cwd=workspace.root).returncode == 0
    result = brickyard("gate", "survival", "champion", "--rules", "accuracy >= 0.5", cwd=workspace.root)
    assert result.returncode == 1
    assert "has no champion version yet" in result.stderr and "brickyard models promote survival" in result.stderr


def test_mlflow_ui_prints_its_command(ws: Path) -> None:
    result = brickyard("mlflow-ui", "--print", "--port", "5123", cwd=ws)
    assert result.returncode == 0
    assert "mlflow ui --backend-store-uri sqlite:///" in result.stdout and "--port 5123" in result.stdout
    assert (ws / "mlartifacts").as_uri() in result.stdout


def test_model_commands_do_not_import_mlflow_for_help(tmp_path: Path) -> None:
    probe = (
        "import sys; from brickyard.cli.app import main; main(sys.argv[1:]); "
        "print('HEAVY', [m for m in ('mlflow', 'sklearn') if m in sys.modules])"
    )
    for args in (["models", "--help"], ["gate", "--help"], ["reproduce", "--help"]):
        result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60)
        assert "HEAVY []" in result.stdout, result.stdout + result.stderr
