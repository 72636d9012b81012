"""A workspace is a folder: copied or moved elsewhere (the original deleted), its models
still serve, and MLflow's own client still loads them."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from cli_helpers import brickyard

from brickyard import Workspace
from brickyard.demo.context import DemoContext
from brickyard.demo.pipelines import install_workspace_files, seed_passengers_database
from brickyard.demo.runner import land_raw_files

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSENGERS = {
    "columns": ["Age", "SibSp", "Parch", "Fare", "Pclass", "Sex", "Embarked"],
    "data": [[22.0, 1, 0, 7.25, 3, "male", "S"], [38.0, 1, 0, 71.28, 1, "female", "C"]],
}


class Silent:
    def step(self, title: str) -> None: ...
    def say(self, text: str) -> None: ...
    def table(self, columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_workspace(root: Path) -> Path:
    """The demo's titanic pipeline, run: ingest, train, evaluate, promote, score, export."""
    ws = Workspace.init(root)
    context = DemoContext(ws, 100, 42, Silent())
    land_raw_files(context)
    install_workspace_files(context)
    seed_passengers_database(context)
    result = brickyard("run", "titanic", cwd=ws.root)
    assert result.returncode == 0, result.stdout + result.stderr
    return ws.root


def score_over_http(root: Path) -> tuple[list[Any], str]:
    """`brickyard serve titanic` in `root`: the predictions for PASSENGERS, and its output."""
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("BRICKYARD_WORKSPACE", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "brickyard.cli", "serve", "titanic", "--no-auth", "--port", str(port)],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the champion did not load"
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        response = httpx.post(f"{url}/invocations", json={"dataframe_split": PASSENGERS}, timeout=30)
        assert response.status_code == 200, response.text
    finally:
        process.send_signal(signal.SIGINT)
        try:
            out = process.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            out = process.communicate()[0]
    return list(response.json()["predictions"]), out


def test_a_copied_workspace_serves_its_models_after_the_original_is_deleted(tmp_path: Path) -> None:
    original = demo_workspace(tmp_path / "original")
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(original, copy)
    shutil.rmtree(original)

    predictions, out = score_over_http(copy)
    assert predictions == [0, 1]
    assert f"MLflow artifact locations moved from {original.resolve().as_uri()} to {copy.resolve().as_uri()}" in out

    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(Workspace.open(copy).mlflow_tracking_uri)
    try:
        model = mlflow.pyfunc.load_model("models:/titanic@champion")
        predicted = model.predict(pd.DataFrame(PASSENGERS["data"], columns=PASSENGERS["columns"]))
    finally:
        mlflow.set_tracking_uri(previous)
    assert list(predicted) == [0, 1]
    models = brickyard("models", cwd=copy)
    assert models.returncode == 0 and "champion" in models.stdout

    # new runs in the copy keep their artifacts in the copy
    again = brickyard("run", "titanic", cwd=copy)
    assert again.returncode == 0, again.stdout + again.stderr
    assert not original.exists()
