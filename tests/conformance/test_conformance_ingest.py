"""The `ingest` kind on every engine: CSV (the demo's dirty inputs), JSON lines and Parquet,
contracts (types, formats, nullable, PII, expectations), bad rows to quarantine with their
reasons, schema evolution, checkpoints, and clear errors — the same tables on each engine."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conformance_kit import DEMO_CONTRACTS, TAXI_SAMPLE, TITANIC, Project, fingerprint, types

from brickyard.core.pii import hmac_hex
from brickyard.demo.synth import write_taxi_csv
from brickyard.runtime.records import AttemptRecord

SYNTHETIC = {
    "name": "ingest_synthetic",
    "kind": "ingest",
    "source": "raw/taxi/*.csv",
    "target": "bronze.taxi_trips",
    "contract": "contracts/bronze.taxi_trips.yaml",
}
SAMPLE_2017 = {
    "name": "ingest_sample_2017",
    "kind": "ingest",
    "source": "raw/taxi/sample_2017/*.csv",
    "target": "bronze.taxi_trips",
    "contract": "contracts/bronze.taxi_trips_sample_2017.yaml",
}


def synthetic_csv(rows: int, seed: int, dirty: float = 0.05) -> bytes:
    sink = io.BytesIO()
    write_taxi_csv(sink, rows, seed=seed, dirty_fraction=dirty)
    return sink.getvalue()


def sample_with(edits: dict[int, tuple[int, str]]) -> bytes:
    """The real 2017 sample with field `field` of line `line` replaced: {line: (field, value)}."""
    lines = TAXI_SAMPLE.read_bytes().splitlines(keepends=True)
    for line, (index, value) in edits.items():
        fields = lines[line - 1].rstrip(b"\r\n").split(b",")
        fields[index] = value.encode()
        lines[line - 1] = b",".join(fields) + b"\r\n"
    return b"".join(lines)


def counts(attempt: AttemptRecord) -> tuple[Any, ...]:
    """What a run records of an ingest attempt, without commit versions."""
    batches = [{k: v for k, v in b.items() if k != "version"} for b in attempt.metrics["batches"]]
    return (attempt.rows_in, attempt.rows_out, attempt.metrics["quarantined_rows"], attempt.metrics["files_loaded"],
            batches)


# -- the demo's inputs -----------------------------------------------------------------


def test_the_demo_taxi_inputs_land_typed_with_reasons_files_and_lines(project: Project) -> None:
    project.file("contracts/bronze.taxi_trips.yaml", DEMO_CONTRACTS / "bronze.taxi_trips.yaml")
    project.file("contracts/bronze.taxi_trips_sample_2017.yaml", DEMO_CONTRACTS / "bronze.taxi_trips_sample_2017.yaml")
    project.raw("raw/taxi/2017-01.csv", synthetic_csv(600, seed=7))
    project.raw("raw/taxi/2017-02.csv", synthetic_csv(200, seed=8))
    project.raw("raw/taxi/sample_2017/a.csv", TAXI_SAMPLE)
    # Dirty values in the real sample: unparseable, missing, out of format; a decimal
    # integer; a quoted field.
    project.raw(
        "raw/taxi/sample_2017/b edited.csv",
        sample_with({10: (2, "N/A"), 500: (2, ""), 777: (4, "many"), 999: (3, "13/45/2017 9:00"),
                     20: (4, "2.5"), 30: (7, '"N"')}),
    )
    project.pipeline("taxi", [SYNTHETIC, SAMPLE_2017])

    run = project.run_ok("taxi")

    assert counts(run.task("ingest_synthetic")) == (800, 795, 5, 2, [{'batch': 1, 'files': 2, 'rows': 795, 'quarantined': 5, 'full_refresh': False, 'mode': 'append'}])
    assert [run.task(t).metrics.get("expectations") for t in ("ingest_synthetic", "ingest_sample_2017")] == [[], []]
    assert counts(run.task("ingest_sample_2017")) == (1998, 1993, 5, 2, [{'batch': 1, 'files': 2, 'rows': 1993, 'quarantined': 5, 'full_refresh': False, 'mode': 'append'}])
    bronze, quarantine = project.read("bronze.taxi_trips"), project.read("bronze.taxi_trips__quarantine")
    assert types(bronze)["pickup_at"] == "timestamp[us]"
    assert types(bronze)["vendor_id"] == "int32"
    assert types(bronze)["tlc_row_id"] == "int64"
    assert set(bronze.column("_source_file").to_pylist()) == {
        "raw/taxi/2017-01.csv", "raw/taxi/2017-02.csv", "raw/taxi/sample_2017/a.csv", "raw/taxi/sample_2017/b edited.csv"
    }
    bad = {(r["_source_file"], r["_line"]): r["_reason"] for r in quarantine.to_pylist()}
    assert bad[("raw/taxi/sample_2017/b edited.csv", 10)].startswith("pickup_at: cannot parse 'N/A' as TIMESTAMP")
    assert bad[("raw/taxi/sample_2017/b edited.csv", 500)] == "pickup_at: missing value (nullable: false)"
    assert bad[("raw/taxi/sample_2017/b edited.csv", 777)] == "passenger_count: cannot parse 'many' as INTEGER"
    assert any(f.startswith("raw/taxi/2017-") for f, _ in bad)
    assert all(line is not None for _, line in bad)
    # "2.5" as an integer rounds to 3, as DuckDB's cast does, on every engine.
    edited = [r for r in bronze.to_pylist() if r["_source_file"].endswith("b edited.csv")]
    assert any(r["passenger_count"] == 3 for r in edited)
    assert (fingerprint(bronze), fingerprint(quarantine)) == ("f2ebc8d54019d79a", "6d1aada00fe95916")


def test_titanic_without_a_contract_infers_names_and_types(project: Project) -> None:
    project.raw("raw/titanic/titanic.csv", TITANIC)
    project.pipeline("titanic", {"name": "ingest_passengers", "kind": "ingest", "source": "raw/titanic/*.csv",
                                 "target": "bronze.titanic"})

    run = project.run_ok("titanic")

    table = project.read("bronze.titanic")
    assert table.num_rows == 891
    assert {k: types(table)[k] for k in ("Age", "PassengerId", "Name")} == {
        "Age": "double", "PassengerId": "int64", "Name": "string"
    }
    assert counts(run.task("ingest_passengers")) == (891, 891, 0, 1, [{'batch': 1, 'files': 1, 'rows': 891, 'quarantined': 0, 'full_refresh': False, 'mode': 'append'}])
    assert fingerprint(table) == "d3a6b3a531533890"


# -- checkpoints -------------------------------------------------------------------------


def test_a_second_run_skips_ingested_files_and_a_new_file_loads_only_its_rows(project: Project) -> None:
    project.file("contracts/bronze.taxi_trips.yaml", DEMO_CONTRACTS / "bronze.taxi_trips.yaml")
    project.raw("raw/taxi/2017-01.csv", synthetic_csv(300, seed=1))
    project.pipeline("taxi", SYNTHETIC)
    project.run_ok("taxi")

    again = project.run_ok("taxi").task("ingest_synthetic")
    assert (again.rows_in, again.metrics["files_loaded"]) == (0, 0)
    assert project.lake.version("bronze.taxi_trips") == 0

    project.raw("raw/taxi/2017-02.csv", synthetic_csv(150, seed=2))
    third = project.run_ok("taxi").task("ingest_synthetic")
    assert counts(third) == (150, 147, 3, 1, [{'batch': 2, 'files': 1, 'rows': 147, 'quarantined': 3, 'full_refresh': False, 'mode': 'append'}])
    assert "brickyard.ingest" in project.lake.history("bronze.taxi_trips")[0]  # the checkpoint is in the commit
    assert (fingerprint(project.read("bronze.taxi_trips")),
            fingerprint(project.read("bronze.taxi_trips__quarantine"))) == ("b3a20739f79f2ae4", "5b8ce568e37f2f81")


def test_an_empty_file_is_skipped_recorded_and_reported(project: Project) -> None:
    project.raw("raw/x/a.csv", "a,b,c\n1,2,3\n4,5,6\n")
    project.raw("raw/x/empty.csv", "")
    project.pipeline("load", {"name": "load", "kind": "ingest", "source": "raw/x/*.csv", "target": "bronze.x"})

    first = project.run_ok("load").task("load")

    assert project.rows("bronze.x", drop=("_loaded_at", "_run_id", "_source_file")) == [
        {"a": 1, "b": 2, "c": 3}, {"a": 4, "b": 5, "c": 6}
    ]
    assert first.metrics["skipped_files"] == [{"path": "raw/x/empty.csv", "reason": "empty file"}]
    assert first.metrics["files_loaded"] == 1
    again = project.run_ok("load").task("load")
    assert again.rows_in == 0 and again.metrics["skipped_files"] == []


# -- contracts ---------------------------------------------------------------------------

ORDERS_CONTRACT = """\
pii_key: ${{env:TEST_PII_KEY}}
evolution: {evolution}
columns:
  - {{name: customer_id, type: int, nullable: false}}
  - {{name: email, pii: true}}
  - {{name: amount, type: "decimal(10,2)"}}
  - {{name: ordered_on, type: date, format: "%d.%m.%Y"}}
  - {{name: paid, type: boolean}}
expectations:
  - {{range: {{column: amount, min: 0}}, action: drop}}
  - {{accepted_values: {{column: customer_id, values: [1, 2, 3, 4, 5, 6]}}, action: warn}}
  - {{name: big_order, sql: "amount < 1000", action: {big}}}
  - {{unique: [customer_id], action: warn}}
"""
ORDERS = (
    "customer_id,email,amount,ordered_on,paid\n"
    "1,ann@example.com,10,1.2.2024,true\n"
    "2,bob@example.com,oops,02.02.2024,false\n"
    ",cid@example.com,3,3.2.2024,t\n"
    "4,ann@example.com,-7.5,4.2.2024,\n"
    "5,\"eve, jr@example.com\",1e3,5.2.2024,1\n"
    "7,dan@example.com,8.125,31.2.2024,0\n"
    "1,ann@example.com,9,7.2.2024,yes\n"
)
ORDERS_TASK = {"name": "orders", "kind": "ingest", "source": "raw/orders/*.csv", "target": "bronze.orders",
               "contract": "bronze.orders"}


@pytest.fixture
def orders(project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("TEST_PII_KEY", "k-one")
    project.raw("raw/orders/a.csv", ORDERS)
    project.pipeline("orders", ORDERS_TASK)
    return project


def test_types_formats_nullable_pii_and_expectations(orders: Project) -> None:
    orders.file("contracts/bronze.orders.yaml", ORDERS_CONTRACT.format(evolution="add", big="drop"))

    run = orders.run_ok("orders").task("orders")

    rows = orders.rows("bronze.orders")
    bad = orders.rows("bronze.orders__quarantine")
    reasons = {r["_line"]: r["_reason"] for r in bad}
    assert reasons == {
        3: "amount: cannot parse 'oops' as DECIMAL(10,2)",
        4: "customer_id: missing value (nullable: false)",
        5: "range(amount): '-7.50'",
        6: "big_order",
        7: "amount: '8.125' has more decimal places than DECIMAL(10,2) holds; "
           "ordered_on: cannot parse '31.2.2024' as DATE with format %d.%m.%Y",
    }
    assert {r["email"] for r in rows} == {hmac_hex("ann@example.com", b"k-one")}
    assert {r["email"] for r in bad} >= {hmac_hex("bob@example.com", b"k-one")}
    assert [(r["customer_id"], str(r["amount"]), str(r["ordered_on"]), r["paid"]) for r in rows] == [
        (1, "10.00", "2024-02-01", True), (1, "9.00", "2024-02-07", True)
    ]
    results = {r["name"]: r["failing_rows"] for r in run.metrics["expectations"]}
    assert results["unique(customer_id)"] == 2
    assert results["accepted_values(customer_id)"] == 0  # the only 7 is on a row that does not parse
    assert counts(run) == (7, 2, 5, 1, [{'batch': 1, 'files': 1, 'rows': 2, 'quarantined': 5, 'full_refresh': False, 'mode': 'append'}])
    assert types(orders.read("bronze.orders")) == {
        "customer_id": "int32", "email": "string", "amount": "decimal128(10, 2)", "ordered_on": "date32[day]",
        "paid": "bool", "_source_file": "string", "_loaded_at": "timestamp[us]",
    }
    assert (fingerprint(orders.read("bronze.orders")), fingerprint(orders.read("bronze.orders__quarantine"))) == (
        "4d1bb9452ae5252b", "46f1a01fa11f22ad"
    )


def test_a_fail_expectation_names_itself_and_writes_nothing(orders: Project) -> None:
    orders.file("contracts/bronze.orders.yaml", ORDERS_CONTRACT.format(evolution="add", big="fail"))

    error = orders.run_failing("orders")

    assert "'big_order' failed on 1 row of bronze.orders" in error
    assert not orders.exists("bronze.orders")
    assert not orders.exists("bronze.orders__quarantine")


def test_schema_evolution_add_adds_the_column_and_fail_refuses_the_file(orders: Project) -> None:
    orders.file("contracts/bronze.orders.yaml", ORDERS_CONTRACT.format(evolution="add", big="warn"))
    orders.run_ok("orders")
    orders.raw("raw/orders/b.csv", "customer_id,email,amount,ordered_on,paid,note\n6,x@y.z,1,1.1.2024,f,hello\n")
    orders.run_ok("orders")
    table = orders.read("bronze.orders")
    assert types(table)["note"] == "string"
    assert [r["note"] for r in orders.rows("bronze.orders")] == [None, None, None, "hello"]

    orders.file("contracts/bronze.orders.yaml", ORDERS_CONTRACT.format(evolution="fail", big="warn"))
    orders.raw("raw/orders/c.csv", "customer_id,email,amount,ordered_on,paid,other\n6,x@y.z,1,1.1.2024,f,x\n")
    before = orders.lake.version("bronze.orders")
    error = orders.run_failing("orders")
    assert "column 'other' of raw/orders/c.csv is not in the contract" in error
    assert orders.lake.version("bronze.orders") == before


# -- checked writes: what does not fit goes to quarantine, never rounded -----------------

EXACT_CONTRACT = """\
pii_key: ${env:TEST_PII_KEY}
columns:
  - {name: k, type: bigint}
  - {name: small, type: int}
  - {name: d, type: "decimal(5,2)"}
  - {name: ssn, type: bigint, pii: true}
expectations:
  - {range: {column: ssn, min: 5000}, action: drop}
"""
EXACT = (
    "k,small,d,ssn\n"
    "1,1,1.5,123456\n"
    "1.5,1,1,123456\n"
    "2.0,1,1,123456\n"
    "1e3,1,1,123456\n"
    "3,2147483648,1,123456\n"
    "4,1,1.234,123456\n"
    "5,1,1.230,123456\n"
    "6,1,1234.5,123456\n"
    "1.5e0,1,1,123456\n"
    "-7.5,1,1,123456\n"
    "x,1,1,123456\n"
    "8,1,1,4718.5\n"
    "9,1,1,ssn-4715\n"
    "10,1,1,4717\n"
)


def test_values_that_do_not_fit_exactly_are_quarantined_and_pii_values_withheld(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PII_KEY", "k")
    project.file("contracts/bronze.n.yaml", EXACT_CONTRACT)
    project.raw("raw/n/a.csv", EXACT)
    project.pipeline("n", {"name": "n", "kind": "ingest", "source": "raw/n/*.csv", "target": "bronze.n",
                           "contract": "bronze.n"})

    run = project.run_ok("n")

    rows = project.rows("bronze.n")
    assert sorted(r["k"] for r in rows) == [1, 2, 5, 1000]
    assert sorted(str(r["d"]) for r in rows) == ["1.00", "1.00", "1.23", "1.50"]
    bad = sorted(project.rows("bronze.n__quarantine"), key=lambda r: r["_line"])
    assert [(r["_line"], r["_reason"]) for r in bad] == [
        (3, "k: '1.5' is not an integer (BIGINT)"),
        (6, "small: '2147483648' is out of range for INTEGER"),
        (7, "d: '1.234' has more decimal places than DECIMAL(5,2) holds"),
        (9, "d: '1234.5' is out of range for DECIMAL(5,2)"),
        (10, "k: '1.5e0' is not an integer (BIGINT)"),
        (11, "k: '-7.5' is not an integer (BIGINT)"),
        (12, "k: cannot parse 'x' as BIGINT"),
        (13, "ssn: <pii value withheld> is not an integer (BIGINT)"),
        (14, "ssn: cannot parse <pii value withheld> as BIGINT"),
        (15, "range(ssn): <pii value withheld>"),
    ]
    assert bad[-2]["ssn"] == hmac_hex("ssn-4715", b"k")
    # No raw PII value in what the run recorded or logged.
    record = repr(run.task("n"))
    for secret in ("ssn-4715", "4718.5", "4717"):
        assert secret not in record and secret not in run.log("n")


def test_an_integer_column_of_the_existing_table_takes_only_integers(project: Project) -> None:
    project.raw("raw/t/a.csv", "id,v\n1,a\n2,b\n")
    project.pipeline("t", {"name": "t", "kind": "ingest", "source": "raw/t/*.csv", "target": "bronze.t"})
    project.run_ok("t")
    project.raw("raw/t/b.csv", "id,v\n3,c\n101.5,d\n")
    project.run_ok("t")

    assert sorted(r["id"] for r in project.rows("bronze.t")) == [1, 2, 3]
    bad = project.rows("bronze.t__quarantine")
    assert [(r["id"], r["_reason"]) for r in bad] == [("101.5", "id: '101.5' is not an integer (BIGINT)")]


# -- clear errors ------------------------------------------------------------------------


def test_a_malformed_csv_names_the_file_and_the_line_and_loads_nothing(project: Project) -> None:
    project.pipeline("bad", {"name": "bad", "kind": "ingest", "source": "raw/bad/*.csv", "target": "bronze.bad"})
    project.raw("raw/bad/a.csv", "a,b,c\n1,2,3\n")
    project.raw("raw/bad/b.csv", "a,b,c\n1,2,3\n4,5,6,7\n")  # within the header sniffer's sample
    error = project.run_failing("bad")
    assert "raw/bad/b.csv:3: 4 fields where 3 were expected: '4,5,6,7'; nothing was loaded" in error

    project.raw("raw/bad/b.csv", "a,b,c\n" + "1,2,3\n" * 30000 + "4,5,6,7\n")  # far beyond it
    error = project.run_failing("bad")
    assert "raw/bad/b.csv:30002: 4 fields where 3 were expected: '4,5,6,7'; nothing was loaded" in error
    assert "SQLSTATE" not in error and "OSError" not in error
    assert not project.exists("bronze.bad")


# -- other formats -----------------------------------------------------------------------


def test_json_lines_are_typed_by_the_contract_and_bad_values_quarantined(project: Project) -> None:
    project.raw("raw/events/a.jsonl",
                '{"id": 1, "at": "2024-01-01 10:00:00", "tags": ["a"]}\n{"id": 2, "at": "not a time"}\n')
    project.file("contracts/bronze.events.yaml",
                 "columns:\n  - {name: id, type: bigint}\n  - {name: at, type: timestamp}\n  - {name: tags}\n")
    project.pipeline("events", {"name": "events", "kind": "ingest", "source": "raw/events/*.jsonl",
                                "target": "bronze.events", "contract": "bronze.events"})

    project.run_ok("events")

    assert fingerprint(project.read("bronze.events")) == "b451abe7c8126011"
    bad = project.rows("bronze.events__quarantine")
    assert [r["_reason"] for r in bad] == ["at: cannot parse 'not a time' as TIMESTAMP"]
    assert bad[0]["_line"] == (2 if project.capabilities["line_numbers_in_json"] else None)


def test_parquet_values_that_do_not_fit_the_contract_are_quarantined_by_row_number(
    project: Project, tmp_path: Path
) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"k": [1, 2, 3], "v": ["x", "y", "z"]}), path)
    project.raw("raw/p/a.parquet", path.read_bytes())
    project.file("contracts/bronze.p.yaml", "columns:\n  - {name: k, type: int}\n  - {name: v, type: int}\n")
    project.pipeline("p", {"name": "p", "kind": "ingest", "source": "raw/p/*.parquet", "target": "bronze.p",
                           "contract": "bronze.p"})

    project.run_ok("p")

    bad = project.rows("bronze.p__quarantine")
    assert [(r["_line"], r["_reason"]) for r in bad] == [
        (1, "v: cannot parse 'x' as INTEGER"), (2, "v: cannot parse 'y' as INTEGER"), (3, "v: cannot parse 'z' as INTEGER")
    ]
    assert fingerprint(project.read("bronze.p__quarantine")) == "89a5ea49ceb22c8f"
