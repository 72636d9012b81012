"""`brickyard validate` checks a task's SQL for every engine it may run on, not only the
configured one: with `engine: duckdb`, SQL that Spark would compute differently is reported
(a pipeline can be run with `--engine spark`); `--engine` narrows the check to one engine.
No Spark session is started: the check translates the SQL."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from cli_helpers import brickyard

from brickyard import Workspace

pytestmark = pytest.mark.e2e

PIPELINE = """\
tasks:
  - name: gold
    kind: sql
    query: >
      SELECT id, date_diff('decade', started_at, ended_at) AS decades, dayname(started_at) AS day
      FROM bronze.trips
    target: gold.trips
"""


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    assert "engine: duckdb" in ws.config_path.read_text()
    stamps = pa.array([0, 10**15], pa.int64()).cast(pa.timestamp("us"))
    ws.lake.write("bronze.trips", pa.table({"id": [1, 2], "started_at": stamps, "ended_at": stamps}))
    (ws.root / "pipelines" / "trips.yaml").write_text(PIPELINE)
    return ws


def test_validate_reports_what_spark_would_compute_differently_with_duckdb_configured(ws: Workspace) -> None:
    result = brickyard("validate", cwd=ws.root)
    assert result.returncode == 1
    assert (
        "pipelines/trips.yaml:2: task 'gold' on engine 'spark': query uses date_diff('decade', ...), "
        "which brickyard cannot run the same on Spark" in result.stdout
    )
    assert "1 problem found" in result.stderr + result.stdout


def test_validate_engine_duckdb_checks_duckdb_only_and_engine_spark_spark(ws: Workspace) -> None:
    assert brickyard("validate", "--engine", "duckdb", cwd=ws.root).returncode == 0
    on_spark = brickyard("validate", "--engine", "spark", cwd=ws.root)
    assert on_spark.returncode == 1
    assert "task 'gold': query uses date_diff('decade', ...)" in on_spark.stdout
    assert "spark-warehouse" not in {path.name for path in ws.root.iterdir()}
