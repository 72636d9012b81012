"""`brickyard server` as a real process: a token from `brickyard tokens create`, a run
started over HTTP, and a run started by a file landing in the lake."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BRICKYARD = [sys.executable, "-m", "brickyard.cli"]


def brickyard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("BRICKYARD_WORKSPACE", None)
    return subprocess.run([*BRICKYARD, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    assert brickyard("init", str(root), cwd=tmp_path).returncode == 0
    (root / "mymodule.py").write_text(
        "def fn(ctx):\n"
        "    ctx.metrics.rows_out = 1\n"
        "    return {'trigger_run': ctx.run_id}\n"
    )
    (root / "pipelines" / "hello.yaml").write_text(
        "tasks:\n  - {name: greet, kind: python, function: 'mymodule:fn'}\n"
    )
    (root / "pipelines" / "landing.yaml").write_text(
        "trigger: {file_arrival: raw/landing/, poll_seconds: 0.2, debounce_seconds: 0.5}\n"
        'schedule: "0 6 * * *"\n'
        "tasks:\n  - {name: greet, kind: python, function: 'mymodule:fn'}\n"
    )
    return root


@pytest.fixture
def server(workspace: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("BRICKYARD_WORKSPACE", None)
    process = subprocess.Popen(
        [*BRICKYARD, "server", "--port", str(port), "--workspace", str(workspace)],
        cwd=workspace.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stdout.read()}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server did not answer /healthz"
        time.sleep(0.1)
    yield url, process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_final(client: httpx.Client, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = client.get(f"/api/runs/{run_id}").json()
        if body["status"] in ("succeeded", "failed"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


def test_server_starts_runs_over_http_and_on_file_arrival(
    workspace: Path, server: tuple[str, subprocess.Popen[str]]
) -> None:
    url, process = server
    created = brickyard("tokens", "create", "--role", "runner", "--name", "e2e", cwd=workspace)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    assert httpx.post(f"{url}/api/jobs/hello/runs").status_code == 401
    response = client.post("/api/jobs/hello/runs", headers={"Idempotency-Key": "e2e-1"})
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    assert response.json()["status"] == "queued"
    assert client.post("/api/jobs/hello/runs", headers={"Idempotency-Key": "e2e-1"}).json()["run_id"] == run_id
    body = wait_final(client, run_id)
    assert body["status"] == "succeeded", body
    assert body["tasks"][0]["status"] == "succeeded"

    landing = workspace / "lake" / "raw" / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    time.sleep(0.5)  # let the trigger take its first look (files already there are not new)
    (landing / "day1.csv").write_text("a\n1\n")
    deadline = time.monotonic() + 60
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not runs:
        runs = client.get("/api/jobs/landing/runs").json()["runs"]
        time.sleep(0.1)
    (arrived,) = runs
    assert arrived["trigger"] == "file_arrival"
    assert wait_final(client, arrived["run_id"])["status"] == "succeeded"

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0
    banner = process.stdout.read()  # type: ignore[union-attr]
    assert url in banner
    assert 'landing: schedule "0 6 * * *" (UTC)' in banner
    assert "landing: new files in raw/landing/" in banner
    assert "brickyard tokens create --role runner" in banner


def test_server_refuses_to_start_with_a_bad_cron(workspace: Path) -> None:
    (workspace / "pipelines" / "nightly.yaml").write_text(
        'schedule: "every night"\ntasks: [{name: t, kind: python, function: "mymodule:fn"}]\n'
    )
    result = brickyard("server", "--port", str(free_port()), cwd=workspace)
    assert result.returncode == 1
    assert "nightly.yaml:1: schedule: invalid cron expression 'every night'" in result.stderr
    assert "Traceback" not in result.stderr


def test_busy_port_is_one_error_line(workspace: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = brickyard("server", "--port", str(port), cwd=workspace)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert "--port" in result.stderr and "Traceback" not in result.stderr
