"""`pii.withhold_values`: the errors DuckDB and Spark really raise about data, with the
values they quote withheld and the facts that carry no value kept."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from brickyard.core.pii import WITHHELD_MESSAGE, withhold_values
from brickyard.engines.duckdb.engine import one_line

SECRET = "leak-me-4711@example.com"


def duckdb_error(sql: str, path: Path | None = None) -> str:
    """The error DuckDB raises for `sql`, over a table `t` whose column `v` holds the value."""
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT $1 AS v", [SECRET])
    with pytest.raises(duckdb.Error) as caught:
        con.sql(sql.replace("FILE", str(path))).fetchall()
    return str(caught.value)


@pytest.mark.parametrize(
    ("sql", "facts"),
    [
        ("SELECT CAST(v AS INTEGER) FROM t", "(to INT32)"),
        ("SELECT CAST(v AS DATE) FROM t", ""),
        ("SELECT strptime(v, '%Y') FROM t", ""),
        ("SELECT error(v) FROM t", ""),
        ("SELECT json_extract(v, '$.a') FROM t", ""),
        ("SELECT CAST(email AS INTEGER) FROM read_csv('FILE', all_varchar=true)", "(CSV line 2, column email, to INTEGER)"),
    ],
)
def test_duckdb_errors_about_values_keep_only_their_facts(sql: str, facts: str, tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"id,email\n1,{SECRET}\n")
    message = duckdb_error(sql, path)
    assert SECRET in message
    for text in (message, one_line(message)):
        withheld = withhold_values(text, ["email"])
        assert SECRET not in withheld
        assert WITHHELD_MESSAGE in withheld
        assert facts in withheld
        assert withhold_values(withheld, ["email"]) == withheld


def test_a_malformed_csv_line_is_withheld_with_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("id,email\n" + "1,a@b.c\n" * 30000 + f"2,{SECRET},extra\n")
    message = one_line(duckdb_error("SELECT * FROM read_csv('FILE', header=true, delim=',')", path))
    assert SECRET in message
    assert withhold_values(message).endswith(f"{WITHHELD_MESSAGE} (CSV line 30002, expected 2 columns, found 3)")


def test_errors_about_the_query_and_spark_errors_about_values() -> None:
    binder = 'Binder Error: Referenced column "nope" not found in FROM clause!'
    assert withhold_values(binder) == binder
    spark = (
        f"task t: reading a.csv on Spark failed: [CAST_INVALID_INPUT] The value '{SECRET}' of the type "
        '"STRING" cannot be cast to "INT" because it is malformed. (hint: fix the file)'
    )
    assert withhold_values(spark) == (
        f"task t: reading a.csv on Spark failed: [CAST_INVALID_INPUT] {WITHHELD_MESSAGE} (to INT) (hint: fix the file)"
    )
    record = f"reading a.csv on Spark failed: Malformed CSV record: 1,{SECRET},x (file /lake/a.csv)"
    assert withhold_values(record) == f"reading a.csv on Spark failed: Malformed CSV record: {WITHHELD_MESSAGE} (file /lake/a.csv)"


def test_a_column_is_named_only_when_the_caller_knows_it() -> None:
    message = "Conversion Error: Could not convert string 'x' to INT32 when casting from source column Alice"
    assert "Alice" not in withhold_values(message, ["email"])
    assert "column Alice" in withhold_values(message, ["Alice"])
