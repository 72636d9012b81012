"""Running the `brickyard` command as a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BRICKYARD = [sys.executable, "-m", "brickyard.cli"]


def brickyard(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `brickyard ARGS` in `cwd` (no inherited BRICKYARD_WORKSPACE, wide output)."""
    environment = {**os.environ, "COLUMNS": "200", **(env or {})}
    environment.pop("BRICKYARD_WORKSPACE", None)
    return subprocess.run(
        [*BRICKYARD, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=300
    )
