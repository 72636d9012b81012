"""`validate_workspace` checks, for Spark as well as DuckDB, the SQL every kind carries: a
sql task's query, a train task's `query:`, an ingest's contract expectations. The workspace
is configured for DuckDB; the pipeline can still be run with `--engine spark`."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from brickyard import Workspace
from brickyard.runtime.validate import validate_workspace

DIFFERENT = "which brickyard cannot run the same on Spark"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    ws.lake.write("silver.trips", pa.table({"id": [1, 2], "fare": [3.5, 4.0], "distance": [1.0, 2.0]}))
    return ws


def messages(ws: Workspace, engine: str | None = None) -> list[str]:
    return [str(problem) for problem in validate_workspace(ws, engine)]


def test_a_train_query_spark_computes_differently_is_reported_on_spark_only(ws: Workspace) -> None:
    (ws.root / "pipelines" / "segments.yaml").write_text("""\
tasks:
  - name: segment
    kind: train
    query: SELECT id, fare, distance, quantile_cont(fare, 0.9) OVER () AS high FROM silver.trips
    features: [fare, distance]
    estimator: kmeans
    k: 2
    model_name: segments
""")
    assert messages(ws) == [
        "pipelines/segments.yaml:4: task 'segment' on engine 'spark': query uses quantile_cont(..., 0.9), "
        f"{DIFFERENT} (Spark interpolates between two values with one rounding more, so the last digit can differ; "
        "median, quantile_cont(x, 0.5) and quantile_disc run the same) (hint: rewrite it with constructs both "
        "engines compute alike, or run the task with engine: duckdb)"
    ]
    assert messages(ws, "duckdb") == []


def test_a_window_that_refines_a_named_window_runs_on_spark_as_validate_says(spark_workspace: Workspace) -> None:
    """Spark's parser refuses `OVER (w ROWS ...)` and `WINDOW w2 AS (w ...)`; validate passed
    them for Spark, and the run failed. The named windows are inlined, so the run gives DuckDB's rows."""
    ws = spark_workspace
    ws.lake.write("silver.trips", pa.table({"id": list(range(8)), "zone": [1, 1, 2, 2, 1, 2, 1, 2],
                                            "fare": [3, 4, 5, 6, 7, 8, 9, 10]}))
    (ws.root / "sql").mkdir(exist_ok=True)
    (ws.root / "sql" / "rolling.sql").write_text(
        "SELECT id, sum(fare) OVER (w ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS last3, avg(fare) OVER w2 AS around\n"
        "FROM silver.trips\n"
        "WINDOW w AS (PARTITION BY zone ORDER BY id), w2 AS (w ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING)\n"
    )
    (ws.root / "pipelines" / "rolling.yaml").write_text("""\
tasks:
  - name: rolling
    kind: sql
    sql: sql/rolling.sql
    target: gold.rolling
""")
    assert messages(ws, "spark") == []
    from brickyard.runtime.runner import PipelineRunner

    duck = sorted(ws.sql(ws.root.joinpath("sql/rolling.sql").read_text()).fetchall())
    result = PipelineRunner(ws).run("rolling", engine="spark")
    assert result.ok, result.error
    written = sorted(tuple(row.values()) for row in ws.lake.read("gold.rolling").to_pylist())
    assert written == duck and len(written) == 8


def test_an_ingest_contracts_expectation_spark_computes_differently_is_reported(ws: Workspace) -> None:
    raw = ws.root / "lake" / "raw" / "trips"
    raw.mkdir(parents=True)
    (raw / "a.csv").write_text("id,picked_up\n1,2024-01-07 10:00:00\n")
    (ws.root / "contracts" / "bronze.trips.yaml").write_text("""\
table: bronze.trips
columns:
  - {name: id, type: bigint}
  - {name: picked_up, type: timestamp}
expectations:
  - {sql: "dayofweek(picked_up) < 6 AND strftime(picked_up, '%u') <> '7'", action: drop}
""")
    (ws.root / "pipelines" / "land.yaml").write_text("""\
tasks:
  - name: land
    kind: ingest
    source: raw/trips/*.csv
    target: bronze.trips
    contract: contracts/bronze.trips.yaml
""")
    found = messages(ws)
    assert len(found) == 1 and found[0].startswith(
        "pipelines/land.yaml:2: task 'land' on engine 'spark': expectations on bronze.trips uses strftime(..., '%u'), "
        + DIFFERENT
    ), found
    assert messages(ws, "duckdb") == []
