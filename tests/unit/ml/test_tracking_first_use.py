"""First use of a workspace's MLflow database by processes that start at the same moment.

MLflow creates its SQLite schema (and runs its migrations) on first use, without a lock
of its own; two brickyard processes that touch MLflow at once on a fresh workspace must
both succeed.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from brickyard import Workspace

pytestmark = pytest.mark.slow

LIBRARY_TRIALS = 3
CLI_TRIALS = 1


def use_mlflow(roots: list[str], barrier: Any, results: Any) -> None:
    """In a child process: for each workspace, wait for the other process, then do what a
    train task does first (connect, find or create its experiment, read the registry)."""
    import logging

    logging.disable(logging.WARNING)
    import mlflow  # noqa: F401  (imported before the barrier: the race is on the database)

    from brickyard.ml import tracking

    for root in roots:
        barrier.wait(timeout=300)
        try:
            ws = Workspace.open(root)
            client = tracking.connect(ws)
            tracking.experiment_id(client, ws, "first_use")
            client.search_registered_models()
            results.put((root, "ok"))
        except Exception as exc:  # the test reports every failure, with its type
            results.put((root, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))


def test_two_processes_using_a_fresh_mlflow_database_at_once_both_succeed(tmp_path: Path) -> None:
    roots = [str(Workspace.init(tmp_path / f"ws{trial}").root) for trial in range(LIBRARY_TRIALS)]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    workers = [context.Process(target=use_mlflow, args=(roots, barrier, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    outcomes: dict[str, list[str]] = {root: [] for root in roots}
    for _ in range(2 * len(roots)):
        root, outcome = results.get(timeout=300)
        outcomes[root].append(outcome)
    for worker in workers:
        worker.join(timeout=60)
    failed = [found for found in outcomes.values() if found != ["ok", "ok"]]
    assert not failed, f"{len(failed)} of {len(roots)} trials failed: {failed}"


def test_two_models_commands_on_a_fresh_workspace_at_once_both_succeed(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("BRICKYARD_WORKSPACE", None)
    failures = []
    for trial in range(CLI_TRIALS):
        ws = Workspace.init(tmp_path / f"ws{trial}")
        command = [sys.executable, "-m", "brickyard.cli", "models", "--workspace", str(ws.root)]
        processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for _ in range(2)]
        for process in processes:
            out, err = process.communicate(timeout=300)
            if process.returncode != 0 or "No registered models yet" not in out:
                failures.append((trial, process.returncode, err.strip().splitlines()[-1:]))
    assert not failures, failures
