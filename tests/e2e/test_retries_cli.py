"""Errors drive retries: `brickyard run` retries a task only when its error is transient,
says each failure once, and `--debug` shows the chain of causes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_helpers import brickyard

from brickyard import Workspace
from brickyard.runtime.state import StateStore

pytestmark = pytest.mark.e2e

JOBS = """\
import errno
from pathlib import Path


def flaky(context, marker):
    path = Path(marker)
    if not path.exists():  # the first attempt meets a failing disk
        path.write_text("failed once")
        raise OSError(errno.EIO, "Input/output error", "raw/trips.csv")
    context.metrics.rows_out = 1
"""


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = Workspace.init(tmp_path / "ws").root
    (root / "jobs.py").write_text(JOBS)
    (root / "pipelines" / "typo.yaml").write_text("""\
tasks:
  - name: broken
    kind: sql
    retries: {count: 3, backoff_seconds: 0}
    query: "SELEC 1 AS x"
    target: silver.x
""")
    (root / "pipelines" / "missing.yaml").write_text("""\
tasks:
  - name: orphan
    kind: sql
    retries: {count: 3, backoff_seconds: 0}
    query: "SELECT * FROM silver.nope"
    target: silver.x
""")
    (root / "pipelines" / "flaky.yaml").write_text(f"""\
tasks:
  - name: fetch
    kind: python
    function: 'jobs:flaky'
    args: {{marker: '{root / "marker.txt"}'}}
    retries: {{count: 3, backoff_seconds: 0}}
""")
    return root


def attempts(ws: Path, run_id: str) -> list[tuple[str, int, str, bool]]:
    store = StateStore(Workspace.open(ws).state_url)
    return [(a.task, a.attempt, a.status, a.transient) for a in store.attempts(run_id)]


def run_id_of(output: str) -> str:
    found = re.search(r"run (\d{8}-\d{6}-[0-9a-f]{6}) (?:failed|succeeded)", output)
    assert found, output
    return found.group(1)


def test_a_sql_syntax_error_is_tried_once_and_said_once(ws: Path) -> None:
    result = brickyard("run", "typo", cwd=ws)
    assert result.returncode == 1
    run_id = run_id_of(result.stdout)
    assert attempts(ws, run_id) == [("broken", 1, "failed", False)]
    assert result.stderr == (
        "error: task 'broken' failed: Parser Error: syntax error at or near \"SELEC\" "
        f"(line 1, column 1: SELEC 1 AS x) (hint: brickyard run-show {run_id})\n"
    )
    show = brickyard("run-show", run_id, cwd=ws)
    assert re.search(r"broken\s+1\s+failed", show.stdout) and not re.search(r"broken\s+2\s", show.stdout)
    log = brickyard("logs", run_id, cwd=ws).stdout
    assert "not retried: the error is terminal" in log and "retrying" not in log


def test_a_missing_table_is_not_retried_and_its_hint_is_not_doubled(ws: Path) -> None:
    result = brickyard("run", "missing", cwd=ws)
    assert result.returncode == 1
    run_id = run_id_of(result.stdout)
    assert attempts(ws, run_id) == [("orphan", 1, "failed", False)]
    assert result.stderr.count("(hint:") == 1 and result.stderr.count("task ") == 1
    assert result.stderr == (
        "error: task 'orphan' failed: table 'silver.nope' does not exist in the lake "
        f"(hint: run `brickyard tables` to list the lake's tables; details: brickyard run-show {run_id})\n"
    )


def test_an_io_error_is_retried_and_the_task_succeeds(ws: Path) -> None:
    result = brickyard("run", "flaky", cwd=ws)
    assert result.returncode == 0, result.stderr
    run_id = run_id_of(result.stdout)
    assert attempts(ws, run_id) == [("fetch", 1, "failed", True), ("fetch", 2, "succeeded", False)]
    log = brickyard("logs", run_id, cwd=ws).stdout
    assert "OSError: [Errno 5] Input/output error: 'raw/trips.csv'" in log
    assert "attempt 1 failed with a transient error; retrying in 0 s" in log


def test_debug_shows_the_engine_error_behind_a_failed_task(ws: Path) -> None:
    result = brickyard("--debug", "run", "typo", cwd=ws)
    assert result.returncode == 1
    chain = result.stderr
    assert "ParserException: Parser Error: syntax error" in chain
    assert "SqlError: task broken: Parser Error" in chain
    assert "RunFailedError: task 'broken' failed" in chain
    assert chain.index("ParserException") < chain.index("SqlError") < chain.index("RunFailedError")
    assert chain.count("The above exception was the direct cause of the following exception") == 2
