"""DuckDBEngine: SQL over the lake's Delta tables and raw files, with real DuckDB."""

from __future__ import annotations

import json
import re
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from brickyard.engines import DuckDBEngine
from brickyard.engines.sql_text import rewrite_raw_paths, rewrite_time_travel
from brickyard.errors import DataFileNotFoundError, SqlError, TableNotFoundError
from brickyard.lake import Lake, LakeLocation

DATA = Path(__file__).resolve().parents[3] / "src" / "brickyard" / "demo" / "data"


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    (tmp_path / "raw" / "titanic").mkdir(parents=True)
    (tmp_path / "raw" / "taxi").mkdir(parents=True)
    shutil.copy(DATA / "titanic.csv", tmp_path / "raw" / "titanic" / "titanic.csv")
    shutil.copy(DATA / "nyc_taxi_2017_sample.csv", tmp_path / "raw" / "taxi" / "trips.csv")
    return Lake(LakeLocation(str(tmp_path)))


@pytest.fixture
def engine(lake: Lake) -> DuckDBEngine:
    engine = DuckDBEngine(lake)
    yield engine
    engine.close()


def scalar(engine: DuckDBEngine, query: str) -> object:
    return engine.query(query).fetchall()[0][0]


def test_read_csv_titanic_counts_passengers_and_survivors(engine: DuckDBEngine) -> None:
    rows = engine.query(
        "SELECT count(*), sum(Survived) FROM read_csv('raw/titanic/*.csv')"
    ).fetchall()
    assert rows == [(891, 342)]


def test_real_taxi_sample_reads_all_rows(engine: DuckDBEngine) -> None:
    relation = engine.query("SELECT * FROM read_csv('raw/taxi/trips.csv')")
    assert len(relation.fetchall()) == 999
    assert "VendorID" in relation.columns
    assert "fare_amount" in relation.columns


def test_taxi_us_dates_parse_with_a_format(engine: DuckDBEngine) -> None:
    first = scalar(
        engine,
        "SELECT min(strptime(tpep_pickup_datetime, '%m/%d/%Y %H:%M')) "
        "FROM read_csv('raw/taxi/trips.csv')",
    )
    assert isinstance(first, datetime)
    assert first.year == 2017


def test_raw_file_queried_with_from_string(engine: DuckDBEngine) -> None:
    assert scalar(engine, "SELECT count(*) FROM 'raw/titanic/titanic.csv'") == 891
    assert scalar(engine, "SELECT count(*) FROM 'raw/taxi/trips.csv' AS t") == 999


def test_lake_table_is_queried_as_zone_name(engine: DuckDBEngine, lake: Lake) -> None:
    lake.write("gold.fares", pa.table({"fare": [5.0, 7.0]}))
    assert scalar(engine, "SELECT sum(fare) FROM gold.fares") == 12.0


def test_join_of_two_lake_tables(engine: DuckDBEngine, lake: Lake) -> None:
    lake.write("silver.trips", pa.table({"id": [1, 2, 3], "zone_id": [10, 20, 10]}))
    lake.write("silver.zones", pa.table({"zone_id": [10, 20], "zone": ["midtown", "jfk"]}))
    rows = engine.query(
        "SELECT z.zone, count(*) AS n FROM silver.trips t "
        "JOIN silver.zones AS z ON t.zone_id = z.zone_id GROUP BY z.zone ORDER BY z.zone"
    ).fetchall()
    assert rows == [("jfk", 1), ("midtown", 2)]


def test_lake_table_joined_with_raw_file(engine: DuckDBEngine, lake: Lake) -> None:
    lake.write("silver.classes", pa.table({"Pclass": [1, 2, 3], "label": ["first", "second", "third"]}))
    rows = engine.query(
        "SELECT c.label, count(*) FROM read_csv('raw/titanic/titanic.csv') p "
        "JOIN silver.classes c USING (Pclass) GROUP BY c.label ORDER BY c.label"
    ).fetchall()
    assert rows == [("first", 216), ("second", 184), ("third", 491)]


def test_join_using_a_shared_column_of_two_lake_tables(engine: DuckDBEngine, lake: Lake) -> None:
    lake.write("silver.trips", pa.table({"id": [1, 2, 3], "zone_id": [10, 20, 10]}))
    lake.write("silver.zones", pa.table({"zone_id": [10, 20], "zone": ["midtown", "jfk"]}))
    rows = engine.query(
        "SELECT zone, count(*) FROM silver.trips JOIN silver.zones USING (zone_id) "
        "GROUP BY zone ORDER BY zone"
    ).fetchall()
    assert rows == [("jfk", 1), ("midtown", 2)]


def test_join_using_a_missing_lake_table_still_raises_not_found(
    engine: DuckDBEngine, lake: Lake
) -> None:
    lake.write("silver.trips", pa.table({"id": [1], "zone_id": [10]}))
    with pytest.raises(TableNotFoundError, match="silver.zone'"):
        engine.query("SELECT * FROM silver.trips JOIN silver.zone USING (zone_id)")


def test_a_new_engine_sees_the_latest_version(lake: Lake) -> None:
    lake.write("gold.fares", pa.table({"fare": [1.0]}))
    lake.write("gold.fares", pa.table({"fare": [2.0]}))
    engine = DuckDBEngine(lake)
    assert scalar(engine, "SELECT count(*) FROM gold.fares") == 2
    engine.close()


def test_version_as_of_returns_old_rows(engine: DuckDBEngine, lake: Lake) -> None:
    lake.write("bronze.trips", pa.table({"id": [1]}))
    lake.write("bronze.trips", pa.table({"id": [2, 3]}))
    assert scalar(engine, "SELECT count(*) FROM bronze.trips VERSION AS OF 0") == 1
    assert scalar(engine, "select count(*) from bronze.trips version as of 1") == 3


def test_version_as_of_next_to_latest_in_one_query(engine: DuckDBEngine, lake: Lake) -> None:
    lake.write("bronze.trips", pa.table({"id": [1]}))
    lake.write("bronze.trips", pa.table({"id": [2, 3]}))
    rows = engine.query(
        "SELECT (SELECT count(*) FROM bronze.trips VERSION AS OF 0), "
        "(SELECT count(*) FROM bronze.trips)"
    ).fetchall()
    assert rows == [(1, 3)]


def test_timestamp_as_of_returns_old_rows(engine: DuckDBEngine, lake: Lake) -> None:
    lake.write("bronze.trips", pa.table({"id": [1]}))
    time.sleep(1.1)
    between = datetime.now(UTC).isoformat()
    time.sleep(1.1)
    lake.write("bronze.trips", pa.table({"id": [2, 3]}))
    query = f"SELECT count(*) FROM bronze.trips TIMESTAMP AS OF '{between}'"
    assert scalar(engine, query) == 1


def test_time_travel_text_in_string_literal_is_left_alone(engine: DuckDBEngine) -> None:
    text = "bronze.trips VERSION AS OF 0"
    assert scalar(engine, f"SELECT '{text}'") == text


def test_time_travel_text_in_comment_is_left_alone(engine: DuckDBEngine, lake: Lake) -> None:
    lake.write("bronze.trips", pa.table({"id": [1]}))
    lake.write("bronze.trips", pa.table({"id": [2]}))
    query = "SELECT count(*) FROM bronze.trips -- was bronze.trips VERSION AS OF 0\n"
    assert scalar(engine, query) == 2


def test_rewrite_time_travel_leaves_strings_and_comments() -> None:
    query = "SELECT 'x.y VERSION AS OF 1' /* x.y VERSION AS OF 2 */ FROM x.y VERSION AS OF 3"
    rewritten, snapshots = rewrite_time_travel(query)
    assert [snapshot.version for snapshot in snapshots] == [3]
    assert rewritten == 'SELECT \'x.y VERSION AS OF 1\' /* x.y VERSION AS OF 2 */ FROM "x.y@v3"'


def test_missing_lake_table_raises_with_suggestion(engine: DuckDBEngine, lake: Lake) -> None:
    lake.write("bronze.trips", pa.table({"id": [1]}))
    with pytest.raises(TableNotFoundError) as caught:
        engine.query("SELECT * FROM bronze.trip")
    assert caught.value.suggestions == ["bronze.trips"]
    assert "did you mean bronze.trips?" in str(caught.value)


def test_bad_sql_raises_sql_error_with_position_on_one_line(engine: DuckDBEngine) -> None:
    with pytest.raises(SqlError) as caught:
        engine.query("SELECT 1 +")
    message = str(caught.value)
    assert "\n" not in message
    assert "line 1, column 10" in message


def test_misspelled_keyword_reports_its_position(engine: DuckDBEngine) -> None:
    with pytest.raises(SqlError) as caught:
        engine.query("SELECT 1 FROM range(3) WHERE AND x")
    message = str(caught.value)
    assert "\n" not in message
    assert "line 1, column 30" in message


def test_error_on_a_later_line_reports_that_line(engine: DuckDBEngine) -> None:
    with pytest.raises(SqlError, match=r"line 2, column 8: FROM x WHERE\)"):
        engine.query("SELECT 1\nFROM x WHERE")


def test_unknown_column_raises_sql_error(engine: DuckDBEngine) -> None:
    with pytest.raises(SqlError, match="foo") as caught:
        engine.query("SELECT foo FROM read_csv('raw/titanic/titanic.csv')")
    assert "\n" not in str(caught.value)


def test_missing_raw_file_raises_data_file_not_found(engine: DuckDBEngine) -> None:
    with pytest.raises(DataFileNotFoundError, match="raw/nope/"):
        engine.query("SELECT * FROM read_csv('raw/nope/*.csv')")


def test_missing_raw_file_in_from_string_raises_data_file_not_found(engine: DuckDBEngine) -> None:
    with pytest.raises(DataFileNotFoundError):
        engine.query("SELECT * FROM 'raw/nope.csv'")


def test_several_statements_return_the_last(engine: DuckDBEngine) -> None:
    rows = engine.query("CREATE TABLE t AS SELECT 41 AS x; SELECT x + 1 FROM t").fetchall()
    assert rows == [(42,)]


def test_threads_setting_is_applied(lake: Lake) -> None:
    from brickyard.config.models import DuckDBConfig

    engine = DuckDBEngine(lake, DuckDBConfig(threads=2, memory_limit="1GB"))
    assert scalar(engine, "SELECT current_setting('threads')") == 2
    engine.close()


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_copy_to_writes_a_file_that_reads_back(
    engine: DuckDBEngine, lake: Lake, tmp_path: Path, fmt: str
) -> None:
    lake.write("gold.fares", pa.table({"id": [1, 2, 3], "fare": [5.0, 6.5, 7.0]}))
    target = tmp_path / f"out.{fmt}"
    engine.copy_to("SELECT id, fare FROM gold.fares ORDER BY id;", str(target), fmt)
    assert target.is_file()
    back = duckdb.sql(f"SELECT id, fare FROM '{target}' ORDER BY id").fetchall()
    assert back == [(1, 5.0), (2, 6.5), (3, 7.0)]


def test_copy_to_json_is_one_json_array(engine: DuckDBEngine, tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    engine.copy_to("SELECT * FROM range(3) t(i)", str(target), "json")
    assert json.loads(target.read_text()) == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_copy_to_csv_has_a_header(engine: DuckDBEngine, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    engine.copy_to("SELECT Name FROM read_csv('raw/titanic/*.csv') LIMIT 2", str(target), "csv")
    lines = target.read_text().splitlines()
    assert lines[0] == "Name"
    assert len(lines) == 3


def to_uri(path: str) -> str:
    return f"abfs://lake@acct.dfs.core.windows.net/root/{path}"


def test_rewrite_raw_paths_in_read_csv() -> None:
    rewritten = rewrite_raw_paths("SELECT * FROM read_csv('raw/x.csv')", to_uri)
    assert rewritten == f"SELECT * FROM read_csv('{to_uri('raw/x.csv')}')"


def test_rewrite_raw_paths_in_a_list_of_files() -> None:
    rewritten = rewrite_raw_paths("SELECT * FROM read_parquet(['a.parquet','b.parquet'])", to_uri)
    assert rewritten == (
        f"SELECT * FROM read_parquet(['{to_uri('a.parquet')}','{to_uri('b.parquet')}'])"
    )


def test_rewrite_raw_paths_after_from_and_join() -> None:
    rewritten = rewrite_raw_paths(
        "SELECT * FROM 'raw/y.csv' a JOIN 'raw/z.csv' b USING (id)", to_uri
    )
    assert rewritten == (
        f"SELECT * FROM '{to_uri('raw/y.csv')}' a JOIN '{to_uri('raw/z.csv')}' b USING (id)"
    )


def test_rewrite_raw_paths_leaves_other_strings_and_absolute_paths() -> None:
    untouched = [
        "SELECT * FROM t WHERE s = 'raw/x.csv'",
        "SELECT * FROM read_csv('/data/x.csv')",
        "SELECT * FROM read_csv('abfs://other@acct/x.csv')",
        "SELECT * FROM read_csv('raw/x.csv', delim = ';') WHERE 1 = 1",
    ]
    assert rewrite_raw_paths(untouched[0], to_uri) == untouched[0]
    assert rewrite_raw_paths(untouched[1], to_uri) == untouched[1]
    assert rewrite_raw_paths(untouched[2], to_uri) == untouched[2]
    assert "';'" in rewrite_raw_paths(untouched[3], to_uri)


def test_a_long_lived_engine_sees_new_versions(tmp_path) -> None:
    import pyarrow as pa

    from brickyard.engines import DuckDBEngine
    from brickyard.lake import Lake, LakeLocation

    lake = Lake(LakeLocation(str(tmp_path)))
    lake.write("gold.f", pa.table({"a": [1]}))
    engine = DuckDBEngine(lake)
    assert engine.query("SELECT count(*) FROM gold.f").fetchall() == [(1,)]
    lake.write("gold.f", pa.table({"a": [2, 3]}), mode="append")
    assert engine.query("SELECT count(*) FROM gold.f").fetchall() == [(3,)]
    assert engine.query("SELECT count(*) FROM gold.f VERSION AS OF 0").fetchall() == [(1,)]


# -- CSV errors name the lake file and the line ---------------------------------------------


@pytest.mark.parametrize(
    ("content", "query", "expected"),
    [
        # Among the first lines, where DuckDB's sniffer only says it could not detect the dialect.
        ("a,b,c\n1,2,3\n4,5,6,7\n8,9,10\n", "SELECT * FROM read_csv('raw/bad/x.csv', delim=',')",
         "raw/bad/x.csv:3: 4 fields where 3 were expected: '4,5,6,7'"),
        ("a;b;c\n1;2;3\n4;5;6;7\n8;9;10\n", "SELECT * FROM read_csv('raw/bad/x.csv', delim=';')",
         "raw/bad/x.csv:3: 4 fields where 3 were expected: '4;5;6;7'"),
        # An over-long line, which the sniffer reports as line 1.
        ("a,b,c\n" + "1,2,3\n" * 500 + "1,2," + "x" * 3_000_000 + "\n", "SELECT * FROM read_csv('raw/bad/x.csv')",
         "raw/bad/x.csv:502: the line is 3000004 bytes, over the limit of 2000000 bytes (max_line_size)"),
    ],
    ids=["sniffed-fields", "sniffed-semicolons", "over-long-line"],
)
def test_csv_errors_in_sql_name_the_lake_file_and_line(
    engine: DuckDBEngine, lake: Lake, content: str, query: str, expected: str
) -> None:
    path = Path(lake.location.root) / "raw" / "bad" / "x.csv"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(SqlError) as caught, engine.errors():
        engine.query(query).fetchall()
    assert caught.value.message == expected
    assert caught.value.hint and "read_csv" in caught.value.hint
    assert "\n" not in str(caught.value) and str(path) not in str(caught.value)


def test_a_csv_error_found_while_streaming_names_the_lake_file_and_line(engine: DuckDBEngine, lake: Lake, tmp_path: Path) -> None:
    path = Path(lake.location.root) / "raw" / "bad" / "late.csv"
    path.parent.mkdir(parents=True)
    path.write_text("a,b,c\n" + "1,2,3\n" * 30000 + "4,5,6,7\n")
    query = "SELECT * FROM read_csv('raw/bad/late.csv')"
    expected = "raw/bad/late.csv:30002: 4 fields where 3 were expected: '4,5,6,7'"
    with pytest.raises(SqlError, match=f"^{expected} \\(hint: "):
        engine.copy_to(query, str(tmp_path / "out.csv"), "csv")
    with pytest.raises(SqlError, match=f"^{expected} \\(hint: "), engine.errors():
        for _ in engine.query(query).to_arrow_reader(1000):  # Arrow raises DuckDB's error as OSError
            pass


def test_fetch_gives_a_lake_query_result_as_arrow_and_errors_as_brickyard_errors(engine: DuckDBEngine, lake: Lake) -> None:
    lake.write("gold.fares", pa.table({"fare": [5.0, 7.0, 9.0]}))
    result = engine.fetch("SELECT fare FROM gold.fares WHERE fare > 6 ORDER BY fare")
    assert isinstance(result, pa.Table) and result.column("fare").to_pylist() == [7.0, 9.0]
    with pytest.raises(TableNotFoundError):
        engine.fetch("SELECT * FROM gold.nowhere")


def test_preview_select_reads_the_lake_and_nothing_else(lake: Lake, tmp_path: Path) -> None:
    lake.write("bronze.people", pa.table({"id": [1, 2, 3]}))
    lake.write("bronze.people", pa.table({"id": [4]}))
    outside = tmp_path.parent / f"{tmp_path.name}-outside.csv"
    outside.write_text("secret\n42\n")
    engine = DuckDBEngine(lake).fresh()
    assert engine.preview_select("SELECT count(*) FROM bronze.people", 10, timeout_seconds=30).rows == [(4,)]
    assert engine.preview_select("SELECT count(*) FROM bronze.people VERSION AS OF 0", 10, timeout_seconds=30).rows == [(3,)]
    titanic = engine.preview_select("SELECT count(*) AS n FROM read_csv('raw/titanic/titanic.csv')", 10, timeout_seconds=30)
    assert titanic.columns == ["n"] and titanic.rows == [(891,)]
    assert len(engine.preview_select("SELECT * FROM range(100)", 7, timeout_seconds=30).rows) == 7
    refused = {
        f"SELECT * FROM read_csv('{outside}')": "Permission Error",
        "SELECT * FROM read_csv('raw/../../x.csv')": "Permission Error",
        "COPY (SELECT 1) TO 'raw/out.csv'": "expected a SELECT",
        "CREATE TABLE t AS SELECT 1": "expected a SELECT",
        "SELECT 1; SELECT 2": "expected one SELECT",
    }
    for query, says in refused.items():
        with pytest.raises(SqlError, match=re.escape(says)):
            engine.preview_select(query, 10, timeout_seconds=30)
    assert not (tmp_path / "raw" / "out.csv").exists()


def test_preview_select_stops_a_query_at_its_timeout(lake: Lake) -> None:
    engine = DuckDBEngine(lake).fresh()
    started = time.monotonic()
    with pytest.raises(SqlError, match=r"stopped after 0.5 s"):
        engine.preview_select("SELECT count(*) FROM range(100000000000) a", 10, timeout_seconds=0.5)
    assert time.monotonic() - started < 20
    assert engine.preview_select("SELECT 42", 1, timeout_seconds=30).rows == [(42,)]  # the engine still answers
