"""`brickyard serve` end to end: a real subprocess, scored over HTTP like curl would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from brickyard import Workspace
from brickyard.runtime.tokens import TokenStore
from brickyard.serving import demo_hint
from titanic_example import register_titanic_example

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSENGER = {
    "dataframe_split": {
        "columns": ["Age", "SibSp", "Parch", "Fare", "Pclass", "Sex", "Embarked"],
        "data": [[22.0, 1, 0, 7.25, 3, "male", "S"], [38.0, 1, 0, 71.28, 1, "female", "C"]],
    }
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = Workspace.init(tmp_path_factory.mktemp("serve") / "ws")
    register_titanic_example(ws)
    return ws


class Served:
    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"

    def output(self) -> str:
        self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=120)
        return out


def start(ws: Workspace, *args: str) -> Served:
    port = free_port()
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("BRICKYARD_WORKSPACE", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "brickyard.cli", "serve", *args, "--port", str(port)],
        cwd=ws.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    served = Served(process, port)
    deadline = time.monotonic() + 180
    while True:
        if process.poll() is not None:
            raise AssertionError(process.communicate()[0])
        assert time.monotonic() < deadline, "not ready in time"
        try:
            if httpx.get(f"{served.url}/readyz", timeout=5).status_code == 200:
                return served
        except httpx.HTTPError:
            pass
        time.sleep(0.2)


@pytest.fixture
def served(workspace: Workspace) -> Iterator[Served]:
    server = start(workspace, "titanic")
    yield server
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait()


def test_serve_scores_with_a_token_and_flushes_the_log_on_stop(served: Served, workspace: Workspace) -> None:
    _, token = TokenStore(workspace.state_url).create("reader", name="e2e")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=served.url, timeout=30) as client:
        response = client.post("/serving-endpoints/titanic/invocations", json=PASSENGER, headers=headers)
        assert response.status_code == 200 and response.json() == {"predictions": [0, 1]}
        proba = client.post("/invocations?predict_proba=true", json=PASSENGER, headers=headers).json()
        assert len(proba["predictions"]) == 2 and abs(sum(proba["predictions"][0]) - 1) < 1e-9
        assert client.post("/invocations", json=PASSENGER).status_code == 401
        assert "brickyard_serving_requests_total" in client.get("/metrics").text
        assert client.get("/openapi.json").status_code == 200
    out = served.output()
    assert "serving titanic at" in out and "auth: bearer tokens" in out
    rows = sorted(workspace.lake.read("gold.inference_log").to_pylist(), key=lambda row: row["ts"])
    assert [row["status"] for row in rows[-3:]] == [200, 200, 401]


def test_no_auth_says_so_at_start(workspace: Workspace) -> None:
    server = start(workspace, "titanic@champion", "--no-auth", "--workers", "2")
    try:
        assert httpx.post(f"{server.url}/invocations", json=PASSENGER, timeout=30).json() == {"predictions": [0, 1]}
    finally:
        out = server.output()
    assert "authentication is OFF (--no-auth)" in out


def test_strict_columns_refuses_a_column_the_model_does_not_take(workspace: Workspace) -> None:
    split = PASSENGER["dataframe_split"]
    extra = {"dataframe_split": {"columns": [*split["columns"], "Cabin"], "data": [[*row, "C85"] for row in split["data"]]}}
    server = start(workspace, "titanic", "--no-auth", "--strict-columns")
    try:
        refused = httpx.post(f"{server.url}/invocations", json=extra, timeout=30)
        assert refused.status_code == 400 and refused.json()["column"] == "Cabin"
    finally:
        out = server.output()
    assert "refused (--strict-columns)" in out
    lenient = start(workspace, "titanic", "--no-auth")
    try:
        answer = httpx.post(f"{lenient.url}/invocations", json=extra, timeout=30)
        assert answer.json() == {"predictions": [0, 1]} and answer.headers["x-ignored-columns"] == '["Cabin"]'
    finally:
        out = lenient.output()
    assert "ignores column(s) 'Cabin'" in out


def test_a_wrong_model_name_fails_fast_with_a_hint(workspace: Workspace) -> None:
    env = {**os.environ}
    env.pop("BRICKYARD_WORKSPACE", None)
    done = subprocess.run(
        [sys.executable, "-m", "brickyard.cli", "serve", "titanc", "--port", str(free_port())],
        cwd=workspace.root, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1
    assert "no registered model 'titanc'" in done.stderr and "did you mean titanic" in done.stderr
    alias = subprocess.run(
        [sys.executable, "-m", "brickyard.cli", "serve", "titanic@champoin", "--port", str(free_port())],
        cwd=workspace.root, env=env, capture_output=True, text=True, timeout=300,
    )
    assert alias.returncode == 1 and "has no version or alias 'champoin'" in alias.stderr
    assert "did you mean champion" in alias.stderr


def test_demo_hint_serves_and_scores_one_passenger(workspace: Workspace, tmp_path: Path) -> None:
    lines = demo_hint(workspace)
    assert any(line.startswith("brickyard serve titanic@champion") for line in lines)
    curl = next(line for line in lines if line.startswith("curl "))
    assert "/serving-endpoints/titanic/invocations" in curl and "dataframe_split" in curl
