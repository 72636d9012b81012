"""What the Spark engine tells Spark about paths, Python and the network, without a JVM."""

from __future__ import annotations

import sys

from brickyard.engines.spark_delta import spark_path
from brickyard.engines.spark_session import driver_network, executor_python


def test_local_lake_paths_get_an_explicit_file_scheme_and_urls_stay() -> None:
    assert spark_path("/data/lake/bronze/trips") == "file:///data/lake/bronze/trips"
    assert spark_path("/data/my lake/raw/*.csv") == "file:///data/my lake/raw/*.csv"
    assert spark_path("abfs://lake@acct.dfs.core.windows.net/bronze") == "abfs://lake@acct.dfs.core.windows.net/bronze"


def test_executors_run_the_configured_python_else_the_drivers(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    assert executor_python({}) == sys.executable
    assert executor_python({"spark.pyspark.python": "/opt/py/bin/python"}) == "/opt/py/bin/python"
    monkeypatch.setenv("PYSPARK_PYTHON", "/usr/bin/python3.11")
    assert executor_python({}) == "/usr/bin/python3.11"


def test_the_driver_listens_on_loopback_locally_and_on_the_route_to_a_cluster_master() -> None:
    assert driver_network("local[2]") == {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
    cluster = driver_network("spark://127.0.0.1:7077,127.0.0.2:7077")
    assert cluster["spark.driver.host"] == cluster["spark.driver.bindAddress"] == "127.0.0.1"
    assert (cluster["spark.driver.port"], cluster["spark.driver.blockManager.port"]) == ("40000", "40100")
    assert "spark.driver.host" not in driver_network("yarn")
