"""Running the `brickyard` command as a subprocess, as a user would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

BRICKYARD = [sys.executable, "-m", "brickyard.cli"]


def brickyard(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `brickyard ARGS` in `cwd` (no inherited BRICKYARD_WORKSPACE, wide output)."""
    environment = {**os.environ, "COLUMNS": "200", **(env or {})}
    environment.pop("BRICKYARD_WORKSPACE", None)
    return subprocess.run(
        [*BRICKYARD, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=300
    )


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    """Wait until something listens on 127.0.0.1:`port`.

    Raises:
        RuntimeError: the process exited first, or nothing listened in time.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with code {process.returncode} before listening on port {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {seconds:.0f} s")
