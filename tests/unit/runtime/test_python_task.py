"""The `python` task kind: user functions from the workspace, with clear errors."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kinds_for_tests import write_module, write_pipeline

from brickyard import Workspace
from brickyard.runtime.runner import PipelineRunner
from brickyard.runtime.state import StateStore
from brickyard.runtime.validate import validate_workspace
from brickyard.tasks.python_task import PythonTaskError, resolve_function


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace.init(tmp_path / "ws")
    before = set(sys.modules)
    yield workspace
    for name in set(sys.modules) - before:  # user modules of this workspace
        if name.startswith("usercode"):
            del sys.modules[name]
    if str(workspace.root) in sys.path:
        sys.path.remove(str(workspace.root))


def test_the_function_gets_the_context_and_args_and_its_dict_lands_in_metrics(ws: Workspace) -> None:
    (ws.root / "usercode_pkg").mkdir()
    (ws.root / "usercode_pkg" / "__init__.py").write_text("")
    (ws.root / "usercode_pkg" / "jobs.py").write_text(
        "def score(context, threshold, label='x'):\n"
        "    context.log.info('scoring at %s', threshold)\n"
        "    context.metrics.rows_in = 7\n"
        "    context.record_write('gold.scores', 2)\n"
        "    return {'threshold': threshold, 'label': label, 'task': context.task.name}\n"
    )
    write_pipeline(ws, "score", "tasks:\n  - {name: s, kind: python, function: 'usercode_pkg.jobs:score', args: {threshold: 0.5}}\n")
    result = PipelineRunner(ws).run("score")
    assert result.status == "succeeded", result.error
    [attempt] = StateStore(ws.state_url).attempts(result.run_id)
    assert attempt.metrics == {"threshold": 0.5, "label": "x", "task": "s"}
    assert (attempt.rows_in, attempt.writes) == (7, {"gold.scores": 2})
    assert "scoring at 0.5" in (ws.root / ".brickyard" / "logs" / result.run_id / "s.log").read_text()


def test_missing_modules_and_functions_are_clear_errors(ws: Workspace) -> None:
    write_module(ws, "usercode_a", "def main(context):\n    pass\n")
    write_module(ws, "usercode_broken", "import usercode_not_installed_anywhere\n")
    write_module(ws, "usercode_raises", "raise RuntimeError('bad top level')\n")
    with pytest.raises(PythonTaskError, match="no module named 'usercode_nope'") as caught:
        resolve_function("usercode_nope:main", ws.root)
    assert "put usercode_nope.py in the workspace" in str(caught.value)
    with pytest.raises(PythonTaskError, match="has no attribute 'mian'.*did you mean main"):
        resolve_function("usercode_a:mian", ws.root)
    with pytest.raises(PythonTaskError, match="importing 'usercode_broken' failed: No module named 'usercode_not_installed"):
        resolve_function("usercode_broken:main", ws.root)
    with pytest.raises(PythonTaskError, match="importing 'usercode_raises' failed: RuntimeError: bad top level"):
        resolve_function("usercode_raises:main", ws.root)
    assert resolve_function("usercode_a:main", ws.root).__name__ == "main"


def test_validate_reports_bad_references_and_arguments(ws: Workspace) -> None:
    write_module(ws, "usercode_b", "def main(context, n):\n    pass\n")
    write_pipeline(ws, "p", """tasks:
  - {name: ok, kind: python, function: 'usercode_b:main', args: {n: 1}}
  - {name: missing, kind: python, function: 'usercode_b:nope'}
  - {name: badargs, kind: python, function: 'usercode_b:main', args: {m: 1}}
  - {name: badref, kind: python, function: 'not a reference'}
""")
    problems = [str(p) for p in validate_workspace(ws)]
    assert problems[0].startswith("pipelines/p.yaml:3: task 'missing': module 'usercode_b' has no attribute 'nope'")
    assert problems[1].startswith("pipelines/p.yaml:4: task 'badargs': usercode_b:main cannot be called as f(context, **args)")
    assert problems[2].startswith("pipelines/p.yaml:5: tasks[3] (badref).function: String should match pattern")
    assert len(problems) == 3


def test_a_missing_function_fails_the_task_at_run_time(ws: Workspace) -> None:
    write_pipeline(ws, "p", "tasks:\n  - {name: t, kind: python, function: 'usercode_gone:main'}\n")
    result = PipelineRunner(ws).run("p")
    assert result.status == "failed"
    assert result.error is not None and "no module named 'usercode_gone'" in result.error


def test_the_error_of_a_task_holding_pii_reaches_no_log_or_state_with_its_values(ws: Workspace) -> None:
    write_module(ws, "usercode_pii", """\
import duckdb


def engine(context):
    context.handles_pii(["email"])
    con = duckdb.connect()
    con.execute("CREATE TABLE people AS SELECT 'leak-me-4711@example.com' AS email")
    con.sql("SELECT CAST(email AS INTEGER) FROM people").fetchall()


def own(context):
    context.handles_pii(["email"])
    email = "leak-me-" + "4711@example.com"  # a value from the data, not from the code
    raise ValueError(f"bad email {email}")
""")
    write_pipeline(ws, "p", """tasks:
  - {name: engine, kind: python, function: 'usercode_pii:engine'}
  - {name: own, kind: python, function: 'usercode_pii:own'}
""")
    result = PipelineRunner(ws).run("p")

    assert result.status == "failed"
    errors = {a.task: a.error for a in StateStore(ws.state_url).attempts(result.run_id)}
    assert errors == {
        "engine": "ConversionException: Conversion Error: <message withheld: it may quote pii values> "
        "(column email, to INT32)",
        "own": "ValueError: <message withheld: it may quote pii values>",
    }
    for log in (ws.root / ".brickyard" / "logs" / result.run_id).glob("*.log"):
        text = log.read_text()
        assert "leak-me" not in text
        assert "Traceback (most recent call last)" in text and "usercode_pii.py" in text
