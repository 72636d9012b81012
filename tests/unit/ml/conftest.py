"""Fixtures for the ML lifecycle: workspaces with a real MLflow SQLite store and the real
Titanic data in a lake table, and task contexts built directly (no runner).

Creating an MLflow SQLite database runs its migrations (seconds), so the first workspace
of the session makes one and the others start from a copy of that empty, migrated file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from brickyard import Workspace

DATA = Path(__file__).resolve().parents[3] / "src" / "brickyard" / "demo" / "data"


@pytest.fixture(autouse=True)
def _quiet_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")


@pytest.fixture(scope="session")
def migrated_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from brickyard.ml import tracking

    ws = Workspace.init(tmp_path_factory.mktemp("mlflow_template") / "ws")
    tracking.connect(ws).search_experiments()
    return ws.root / "mlflow.db"


@pytest.fixture(scope="session")
def titanic_frame() -> pd.DataFrame:
    return pd.read_csv(DATA / "titanic.csv")


def new_workspace(folder: Path, template: Path, titanic: pd.DataFrame) -> Workspace:
    ws = Workspace.init(folder)
    shutil.copyfile(template, ws.root / "mlflow.db")
    ws.lake.write("silver.titanic", titanic)
    return ws


@pytest.fixture
def ml_ws(tmp_path: Path, migrated_mlflow_db: Path, titanic_frame: pd.DataFrame) -> Workspace:
    """A fresh workspace with silver.titanic (version 0) and an empty MLflow store."""
    return new_workspace(tmp_path / "ws", migrated_mlflow_db, titanic_frame)


@pytest.fixture(scope="module")
def shared_ws(tmp_path_factory: pytest.TempPathFactory, migrated_mlflow_db: Path, titanic_frame: pd.DataFrame) -> Workspace:
    """One workspace for the tests of a module that only read what they train."""
    return new_workspace(tmp_path_factory.mktemp("shared") / "ws", migrated_mlflow_db, titanic_frame)
