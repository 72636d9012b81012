"""`brickyard mlflow-ui`: says when the UI answers, and Ctrl-C or SIGTERM stop every
process it started (MLflow starts uvicorn workers that would otherwise keep the port)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from brickyard import Workspace

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether a new server could listen on `port` (connections of the old one may linger
    in TIME_WAIT; servers bind with SO_REUSEADDR, so those do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
        return True


class Output:
    """Lines a process prints, read as they come (so its pipe never fills)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, process: subprocess.Popen[str], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not any(text in line for line in self.lines):
            assert process.poll() is None, "\n".join(self.lines)
            assert time.monotonic() < deadline, f"no {text!r} in:\n" + "\n".join(self.lines)
            time.sleep(0.1)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_mlflow_ui_says_when_ready_and_stops_its_whole_process_tree(stop: signal.Signals, tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    port = free_port()
    env = {**os.environ, "COLUMNS": "200", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("BRICKYARD_WORKSPACE", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "brickyard.cli", "mlflow-ui", "--port", str(port)],
        cwd=ws.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output = Output(process)
    tree: list[psutil.Process] = []
    try:
        output.wait_for(f"MLflow UI ready at http://127.0.0.1:{port}", process, 120)
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
        tree = psutil.Process(process.pid).children(recursive=True)
        assert len(tree) >= 2, tree  # the mlflow command and its uvicorn server, at least

        process.send_signal(stop)  # only to brickyard, as Ctrl-C in a terminal or `kill` does
        assert process.wait(timeout=60) == 0, "\n".join(output.lines)
        _, alive = psutil.wait_procs(tree, timeout=30)
        assert alive == []
        assert port_is_free(port)
        assert "MLflow UI stopped" in output.lines[-1]
    finally:  # whatever failed above, leave no process behind
        if process.poll() is None:
            tree = [*tree, *psutil.Process(process.pid).children(recursive=True), psutil.Process(process.pid)]
        for child in tree:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        process.wait()
