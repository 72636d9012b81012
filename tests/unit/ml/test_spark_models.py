"""Spark-trained models used afterwards: an MLlib KMeans scored on Spark, reproduced on
Spark, and served on loopback without a Spark UI. Real Spark (local[2]), real MLflow.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from test_spark_kmeans import FEATURES, SEGMENT, blobs, run

from brickyard import Workspace

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SCORE = {
    "name": "score_trips", "kind": "score", "model": "taxi_segments/1",
    "source": {"table": "silver.taxi_trips"}, "target": "gold.trip_segments_scored", "keys": ["trip_id"],
}


@pytest.fixture
def trained(spark_workspace: Workspace, migrated_mlflow_db: Path) -> tuple[Workspace, Any]:
    shutil.copyfile(migrated_mlflow_db, spark_workspace.root / "mlflow.db")
    spark_workspace.lake.write("silver.taxi_trips", pa.Table.from_pandas(blobs(), preserve_index=False))
    return spark_workspace, run(spark_workspace, SEGMENT, "spark")


def test_an_mllib_model_scores_on_spark_with_the_clusters_training_assigned(trained: tuple[Workspace, Any]) -> None:
    ws, _ = trained
    context = run(ws, SCORE, "spark", run_id="20260101-000001-score")
    scored = ws.lake.read("gold.trip_segments_scored").to_pandas()
    assigned = ws.lake.read("gold.taxi_segments").to_pandas()
    assert context.metrics.rows_out == len(scored) == 2000
    assert list(scored.columns) == ["trip_id", "prediction", "model_name", "model_version", "scored_at", "score_date"]
    pairs = scored.merge(assigned, on="trip_id")
    assert len(pairs) == 2000 and (pairs["prediction"] == pairs["cluster"]).all()
    assert set(scored["model_version"]) == {"1"}
    staging = ws.lake.location.uri("staging")
    leftovers = [p for p in Path(staging).rglob("*") if p.is_file()] if Path(staging).exists() else []
    assert not leftovers, f"scoring left files in the lake's staging: {leftovers[:3]}"


def test_reproduce_of_a_spark_kmeans_run_retrains_on_spark(trained: tuple[Workspace, Any]) -> None:
    from brickyard.ml.reproduce import reproduce

    ws, context = trained
    (result,) = reproduce(ws, context.metrics.extra["mlflow_run_id"])
    assert {check.metric for check in result.checks} == {"silhouette", "inertia", "k"}
    assert result.matches, [(c.metric, c.logged, c.reproduced) for c in result.checks]
    assert result.inputs == {"silver.taxi_trips": 0}


def listening(pid: int) -> list[tuple[str, int]]:
    """The TCP addresses a process and its children listen on."""
    import psutil

    processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    found = []
    for process in processes:
        try:
            connections = process.net_connections(kind="tcp")
        except psutil.Error:
            continue
        found += [(c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN]
    return found


def loopback(address: str) -> bool:
    import ipaddress

    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def test_serving_an_mllib_model_listens_on_loopback_only_without_a_spark_ui(trained: tuple[Workspace, Any]) -> None:
    import httpx

    ws, _ = trained
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "brickyard.cli", "serve", "taxi_segments/1", "--no-auth", "--port", str(port)],
        cwd=ws.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert process.poll() is None, process.communicate()[0]
        trip = {"dataframe_records": [dict(zip(FEATURES, [15.0, 50.0, 2], strict=True))]}
        answer = httpx.post(f"http://127.0.0.1:{port}/invocations", json=trip, timeout=60)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["predictions"]) == 1
        addresses = listening(process.pid)
        assert (("127.0.0.1", port)) in addresses
        assert not [a for a in addresses if not loopback(a[0])], addresses
        assert not [a for a in addresses if a[1] == 4040], addresses
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def connect_workspace(folder: Path, remote: str, template: Path) -> Workspace:
    ws = Workspace.init(folder)
    text = ws.config_path.read_text(encoding="utf-8").replace("engine: duckdb\n", "")
    conf = '  conf:\n    spark.sql.shuffle.partitions: "2"\n'
    ws.config_path.write_text(text + f"engine: spark\nspark:\n  remote: {remote}\n{conf}", encoding="utf-8")
    shutil.copyfile(template, ws.root / "mlflow.db")
    return Workspace.open(ws.root)


def test_an_mllib_model_trained_over_spark_connect_scores_over_spark_connect(
    spark_connect: Any, migrated_mlflow_db: Path, tmp_path: Path
) -> None:
    """mlflow.pyfunc loads a `spark` flavor model through the JVM's Hadoop filesystem, which a
    Connect client does not have; the score task must still score with it over Connect."""
    from brickyard.engines.spark_session import stop_spark

    ws = connect_workspace(tmp_path / "ws", spark_connect.remote, migrated_mlflow_db)
    ws.lake.write("silver.taxi_trips", pa.Table.from_pandas(blobs(), preserve_index=False))
    try:
        run(ws, SEGMENT, "spark")
        context = run(ws, SCORE, "spark", run_id="20260101-000001-score")
    finally:
        stop_spark()  # the next Spark test starts its own local session
    scored = ws.lake.read("gold.trip_segments_scored").to_pandas()
    assigned = ws.lake.read("gold.taxi_segments").to_pandas()
    assert context.metrics.rows_out == len(scored) == 2000
    pairs = scored.merge(assigned, on="trip_id")
    assert len(pairs) == 2000 and (pairs["prediction"] == pairs["cluster"]).all()
