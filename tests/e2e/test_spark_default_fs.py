"""A Spark whose default filesystem is HDFS (as on most Hadoop clusters) still reads and
writes the lake: brickyard gives Spark every lake path with its `file://` scheme. The
HDFS here is an address nothing listens on, so any path left without a scheme fails."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli_helpers import brickyard, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.slow]

TITANIC = Path(__file__).parents[2] / "src" / "brickyard" / "demo" / "data" / "titanic.csv"
PIPELINE = """\
tasks:
  - name: ingest_passengers
    kind: ingest
    source: raw/titanic/*.csv
    target: bronze.titanic
  - name: by_class
    kind: sql
    depends_on: [ingest_passengers]
    target: silver.by_class
    query: SELECT Pclass, count(*) AS passengers FROM bronze.titanic GROUP BY Pclass
"""


def test_the_lake_is_read_and_written_when_the_default_filesystem_is_hdfs(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert brickyard("init", str(ws)).returncode == 0
    (ws / "lake" / "raw" / "titanic").mkdir(parents=True)
    shutil.copy(TITANIC, ws / "lake" / "raw" / "titanic" / "train.csv")
    (ws / "pipelines" / "passengers.yaml").write_text(PIPELINE, encoding="utf-8")
    config = ws / "brickyard.yaml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("engine: duckdb\n", "")
        + "engine: spark\nspark:\n  master: local[1]\n  conf:\n"
        + f'    spark.hadoop.fs.defaultFS: "hdfs://127.0.0.1:{free_port()}"\n'
        + '    spark.hadoop.ipc.client.connect.max.retries: "0"\n'
        + '    spark.hadoop.ipc.client.connect.max.retries.on.timeouts: "0"\n',
        encoding="utf-8",
    )

    ran = brickyard("run", "passengers", cwd=ws)
    assert ran.returncode == 0, ran.stdout + ran.stderr

    shown = brickyard("sql", "--engine", "spark", "SELECT sum(passengers) AS n FROM silver.by_class", cwd=ws)
    assert shown.returncode == 0, shown.stderr
    assert "891" in shown.stdout

    out = tmp_path / "classes"
    written = brickyard("sql", "--engine", "spark", "SELECT * FROM silver.by_class", "--format", "csv", "--out", str(out), cwd=ws)
    assert written.returncode == 0, written.stderr
    assert max(line for part in out.glob("part-*.csv") for line in part.read_text().splitlines()) == "Pclass,passengers"

    missing = brickyard("sql", "--engine", "spark", "SELECT * FROM 'raw/nowhere/*.csv'", cwd=ws)
    assert missing.returncode != 0
    errors = [line for line in missing.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "raw/nowhere/*.csv" in errors[0], missing.stderr
    assert "Traceback" not in missing.stderr and "py4j" not in missing.stderr.lower(), missing.stderr
