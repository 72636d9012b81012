"""The demo reports each pipeline run as `brickyard run` does, quarantined rows included."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from brickyard import Workspace
from brickyard.demo.context import DemoContext
from brickyard.demo.pipelines import run_pipeline


class Recorder:
    """A demo reporter that keeps what it was told."""

    def __init__(self) -> None:
        self.said: list[str] = []
        self.tables: list[tuple[list[str], list[list[Any]]]] = []

    def step(self, title: str) -> None:
        self.said.append(title)

    def say(self, text: str) -> None:
        self.said.append(text)

    def table(self, columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.tables.append((list(columns), [list(row) for row in rows]))


def test_a_demo_run_shows_the_rows_each_task_quarantined_and_why(workspace: Workspace) -> None:
    workspace.lake.write("bronze.trips", pa.table({"id": [1, 2, 3], "fare": [1.0, -1.0, None]}))
    (workspace.root / "pipelines" / "clean.yaml").write_text(
        "tasks:\n"
        "  - name: clean\n"
        "    kind: sql\n"
        "    query: SELECT * FROM bronze.trips\n"
        "    target: silver.trips\n"
        "    expectations: [{sql: 'fare >= 0', name: fare_not_negative, action: drop}]\n"
        "  - {name: copy, kind: sql, query: SELECT * FROM silver.trips, target: gold.trips, depends_on: [clean]}\n"
    )
    recorder = Recorder()
    run_pipeline(DemoContext(workspace, rows=0, seed=0, report=recorder), "clean")

    [(columns, rows)] = recorder.tables
    assert columns == ["task", "status", "seconds", "rows in", "rows out", "quarantined"]
    assert [(row[0], row[1], row[3], row[4], row[5]) for row in rows] == [
        ("clean", "succeeded", 3, 1, 2), ("copy", "succeeded", 1, 1, None),
    ]
    summary = recorder.said[recorder.said.index("  2 rows went to quarantine in this run:"):]
    assert summary[:3] == [
        "  2 rows went to quarantine in this run:",
        "    silver.trips__quarantine (task clean, version 0): 2 rows",
        "      2  fare_not_negative",
    ]


def test_without_lightgbm_the_demo_stops_before_any_step_and_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from brickyard.demo.runner import run_demo
    from brickyard.errors import BrickyardError

    monkeypatch.setitem(sys.modules, "lightgbm", None)  # `import lightgbm` raises ImportError
    recorder = Recorder()
    with pytest.raises(BrickyardError, match="the demo tunes lightgbm, which cannot be imported here") as caught:
        run_demo(tmp_path / "demo", rows=100, report=recorder)  # type: ignore[arg-type]
    assert "pip install 'brickyard[ml]'" in str(caught.value)
    assert recorder.said == [] and not (tmp_path / "demo").exists()
