"""The `ingest` kind: raw files into bronze Delta tables, incrementally, with contracts,
quarantine, PII tokens, full refresh and crash safety. Real DuckDB and Delta tables; the
real 2017 taxi sample (BOM, unnamed index column, US dates) and synthetic taxi files."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from brickyard.core.pii import hmac_hex
from brickyard.core.quality import ExpectationFailedError
from brickyard.demo.synth import TAXI_COLUMNS, write_taxi_csv
from brickyard.engines.duckdb import ingest as duckdb_ingest
from brickyard.engines.duckdb import quarantine as duckdb_quarantine
from brickyard.errors import ConfigError, DataFileNotFoundError
from brickyard.tasks.checkpoint import INGEST_KEY
from brickyard.tasks.ingest import IngestError, IngestOptions, SchemaEvolutionError

if TYPE_CHECKING:
    from conftest import Lakehouse

DATA = Path(__file__).resolve().parents[3] / "src" / "brickyard" / "demo" / "data"
TAXI_SAMPLE = DATA / "nyc_taxi_2017_sample.csv"
TITANIC = DATA / "titanic.csv"

TAXI_CONTRACT = """\
table: bronze.taxi_trips
columns:
  - {name: trip_id, source: column00, type: bigint}
  - {name: vendor_id, source: VendorID, type: int}
  - {name: pickup_at, source: tpep_pickup_datetime, type: timestamp, format: "%m/%d/%Y %H:%M", nullable: false}
  - {name: dropoff_at, source: tpep_dropoff_datetime, type: timestamp, format: "%m/%d/%Y %H:%M"}
  - {name: passenger_count, type: int}
  - {name: fare_amount, type: double}
expectations:
  - {range: {column: fare_amount, min: 0}, action: drop}
"""
TAXI_TASK = {
    "name": "ingest_trips",
    "kind": "ingest",
    "source": "raw/taxi/*.csv",
    "target": "bronze.taxi_trips",
    "contract": "contracts/bronze.taxi_trips.yaml",
}
SYNTH_CONTRACT = """\
table: bronze.trips
evolution: {evolution}
columns:
  - {{name: VendorID, type: int}}
  - {{name: tpep_pickup_datetime, type: timestamp, nullable: false}}
  - {{name: passenger_count, type: int}}
  - {{name: fare_amount, type: double}}
"""
SYNTH_TASK = {
    "name": "load",
    "kind": "ingest",
    "source": "raw/trips/",
    "format": "csv",
    "target": "bronze.trips",
    "contract": "bronze.trips",
}


def sample_lines() -> list[bytes]:
    """The real sample's lines (line 1 is the header, with a BOM; CRLF endings kept)."""
    return TAXI_SAMPLE.read_bytes().splitlines(keepends=True)


def edited_sample(edits: dict[int, tuple[int, str]]) -> bytes:
    """The real sample with field `field` of line `line` replaced: {line: (field, value)}."""
    lines = sample_lines()
    for line, (index, value) in edits.items():
        fields = lines[line - 1].rstrip(b"\r\n").split(b",")
        fields[index] = value.encode()
        lines[line - 1] = b",".join(fields) + b"\r\n"
    return b"".join(lines)


def synth(house: Lakehouse, name: str, rows: int, seed: int, dirty: float = 0.0) -> Path:
    path = Path(house.lake.location.uri(f"raw/trips/{name}"))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_taxi_csv(path, rows, seed=seed, dirty_fraction=dirty)
    return path


class Killed(BaseException):
    """Stands for the process being killed (not an Exception: nothing may catch it)."""


# -- contract types, renames, formats, quarantine --------------------------------------


def test_real_sample_lands_typed_and_its_negative_fare_is_quarantined(house: Lakehouse) -> None:
    house.raw("raw/taxi/2017_sample.csv", TAXI_SAMPLE)
    house.file("contracts/bronze.taxi_trips.yaml", TAXI_CONTRACT)

    context = house.run(TAXI_TASK, run_id="run-a")

    table = house.table("bronze.taxi_trips", sort="trip_id")
    assert table.schema.field("trip_id").type == pa.int64()
    assert table.schema.field("vendor_id").type == pa.int32()
    assert table.schema.field("pickup_at").type == pa.timestamp("us")
    assert table.num_rows == 998
    first = next(r for r in table.to_pylist() if r["trip_id"] == 24870114)
    assert first["pickup_at"] == datetime(2017, 3, 25, 8, 55)  # from "3/25/2017 8:55"
    assert first["dropoff_at"] == datetime(2017, 3, 25, 9, 9)
    assert first["_source_file"] == "raw/taxi/2017_sample.csv"
    assert isinstance(first["_loaded_at"], datetime)
    # Columns the contract does not name are added as text (evolution: add is the default).
    assert table.schema.field("trip_distance").type == pa.string()

    bad = house.rows("bronze.taxi_trips__quarantine", sort="_line")
    assert len(bad) == 1
    assert bad[0]["_reason"] == "range(fare_amount): '-2.5'"
    assert bad[0]["_line"] == 316  # the physical line of trip 105454287 (header = line 1)
    assert sample_lines()[315].startswith(b"105454287,")
    assert bad[0]["column00"] == "105454287" and bad[0]["fare_amount"] == "-2.5"
    assert bad[0]["_source_file"] == "raw/taxi/2017_sample.csv"
    assert bad[0]["_run_id"] == "run-a"

    assert context.metrics.rows_in == 999 and context.metrics.rows_out == 998
    assert context.metrics.writes == {"bronze.taxi_trips": 0, "bronze.taxi_trips__quarantine": 0}
    assert context.metrics.extra["quarantined_rows"] == 1
    assert context.metrics.extra["expectations"] == [
        {"name": "range(fare_amount)", "check": "range", "action": "drop", "failing_rows": 1, "passed": False}
    ]


def test_values_that_do_not_parse_go_to_quarantine_with_reason_file_and_line(
    house: Lakehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches, so that line numbers are counted across batch and file boundaries.
    monkeypatch.setattr(duckdb_ingest, "BATCH_ROWS", 37)
    house.raw("raw/taxi/a.csv", TAXI_SAMPLE)
    house.raw(
        "raw/taxi/b.csv",
        edited_sample({10: (2, "N/A"), 500: (2, ""), 777: (4, "many"), 999: (3, "13/45/2017 9:00")}),
    )
    house.file("contracts/bronze.taxi_trips.yaml", TAXI_CONTRACT)

    context = house.run(TAXI_TASK)

    bad = house.table("bronze.taxi_trips__quarantine").sort_by([("_source_file", "ascending"), ("_line", "ascending")])
    found = [(r["_source_file"], r["_line"], r["_reason"]) for r in bad.to_pylist()]
    assert found == [
        ("raw/taxi/a.csv", 316, "range(fare_amount): '-2.5'"),
        ("raw/taxi/b.csv", 10, "pickup_at: cannot parse 'N/A' as TIMESTAMP with format %m/%d/%Y %H:%M"),
        ("raw/taxi/b.csv", 316, "range(fare_amount): '-2.5'"),
        ("raw/taxi/b.csv", 500, "pickup_at: missing value (nullable: false)"),
        ("raw/taxi/b.csv", 777, "passenger_count: cannot parse 'many' as INTEGER"),
        ("raw/taxi/b.csv", 999, "dropoff_at: cannot parse '13/45/2017 9:00' as TIMESTAMP with format %m/%d/%Y %H:%M"),
    ]
    lines = sample_lines()
    for record in bad.to_pylist():
        assert lines[record["_line"] - 1].startswith(record["column00"].encode() + b",")
        assert record["tpep_pickup_datetime"] in (None, "N/A") or "/" in record["tpep_pickup_datetime"]
    assert house.count("bronze.taxi_trips") == 2 * 999 - 6
    assert context.metrics.rows_in == 2 * 999


def test_contract_without_format_parses_iso_timestamps_and_quarantines_bad_ones(house: Lakehouse) -> None:
    synth(house, "a.csv", 3000, seed=1, dirty=0.05)
    house.file("contracts/bronze.trips.yaml", SYNTH_CONTRACT.format(evolution="add"))

    house.run(SYNTH_TASK)

    bad = house.table("bronze.trips__quarantine").to_pylist()
    reasons = {r["_reason"].split(":")[0] for r in bad}
    assert "tpep_pickup_datetime" in reasons  # "N/A", "2017-13-45 25:61:00", "2017-02-30 ..."
    assert "passenger_count" not in reasons  # an empty count is NULL, allowed; -1 is an int
    for record in bad:
        if record["_reason"].startswith("tpep_pickup_datetime: cannot parse"):
            assert record["tpep_pickup_datetime"] in ("N/A", "2017-13-45 25:61:00", "2017-02-30 12:00:00")
    assert house.count("bronze.trips") + len(bad) == 3000


# -- incremental -----------------------------------------------------------------------


def test_second_run_loads_nothing_and_a_new_file_loads_only_its_rows(house: Lakehouse) -> None:
    synth(house, "2017-01.csv", 1000, seed=1)
    house.file("contracts/bronze.trips.yaml", SYNTH_CONTRACT.format(evolution="add"))

    first = house.run(SYNTH_TASK)
    assert first.metrics.rows_out == 1000 and first.metrics.writes["bronze.trips"] == 0

    again = house.run(SYNTH_TASK)
    assert again.metrics.rows_in == 0 and again.metrics.extra["files_loaded"] == 0
    assert house.lake.version("bronze.trips") == 0 and house.count("bronze.trips") == 1000

    synth(house, "2017-02.csv", 400, seed=2)
    third = house.run(SYNTH_TASK)
    assert third.metrics.rows_out == 400 and third.metrics.extra["files_loaded"] == 1
    table = house.table("bronze.trips")
    assert table.num_rows == 1400
    files = pa.compute.value_counts(table.column("_source_file")).to_pylist()
    assert sorted((f["values"], f["counts"]) for f in files) == [
        ("raw/trips/2017-01.csv", 1000),
        ("raw/trips/2017-02.csv", 400),
    ]
    # The checkpoint is in the commits: each records its batch and files.
    records = [json.loads(h[INGEST_KEY]) for h in house.lake.history("bronze.trips") if INGEST_KEY in h]
    assert [(r["batch"], [f["path"] for f in r["files"]]) for r in records] == [
        (2, ["raw/trips/2017-02.csv"]),
        (1, ["raw/trips/2017-01.csv"]),
    ]
    assert house.lake.transaction_version("bronze.trips", "brickyard.ingest:p.load") == 2


def test_a_changed_file_is_skipped_unless_changed_files_reload(house: Lakehouse) -> None:
    path = synth(house, "a.csv", 100, seed=1)
    house.file("contracts/bronze.trips.yaml", SYNTH_CONTRACT.format(evolution="add"))
    house.run(SYNTH_TASK)

    write_taxi_csv(path, 150, seed=9, dirty_fraction=0.0)  # same name, new size and time
    os.utime(path, (1_900_000_000, 1_900_000_000))
    skipped = house.run(SYNTH_TASK)
    assert skipped.metrics.rows_in == 0 and house.count("bronze.trips") == 100

    reloaded = house.run({**SYNTH_TASK, "changed_files": "reload"})
    assert reloaded.metrics.rows_out == 150
    assert house.count("bronze.trips") == 250  # the earlier rows of the file stay (documented)
    assert house.run({**SYNTH_TASK, "changed_files": "reload"}).metrics.rows_in == 0


def test_no_matching_file_is_a_clear_error(house: Lakehouse) -> None:
    house.file("contracts/bronze.trips.yaml", SYNTH_CONTRACT.format(evolution="add"))
    with pytest.raises(DataFileNotFoundError, match=r"task load: no file in the lake matches 'raw/trips/'"):
        house.run(SYNTH_TASK)


# -- full refresh ----------------------------------------------------------------------


def test_full_refresh_rebuilds_as_a_new_version_with_the_same_rows(house: Lakehouse) -> None:
    synth(house, "a.csv", 500, seed=1, dirty=0.02)
    synth(house, "b.csv", 300, seed=2, dirty=0.02)
    house.file("contracts/bronze.trips.yaml", SYNTH_CONTRACT.format(evolution="add"))
    house.run(SYNTH_TASK)
    before = house.table("bronze.trips").drop_columns(["_loaded_at"]).sort_by("tpep_pickup_datetime")
    quarantined = house.count("bronze.trips__quarantine")

    context = house.run(SYNTH_TASK, full_refresh=True)

    assert house.lake.version("bronze.trips") == 1
    assert house.lake.history("bronze.trips")[0]["operationParameters"]["mode"] == "Overwrite"
    after = house.table("bronze.trips").drop_columns(["_loaded_at"]).sort_by("tpep_pickup_datetime")
    assert after.equals(before)
    assert house.count("bronze.trips__quarantine") == quarantined  # rebuilt, not doubled
    assert context.metrics.extra["files_loaded"] == 2
    assert house.table("bronze.trips", version=0).num_rows == before.num_rows  # history stays
    # The checkpoint restarts at the refresh: nothing new afterwards.
    assert house.run(SYNTH_TASK).metrics.rows_in == 0


def test_full_refresh_with_two_tasks_writing_one_table_rebuilds_it_from_both(
    house: Lakehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first task of the refresh run replaces the table and its quarantine; the second
    appends, also in an attempt retried after a crash between its two commits."""
    synth(house, "a.csv", 400, seed=1, dirty=0.03)
    other = Path(house.lake.location.uri("raw/more/b.csv"))
    other.parent.mkdir(parents=True, exist_ok=True)
    write_taxi_csv(other, 300, seed=2, dirty_fraction=0.03)
    house.file("contracts/bronze.trips.yaml", SYNTH_CONTRACT.format(evolution="add"))
    first = SYNTH_TASK
    second = {**SYNTH_TASK, "name": "load_more", "source": "raw/more/", "depends_on": ["load"]}
    pipeline = [first, second]
    house.run(pipeline, "load", run_id="r1")
    house.run(pipeline, "load_more", run_id="r1")
    rows, parked = house.count("bronze.trips"), house.count("bronze.trips__quarantine")
    assert rows + parked == 700 and parked > 0

    house.run(pipeline, "load", run_id="r2", full_refresh=True)
    real = duckdb_quarantine.write_quarantine

    def then_crash(*args: Any, **kwargs: Any) -> int | None:
        real(*args, **kwargs)
        raise Killed("killed between the two commits")

    monkeypatch.setattr(duckdb_ingest, "write_quarantine", then_crash)
    with pytest.raises(Killed):
        house.run(pipeline, "load_more", run_id="r2", full_refresh=True)
    monkeypatch.setattr(duckdb_ingest, "write_quarantine", real)
    retried = house.run(pipeline, "load_more", run_id="r2", full_refresh=True)

    assert (house.count("bronze.trips"), house.count("bronze.trips__quarantine")) == (rows, parked)
    assert [(b["full_refresh"], b["mode"]) for b in retried.metrics.extra["batches"]] == [(True, "append")]
    # Each task's checkpoint restarts at the refresh: a plain run loads nothing.
    assert house.run(pipeline, "load", run_id="r3").metrics.rows_in == 0
    assert house.run(pipeline, "load_more", run_id="r3").metrics.rows_in == 0
    # A second refresh run rebuilds the same rows again.
    house.run(pipeline, "load", run_id="r4", full_refresh=True)
    house.run(pipeline, "load_more", run_id="r4", full_refresh=True)
    assert (house.count("bronze.trips"), house.count("bronze.trips__quarantine")) == (rows, parked)


# -- crash between the quarantine commit and the target commit ---------------------------


def test_crash_after_the_quarantine_commit_neither_loses_nor_duplicates_rows(
    house: Lakehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    synth(house, "a.csv", 2000, seed=1, dirty=0.03)
    house.file("contracts/bronze.trips.yaml", SYNTH_CONTRACT.format(evolution="add"))
    real = duckdb_quarantine.write_quarantine

    def then_crash(*args: Any, **kwargs: Any) -> int | None:
        real(*args, **kwargs)
        raise Killed("killed between the two commits")

    monkeypatch.setattr(duckdb_ingest, "write_quarantine", then_crash)
    with pytest.raises(Killed):
        house.run(SYNTH_TASK)
    assert not house.lake.exists("bronze.trips")
    parked = house.count("bronze.trips__quarantine")
    assert parked > 0
    # A file that arrives meanwhile is not part of the interrupted batch.
    synth(house, "b.csv", 100, seed=2, dirty=0.0)

    monkeypatch.setattr(duckdb_ingest, "write_quarantine", real)
    context = house.run(SYNTH_TASK)

    assert house.count("bronze.trips__quarantine") == parked
    assert house.count("bronze.trips") + parked == 2100
    assert [b["batch"] for b in context.metrics.extra["batches"]] == [1, 2]
    assert [b["files"] for b in context.metrics.extra["batches"]] == [1, 1]
    assert house.run(SYNTH_TASK).metrics.rows_in == 0


def test_an_interrupted_full_refresh_is_completed_by_the_next_run(
    house: Lakehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    synth(house, "a.csv", 800, seed=1, dirty=0.03)
    house.file("contracts/bronze.trips.yaml", SYNTH_CONTRACT.format(evolution="add"))
    house.run(SYNTH_TASK)
    rows, parked = house.count("bronze.trips"), house.count("bronze.trips__quarantine")
    real = duckdb_quarantine.write_quarantine

    def then_crash(*args: Any, **kwargs: Any) -> int | None:
        real(*args, **kwargs)
        raise Killed("killed between the two commits")

    monkeypatch.setattr(duckdb_ingest, "write_quarantine", then_crash)
    with pytest.raises(Killed):
        house.run(SYNTH_TASK, full_refresh=True)
    monkeypatch.setattr(duckdb_ingest, "write_quarantine", real)

    context = house.run(SYNTH_TASK)  # a plain run finishes the refresh it finds parked

    assert context.metrics.extra["batches"][0]["full_refresh"] is True
    assert house.lake.history("bronze.trips")[0]["operationParameters"]["mode"] == "Overwrite"
    assert (house.count("bronze.trips"), house.count("bronze.trips__quarantine")) == (rows, parked)


def test_a_retried_target_commit_is_skipped_by_its_app_transaction(house: Lakehouse) -> None:
    synth(house, "a.csv", 50, seed=1)
    house.file("contracts/bronze.trips.yaml", SYNTH_CONTRACT.format(evolution="add"))
    house.run(SYNTH_TASK)
    app = "brickyard.ingest:p.load"
    assert house.lake.write("bronze.trips", house.table("bronze.trips"), transaction=(app, 1)) == 0
    assert house.count("bronze.trips") == 50


# -- schema evolution ------------------------------------------------------------------


def _with_extra_column(house: Lakehouse, name: str, rows: int, seed: int) -> None:
    path = synth(house, name, rows, seed=seed)
    lines = path.read_text().splitlines()
    lines = [lines[0] + ",tip_note"] + [f"{line},note {i}" for i, line in enumerate(lines[1:])]
    path.write_text("\n".join(lines) + "\n")


def test_evolution_add_adds_a_new_column(house: Lakehouse) -> None:
    house.file("contracts/bronze.trips.yaml", SYNTH_CONTRACT.format(evolution="add"))
    synth(house, "a.csv", 10, seed=1)
    house.run(SYNTH_TASK)
    _with_extra_column(house, "b.csv", 5, seed=2)

    house.run(SYNTH_TASK)

    table = house.table("bronze.trips")
    assert table.schema.field("tip_note").type == pa.string()
    notes = [r["tip_note"] for r in table.to_pylist() if r["_source_file"].endswith("b.csv")]
    assert notes == [f"note {i}" for i in range(5)]
    assert [r["tip_note"] for r in table.to_pylist() if r["_source_file"].endswith("a.csv")] == [None] * 10


def test_evolution_fail_names_column_file_and_table_and_writes_nothing(house: Lakehouse) -> None:
    columns = "".join(f"  - {{name: {c}}}\n" for c in TAXI_COLUMNS)
    house.file("contracts/bronze.trips.yaml", f"evolution: fail\ncolumns:\n{columns}")
    synth(house, "a.csv", 10, seed=1)
    house.run(SYNTH_TASK)
    _with_extra_column(house, "b.csv", 5, seed=2)

    with pytest.raises(SchemaEvolutionError, match=r"column 'tip_note' of raw/trips/b\.csv is not in the contract of bronze\.trips"):
        house.run(SYNTH_TASK)
    assert house.lake.version("bronze.trips") == 0


# -- PII -------------------------------------------------------------------------------

PII_CONTRACT = """\
pii_key: ${env:TEST_PII_KEY}
columns:
  - {name: customer_id, type: int}
  - {name: email, pii: true}
  - {name: amount, type: double}
"""


def test_pii_columns_become_stable_keyed_tokens_also_in_quarantine(
    house: Lakehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PII_KEY", "k-one")
    house.file("contracts/bronze.orders.yaml", PII_CONTRACT)
    house.raw(
        "raw/orders/a.csv",
        "customer_id,email,amount\n1,ann@example.com,10\n2,bob@example.com,oops\n3,ann@example.com,7.5\n",
    )
    task = {"name": "orders", "kind": "ingest", "source": "raw/orders/*.csv", "target": "bronze.orders", "contract": "bronze.orders"}

    house.run(task)

    rows = house.rows("bronze.orders", sort="customer_id")
    assert [r["email"] for r in rows] == [hmac_hex("ann@example.com", b"k-one")] * 2
    assert all(re.fullmatch(r"[0-9a-f]{64}", r["email"]) for r in rows)
    bad = house.rows("bronze.orders__quarantine", sort="_line")
    assert bad[0]["email"] == hmac_hex("bob@example.com", b"k-one")  # never the raw value
    assert bad[0]["amount"] == "oops" and bad[0]["_line"] == 3

    # Another key gives other tokens.
    monkeypatch.setenv("TEST_PII_KEY", "k-two")
    house.run(task, full_refresh=True)
    assert house.rows("bronze.orders", sort="customer_id")[0]["email"] == hmac_hex("ann@example.com", b"k-two")


def test_a_missing_pii_key_is_a_clear_error(house: Lakehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_PII_KEY", raising=False)
    house.file("contracts/bronze.orders.yaml", PII_CONTRACT)
    house.raw("raw/orders/a.csv", "customer_id,email,amount\n1,a@b.c,1\n")
    task = {"name": "orders", "kind": "ingest", "source": "raw/orders/", "format": "csv", "target": "bronze.orders", "contract": "bronze.orders"}
    with pytest.raises(ConfigError, match=r"secret reference \$\{env:TEST_PII_KEY\} is not set"):
        house.run(task)
    house.file("contracts/bronze.orders.yaml", PII_CONTRACT.replace("pii_key: ${env:TEST_PII_KEY}\n", ""))
    with pytest.raises(ConfigError, match="marked pii but the contract has no pii_key"):
        house.run(task)
    assert not house.lake.exists("bronze.orders")


PEOPLE_CONTRACT = """\
pii_key: ${env:TEST_PII_KEY}
columns:
  - {name: id, type: bigint}
  - {name: email, pii: true}
  - {name: birth, type: date, pii: true}
  - {name: ssn, type: bigint, pii: true}
  - {name: code, type: "decimal(6,2)", pii: true}
expectations:
  - {range: {column: ssn, min: 5000}, action: drop}
  - {accepted_values: {column: email, values: [a@example.com]}, action: drop}
"""
PEOPLE = (
    "id,email,birth,ssn,code\n"
    "1,a@example.com,1990-01-02,123456,1.5\n"
    "2,a@example.com,not-a-date-4713,123456,1.5\n"
    "3,a@example.com,1991-02-03,ssn-bad-4715,1.5\n"
    "4,a@example.com,1992-03-04,4717,1.5\n"
    "5,leak-me-4711@example.com,1992-03-04,123456,1.5\n"
    "6,a@example.com,1992-03-04,4718.5,1.5\n"
    "7,a@example.com,1992-03-04,123456,47.195\n"
)
PEOPLE_SECRETS = ("4713", "4715", "4717", "4711", "4718", "47.195", "47.2")


def test_quarantine_reasons_name_the_pii_column_and_the_problem_never_the_value(
    house: Lakehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PII_KEY", "k")
    house.file("contracts/bronze.people.yaml", PEOPLE_CONTRACT)
    house.raw("raw/people/a.csv", PEOPLE)
    task = {"name": "people", "kind": "ingest", "source": "raw/people/*.csv", "target": "bronze.people", "contract": "bronze.people"}

    house.run(task)

    assert [r["id"] for r in house.rows("bronze.people", sort="id")] == [1]
    bad = house.rows("bronze.people__quarantine", sort="_line")
    assert [r["_reason"] for r in bad] == [
        "birth: cannot parse <pii value withheld> as DATE",
        "ssn: cannot parse <pii value withheld> as BIGINT",
        "range(ssn): <pii value withheld>",
        "accepted_values(email): <pii value withheld>",
        "ssn: <pii value withheld> is not an integer (BIGINT)",
        "code: <pii value withheld> has more decimal places than DECIMAL(6,2) holds",
    ]
    # The quarantine keeps a pii column's token, as the table does (the raw text never).
    assert bad[1]["ssn"] == hmac_hex("ssn-bad-4715", b"k")
    for path in Path(house.lake.location.uri("bronze")).rglob("*"):
        if path.is_file():
            text = _readable(path)
            assert not [s for s in PEOPLE_SECRETS if s in text], path


def _readable(path: Path) -> str:
    """A file's content as text: Parquet decoded cell by cell, anything else as bytes."""
    if path.suffix == ".parquet":
        return repr(pq.read_table(path).to_pylist())
    return path.read_bytes().decode("utf-8", errors="replace")


# -- exact values -----------------------------------------------------------------------


def test_a_value_that_does_not_fit_its_column_exactly_is_quarantined_not_rounded(house: Lakehouse) -> None:
    house.file(
        "contracts/bronze.n.yaml",
        "columns:\n  - {name: k, type: bigint}\n  - {name: small, type: int}\n  - {name: d, type: \"decimal(5,2)\"}\n",
    )
    house.raw(
        "raw/n/a.csv",
        "k,small,d\n"
        "1,1,1.5\n"          # fine
        "1.5,1,1\n"          # would round to 2 (a duplicate key)
        "2.0,1,1\n"          # an integer written with a fraction: exact
        "1e3,1,1\n"          # exact
        "3,2147483648,1\n"   # out of INTEGER's range
        "4,1,1.234\n"        # would round to 1.23
        "5,1,1.230\n"        # trailing zeros: exact
        "6,1,1234.5\n"       # out of DECIMAL(5,2)'s range
        "1.5e0,1,1\n"        # exponent notation, still 1.5
        "-7.5,1,1\n"         # negative too
        "x,1,1\n"            # not a number
    )
    task = {"name": "n", "kind": "ingest", "source": "raw/n/*.csv", "target": "bronze.n", "contract": "bronze.n"}

    house.run(task)

    assert [(r["k"], str(r["d"])) for r in house.rows("bronze.n", sort="k")] == [
        (1, "1.50"), (2, "1.00"), (5, "1.23"), (1000, "1.00")
    ]
    bad = house.rows("bronze.n__quarantine", sort="_line")
    assert [(r["_line"], r["_reason"]) for r in bad] == [
        (3, "k: '1.5' is not an integer (BIGINT)"),
        (6, "small: '2147483648' is out of range for INTEGER"),
        (7, "d: '1.234' has more decimal places than DECIMAL(5,2) holds"),
        (9, "d: '1234.5' is out of range for DECIMAL(5,2)"),
        (10, "k: '1.5e0' is not an integer (BIGINT)"),
        (11, "k: '-7.5' is not an integer (BIGINT)"),
        (12, "k: cannot parse 'x' as BIGINT"),
    ]


def test_an_integer_type_inferred_from_an_earlier_file_takes_only_integers(house: Lakehouse) -> None:
    task = {"name": "t", "kind": "ingest", "source": "raw/t/*.csv", "target": "bronze.t"}
    house.raw("raw/t/a.csv", "id,v\n1,a\n2,b\n")
    house.run(task)
    assert house.table("bronze.t").schema.field("id").type == pa.int64()

    house.raw("raw/t/b.csv", "id,v\n3,c\n101.5,d\n")
    house.run(task)

    assert [r["id"] for r in house.rows("bronze.t", sort="id")] == [1, 2, 3]
    bad = house.rows("bronze.t__quarantine", sort="_line")
    assert [(r["id"], r["_reason"]) for r in bad] == [("101.5", "id: '101.5' is not an integer (BIGINT)")]


def test_a_parquet_double_into_an_integer_column_must_be_whole(house: Lakehouse) -> None:
    path = Path(house.lake.location.uri("raw/q/a.parquet"))
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"id": [1.0, 1.5, 3.0], "amount": [0.25, 0.5, 0.125]}), path)
    house.file("contracts/bronze.q.yaml", "columns:\n  - {name: id, type: bigint}\n  - {name: amount, type: \"decimal(6,2)\"}\n")
    task = {"name": "q", "kind": "ingest", "source": "raw/q/*.parquet", "target": "bronze.q", "contract": "bronze.q"}

    house.run(task)

    assert [r["id"] for r in house.rows("bronze.q", sort="id")] == [1]
    bad = house.rows("bronze.q__quarantine", sort="_line")
    assert [r["_reason"] for r in bad] == [
        "id: '1.5' is not an integer (BIGINT)",
        "amount: '0.125' has more decimal places than DECIMAL(6,2) holds",
    ]


# -- expectations at ingest ------------------------------------------------------------


def test_fail_expectation_writes_nothing_and_warn_is_counted(house: Lakehouse) -> None:
    house.raw("raw/taxi/a.csv", TAXI_SAMPLE)
    contract = TAXI_CONTRACT.replace("action: drop", "action: fail") + (
        "  - {accepted_values: {column: passenger_count, values: [1, 2, 3, 4]}, action: warn}\n"
    )
    house.file("contracts/bronze.taxi_trips.yaml", contract)
    with pytest.raises(ExpectationFailedError, match=r"'range\(fare_amount\)' failed on 1 row of bronze.taxi_trips"):
        house.run(TAXI_TASK)
    assert not house.lake.exists("bronze.taxi_trips")
    assert not house.lake.exists("bronze.taxi_trips__quarantine")

    house.file("contracts/bronze.taxi_trips.yaml", contract.replace("action: fail", "action: warn"))
    context = house.run(TAXI_TASK)
    assert house.count("bronze.taxi_trips") == 999
    results = {r["name"]: r for r in context.metrics.extra["expectations"]}
    assert results["range(fare_amount)"]["failing_rows"] == 1
    assert results["accepted_values(passenger_count)"]["failing_rows"] == 48 + 37


def test_unique_expectation_counts_duplicate_keys_in_the_batch(house: Lakehouse) -> None:
    house.raw("raw/taxi/a.csv", TAXI_SAMPLE)
    house.raw("raw/taxi/b.csv", b"".join(sample_lines()[:11]))  # 10 trips again
    house.file("contracts/bronze.taxi_trips.yaml", TAXI_CONTRACT + "  - {unique: [trip_id], action: warn}\n")
    context = house.run(TAXI_TASK)
    results = {r["name"]: r for r in context.metrics.extra["expectations"]}
    assert results["unique(trip_id)"]["failing_rows"] == 20

    house.file("contracts/bronze.taxi_trips.yaml", TAXI_CONTRACT + "  - {unique: [trip_id], action: fail}\n")
    with pytest.raises(ExpectationFailedError, match=r"'unique\(trip_id\)' failed on 20 rows"):
        house.run(TAXI_TASK, full_refresh=True)
    assert house.lake.version("bronze.taxi_trips") == 0


# -- formats and inference ---------------------------------------------------------------


def test_json_lines_with_line_numbers(house: Lakehouse) -> None:
    lines = [
        {"id": 1, "at": "2024-01-01 10:00:00", "tags": ["a"]},
        {"id": 2, "at": "not a time"},
        {"id": "x3", "at": "2024-01-02 11:00:00", "extra": {"k": 1}},
    ]
    house.raw("raw/events/a.jsonl", "".join(json.dumps(r) + "\n" for r in lines))
    house.file("contracts/bronze.events.yaml", "columns:\n  - {name: id, type: int}\n  - {name: at, type: timestamp}\n")
    task = {"name": "events", "kind": "ingest", "source": "raw/events/*.jsonl", "target": "bronze.events", "contract": "bronze.events"}

    house.run(task)

    good = house.rows("bronze.events", sort="id")
    assert [(r["id"], r["at"]) for r in good] == [(1, datetime(2024, 1, 1, 10))]
    assert good[0]["tags"] == '["a"]'  # a nested value not in the contract is kept as JSON text
    bad = house.rows("bronze.events__quarantine", sort="_line")
    assert [(r["_line"], r["_reason"]) for r in bad] == [
        (2, "at: cannot parse 'not a time' as TIMESTAMP"),
        (3, "id: cannot parse 'x3' as INTEGER"),
    ]


def test_parquet_keeps_types_and_numbers_rows(house: Lakehouse) -> None:
    path = Path(house.lake.location.uri("raw/p/a.parquet"))
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"id": [1, 2, 3], "when": ["2024-01-01", "bad", "2024-01-03"], "v": [0.5, 1.5, None]}), path)
    house.file("contracts/bronze.p.yaml", "columns:\n  - {name: id, type: bigint}\n  - {name: when, type: date}\n  - {name: v, type: double}\n")
    task = {"name": "p", "kind": "ingest", "source": "raw/p/*.parquet", "target": "bronze.p", "contract": "bronze.p"}

    house.run(task)

    assert [r["id"] for r in house.rows("bronze.p", sort="id")] == [1, 3]
    bad = house.rows("bronze.p__quarantine", sort="_line")
    assert [(r["_line"], r["id"], r["_reason"]) for r in bad] == [(2, "2", "when: cannot parse 'bad' as DATE")]


def test_without_a_contract_types_are_inferred_and_kept_on_later_files(house: Lakehouse) -> None:
    house.raw("raw/titanic/part1.csv", TITANIC)
    task = {"name": "titanic", "kind": "ingest", "source": "raw/titanic/*.csv", "target": "bronze.titanic"}

    house.run(task)

    table = house.table("bronze.titanic")
    assert table.num_rows == 891
    assert table.schema.field("Age").type == pa.float64()
    assert table.schema.field("Survived").type == pa.int64()
    assert table.schema.field("Name").type == pa.string()
    # A later file whose sample would look different keeps the table's types.
    house.raw("raw/titanic/part2.csv", "PassengerId,Survived,Pclass,Name,Sex,Age\n900,1,3,\"Doe, Jane\",female,unknown\n")
    house.run(task)
    assert house.count("bronze.titanic") == 891
    bad = house.rows("bronze.titanic__quarantine", sort="_line")
    assert [(r["_line"], r["_reason"]) for r in bad] == [(2, "Age: cannot parse 'unknown' as DOUBLE")]


def test_reader_options_delimiter_and_no_header(house: Lakehouse) -> None:
    house.raw("raw/semi/a.txt", "1;x\n2;y\n")
    task = {
        "name": "semi", "kind": "ingest", "source": "raw/semi/a.txt", "target": "bronze.semi",
        "options": {"delimiter": ";", "header": False},
    }
    house.run(task)
    rows = house.rows("bronze.semi", sort="column0")
    assert [(r["column0"], r["column1"]) for r in rows] == [(1, "x"), (2, "y")]


def test_an_unreadable_file_names_the_file(house: Lakehouse) -> None:
    house.raw("raw/bad/a.csv", "a,b\n1,2\n3,4,5,6\n")
    task = {"name": "bad", "kind": "ingest", "source": "raw/bad/*.csv", "target": "bronze.bad"}
    with pytest.raises(IngestError, match=r"raw/bad/a\.csv"):
        house.run(task)
    assert not house.lake.exists("bronze.bad")


def test_partitioned_target(house: Lakehouse) -> None:
    synth(house, "a.csv", 200, seed=1)
    house.file("contracts/bronze.trips.yaml", SYNTH_CONTRACT.format(evolution="add"))
    house.run({**SYNTH_TASK, "partition_by": "VendorID"})
    assert house.lake.describe("bronze.trips").partition_columns == ["VendorID"]
    assert house.count("bronze.trips") == 200


# -- options and check -------------------------------------------------------------------


def test_options_are_validated() -> None:
    with pytest.raises(ValidationError, match="cannot tell the format"):
        IngestOptions.model_validate({"source": "raw/x/", "target": "bronze.x"})
    with pytest.raises(ValidationError, match="not a table name"):
        IngestOptions.model_validate({"source": "raw/x.csv", "target": "trips"})
    with pytest.raises(ValidationError, match="Extra inputs"):
        IngestOptions.model_validate({"source": "raw/x.csv", "target": "bronze.x", "sep": ";"})
    assert IngestOptions.model_validate({"source": "raw/x.ndjson", "target": "bronze.x"}).file_format == "json"


def test_check_reports_missing_files_and_contract_problems(house: Lakehouse) -> None:
    house.raw("raw/taxi/a.csv", TAXI_SAMPLE)
    assert house.check(TAXI_TASK) == [
        "contract 'contracts/bronze.taxi_trips.yaml': contract file "
        f"{house.ws.root / 'contracts/bronze.taxi_trips.yaml'} not found "
        "(hint: contracts live in contracts/, e.g. contracts/bronze.trips.yaml)"
    ]
    house.file(
        "contracts/bronze.taxi_trips.yaml",
        "columns:\n  - {name: a, type: int}\n  - {name: b, type: nonsense}\n  - {name: c, pii: true}\n"
        "expectations:\n  - {range: {column: zzz, min: 0}}\n  - {unique: [a], action: drop}\n",
    )
    problems = house.check({**TAXI_TASK, "source": "raw/nothing/*.csv", "partition_by": ["d"]})
    assert problems[0] == "no file in the lake matches 'raw/nothing/*.csv'"
    text = "\n".join(problems)
    assert "column 'b' has an unknown type 'nonsense'" in text
    assert "columns c are pii but the contract has no pii_key" in text
    assert "unique with action drop is not supported at ingest" in text
    assert "partition column 'd' is not in the contract" in text

    house.file("contracts/bronze.taxi_trips.yaml", "columns:\n  - {name: a, type: int}\nexpectations:\n  - {range: {column: zzz, min: 0}}\n")
    (problem,) = house.check(TAXI_TASK)
    assert problem.startswith("contract contracts/bronze.taxi_trips.yaml: expectation 'range(zzz)' does not compile")
    assert "zzz" in problem

    house.file("contracts/bronze.taxi_trips.yaml", TAXI_CONTRACT)
    assert house.check(TAXI_TASK) == []
