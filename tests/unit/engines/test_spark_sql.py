"""DuckDB SQL translated for Spark: what translates, and what fails with the construct named."""

from __future__ import annotations

from pathlib import Path

import pytest

from brickyard.engines.spark_sql import RawScan, UntranslatableSqlError, translate, translate_all
from brickyard.errors import SqlError

DEMO_SQL = Path(__file__).parents[3] / "src" / "brickyard" / "demo" / "workspace" / "sql"


def test_lake_tables_become_views_and_keep_their_name_as_alias() -> None:
    statement = translate("SELECT t.fare FROM bronze.trips t JOIN silver.zones ON zones.id = t.zone")
    assert statement.tables == {"bronze__trips": "bronze.trips", "silver__zones": "silver.zones"}
    assert "FROM bronze__trips AS t JOIN silver__zones AS zones" in statement.text


def test_raw_files_and_snapshots_become_views() -> None:
    raw = translate("SELECT * FROM read_csv(['raw/a.csv', 'raw/b.csv'], header=true, delim=';')")
    assert raw.raw == {"__raw_0": RawScan("csv", ("raw/a.csv", "raw/b.csv"), (("header", "true"), ("delim", ";")))}
    quoted = translate("SELECT count(*) FROM 'raw/taxi/*.parquet'")
    assert quoted.raw["__raw_0"].format == "parquet"
    snapshot = translate("SELECT * FROM bronze.trips VERSION AS OF 3")
    (view, past), = snapshot.snapshots.items()
    assert (past.table, past.version) == ("bronze.trips", 3) and f"FROM {view} AS trips" in snapshot.text


def test_duckdb_functions_are_translated() -> None:
    text = translate("SELECT date_diff('second', a, b), try_strptime(d, '%m/%d/%Y %I:%M:%S %p'), x::DOUBLE FROM t").text
    assert "DATEDIFF(SECOND" not in text  # Spark counts whole seconds; DuckDB boundaries crossed
    assert "SECOND(b) AS BIGINT) - CAST(SECOND(a)" in text
    assert "TRY_TO_TIMESTAMP(d, 'M/d/yyyy h:m:s a')" in text
    assert "CAST(x AS DOUBLE)" in text


@pytest.mark.parametrize("name", sorted(p.name for p in DEMO_SQL.glob("*.sql")))
def test_the_demo_sql_translates(name: str) -> None:
    statement = translate((DEMO_SQL / name).read_text(), where=name)
    assert statement.tables and "SELECT" in statement.text


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("SELECT list_zip(a, b) FROM t", "function list_zip() has no Spark equivalent"),
        ("SELECT CAST(a AS ENUM('x', 'y')) FROM t", "type ENUM('x', 'y') has no Spark equivalent"),
        ("SELECT * FROM glob('raw/*')", "glob() is a DuckDB file function"),
        ("SELECT jaro_winkler_similarity(a, b) FROM t", "function jarowinkler_similarity() (as sqlglot writes it for Spark) is not one of Spark's"),
    ],
)
def test_what_spark_cannot_run_is_named(query: str, named: str) -> None:
    with pytest.raises(UntranslatableSqlError, match=named.replace("(", r"\(").replace(")", r"\)")) as caught:
        translate(query, where="sql/x.sql")
    assert str(caught.value).startswith("sql/x.sql cannot run on Spark")


def test_sql_that_does_not_parse_says_where() -> None:
    with pytest.raises(SqlError, match=r"sql/x.sql does not parse: .*line 1"):
        translate("SELEC 1 FROM", where="sql/x.sql")


def test_several_statements_translate_each() -> None:
    statements = translate_all("CREATE TEMP VIEW v AS SELECT 1 AS a; SELECT a FROM v")
    assert len(statements) == 2 and statements[-1].text == "SELECT a FROM v"
