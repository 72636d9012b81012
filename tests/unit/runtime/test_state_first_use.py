"""First use of a workspace's state database by processes that start at the same moment.

Two real processes wait on a barrier, then open a fresh workspace's state database (the
schema does not exist yet) and record a run; both must succeed, trial after trial. The
same holds for two `brickyard` commands started together on a fresh workspace, and for a
PostgreSQL state database.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from brickyard import Workspace
from brickyard.runtime.state import StateStore

LIBRARY_TRIALS = 30
CLI_TRIALS = 8
PIPELINE = "tasks:\n  - {name: hello, kind: python, function: 'hello:hello'}\n"
HELLO = "def hello(context):\n    return {'said': 'hello'}\n"


def open_and_record(urls: list[str], barrier: Any, results: Any) -> None:
    """In a child process: for each URL, wait for the other process, then use the state
    database the way a CLI command does (runs, attempts, tokens, trigger tables)."""
    import brickyard.runtime.triggers  # noqa: F401  (declares its tables, as `brickyard server` does)
    from brickyard.runtime.state import StateStore
    from brickyard.runtime.tokens import TokenStore

    for url in urls:
        barrier.wait(timeout=120)
        try:
            store = StateStore(url)
            store.mark_dead_runs()
            run = store.create_run("first_use", trigger="manual")
            store.start_attempt(run.id, "task", 1)
            TokenStore(url).list()
            results.put((url, "ok"))
        except Exception as exc:  # the test reports every failure, with its type
            results.put((url, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"))


def race(urls: list[str]) -> dict[str, list[str]]:
    """Run `open_and_record` in two spawned processes over the same URLs; the outcomes per URL."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    workers = [context.Process(target=open_and_record, args=(urls, barrier, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    outcomes: dict[str, list[str]] = {url: [] for url in urls}
    for _ in range(2 * len(urls)):
        url, outcome = results.get(timeout=180)
        outcomes[url].append(outcome)
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    return outcomes


def assert_all_succeeded(outcomes: dict[str, list[str]]) -> None:
    failed = {url: found for url, found in outcomes.items() if found != ["ok", "ok"]}
    assert not failed, f"{len(failed)} of {len(outcomes)} trials failed: {list(failed.values())[:5]}"


def test_two_processes_opening_a_fresh_state_database_at_once_both_succeed(tmp_path: Path) -> None:
    roots = [Workspace.init(tmp_path / f"ws{trial}").root for trial in range(LIBRARY_TRIALS)]
    urls = [Workspace.open(root).state_url for root in roots]
    assert all(url.startswith("sqlite:///") for url in urls)  # the default state database

    assert_all_succeeded(race(urls))

    for url in urls:
        runs = StateStore(url).list_runs()
        assert [run.pipeline for run in runs] == ["first_use", "first_use"]
        with sa.create_engine(url).connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


@pytest.mark.postgres
def test_two_processes_creating_the_schema_on_postgres_at_once_both_succeed(postgres: Any) -> None:
    """A PostgreSQL state database: each trial is a fresh schema (the first on search_path)."""
    schemas = [f"state_{uuid.uuid4().hex[:10]}" for _ in range(10)]
    admin = sa.create_engine(postgres.url)
    with admin.begin() as conn:
        for schema in schemas:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    urls = [f"{postgres.url}?options=-csearch_path%3D{schema}" for schema in schemas]

    assert_all_succeeded(race(urls))

    with admin.connect() as conn:
        for schema in schemas:
            assert conn.exec_driver_sql(f"SELECT COUNT(*) FROM {schema}.runs").scalar() == 2
    admin.dispose()


def brickyard(ws: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("BRICKYARD_WORKSPACE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "brickyard.cli", *args, "--workspace", str(ws)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.slow
def test_two_brickyard_commands_on_a_fresh_workspace_at_once_both_succeed(tmp_path: Path) -> None:
    """`brickyard run` twice at once, and `brickyard runs` beside a `brickyard run`, each
    pair on a workspace whose state database does not exist yet."""
    failures = []
    for trial in range(CLI_TRIALS):
        ws = Workspace.init(tmp_path / f"ws{trial}")
        (ws.root / "hello.py").write_text(HELLO)
        (ws.root / "pipelines" / "hello.yaml").write_text(PIPELINE)
        second = ("run", "hello") if trial % 2 == 0 else ("runs",)
        processes = [brickyard(ws.root, "run", "hello"), brickyard(ws.root, *second)]
        for process in processes:
            _, err = process.communicate(timeout=120)
            if process.returncode != 0 or "Traceback" in err:
                failures.append((trial, process.args[3:5], process.returncode, err.strip().splitlines()[-1:]))
        statuses = [run.status for run in StateStore(ws.state_url).list_runs()]
        if statuses != ["succeeded"] * (2 if trial % 2 == 0 else 1):
            failures.append((trial, "runs", statuses))
    assert not failures, failures
