"""The Spark engine over Spark Connect: `spark: {remote: sc://host:15002}` in the config.

Example:

    spark:
      remote: sc://127.0.0.1:15002
      conf:
        spark.sql.shuffle.partitions: "8"

The session is a Spark Connect client (`pyspark.sql.connect`); the driver, executors and
their Python workers live with the server. Over Connect there is no `sparkContext`, no
`_jvm`, no broadcast variables and no accumulators, so the engine uses only the DataFrame
API: Arrow in and out (`toArrow`, `createDataFrame(arrow)`), `mapInArrow` for Python work
(the function and what it closes over travel with the plan), `observe` for counters.

brickyard's settings (`DEFAULTS` of `spark_session`) and the workspace's `spark.conf` are
set on the Connect session; the server's start-up settings (`spark.ui.*`, `spark.driver.*`)
cannot be, and belong to whoever starts the server. A workspace key the server refuses is
an error naming it (see docs/spark-connect.md).

The lake is read and written by path, as on a cluster: the server must see the lake at the
same path as brickyard does, and its Python workers must have brickyard installed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from brickyard.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

CONNECT_PACKAGES = "pip install 'brickyard[connect]'  (grpcio, grpcio-status, googleapis-common-protos, zstandard)"
# Tries of the first call to the server before giving up (about 4 s in all), instead of
# Spark Connect's default of retrying for over ten minutes.
FIRST_CALL_RETRIES = 4
# pyspark marks a process that made a Connect session with this variable, after which it
# refuses to start a local session and pyspark.ml takes the Connect path; brickyard removes
# it again when its Connect session stops (unless it was set before brickyard's).
CONNECT_MODE_VARIABLE = "SPARK_CONNECT_MODE_ENABLED"
# Settings read only when Spark starts: the server's business. Refused in `spark.conf`
# (a Connect server may accept them and ignore them).
STARTUP_SETTINGS = (
    "spark.master", "spark.submit.", "spark.driver.", "spark.executor.", "spark.ui.", "spark.jars",
    "spark.pyspark.", "spark.default.parallelism", "spark.cores.max", "spark.dynamicAllocation.",
    "spark.memory.", "spark.local.dir", "spark.connect.",
)
_mode_set_here = False


def is_connect(spark: Any) -> bool:
    """True when `spark` (a session, or anything with `.sparkSession`) is a Spark Connect
    client, which has no SparkContext."""
    session = getattr(spark, "sparkSession", spark)
    return type(session).__module__.startswith("pyspark.sql.connect")


def start_connect(remote: str, defaults: Mapping[str, str], conf: Mapping[str, str]) -> SparkSession:
    """A new Spark Connect session on `remote`, with brickyard's `defaults` where the
    server allows them and every key of the workspace's `conf`.

    Raises:
        SparkUnavailableError: the client packages are missing or the server does not answer.
        ConfigError: the server refuses a key of the workspace's `spark.conf`.
    """
    startup = [key for key in conf if key.startswith(STARTUP_SETTINGS)]
    if startup:
        raise ConfigError(
            f"spark.conf {', '.join(startup)}: start-up setting(s) of Spark, which a Spark Connect "
            "session cannot change",
            hint="give them to the Connect server where it starts (--conf on start-connect-server.sh), "
            "and remove them from spark.conf in brickyard.yaml",
        )
    global _mode_set_here
    _mode_set_here = _mode_set_here or CONNECT_MODE_VARIABLE not in os.environ
    try:
        session = _create(remote)
        _check_reachable(session, remote)
        for key, value in defaults.items():
            if key not in conf and not key.startswith(STARTUP_SETTINGS):
                _set(session, key, value, required=False)
        for key, value in conf.items():
            _set(session, key, value, required=True)
    except BaseException:
        _forget_connect_mode()
        raise
    return session


def stop_connect(session: SparkSession) -> None:
    """Stop a Connect session, and let this process start a local Spark session again."""
    try:
        session.stop()
    finally:
        _forget_connect_mode()


def _forget_connect_mode() -> None:
    global _mode_set_here
    if _mode_set_here:
        os.environ.pop(CONNECT_MODE_VARIABLE, None)
        _mode_set_here = False


def activate(session: SparkSession) -> SparkSession:
    """Make `session` the calling thread's active Connect session and return it.

    pyspark.ml over Connect finds its session as the thread's active one (a thread-local
    that only the thread which created the session has), and every task attempt runs in a
    thread of its own: without this, MLlib calls in a later task fail with a bare
    AssertionError."""
    holder = getattr(type(session), "_active_session", None)
    if holder is not None and getattr(holder, "session", None) is not session:
        holder.session = session
    return session


def current_connect_session() -> SparkSession | None:
    """brickyard's Spark session in this process when it is a Spark Connect client, else None."""
    from brickyard.engines.spark_session import current_session

    session = current_session()
    return session if session is not None and is_connect(session) else None


def load_pipeline_model(session: SparkSession, path: str) -> Any:
    """A saved pyspark.ml PipelineModel, read by the Connect server from `path` (a folder
    the server sees at that path)."""
    from pyspark.ml import PipelineModel

    activate(session)
    return PipelineModel.load(path)


def connect_alive(session: SparkSession) -> bool:
    """True while the Connect session has not been stopped."""
    try:
        return not bool(session.is_stopped)  # type: ignore[attr-defined]  # a Connect session's
    except Exception:
        return False


def _create(remote: str) -> SparkSession:
    from brickyard.engines.spark_session import SparkUnavailableError

    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise SparkUnavailableError(
            "engine spark needs pyspark, which is not installed", hint="pip install pyspark"
        ) from exc
    try:
        return SparkSession.builder.remote(remote).create()
    except ImportError as exc:
        raise SparkUnavailableError(
            f"spark.remote {remote} needs the Spark Connect client packages: {exc}", hint=CONNECT_PACKAGES
        ) from exc
    except Exception as exc:
        if type(exc).__name__ == "PySparkImportError":
            raise SparkUnavailableError(
                f"spark.remote {remote} needs the Spark Connect client packages: {_first_line(exc)}",
                hint=CONNECT_PACKAGES,
            ) from exc
        raise SparkUnavailableError(
            f"cannot open a Spark Connect session on {remote}: {_first_line(exc)}",
            hint="check spark.remote in brickyard.yaml (sc://host:port)",
        ) from exc


def _check_reachable(session: SparkSession, remote: str) -> None:
    """Ask the server its version with few retries, so a wrong address fails in seconds."""
    from pyspark.sql.connect.client.retries import DefaultPolicy

    from brickyard.engines.spark_session import SparkUnavailableError

    client = session.client
    policies = client.get_retry_policies()
    client.set_retry_policies([DefaultPolicy(max_retries=FIRST_CALL_RETRIES)])
    try:
        _ = session.version
    except Exception as exc:
        session.stop()
        raise SparkUnavailableError(
            f"the Spark Connect server at {remote} does not answer: {_first_line(exc)}",
            hint="start it (start-connect-server.sh, or spark-submit --class "
            "org.apache.spark.sql.connect.service.SparkConnectServer) and check spark.remote in brickyard.yaml",
        ) from exc
    finally:
        client.set_retry_policies(policies)


def _set(session: SparkSession, key: str, value: str, *, required: bool) -> None:
    try:
        session.conf.set(key, value)
    except Exception as exc:
        if not required:
            return  # a start-up setting of brickyard's defaults: the server's own value holds
        raise ConfigError(
            f"spark.conf {key} cannot be set over Spark Connect: {_first_line(exc)}",
            hint="set it where the Connect server starts (--conf on start-connect-server.sh), "
            "and remove it from spark.conf in brickyard.yaml",
        ) from exc


def _first_line(exc: BaseException) -> str:
    from brickyard.engines.spark_session import error_text

    return error_text(exc)

