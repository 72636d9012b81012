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
    settings = (config.master, tuple(sorted({**DEFAULTS, **config.conf}.items())))
    with _lock:
        if _session is not None and _settings == settings and _is_alive(_session):
            return _session
        if _session is not None:
            _session.stop()
            _session = None
        _session = _start(config.master, dict(settings[1]))
        _settings = settings
        return _session


def stop_spark() -> None:
    """Stop the process's Spark session, if one is running."""
    global _session, _settings
    with _lock:
        if _session is not None:
            _session.stop()
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
    # Spark picks a LAN address for the driver unless told; local masters need none.
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # Python workers (mapInArrow, UDFs) run `python3` from PATH unless told: in local
        # mode they must be this interpreter, which has brickyard and its packages.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    conf = {"spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={_log_config()}", **conf}
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
    return session


def _is_alive(session: SparkSession) -> bool:
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
