"""Two runs of one pipeline at once (`max_active_runs: 2`) load every row exactly once.

Each trial starts two real processes on one workspace; both wait at a barrier, then run
the same pipeline. One of them first lands one more input (a file, or new source rows),
so the two may list different inputs under the same batch number. Checked after both
runs: every input row is in the target or its quarantine exactly once.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from brickyard import Workspace
from brickyard.runtime import PipelineRunner

pytestmark = pytest.mark.slow

TRIALS = 20
ROWS_PER_FILE = 120
CONTRACT = """\
table: bronze.items
columns:
  - {name: id, type: bigint, nullable: false}
  - {name: value, type: double}
expectations:
  - {range: {column: value, min: 0}, action: drop}
"""
INGEST_PIPELINE = """\
max_active_runs: 2
tasks:
  - {name: load, kind: ingest, source: raw/items/*.csv, target: bronze.items, contract: contracts/bronze.items.yaml}
"""
SQL_PIPELINE = """\
max_active_runs: 2
tasks:
  - name: copy
    kind: sql
    query: SELECT id, value FROM bronze.items
    target: silver.items
    mode: append
    incremental: true
    expectations:
      - {sql: "value < 100", name: below_100, action: drop}
"""


def items_csv(path: Path, first_id: int, rows: int) -> None:
    """`rows` rows with ids from `first_id`; every 15th value does not parse, every 11th is
    negative (both quarantined at ingest)."""
    lines = ["id,value"]
    for i in range(rows):
        value = "oops" if i % 15 == 7 else f"{(-1 if i % 11 == 3 else 1) * (i % 1000) * 1.5}"
        lines.append(f"{first_id + i},{value}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def items(first_id: int, rows: int) -> pa.Table:
    return pa.table(
        {"id": pa.array(range(first_id, first_id + rows), pa.int64()),
         "value": pa.array([float(i % 1000) for i in range(rows)], pa.float64())}
    )


def land_late_input(ws: Workspace, kind: str) -> None:
    """What one of the two processes adds right before its run."""
    if kind == "ingest":
        items_csv(Path(ws.lake.location.uri("raw/items/late.csv")), 90_000, ROWS_PER_FILE)
    else:
        ws.lake.write("bronze.items", items(90_000, ROWS_PER_FILE))


def run_trials(folders: list[str], pipeline: str, kind: str, worker: int, barrier: Any, results: Any) -> None:
    """One process: for each workspace, wait for the other process, then run the pipeline."""
    for trial, folder in enumerate(folders):
        ws = Workspace.open(folder)
        runner = PipelineRunner(ws, poll_seconds=0.05)
        barrier.wait(timeout=120)
        try:
            if worker == 0:
                land_late_input(ws, kind)
            result = runner.run(pipeline, trigger="test")
            results.put((trial, worker, result.ok, result.error))
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            results.put((trial, worker, False, f"{type(exc).__name__}: {exc}"))


def run_concurrently(folders: list[str], pipeline: str, kind: str) -> list[tuple[int, int, bool, str | None]]:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    workers = [
        context.Process(target=run_trials, args=(folders, pipeline, kind, worker, barrier, results))
        for worker in range(2)
    ]
    for process in workers:
        process.start()
    found = [results.get(timeout=600) for _ in range(2 * len(folders))]
    for process in workers:
        process.join(timeout=60)
    return sorted(found)


def ids(ws: Workspace, table: str) -> list[int]:
    if not ws.lake.exists(table):
        return []
    return [int(v) for v in ws.lake.read(table, columns=["id"]).column("id").to_pylist()]


def failed_runs(results: list[tuple[int, int, bool, str | None]]) -> list[str]:
    return [f"trial {trial}, process {worker}: {error}" for trial, worker, ok, error in results if not ok]


def row_problems(trial: int, good: list[int], bad: list[int], expected: int) -> list[str]:
    """What is wrong with a trial's target rows (`good`) and quarantined rows (`bad`)."""
    found = []
    if len(good) != len(set(good)) or len(bad) != len(set(bad)) or set(good) & set(bad):
        found.append(
            f"trial {trial}: {len(good)} rows ({len(set(good))} distinct), "
            f"{len(bad)} quarantined ({len(set(bad))} distinct), {len(set(good) & set(bad))} in both"
        )
    if len(set(good) | set(bad)) != expected:
        found.append(f"trial {trial}: {len(set(good) | set(bad))} distinct rows landed, expected {expected}")
    return found


def workspace(tmp_path: Path, trial: int, pipeline: str, text: str) -> Workspace:
    ws = Workspace.init(tmp_path / f"trial{trial}")
    (ws.root / "pipelines" / f"{pipeline}.yaml").write_text(text, encoding="utf-8")
    (ws.root / "contracts").mkdir(exist_ok=True)
    (ws.root / "contracts" / "bronze.items.yaml").write_text(CONTRACT, encoding="utf-8")
    return ws


def test_two_concurrent_ingest_runs_load_every_file_once(tmp_path: Path) -> None:
    folders, expected = [], []
    for trial in range(TRIALS):
        ws = workspace(tmp_path, trial, "load", INGEST_PIPELINE)
        raw = Path(ws.lake.location.uri("raw/items"))
        files = ["a.csv", "b.csv"] if trial % 2 == 0 else ["a.csv", "b.csv", "c.csv"]
        if trial % 2:  # the table exists already: one file loaded by an earlier run
            items_csv(raw / "0.csv", 50_000, ROWS_PER_FILE)
            assert PipelineRunner(ws).run("load", trigger="test").ok
        for index, name in enumerate(files):
            items_csv(raw / name, (index + 1) * 10_000, ROWS_PER_FILE)
        folders.append(str(ws.root))
        expected.append(ROWS_PER_FILE * (len(files) + 1 + trial % 2))

    results = run_concurrently(folders, "load", "ingest")

    problems = failed_runs(results)
    for trial, folder in enumerate(folders):
        ws = Workspace.open(folder)
        good, bad = ids(ws, "bronze.items"), ids(ws, "bronze.items__quarantine")
        problems += row_problems(trial, good, bad, expected[trial])
    assert not problems, "\n".join(problems)


def test_two_concurrent_incremental_sql_appends_write_every_row_once(tmp_path: Path) -> None:
    folders, expected = [], []
    for trial in range(TRIALS):
        ws = workspace(tmp_path, trial, "copy", SQL_PIPELINE)
        ws.lake.write("bronze.items", items(0, ROWS_PER_FILE))
        if trial % 2:  # an earlier run recorded the source versions it read
            assert PipelineRunner(ws).run("copy", trigger="test").ok
        ws.lake.write("bronze.items", items(10_000, ROWS_PER_FILE))
        folders.append(str(ws.root))
        expected.append(3 * ROWS_PER_FILE)

    results = run_concurrently(folders, "copy", "sql")

    problems = failed_runs(results)
    for trial, folder in enumerate(folders):
        ws = Workspace.open(folder)
        good, bad = ids(ws, "silver.items"), ids(ws, "silver.items__quarantine")
        problems += row_problems(trial, good, bad, expected[trial])
        if sorted(good + bad) != sorted(ids(ws, "bronze.items")):
            problems.append(f"trial {trial}: silver and its quarantine are not bronze's rows")
    assert not problems, "\n".join(problems)
