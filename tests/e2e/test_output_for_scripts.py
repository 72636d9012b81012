"""Output a script can read: `--format json|csv` on the listing commands, tables never cut
when stdout is not a terminal, `--version`, the cost in `run-show`, and `run` on a pipeline
that does not load."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from brickyard import Workspace

pytestmark = pytest.mark.e2e

LONG_TABLE = "bronze.a_table_name_longer_than_thirty_two_characters"
LONG_PIPELINE = "a_pipeline_with_a_long_descriptive_name"


def brickyard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the command with stdout a pipe and no COLUMNS: as a script would."""
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES", "BRICKYARD_WORKSPACE")}
    return subprocess.run(
        [sys.executable, "-m", "brickyard.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = Workspace.init(tmp_path_factory.mktemp("scripts") / "ws").root
    (root / "pipelines" / f"{LONG_PIPELINE}.yaml").write_text(
        "tasks:\n"
        "  - name: build_a_table_whose_name_is_long\n"
        "    kind: sql\n"
        "    query: SELECT range AS id, 'row ' || range AS label FROM range(1234)\n"
        f"    target: {LONG_TABLE}\n"
    )
    result = brickyard("run", LONG_PIPELINE, cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    return root


def run_id(ws: Path) -> str:
    return json.loads(brickyard("runs", "--format", "json", cwd=ws).stdout)[0]["id"]


def test_version() -> None:
    result = brickyard("--version", cwd=Path.cwd())
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"brickyard \d+\.\d+\.\d+\S*\n", result.stdout)


def test_tables_are_never_cut_without_a_terminal(ws: Path) -> None:
    tables = brickyard("tables", cwd=ws)
    assert tables.returncode == 0, tables.stderr
    assert LONG_TABLE in tables.stdout and "1234" in tables.stdout
    runs = brickyard("runs", cwd=ws)
    assert re.search(rf"{LONG_PIPELINE}\s+succeeded\s+manual", runs.stdout), runs.stdout
    show = brickyard("run-show", run_id(ws), cwd=ws)
    assert re.search(r"build_a_table_whose_name_is_long\s+1\s+succeeded", show.stdout), show.stdout
    assert "…" not in tables.stdout + runs.stdout + show.stdout


def test_tables_describe_history_as_json_and_csv(ws: Path) -> None:
    listed = json.loads(brickyard("tables", "--format", "json", cwd=ws).stdout)
    assert [(t["table"], t["rows"], t["version"]) for t in listed] == [(LONG_TABLE, 1234, 0)]
    assert isinstance(listed[0]["size_bytes"], int)
    rows = list(csv.DictReader(io.StringIO(brickyard("tables", "--format", "csv", cwd=ws).stdout)))
    assert rows[0]["table"] == LONG_TABLE and rows[0]["rows"] == "1234"

    described = json.loads(brickyard("describe", LONG_TABLE, "--format", "json", cwd=ws).stdout)
    assert described["table"] == LONG_TABLE and described["rows"] == 1234
    assert [c["name"] for c in described["columns"]] == ["id", "label"]
    columns = list(csv.DictReader(io.StringIO(brickyard("describe", LONG_TABLE, "-f", "csv", cwd=ws).stdout)))
    assert [c["column"] for c in columns] == ["id", "label"]

    history = json.loads(brickyard("history", LONG_TABLE, "--format", "json", cwd=ws).stdout)
    assert [entry["version"] for entry in history] == [0]
    assert history[0]["operation"] in ("CREATE TABLE", "WRITE")
    lines = list(csv.DictReader(io.StringIO(brickyard("history", LONG_TABLE, "--format", "csv", cwd=ws).stdout)))
    assert lines[0]["version"] == "0"


def test_runs_and_run_show_as_json_and_csv(ws: Path) -> None:
    listed = json.loads(brickyard("runs", "--format", "json", cwd=ws).stdout)
    assert listed[0]["pipeline"] == LONG_PIPELINE and listed[0]["status"] == "succeeded"
    assert isinstance(listed[0]["duration_seconds"], float)
    rows = list(csv.DictReader(io.StringIO(brickyard("runs", "--format", "csv", cwd=ws).stdout)))
    assert rows[0]["id"] == listed[0]["id"]

    shown = json.loads(brickyard("run-show", listed[0]["id"], "--format", "json", cwd=ws).stdout)
    assert shown["run"]["status"] == "succeeded"
    assert shown["attempts"][0]["task"] == "build_a_table_whose_name_is_long"
    assert shown["attempts"][0]["rows_out"] == 1234
    assert shown["attempts"][0]["writes"] == {LONG_TABLE: 0}
    assert shown["cpu_seconds"] > 0
    attempts = list(csv.DictReader(io.StringIO(brickyard("run-show", listed[0]["id"], "-f", "csv", cwd=ws).stdout)))
    assert attempts[0]["task"] == "build_a_table_whose_name_is_long" and attempts[0]["rows_out"] == "1234"


def test_run_show_prices_cpu_seconds_at_the_configured_rate(ws: Path, tmp_path: Path) -> None:
    shown = brickyard("run-show", run_id(ws), cwd=ws)
    priced = json.loads(brickyard("run-show", run_id(ws), "--format", "json", cwd=ws).stdout)
    rate = Workspace.open(ws).config.pricing.cpu_hour
    assert rate is not None, "a new workspace's brickyard.yaml sets pricing.cpu_hour"
    assert priced["cost"] == pytest.approx(priced["cpu_seconds"] / 3600 * rate)
    assert re.search(rf"cost\s+\d+\.\d{{6}} \({rate:g} per CPU-hour\)", shown.stdout), shown.stdout

    unpriced = Workspace.init(tmp_path / "unpriced").root
    config = unpriced / "brickyard.yaml"
    config.write_text(re.sub(r"(?m)^pricing:\n(  .*\n)+", "", config.read_text()))
    (unpriced / "pipelines" / "one.yaml").write_text("tasks:\n  - {name: one, kind: sql, query: SELECT 1 AS x, target: bronze.one}\n")
    assert brickyard("run", "one", cwd=unpriced).returncode == 0
    shown = brickyard("run-show", run_id(unpriced), cwd=unpriced)
    assert re.search(r"cost\s+not priced: set pricing\.cpu_hour in brickyard\.yaml", shown.stdout), shown.stdout


def test_run_of_a_pipeline_that_does_not_load_prints_the_error_only(ws: Path) -> None:
    (ws / "pipelines" / "broken.yaml").write_text(
        "tasks:\n  - name: a\n    kind: sql\n    query: SELECT 1 AS x\n    target: bronze.x\n    bogus: 1\n"
    )
    try:
        result = brickyard("run", "broken", cwd=ws)
    finally:
        (ws / "pipelines" / "broken.yaml").unlink()
    assert result.returncode == 1
    assert result.stdout == "", result.stdout
    assert result.stderr.startswith("error: ") and "broken.yaml:6" in result.stderr and "bogus" in result.stderr


def test_schema_command_prints_the_json_schema_and_the_reference(tmp_path: Path) -> None:
    from brickyard.tasks.reference import pipeline_schema, pipelines_markdown

    printed = brickyard("schema", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout) == pipeline_schema()
    markdown = brickyard("schema", "--format", "markdown", cwd=tmp_path)
    assert markdown.stdout == pipelines_markdown()
