"""`brickyard validate`, `run`, `runs`, `run-show`, `logs` as real subprocesses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from brickyard import Workspace

pytestmark = pytest.mark.e2e

JOBS = """\
import time


def extract(context, rows):
    context.log.info("extracting %d rows", rows)
    context.metrics.rows_out = rows
    context.record_read("bronze.trips", 4)
    context.record_write("silver.trips", 9)
    total = 0
    for i in range(300_000):
        total += i * i
    return {"checksum": total % 97}


def explode(context):
    raise ValueError("the input is malformed")


def hang(context):
    time.sleep(120)
"""


def brickyard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("BRICKYARD_WORKSPACE", None)
    return subprocess.run(
        [sys.executable, "-m", "brickyard.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = Workspace.init(tmp_path / "ws").root
    (root / "jobs.py").write_text(JOBS)
    with (root / "brickyard.yaml").open("a") as config:
        config.write("pricing:\n  cpu_hour: 0.05\n")
    (root / "pipelines" / "daily.yaml").write_text("""\
tasks:
  - {name: extract, kind: python, function: 'jobs:extract', args: {rows: 42}}
  - {name: publish, kind: python, function: 'jobs:extract', args: {rows: 7}, depends_on: [extract]}
""")
    (root / "pipelines" / "broken.yaml").write_text("""\
tasks:
  - {name: explode, kind: python, function: 'jobs:explode'}
  - {name: after, kind: python, function: 'jobs:extract', args: {rows: 1}, depends_on: [explode]}
""")
    (root / "contracts" / "silver.trips.yaml").write_text("table: silver.trips\ncolumns:\n  - {name: id, type: bigint}\n")
    return root


def test_validate_lists_every_problem_then_passes_once_fixed(ws: Path) -> None:
    bad = ws / "pipelines" / "typos.yaml"
    bad.write_text("tasks:\n  - {name: a, kind: pyhton}\n  - {name: b, kind: python, function: 'jobs:nope', depends_on: [c]}\n")
    result = brickyard("validate", cwd=ws)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("pipelines/typos.yaml:2: unknown task kind 'pyhton' (hint: did you mean python") for line in lines)
    assert "pipelines/typos.yaml:3: task 'b' depends on unknown task 'c'" in lines
    assert any(line.startswith("pipelines/typos.yaml:3: task 'b': module 'jobs' has no attribute 'nope'") for line in lines)
    assert result.stderr.startswith("error: 3 problems found")
    bad.unlink()
    result = brickyard("validate", cwd=ws)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 pipelines, 1 contract valid" in result.stdout


def test_run_then_inspect_it_with_runs_run_show_and_logs(ws: Path) -> None:
    result = brickyard("run", "daily", cwd=ws)
    assert result.returncode == 0, result.stderr
    run_id = re.search(r"run (\d{8}-\d{6}-[0-9a-f]{6}) succeeded", result.stdout).group(1)  # type: ignore[union-attr]
    assert re.search(r"extract\s+│\s+succeeded\s+│\s+1\s+│.*│\s+42\s+│", result.stdout)

    failed = brickyard("run", "broken", "--full-refresh", cwd=ws)
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1
    assert failed.stderr.startswith("error: task 'explode' failed: ValueError: the input is malformed")
    assert re.search(r"after\s+│\s+skipped", failed.stdout)

    listing = brickyard("runs", cwd=ws)
    assert listing.returncode == 0
    assert re.search(rf"{run_id}\s+daily\s+succeeded\s+manual", listing.stdout)
    assert re.search(r"broken\s+failed\s+manual", listing.stdout)
    assert "broken" not in brickyard("runs", "daily", cwd=ws).stdout

    show = brickyard("run-show", run_id, cwd=ws)
    assert show.returncode == 0, show.stderr
    assert re.search(r"status\s+succeeded", show.stdout)
    assert re.search(r"cost\s+\d+\.\d{6} \(0\.05 per CPU-hour\)", show.stdout)
    assert re.search(r"extract\s+1\s+succeeded\s+[\d.]+ s\s+[\d.]+\s+0\s+42\s+\d+\.\d{6}", show.stdout)
    assert "extract#1 read: bronze.trips@v4" in show.stdout
    assert "extract#1 wrote: silver.trips@v9" in show.stdout
    assert "publish#1 metrics: checksum=" in show.stdout

    logs = brickyard("logs", run_id, cwd=ws)
    assert logs.returncode == 0
    assert "===== extract =====" in logs.stdout and "extracting 42 rows" in logs.stdout
    assert "extracting 7 rows" in logs.stdout
    only = brickyard("logs", run_id, "publish", cwd=ws)
    assert "extracting 7 rows" in only.stdout and "extracting 42" not in only.stdout
    missing = brickyard("logs", run_id, "publsh", cwd=ws)
    assert missing.returncode == 1 and "did you mean publish" in missing.stderr
    assert brickyard("run-show", "20990101-000000-000000", cwd=ws).stderr.startswith("error: no run")


def test_run_refuses_unknown_engines_and_pipelines(ws: Path) -> None:
    engine = brickyard("run", "daily", "--engine", "sparc", cwd=ws)
    assert engine.returncode == 2 and "sparc" in engine.stderr
    unknown = brickyard("run", "dialy", cwd=ws)
    assert unknown.returncode == 1 and "did you mean daily" in unknown.stderr


def test_a_timed_out_task_does_not_keep_the_command_alive(ws: Path) -> None:
    (ws / "pipelines" / "stuck.yaml").write_text("tasks:\n  - {name: hang, kind: python, function: 'jobs:hang', timeout_seconds: 0.5}\n")
    started = time.monotonic()
    result = brickyard("run", "stuck", cwd=ws)
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    assert result.stderr.strip() == "error: task 'hang' failed: timed out after 0.5 s"


DIRTY_TRIPS = "trip_id,fare\n1,10\n2,-2\n3,7.5\n4,\n5,3\n6,-1\n7,4\n8,5\n9,6\n10,\n"
TRIPS_CONTRACT = """\
table: bronze.trips
columns:
  - {name: trip_id, type: bigint}
  - {name: fare, type: double}
expectations:
  - {sql: "fare IS NULL OR fare >= 0", name: fare_not_negative, action: drop}
"""
TRIPS_PIPELINE = """\
tasks:
  - {name: load, kind: ingest, source: raw/trips/*.csv, target: bronze.trips, contract: contracts/bronze.trips.yaml}
  - name: clean
    kind: sql
    depends_on: [load]
    query: SELECT * FROM bronze.trips
    target: silver.trips
    expectations: [{sql: "fare IS NOT NULL", name: fare_present, action: drop}]
"""


def test_a_run_that_quarantines_rows_says_where_how_many_and_why(ws: Path) -> None:
    (ws / "lake" / "raw" / "trips").mkdir(parents=True)
    (ws / "lake" / "raw" / "trips" / "a.csv").write_text(DIRTY_TRIPS)
    (ws / "contracts" / "bronze.trips.yaml").write_text(TRIPS_CONTRACT)
    (ws / "pipelines" / "trips.yaml").write_text(TRIPS_PIPELINE)

    result = brickyard("run", "trips", cwd=ws)
    assert result.returncode == 0, result.stderr
    run_id = re.search(r"run (\S+) succeeded", result.stdout).group(1)  # type: ignore[union-attr]
    assert re.search(r"load\s+│\s+succeeded\s+│\s+1\s+│[^│]+│\s+10\s+│\s+8\s+│\s+2\s+│", result.stdout)
    assert re.search(r"clean\s+│\s+succeeded\s+│\s+1\s+│[^│]+│\s+8\s+│\s+6\s+│\s+2\s+│", result.stdout)
    summary = result.stdout[result.stdout.index(f"run {run_id} succeeded"):].splitlines()
    assert summary[1:6] == [
        "warning: 4 rows went to quarantine in this run:",
        "  bronze.trips__quarantine (task load, version 0): 2 rows",
        "    2  fare_not_negative",
        "  silver.trips__quarantine (task clean, version 0): 2 rows",
        "    2  fare_present",
    ]

    listing = brickyard("runs", cwd=ws)
    assert re.search(rf"{run_id}\s+trips\s+succeeded\s+manual\s+.*\s4\s*$", listing.stdout, re.MULTILINE), listing.stdout
    show = brickyard("run-show", run_id, cwd=ws)
    assert show.returncode == 0, show.stderr
    assert re.search(r"quarantined\s+4 rows", show.stdout)
    assert re.search(r"load\s+1\s+succeeded\s+[\d.]+ s\s+[\d.]+\s+10\s+8\s+2", show.stdout)
    assert "  silver.trips__quarantine (task clean, version 0): 2 rows" in show.stdout

    # Past max_quarantined the task fails before committing: the tables stay as they were.
    (ws / "pipelines" / "trips.yaml").write_text(TRIPS_PIPELINE + "    max_quarantined: 0.1\n")
    strict = brickyard("run", "trips", cwd=ws)
    assert strict.returncode == 1
    assert strict.stderr.startswith(
        "error: task 'clean' failed: 2 of 8 rows (25%) of silver.trips would be quarantined, past "
        "max_quarantined 0.1 (10%); nothing was written to silver.trips or silver.trips__quarantine "
        "(top reasons: fare_present (2))"
    ), strict.stderr
    lake = Workspace.open(ws).lake
    assert lake.version("silver.trips") == 0 and lake.version("silver.trips__quarantine") == 0
    assert "went to quarantine" not in strict.stdout  # nothing was quarantined by this run
    failed_id = re.search(r"run (\S+) failed", strict.stdout).group(1)  # type: ignore[union-attr]
    assert re.search(rf"{failed_id}\s+trips\s+failed\s+manual\s+.*\s0\s*$", brickyard("runs", cwd=ws).stdout, re.MULTILINE)
