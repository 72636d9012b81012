"""The demo pipelines on a real Spark cluster: a standalone master and worker on loopback.

The cluster is started from the installed pyspark package (`spark_cluster.py`); the
worker has a private /tmp with only the test's folder mounted back, as a second machine
that mounts the shared lake would (where the test runs as root). The pipelines run through
the `brickyard` command, as a user runs them, with `spark: {master: spark://...}`.

Proved here: executors run the Python the workspace names (`spark.pyspark.python`), or the
driver's own by default (no `No module named 'brickyard'`); the demo tables come out with
the same row counts as on DuckDB; an MLlib model trained on the cluster is registered with
its files (MLflow stages it under the lake, not in a node's /tmp), loads, and scores on
Spark with the clusters it assigned; `reproduce` retrains it on Spark and matches.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import brickyard
from spark_cluster import StandaloneCluster

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.slow]

ROWS = 2_000
PIPELINES = ("taxi_trips", "taxi_segmentation", "titanic")
TABLES = (
    "bronze.taxi_trips", "bronze.taxi_trips__quarantine", "silver.taxi_trips", "silver.taxi_trips__quarantine",
    "gold.taxi_daily", "gold.taxi_segment_profile", "gold.taxi_segments", "gold.titanic_predictions",
)
CHECKS = """\
description: An MLlib model and a scikit-learn model scored on the cluster.
tasks:
  - name: score_segments
    kind: score
    model: taxi_segments/1
    source: {table: silver.taxi_trips}
    target: gold.trip_segments_scored
    keys: [trip_id]
  - name: rescore_passengers
    kind: score
    model: titanic@champion
    source: {table: bronze.titanic}
    target: gold.titanic_rescored
    keys: [PassengerId]
"""


class Silent:
    def step(self, title: str) -> None: ...
    def say(self, text: str) -> None: ...
    def table(self, columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...


def demo_workspace(folder: Path) -> Any:
    from brickyard import Workspace
    from brickyard.demo.context import DemoContext
    from brickyard.demo.pipelines import install_workspace_files, seed_passengers_database
    from brickyard.demo.runner import land_raw_files

    ws = Workspace.init(folder)
    context = DemoContext(ws, ROWS, 42, Silent())
    land_raw_files(context)
    install_workspace_files(context)
    seed_passengers_database(context)
    return ws


def use_cluster(ws: Any, master: str, conf: dict[str, str]) -> None:
    lines = [f"engine: spark\nspark:\n  master: {master}\n  conf:\n"]
    lines += [f"    {key}: {json.dumps(value)}\n" for key, value in conf.items()]
    text = ws.config_path.read_text(encoding="utf-8").replace("engine: duckdb\n", "")
    ws.config_path.write_text(text + "".join(lines), encoding="utf-8")


def recording_python(folder: Path) -> tuple[Path, Path]:
    """A Python for the executors that notes each start in a file, then runs this Python."""
    marker = folder / "executor-python-used"
    script = folder / "executor-python"
    script.write_text(f'#!/bin/sh\necho "$$" >> "{marker}"\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
    script.chmod(0o755)
    return script, marker


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    started = StandaloneCluster.start(tmp_path_factory.mktemp("cluster"))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def ran(cluster: StandaloneCluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo pipelines, once on the cluster and once on DuckDB for reference."""
    from brickyard.runtime import PipelineRunner

    reference = demo_workspace(tmp_path_factory.mktemp("duckdb") / "ws")
    for pipeline in PIPELINES:
        assert PipelineRunner(reference).run(pipeline, engine="duckdb", trigger="test").ok

    ws = demo_workspace(cluster.shared / "ws")
    python, marker = recording_python(cluster.shared)
    use_cluster(ws, cluster.url, {"spark.pyspark.python": str(python), "spark.sql.shuffle.partitions": "2"})
    outputs = {}
    for pipeline in PIPELINES:
        done = brickyard("run", pipeline, cwd=ws.root)
        assert done.returncode == 0, f"{pipeline}:\n{done.stdout}\n{done.stderr}\n{cluster.log_tail()}"
        outputs[pipeline] = done.stdout
    return {"ws": ws, "reference": reference, "marker": marker, "outputs": outputs}


def test_demo_pipelines_run_on_the_cluster_as_on_duckdb(ran: dict[str, Any]) -> None:
    ws, reference = ran["ws"], ran["reference"]
    for table in TABLES:
        assert ws.lake.read(table).num_rows == reference.lake.read(table).num_rows > 0, table
    assert ws.lake.read("gold.titanic_predictions").num_rows == 891


def test_executors_run_the_python_the_workspace_names(ran: dict[str, Any]) -> None:
    marker: Path = ran["marker"]
    assert marker.exists() and marker.read_text().split(), "no executor started spark.pyspark.python"


def test_mllib_model_is_registered_with_its_files_and_scores_on_the_cluster(ran: dict[str, Any], cluster: StandaloneCluster) -> None:
    import pyarrow.compute as pc

    ws = ran["ws"]
    (ws.root / "pipelines" / "cluster_checks.yaml").write_text(CHECKS, encoding="utf-8")
    # The default: executors run the driver's own Python (which has brickyard).
    use_cluster(ws, cluster.url, {"spark.sql.shuffle.partitions": "2"})
    model_files = [p for p in (ws.root / "mlartifacts").rglob("sparkml/stages/*/data/*.parquet") if p.stat().st_size]
    assert model_files, "the registered MLlib model has no data files"

    done = brickyard("run", "cluster_checks", cwd=ws.root)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{cluster.log_tail()}"

    scored = ws.lake.read("gold.trip_segments_scored")
    assigned = ws.lake.read("gold.taxi_segments")
    assert scored.num_rows == assigned.num_rows
    by_trip = dict(zip(assigned.column("trip_id").to_pylist(), assigned.column("cluster").to_pylist(), strict=True))
    predictions = scored.column("prediction").cast("int64").to_pylist()
    differ = [t for t, p in zip(scored.column("trip_id").to_pylist(), predictions, strict=True) if by_trip[t] != p]
    assert not differ, f"{len(differ)} trips scored into another cluster than training assigned"
    assert ws.lake.read("gold.titanic_rescored").num_rows == 891
    assert pc.all(pc.is_valid(ws.lake.read("gold.titanic_rescored").column("probability"))).as_py()


def test_reproduce_retrains_the_spark_kmeans_on_spark(ran: dict[str, Any]) -> None:
    ws = ran["ws"]
    run_id = ran["outputs"]["taxi_segmentation"].split("run ", 1)[1].split()[0]
    done = brickyard("reproduce", run_id, cwd=ws.root)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "REPRODUCED" in done.stdout
