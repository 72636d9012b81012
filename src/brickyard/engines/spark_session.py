"""The Spark session of the Spark engine: one per process, built from `spark:` in the config.

Settings that make Spark's results match the DuckDB engine's and keep its files readable
by delta-rs are applied before the workspace's own `spark.conf` (which may override them):
UTC session time, timestamps without time zone (as DuckDB's TIMESTAMP), Parquet timestamps
as INT64 microseconds (not INT96), no `_SUCCESS` marker files.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
from typing import TYPE_CHECKING

from brickyard.errors import BrickyardError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from brickyard.config.models import SparkConfig

DEFAULTS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.parquet.compression.codec": "snappy",
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
    "spark.hadoop.parquet.enable.summary-metadata": "false",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.memory": "2g",
}

DRIVER_PORT = 40000
BLOCK_MANAGER_PORT = 40100

_lock = threading.Lock()
_session: SparkSession | None = None
_settings: tuple[str, tuple[tuple[str, str], ...]] | None = None


class SparkUnavailableError(BrickyardError):
    """Spark cannot start here (no pyspark, no Java, or the master refused)."""


def spark_session(config: SparkConfig) -> SparkSession:
    """The process's Spark session for `config` (started on first use, then reused).

    Raises:
        SparkUnavailableError: pyspark or Java is missing, or the session cannot start.
    """
    global _session, _settings
    settings = (config.remote or config.master, tuple(sorted({**DEFAULTS, **config.conf}.items())))
    with _lock:
        if _session is not None and _settings == settings and _is_alive(_session):
            return _in_this_thread(_session)
        if _session is not None:
            _stop(_session)
            _session = None
        _session = _start_remote(config) if config.remote else _start(config.master, dict(settings[1]))
        _settings = settings
        return _in_this_thread(_session)


def model_session() -> SparkSession:
    """A Spark session for running Spark MLlib models in this process (`brickyard serve`):
    local[1], no Spark UI, listening on loopback only. MLflow's pyfunc loader uses the
    active session rather than making its own (which has a UI on 0.0.0.0:4040).

    Raises:
        SparkUnavailableError: as `spark_session`.
    """
    from brickyard.config.models import SparkConfig

    return spark_session(SparkConfig(master="local[1]"))


def current_session() -> SparkSession | None:
    """The process's Spark session if one is running (started by `spark_session`), else None."""
    with _lock:
        return _session if _session is not None and _is_alive(_session) else None


def stop_spark() -> None:
    """Stop the process's Spark session, if one is running."""
    global _session, _settings
    with _lock:
        if _session is not None:
            _stop(_session)
        _session, _settings = None, None


def spark_version() -> str | None:
    """pyspark's version, or None when it is not installed (without starting Spark)."""
    try:
        from importlib.metadata import version

        return version("pyspark")
    except Exception:
        return None


def _start(master: str, conf: dict[str, str]) -> SparkSession:
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise SparkUnavailableError(
            "engine spark needs pyspark, which is not installed", hint="pip install pyspark"
        ) from exc
    if not os.environ.get("JAVA_HOME") and not _on_path("java"):
        raise SparkUnavailableError(
            "engine spark needs Java 17 or newer, and no `java` is on PATH (nor JAVA_HOME set)",
            hint="install it, e.g. apt-get install openjdk-17-jre-headless",
        )
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    python = executor_python(conf)
    conf = {
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={_log_config()}",
        **driver_network(master),
        **conf,
        "spark.pyspark.python": python,
    }
    builder = SparkSession.builder.master(master).appName("brickyard")
    for key, value in conf.items():
        builder = builder.config(key, value)
    # pyspark warns about pandas 3 on import and logs every analysis error as JSON;
    # brickyard reports errors itself.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    try:
        session = builder.getOrCreate()
    except Exception as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SparkUnavailableError(
            f"cannot start Spark with master {master!r}: {text}",
            hint="check spark.master in brickyard.yaml and that the cluster is reachable",
        ) from exc
    session.sparkContext.setLogLevel("ERROR")
    # pyspark hands executors the Python of PYSPARK_PYTHON (else `python3` from their PATH)
    # with every Python function; it must be one that has brickyard and its packages.
    session.sparkContext.pythonExec = python
    return session


def executor_python(conf: dict[str, str]) -> str:
    """The Python that executors run for Python work (mapInArrow, UDFs):
    `spark.pyspark.python` from the config, else PYSPARK_PYTHON, else this interpreter
    (so every node needs brickyard's Python at that same path)."""
    return conf.get("spark.pyspark.python") or os.environ.get("PYSPARK_PYTHON") or sys.executable


def driver_network(master: str) -> dict[str, str]:
    """Where the driver listens and what it tells executors to call back to (defaults;
    `spark.conf` overrides each). Local masters: loopback only. A cluster master: the
    address of this machine's interface that routes to the master (Spark would otherwise
    pick the first LAN address, or a hostname executors may not resolve), bound to that
    address only, and fixed ports (each tried upwards `spark.port.maxRetries` times, 16 by
    default) so that a firewall can let executors in: 40000 for the driver's RPC, 40100
    for its block manager."""
    if master.startswith("local"):
        return {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
    network = {"spark.driver.port": str(DRIVER_PORT), "spark.driver.blockManager.port": str(BLOCK_MANAGER_PORT)}
    address = _address_towards(master)
    if address is not None:
        network.update({"spark.driver.host": address, "spark.driver.bindAddress": address})
    return network


def _address_towards(master: str) -> str | None:
    """This machine's IP address on the route to the master's host (no packet is sent),
    or None when the master URL names no host (yarn) or the host does not resolve."""
    import socket
    from urllib.parse import urlparse

    rest = master.split("://", 1)[-1].split(",")[0]  # spark://h1:7077,h2:7077: the first
    try:
        parsed = urlparse(rest if "://" in rest else f"spark://{rest}")  # k8s://https://host:6443
        if not parsed.hostname:
            return None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((parsed.hostname, parsed.port or 7077))
            return str(probe.getsockname()[0])
    except (OSError, ValueError):
        return None


def _in_this_thread(session: SparkSession) -> SparkSession:
    from brickyard.engines.spark_connect import activate, is_connect

    return activate(session) if is_connect(session) else session


def _stop(session: SparkSession) -> None:
    from brickyard.engines.spark_connect import is_connect, stop_connect

    if is_connect(session):
        stop_connect(session)
    else:
        session.stop()


def _start_remote(config: SparkConfig) -> SparkSession:
    """A Spark Connect session (`spark.remote`): see `brickyard.engines.spark_connect`."""
    from brickyard.engines.spark_connect import start_connect

    assert config.remote is not None
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    return start_connect(config.remote, DEFAULTS, config.conf)


def _is_alive(session: SparkSession) -> bool:
    from brickyard.engines.spark_connect import connect_alive, is_connect

    if is_connect(session):
        return connect_alive(session)
    try:
        return not session.sparkContext._jsc.sc().isStopped()
    except Exception:
        return False


def _on_path(program: str) -> bool:
    from shutil import which

    return which(program) is not None


def _log_config() -> str:
    from pathlib import Path

    return (Path(__file__).parent / "spark_log4j2.properties").as_uri()


def error_text(exc: BaseException) -> str:
    """One line saying what went wrong in Spark: the JVM exception's own message rather
    than py4j's "An error occurred while calling o77.load", without plan or stack."""
    import re

    java = getattr(exc, "java_exception", None)
    text = str(java.getMessage()) if java is not None else str(exc)
    text = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return re.sub(r"\s*SQLSTATE: \w+\s*", " ", text).strip()
