"""`brickyard sql --engine spark` and `brickyard info` as a user runs them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli_helpers import brickyard

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.slow]

TITANIC = Path(__file__).parents[2] / "src" / "brickyard" / "demo" / "data" / "titanic.csv"


def test_sql_on_spark_shows_writes_and_refuses_duckdb_only_sql(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert brickyard("init", str(ws)).returncode == 0
    (ws / "lake" / "raw" / "titanic").mkdir(parents=True)
    shutil.copy(TITANIC, ws / "lake" / "raw" / "titanic" / "train.csv")
    query = "SELECT Sex, count(*) AS passengers FROM 'raw/titanic/*.csv' GROUP BY Sex ORDER BY Sex"

    shown = brickyard("sql", "--engine", "spark", query, cwd=ws)
    assert shown.returncode == 0, shown.stderr
    assert "female" in shown.stdout and "314" in shown.stdout and "577" in shown.stdout
    assert "2 rows (engine spark)" in shown.stdout

    out = ws / "by_sex"
    written = brickyard("sql", "--engine", "spark", query, "--format", "csv", "--out", str(out), cwd=ws)
    assert written.returncode == 0, written.stderr
    lines = sorted(line for part in out.glob("part-*.csv") for line in part.read_text().splitlines())
    assert lines == ["Sex,passengers", "female,314", "male,577"]

    refused = brickyard("sql", "--engine", "spark", "SELECT list_zip([1], [2])", cwd=ws)
    assert refused.returncode == 1
    assert "cannot run on Spark: function list_zip() has no Spark equivalent" in refused.stderr

    info = brickyard("info", "--format", "json", cwd=ws)
    assert '"spark_master": "local[*]"' in info.stdout and '"spark_version": "' in info.stdout
