"""The `brickyard` command end to end: each command once as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.e2e

BRICKYARD = [sys.executable, "-m", "brickyard.cli"]


def brickyard(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": "200", **(env or {})}
    environment.pop("BRICKYARD_WORKSPACE", None)
    return subprocess.run(
        [*BRICKYARD, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli") / "demo"
    result = brickyard("demo", str(folder), "--rows", "20000")
    assert result.returncode == 0, result.stderr
    assert "first 10 shown" in result.stdout
    assert "Try next" in result.stdout
    return folder


def test_demo_lands_raw_files_and_is_refreshable(demo: Path) -> None:
    lake = demo / "lake" / "raw"
    assert (lake / "titanic" / "titanic.csv").exists()
    assert (lake / "taxi" / "sample_2017" / "nyc_taxi_2017_sample.csv").exists()
    synthetic = lake / "taxi" / "yellow_tripdata_2017-01_synthetic.csv"
    assert sum(1 for _ in synthetic.open()) == 20001
    again = brickyard("demo", str(demo), "--rows", "20000")
    assert again.returncode == 0, again.stderr
    assert "Refreshing" in again.stdout and "unchanged" in again.stdout


def test_sql_table_output_from_inside_the_workspace(demo: Path) -> None:
    result = brickyard(
        "sql", "SELECT Sex, count(*) AS n FROM read_csv('raw/titanic/titanic.csv') GROUP BY 1 ORDER BY 1",
        cwd=demo / "lake",
    )
    assert result.returncode == 0, result.stderr
    assert "female" in result.stdout and "314" in result.stdout and "577" in result.stdout
    assert "2 rows" in result.stdout


def test_sql_streams_csv_json_and_parquet(demo: Path, tmp_path: Path) -> None:
    query = "SELECT PassengerId, Survived FROM read_csv('raw/titanic/titanic.csv') ORDER BY 1"
    csv = brickyard("sql", query, "--format", "csv", "--workspace", str(demo))
    assert csv.returncode == 0, csv.stderr
    assert csv.stdout.splitlines()[:2] == ["PassengerId,Survived", "1,0"]
    as_json = brickyard("sql", query, "--format", "json", "--workspace", str(demo))
    assert json.loads(as_json.stdout)[0] == {"PassengerId": 1, "Survived": 0}
    out = tmp_path / "survival.parquet"
    written = brickyard("sql", query, "--format", "parquet", "--out", str(out), "--workspace", str(demo))
    assert written.returncode == 0, written.stderr
    assert pq.read_table(out).num_rows == 891


def test_tables_describe_history_and_time_travel(demo: Path) -> None:
    from brickyard import Workspace

    lake = Workspace.open(demo).lake
    ws_sql = "SELECT * FROM read_csv('raw/titanic/titanic.csv')"
    lake.write("bronze.titanic_copy", Workspace.open(demo).sql(ws_sql).to_arrow_table(), mode="overwrite")
    lake.write("bronze.titanic_copy", Workspace.open(demo).sql(ws_sql + " LIMIT 10").to_arrow_table(), mode="overwrite")

    tables = brickyard("tables", "--workspace", str(demo))
    assert tables.returncode == 0 and "bronze.titanic_copy" in tables.stdout
    describe = brickyard("describe", "bronze.titanic_copy", "--workspace", str(demo))
    assert describe.returncode == 0, describe.stderr
    assert "PassengerId" in describe.stdout and "2 versions" in describe.stdout
    history = brickyard("history", "bronze.titanic_copy", "--workspace", str(demo))
    assert history.returncode == 0 and "WRITE" in history.stdout
    old = brickyard("sql", "SELECT count(*) FROM bronze.titanic_copy VERSION AS OF 0", "-f", "csv", "-w", str(demo))
    assert old.stdout.splitlines()[1] == "891"


def test_info_json_masks_nothing_secret_and_names_the_parts(demo: Path) -> None:
    result = brickyard("info", "--format", "json", "--workspace", str(demo))
    facts = json.loads(result.stdout)
    assert facts["workspace"] == str(demo.resolve())
    assert facts["engine"] == "duckdb"
    assert facts["mlflow_tracking_uri"].startswith("sqlite:///")
    assert "duckdb" in facts["versions"]


def test_init_scaffolds_a_workspace(tmp_path: Path) -> None:
    result = brickyard("init", str(tmp_path / "fresh"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "fresh" / "brickyard.yaml").exists()
    assert (tmp_path / "fresh" / "pipelines").is_dir()


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["sql", "SELEC 1"], 1, "syntax error"),
        (["sql", "SELECT * FROM bronze.titanic_cop"], 1, "did you mean bronze.titanic_copy"),
        (["sql", "SELECT * FROM read_csv('raw/nope/*.csv')"], 1, "no file in the lake matches"),
        (["describe", "silver.nothing"], 1, "does not exist"),
        (["sql", "SELECT 1", "--format", "xml"], 2, "xml"),
        (["sql", "SELECT 1", "--format", "parquet"], 2, "--out"),
        (["no-such-command"], 2, "no-such-command"),
    ],
)
def test_user_errors_are_one_line_with_exit_codes(demo: Path, args: list[str], code: int, needle: str) -> None:
    result = brickyard(*args, "--workspace", str(demo)) if args[0] != "no-such-command" else brickyard(*args)
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_config_names_file_line_and_field(tmp_path: Path) -> None:
    (tmp_path / "lake").mkdir()
    (tmp_path / "brickyard.yaml").write_text("name: x\nlake:\n  root: lake\nengin: duckdb\n")
    result = brickyard("tables", cwd=tmp_path)
    assert result.returncode == 1
    assert "brickyard.yaml:4: engin: unknown key" in result.stderr
    assert "did you mean engine" in result.stderr


def test_no_workspace_and_debug_traceback(tmp_path: Path) -> None:
    result = brickyard("tables", cwd=tmp_path)
    assert result.returncode == 1 and "brickyard init" in result.stderr
    debug = brickyard("--debug", "tables", cwd=tmp_path)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_help_and_select_1_do_not_import_heavy_libraries(tmp_path: Path) -> None:
    probe = (
        "import sys; from brickyard.cli.app import main; "
        "main(sys.argv[1:]); "
        "heavy = [m for m in ('mlflow', 'sklearn', 'pyspark', 'pandas', 'deltalake') if m in sys.modules]; "
        "print('HEAVY', heavy)"
    )
    (tmp_path / "lake").mkdir()
    (tmp_path / "brickyard.yaml").write_text("name: x\n")
    for args in (["--help"], ["sql", "SELECT 1"]):
        result = subprocess.run(
            [sys.executable, "-c", probe, *args], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert "HEAVY []" in result.stdout, result.stdout + result.stderr


def test_sql_over_a_malformed_csv_is_one_error_line_naming_file_and_line(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    assert brickyard("init", str(workspace)).returncode == 0
    raw = workspace / "lake" / "raw" / "x"
    raw.mkdir(parents=True)
    (raw / "late.csv").write_text("a,b,c\n" + "1,2,3\n" * 30000 + "4,5,6,7\n")
    for fmt in ("table", "csv"):
        result = brickyard(
            "sql", "SELECT count(*) FROM read_csv('raw/x/late.csv')", "--format", fmt, "--workspace", str(workspace)
        )
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert lines[0].startswith("error: raw/x/late.csv:30002: 4 fields where 3 were expected: '4,5,6,7' (hint: ")
