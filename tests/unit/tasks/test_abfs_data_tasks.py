"""The data task kinds on a lake in Azure storage (abfs://), for real against Azurite."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from brickyard import Workspace
from brickyard.core.pipeline import PipelineSpec
from brickyard.tasks import get_kind
from brickyard.tasks.base import TaskContext

pytestmark = pytest.mark.azurite
SAMPLE = Path(__file__).resolve().parents[3] / "src" / "brickyard" / "demo" / "data" / "nyc_taxi_2017_sample.csv"


def run(ws: Workspace, tasks: list[dict[str, Any]], name: str, run_id: str) -> TaskContext:
    spec = PipelineSpec.model_validate({"name": "p", "tasks": tasks})
    task = spec.task(name)
    kind = get_kind(task.kind)
    context = TaskContext(ws, spec, task, run_id, 1, False, logging.getLogger(name))
    kind.run(kind.Options.model_validate(task.options), context)
    return context


def test_ingest_sql_and_expect_on_abfs(abfs_workspace: Workspace) -> None:
    ws = abfs_workspace
    fs = ws.lake.location.filesystem
    fs.pipe(ws.lake.location.fs_path("raw/taxi/2017_sample.csv"), SAMPLE.read_bytes())
    (ws.root / "contracts").mkdir(exist_ok=True)
    (ws.root / "contracts" / "bronze.taxi.yaml").write_text(
        "columns:\n  - {name: trip_id, source: column00, type: bigint}\n"
        "  - {name: pickup_at, source: tpep_pickup_datetime, type: timestamp, format: '%m/%d/%Y %H:%M'}\n"
        "  - {name: fare_amount, type: double}\n"
        "expectations:\n  - {range: {column: fare_amount, min: 0}, action: drop}\n"
    )
    tasks = [
        {"name": "ingest", "kind": "ingest", "source": "raw/taxi/*.csv", "target": "bronze.taxi", "contract": "bronze.taxi"},
        {"name": "silver", "kind": "sql", "query": "SELECT trip_id, pickup_at, fare_amount FROM bronze.taxi",
         "target": "silver.taxi", "mode": "append", "incremental": True},
        {"name": "check", "kind": "expect", "table": "silver.taxi",
         "expectations": [{"range": {"column": "fare_amount", "max": 50}, "action": "drop"}]},
    ]

    first = run(ws, tasks, "ingest", "r1")
    assert first.metrics.rows_out == 998
    (bad,) = ws.lake.read("bronze.taxi__quarantine").to_pylist()
    assert (bad["_source_file"], bad["_line"]) == ("raw/taxi/2017_sample.csv", 316)
    assert run(ws, tasks, "ingest", "r2").metrics.rows_in == 0

    assert run(ws, tasks, "silver", "r1").metrics.rows_out == 998
    assert run(ws, tasks, "silver", "r2").metrics.rows_out == 0
    dropped = run(ws, tasks, "check", "r1").metrics.extra["quarantined_rows"]
    assert dropped > 0
    assert ws.lake.read("silver.taxi").num_rows == 998 - dropped
    assert ws.lake.read("silver.taxi__quarantine").num_rows == dropped


def test_empty_files_and_malformed_lines_on_abfs(abfs_workspace: Workspace) -> None:
    from brickyard.errors import SqlError
    from brickyard.tasks.ingest import IngestError

    ws = abfs_workspace
    fs, location = ws.lake.location.filesystem, ws.lake.location
    fs.pipe(location.fs_path("raw/x/a.csv"), b"a,b,c\n1,2,3\n")
    fs.pipe(location.fs_path("raw/x/blank.csv"), b"\n")
    fs.pipe(location.fs_path("raw/x/empty.csv"), b"")
    tasks = [{"name": "load", "kind": "ingest", "source": "raw/x/*.csv", "target": "bronze.x"}]
    context = run(ws, tasks, "load", "r1")
    assert context.metrics.extra["skipped_files"] == [
        {"path": "raw/x/blank.csv", "reason": "empty file"},
        {"path": "raw/x/empty.csv", "reason": "empty file"},
    ]
    assert ws.lake.read("bronze.x").num_rows == 1

    fs.pipe(location.fs_path("raw/x/b.csv"), b"a,b,c\n1,2,3\n4,5,6,7\n8,9,10\n")
    with pytest.raises(IngestError) as caught:
        run(ws, tasks, "load", "r2")
    assert caught.value.message == "task load: raw/x/b.csv:3: 4 fields where 3 were expected: '4,5,6,7'; nothing was loaded"
    with pytest.raises(SqlError) as caught, ws.engine.errors():
        ws.sql("SELECT * FROM read_csv('raw/x/b.csv', delim=',')").fetchall()
    assert caught.value.message == "raw/x/b.csv:3: 4 fields where 3 were expected: '4,5,6,7'"
