"""The Spark engine over Spark Connect (`spark: {remote: sc://...}`): the config, the
errors a user meets, and the parts that used the JVM and now do without it. The demo's
pipelines over a real Connect server are in tests/unit/demo/test_spark_connect_demo.py."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from brickyard.config.models import SparkConfig
from brickyard.errors import BrickyardError, ConfigError


def connect_workspace(folder: Path, remote: str, conf: dict[str, str] | None = None) -> Any:
    from brickyard import Workspace

    ws = Workspace.init(folder)
    text = ws.config_path.read_text(encoding="utf-8").replace("engine: duckdb\n", "")
    lines = [f"    {key}: \"{value}\"" for key, value in (conf or {}).items()]
    extra = "  conf:\n" + "\n".join(lines) + "\n" if lines else ""
    ws.config_path.write_text(text + f"engine: spark\nspark:\n  remote: {remote}\n{extra}", encoding="utf-8")
    return Workspace.open(ws.root)


def test_remote_must_be_a_connect_url_and_excludes_master() -> None:
    assert SparkConfig(remote="sc://127.0.0.1:15002").remote == "sc://127.0.0.1:15002"
    with pytest.raises(ValueError, match="not a Spark Connect URL; write it as sc://host:15002"):
        SparkConfig(remote="http://127.0.0.1:15002")
    with pytest.raises(ValueError, match="set either master .* or remote"):
        SparkConfig(master="local[2]", remote="sc://127.0.0.1:15002")


def test_a_server_that_does_not_answer_fails_in_seconds_with_a_hint(tmp_path: Path) -> None:
    from brickyard.engines.spark_session import SparkUnavailableError, stop_spark
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ws = connect_workspace(tmp_path / "ws", f"sc://127.0.0.1:{port}")
    started = time.monotonic()
    try:
        with pytest.raises(SparkUnavailableError) as caught:
            ws.spark.spark  # noqa: B018 - starting the session is the test
    finally:
        stop_spark()
    assert time.monotonic() - started < 60
    assert "the Spark Connect server at sc://127.0.0.1:" in str(caught.value)
    assert "does not answer" in str(caught.value)
    assert "start-connect-server.sh" in (caught.value.hint or "")


@pytest.mark.slow
def test_a_server_setting_in_spark_conf_is_an_error_naming_it(spark_connect: Any, tmp_path: Path) -> None:
    from brickyard.engines.spark_session import stop_spark

    ws = connect_workspace(tmp_path / "ws", spark_connect.remote, {"spark.default.parallelism": "2"})
    try:
        with pytest.raises(ConfigError) as caught:
            ws.spark.spark  # noqa: B018
    finally:
        stop_spark()
    assert "spark.conf spark.default.parallelism: start-up setting(s) of Spark" in str(caught.value)
    assert "--conf" in (caught.value.hint or "")


@pytest.mark.slow
def test_sql_and_a_checked_write_run_over_connect(spark_connect: Any, tmp_path: Path) -> None:
    """`brickyard sql --engine spark`'s path and the engine's table write, no SparkContext."""
    from brickyard.engines.spark_connect import is_connect
    from brickyard.engines.spark_delta import read_table, write_table
    from brickyard.engines.spark_session import stop_spark

    ws = connect_workspace(tmp_path / "ws", spark_connect.remote, {"spark.sql.shuffle.partitions": "2"})
    ws.lake.write("bronze.trips", pa.table({"id": [1, 2, 3], "fare": [5.0, 7.5, None]}))
    try:
        engine = ws.spark
        assert is_connect(engine.spark)
        frame = engine.dataframe("SELECT id, round(coalesce(fare, 0) * 1.5, 1) AS paid FROM bronze.trips")
        version = write_table(ws.lake, "silver.trips", frame, transaction=("connect-test", 1))
        again = write_table(ws.lake, "silver.trips", frame, transaction=("connect-test", 1))
        shown = engine.to_arrow(read_table(engine.spark, ws.lake, "silver.trips")).sort_by("id").to_pylist()
        with pytest.raises(BrickyardError, match="failed on Spark"):
            engine.dataframe("SELECT no_such_column FROM bronze.trips")
    finally:
        stop_spark()
    assert version == again == 0  # the retried batch was recognised, not written twice
    assert ws.lake.read("silver.trips").num_rows == 3
    assert [(row["id"], float(row["paid"])) for row in shown] == [(1, 7.5), (2, 11.3), (3, 0.0)]


@pytest.mark.slow
def test_a_local_session_starts_after_a_connect_session(spark_connect: Any, spark_workspace: Any, tmp_path: Path) -> None:
    """pyspark marks a process that made a Connect session and then refuses local sessions;
    stopping brickyard's Connect session lifts the mark (one process may serve workspaces
    of both kinds, e.g. `brickyard server`)."""
    from brickyard.engines.spark_connect import is_connect
    from brickyard.engines.spark_session import stop_spark

    remote = connect_workspace(tmp_path / "remote", spark_connect.remote)
    try:
        assert remote.spark.spark.range(3).count() == 3
        assert is_connect(remote.spark.spark)
        local = spark_workspace.spark.spark  # stops the Connect session, starts local[2]
        assert not is_connect(local)
        assert local.range(4).count() == 4
    finally:
        stop_spark()


ODD_NAMES = [
    "/lake/raw/a b.csv", "/lake/raw/x%20y.csv", "/lake/raw/é ü.csv", "/lake/raw/a#b?c.csv",
    "/lake/raw/[x]{y}.csv", "/lake/raw/a+b=c,d;e@f$g&h.csv", "/lake//raw//double/", "/lake/./a/../b.csv",
    "file:///lake/q r.csv", "file:/lake/s.csv", "/lake/nb\u00a0sp.csv", "/lake/emoji😀.csv", "/lake/tab\tx.csv",
    "/lake/quote\"'`^|\\.csv", "/lake/\u0085ctl.csv", "/lake/中文/文件.csv", "/lake/a:b.csv",
    "abfs://c@acc.dfs.core.windows.net/raw/a b.csv", "/lake/\u200bz.csv", "/lake/\u3000ideo.csv",
]


def test_file_paths_for_spark_are_computed_as_hadoop_does(spark_workspace: Any) -> None:
    """Ingest matches Spark's `_metadata.file_path` to the batch's files; the key is now
    computed in Python (no JVM over Connect) and must equal Hadoop's, odd names included."""
    from brickyard.engines.spark.ingest import hadoop_raw_path

    jvm = spark_workspace.spark.spark._jvm
    expected = [str(jvm.org.apache.hadoop.fs.Path(name).toUri().getRawPath()) for name in ODD_NAMES]
    assert [hadoop_raw_path(name) for name in ODD_NAMES] == expected
