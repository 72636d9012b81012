"""The `ingest` kind on the Spark engine gives what it gives on DuckDB: the same inputs (the
demo's synthetic dirty taxi CSV, the real 2017 sample with its BOM, unnamed column and US
dates, Titanic without a contract) are ingested on both engines and the bronze tables and
quarantines compared row for row. Real Spark in local mode (one session for the process),
real DuckDB, real Delta tables; nothing mocked but a crash."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from brickyard import Workspace
from brickyard.core.pipeline import PipelineSpec
from brickyard.demo.synth import write_taxi_csv
from brickyard.engines import spark_delta
from brickyard.lake import Lake
from brickyard.tasks import get_kind, spark_quality
from brickyard.tasks.base import TaskContext
from brickyard.tasks.ingest import IngestError, SchemaEvolutionError
from brickyard.tasks.pii import hmac_hex
from brickyard.tasks.quality import ExpectationFailedError

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "src" / "brickyard" / "demo"
TAXI_SAMPLE = DEMO / "data" / "nyc_taxi_2017_sample.csv"
TITANIC = DEMO / "data" / "titanic.csv"
CONTRACTS = DEMO / "workspace" / "contracts"
VOLATILE = ("_loaded_at", "_run_id")

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
TITANIC_TASK = {"name": "ingest_passengers", "kind": "ingest", "source": "raw/titanic/*.csv", "target": "bronze.titanic"}


class Killed(BaseException):
    """Stands for the process being killed (not an Exception: nothing may catch it)."""


class Twin:
    """A DuckDB workspace and a Spark workspace given the same files and tasks."""

    def __init__(self, duck: Workspace, spark: Workspace) -> None:
        self.by_engine = {"duckdb": duck, "spark": spark}
        self.runs = 0

    def raw(self, relative: str, content: str | bytes | Path) -> None:
        for ws in self.by_engine.values():
            path = Path(ws.lake.location.uri(relative))
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                shutil.copyfile(content, path)
            elif isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")

    def file(self, relative: str, content: str | Path) -> None:
        for ws in self.by_engine.values():
            path = ws.root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content.read_text() if isinstance(content, Path) else content, encoding="utf-8")

    def run_on(
        self, engine: str, task: dict[str, Any], *, full_refresh: bool = False, lake_of: str | None = None
    ) -> TaskContext:
        """Run `task` on `engine`, in the workspace of that engine (or of `lake_of`)."""
        ws = self.by_engine[lake_of or engine]
        spec = PipelineSpec.model_validate({"name": "p", "tasks": [task]})
        kind = get_kind(task["kind"])
        self.runs += 1
        context = TaskContext(
            workspace=ws,
            pipeline=spec,
            task=spec.tasks[0],
            run_id=f"run-{self.runs}",
            attempt=1,
            full_refresh=full_refresh,
            log=logging.getLogger(f"test.{engine}"),
            engine=engine,
        )
        kind.run(kind.Options.model_validate(spec.tasks[0].options), context)
        return context

    def run(self, task: dict[str, Any], **kwargs: Any) -> dict[str, TaskContext]:
        return {engine: self.run_on(engine, task, **kwargs) for engine in self.by_engine}

    def table(self, engine: str, name: str) -> pa.Table:
        return self.by_engine[engine].lake.read(name)

    def assert_same(self, name: str) -> pa.Table:
        """The table is the same on both engines: columns, types, and rows (sorted)."""
        duck, spark = (self.table(e, name) for e in ("duckdb", "spark"))
        assert spark.schema.names == duck.schema.names
        assert [str(t) for t in spark.schema.types] == [str(t) for t in duck.schema.types]
        keep = [c for c in duck.schema.names if c not in VOLATILE]
        assert sorted_rows(spark, keep) == sorted_rows(duck, keep)
        return duck


def sorted_rows(table: pa.Table, columns: list[str]) -> list[tuple[Any, ...]]:
    rows = table.select(columns).to_pylist()
    return sorted((tuple(r.values()) for r in rows), key=repr)


def metrics_of(context: TaskContext) -> tuple[Any, ...]:
    extra = context.metrics.extra
    batches = [{k: v for k, v in b.items() if k != "version"} for b in extra["batches"]]
    return context.metrics.rows_in, context.metrics.rows_out, extra["quarantined_rows"], batches, extra.get("expectations")


@pytest.fixture
def twin(spark_workspace: Workspace, tmp_path: Path) -> Twin:
    return Twin(Workspace.init(tmp_path / "duck"), spark_workspace)


def sample_with(edits: dict[int, tuple[int, str]]) -> bytes:
    """The real sample with field `field` of line `line` replaced: {line: (field, value)}."""
    lines = TAXI_SAMPLE.read_bytes().splitlines(keepends=True)
    for line, (index, value) in edits.items():
        fields = lines[line - 1].rstrip(b"\r\n").split(b",")
        fields[index] = value.encode()
        lines[line - 1] = b",".join(fields) + b"\r\n"
    return b"".join(lines)


def synthetic_csv(rows: int, seed: int, dirty: float) -> bytes:
    import io

    sink = io.BytesIO()
    write_taxi_csv(sink, rows, seed=seed, dirty_fraction=dirty)
    return sink.getvalue()


# -- the demo's inputs -----------------------------------------------------------------


def test_the_demo_taxi_ingests_land_identically_on_both_engines(twin: Twin) -> None:
    twin.file("contracts/bronze.taxi_trips.yaml", CONTRACTS / "bronze.taxi_trips.yaml")
    twin.file("contracts/bronze.taxi_trips_sample_2017.yaml", CONTRACTS / "bronze.taxi_trips_sample_2017.yaml")
    twin.raw("raw/taxi/2017-01.csv", synthetic_csv(3000, seed=7, dirty=0.05))
    twin.raw("raw/taxi/2017-02.csv", synthetic_csv(500, seed=8, dirty=0.05))
    twin.raw("raw/taxi/sample_2017/a.csv", TAXI_SAMPLE)
    # Dirty values in the real sample: unparseable, missing, out of format; a quoted field.
    twin.raw(
        "raw/taxi/sample_2017/b edited.csv",
        sample_with({10: (2, "N/A"), 500: (2, ""), 777: (4, "many"), 999: (3, "13/45/2017 9:00"), 20: (4, "2.5"), 30: (7, '"N"')}),
    )

    synthetic = twin.run(SYNTHETIC)
    sample = twin.run(SAMPLE_2017)

    bronze = twin.assert_same("bronze.taxi_trips")
    quarantine = twin.assert_same("bronze.taxi_trips__quarantine")
    assert bronze.schema.field("pickup_at").type == pa.timestamp("us")
    assert bronze.schema.field("vendor_id").type == pa.int32()
    assert bronze.schema.field("tlc_row_id").type == pa.int64()
    assert set(bronze.column("_source_file").to_pylist()) == {
        "raw/taxi/2017-01.csv", "raw/taxi/2017-02.csv", "raw/taxi/sample_2017/a.csv", "raw/taxi/sample_2017/b edited.csv"
    }
    for runs in (synthetic, sample):
        assert metrics_of(runs["spark"]) == metrics_of(runs["duckdb"])
    # The quarantine keeps reasons, files and line numbers (the same on both engines).
    bad = {(r["_source_file"], r["_line"]): r["_reason"] for r in quarantine.to_pylist()}
    assert bad[("raw/taxi/sample_2017/b edited.csv", 10)].startswith("pickup_at: cannot parse 'N/A' as TIMESTAMP")
    assert bad[("raw/taxi/sample_2017/b edited.csv", 500)] == "pickup_at: missing value (nullable: false)"
    assert bad[("raw/taxi/sample_2017/b edited.csv", 777)] == "passenger_count: cannot parse 'many' as INTEGER"
    assert any(f.startswith("raw/taxi/2017-") for f, _ in bad)
    assert all(line is not None for _, line in bad)
    # DuckDB casts "2.5" to the integer 3; Spark does the same here.
    row_20 = [r for r in bronze.to_pylist() if r["_source_file"].endswith("b edited.csv") and r["passenger_count"] == 3]
    assert row_20


def test_titanic_without_a_contract_gets_the_same_names_and_types(twin: Twin) -> None:
    twin.raw("raw/titanic/titanic.csv", TITANIC)

    runs = twin.run(TITANIC_TASK)

    table = twin.assert_same("bronze.titanic")
    assert table.schema.field("Age").type == pa.float64()
    assert table.schema.field("PassengerId").type == pa.int64()
    assert table.schema.field("Name").type == pa.string()
    assert table.num_rows == 891
    assert metrics_of(runs["spark"]) == metrics_of(runs["duckdb"])


# -- checkpointing and idempotency -------------------------------------------------------


def test_a_second_run_skips_ingested_files_and_a_new_file_loads_only_its_rows(twin: Twin) -> None:
    twin.file("contracts/bronze.taxi_trips.yaml", CONTRACTS / "bronze.taxi_trips.yaml")
    twin.raw("raw/taxi/2017-01.csv", synthetic_csv(400, seed=1, dirty=0.05))
    twin.run(SYNTHETIC)

    again = twin.run(SYNTHETIC)
    assert again["spark"].metrics.rows_in == 0 and again["spark"].metrics.extra["files_loaded"] == 0
    assert twin.by_engine["spark"].lake.version("bronze.taxi_trips") == 0

    twin.raw("raw/taxi/2017-02.csv", synthetic_csv(150, seed=2, dirty=0.05))
    third = twin.run(SYNTHETIC)
    assert metrics_of(third["spark"]) == metrics_of(third["duckdb"])
    assert third["spark"].metrics.extra["files_loaded"] == 1
    twin.assert_same("bronze.taxi_trips")
    twin.assert_same("bronze.taxi_trips__quarantine")
    history = twin.by_engine["spark"].lake.history("bronze.taxi_trips")
    assert "brickyard.ingest" in history[0]  # the checkpoint is in the commit


def test_a_crash_between_the_two_commits_is_redone_without_duplicates(
    twin: Twin, monkeypatch: pytest.MonkeyPatch
) -> None:
    twin.file("contracts/bronze.taxi_trips.yaml", CONTRACTS / "bronze.taxi_trips.yaml")
    twin.raw("raw/taxi/2017-01.csv", synthetic_csv(600, seed=3, dirty=0.05))
    twin.run_on("duckdb", SYNTHETIC)
    real = spark_delta.write_table

    def crash_on_target(lake: Any, name: Any, *args: Any, **kwargs: Any) -> int:
        if not str(name).endswith("__quarantine"):
            raise Killed("killed between the two commits")
        return real(lake, name, *args, **kwargs)

    monkeypatch.setattr(spark_quality, "write_table", crash_on_target)
    with pytest.raises(Killed):
        twin.run_on("spark", SYNTHETIC)
    lake = twin.by_engine["spark"].lake
    assert not lake.exists("bronze.taxi_trips") and lake.exists("bronze.taxi_trips__quarantine")
    monkeypatch.setattr(spark_quality, "write_table", real)

    context = twin.run_on("spark", SYNTHETIC)  # redoes batch 1; its quarantine commit is skipped

    assert [b["batch"] for b in context.metrics.extra["batches"]] == [1]
    assert lake.version("bronze.taxi_trips__quarantine") == 0
    twin.assert_same("bronze.taxi_trips")
    twin.assert_same("bronze.taxi_trips__quarantine")
    # A retried commit of a batch already committed writes nothing.
    frame = twin.by_engine["spark"].spark.spark.range(3)
    assert real(lake, "bronze.taxi_trips", frame, transaction=("brickyard.ingest:p.ingest_synthetic", 1)) == 0
    assert lake.read("bronze.taxi_trips").num_rows == context.metrics.rows_out


def test_a_batch_another_writer_commits_first_is_planned_again_not_skipped(
    twin: Twin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer of the same task (here on DuckDB, having listed only the first file)
    commits batch 1 while Spark's files for batch 1 wait for their commit: Spark's commit is
    refused, and it plans again and loads the other file as batch 2."""
    twin.file("contracts/bronze.taxi_trips.yaml", CONTRACTS / "bronze.taxi_trips.yaml")
    twin.raw("raw/taxi/2017-01.csv", synthetic_csv(600, seed=3, dirty=0.05))
    twin.raw("raw/taxi/2017-02.csv", synthetic_csv(400, seed=4, dirty=0.05))
    lake = twin.by_engine["spark"].lake
    real = Lake.commit_files
    interleaved: list[TaskContext] = []

    def other_writer_first(self: Lake, *args: Any, **kwargs: Any) -> int:
        if not interleaved:
            first_file = {**SYNTHETIC, "source": "raw/taxi/2017-01.csv"}
            interleaved.append(twin.run_on("duckdb", first_file, lake_of="spark"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Lake, "commit_files", other_writer_first)
    context = twin.run_on("spark", SYNTHETIC)

    assert [b["batch"] for b in context.metrics.extra["batches"]] == [2]
    assert context.metrics.extra["conflicts"] == 1
    loaded = lake.read("bronze.taxi_trips").column("_source_file").to_pylist()
    parked = lake.read("bronze.taxi_trips__quarantine").column("_source_file").to_pylist()
    by_file = {name: loaded.count(name) + parked.count(name) for name in set(loaded + parked)}
    assert by_file == {"raw/taxi/2017-01.csv": 600, "raw/taxi/2017-02.csv": 400}


# -- contract handling ---------------------------------------------------------------------

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
ORDERS_TASK = {"name": "orders", "kind": "ingest", "source": "raw/orders/*.csv", "target": "bronze.orders", "contract": "bronze.orders"}


def test_types_formats_nullable_pii_and_expectations_behave_as_on_duckdb(
    twin: Twin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PII_KEY", "k-one")
    twin.file("contracts/bronze.orders.yaml", ORDERS_CONTRACT.format(evolution="add", big="drop"))
    twin.raw("raw/orders/a.csv", ORDERS)

    runs = twin.run(ORDERS_TASK)

    rows = twin.assert_same("bronze.orders").to_pylist()
    bad = twin.assert_same("bronze.orders__quarantine").to_pylist()
    assert metrics_of(runs["spark"]) == metrics_of(runs["duckdb"])
    reasons = {r["_line"]: r["_reason"] for r in bad}
    assert reasons[3] == "amount: cannot parse 'oops' as DECIMAL(10,2)"
    assert reasons[4] == "customer_id: missing value (nullable: false)"
    assert reasons[5] == "range(amount): '-7.50'"
    assert reasons[6] == "big_order"
    assert reasons[7] == (
        "amount: '8.125' has more decimal places than DECIMAL(10,2) holds; "
        "ordered_on: cannot parse '31.2.2024' as DATE with format %d.%m.%Y"
    )
    assert {r["email"] for r in rows} == {hmac_hex("ann@example.com", b"k-one")}
    assert {r["email"] for r in bad} >= {hmac_hex("bob@example.com", b"k-one")}
    results = {r["name"]: r["failing_rows"] for r in runs["spark"].metrics.extra["expectations"]}
    assert results["unique(customer_id)"] == 2
    assert results["accepted_values(customer_id)"] == 0  # the only 7 is on a row that does not parse


def test_a_fail_expectation_writes_nothing_on_spark(twin: Twin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PII_KEY", "k-one")
    twin.file("contracts/bronze.orders.yaml", ORDERS_CONTRACT.format(evolution="add", big="fail"))
    twin.raw("raw/orders/a.csv", ORDERS)
    for engine in ("duckdb", "spark"):
        with pytest.raises(ExpectationFailedError, match=r"'big_order' failed on 1 row of bronze.orders"):
            twin.run_on(engine, ORDERS_TASK)
        assert not twin.by_engine[engine].lake.exists("bronze.orders")
        assert not twin.by_engine[engine].lake.exists("bronze.orders__quarantine")


def test_evolution_add_and_fail(twin: Twin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PII_KEY", "k")
    twin.file("contracts/bronze.orders.yaml", ORDERS_CONTRACT.format(evolution="add", big="warn"))
    twin.raw("raw/orders/a.csv", ORDERS)
    twin.run(ORDERS_TASK)
    twin.raw("raw/orders/b.csv", "customer_id,email,amount,ordered_on,paid,note\n6,x@y.z,1,1.1.2024,f,hello\n")
    twin.run(ORDERS_TASK)
    table = twin.assert_same("bronze.orders")
    assert table.schema.field("note").type == pa.string()

    twin.file("contracts/bronze.orders.yaml", ORDERS_CONTRACT.format(evolution="fail", big="warn"))
    twin.raw("raw/orders/c.csv", "customer_id,email,amount,ordered_on,paid,other\n6,x@y.z,1,1.1.2024,f,x\n")
    before = twin.by_engine["spark"].lake.version("bronze.orders")
    with pytest.raises(SchemaEvolutionError, match=r"column 'other' of raw/orders/c\.csv is not in the contract"):
        twin.run_on("spark", ORDERS_TASK)
    assert twin.by_engine["spark"].lake.version("bronze.orders") == before


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
EXACT_TASK = {"name": "n", "kind": "ingest", "source": "raw/n/*.csv", "target": "bronze.n", "contract": "bronze.n"}


def test_exact_casts_and_withheld_pii_values_are_the_same_on_spark(
    twin: Twin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PII_KEY", "k")
    twin.file("contracts/bronze.n.yaml", EXACT_CONTRACT)
    twin.raw("raw/n/a.csv", EXACT)

    twin.run(EXACT_TASK)

    rows = twin.assert_same("bronze.n").to_pylist()
    assert sorted(r["k"] for r in rows) == [1, 2, 5, 1000]
    bad = sorted(twin.assert_same("bronze.n__quarantine").to_pylist(), key=lambda r: r["_line"])
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


def test_an_integer_type_of_the_existing_table_takes_only_integers_on_spark(twin: Twin) -> None:
    task = {"name": "t", "kind": "ingest", "source": "raw/t/*.csv", "target": "bronze.t"}
    twin.raw("raw/t/a.csv", "id,v\n1,a\n2,b\n")
    twin.run(task)
    twin.raw("raw/t/b.csv", "id,v\n3,c\n101.5,d\n")
    twin.run(task)

    assert sorted(r["id"] for r in twin.assert_same("bronze.t").to_pylist()) == [1, 2, 3]
    bad = twin.assert_same("bronze.t__quarantine").to_pylist()
    assert [(r["id"], r["_reason"]) for r in bad] == [("101.5", "id: '101.5' is not an integer (BIGINT)")]


# -- clear errors ------------------------------------------------------------------------------


def test_a_malformed_csv_names_the_file_and_the_line(twin: Twin) -> None:
    task = {"name": "bad", "kind": "ingest", "source": "raw/bad/*.csv", "target": "bronze.bad"}
    # Within the header sniffer's sample: found while planning, as on DuckDB.
    twin.raw("raw/bad/a.csv", "a,b,c\n1,2,3\n")
    twin.raw("raw/bad/b.csv", "a,b,c\n1,2,3\n4,5,6,7\n")
    with pytest.raises(IngestError) as caught:
        twin.run_on("spark", task)
    assert caught.value.message == "task bad: raw/bad/b.csv:3: 4 fields where 3 were expected: '4,5,6,7'; nothing was loaded"
    # Far beyond it: Spark's reader fails naming the file only; the line is found by reading
    # that file again with the task's dialect.
    Path(twin.by_engine["spark"].lake.location.uri("raw/bad/b.csv")).write_text(
        "a,b,c\n" + "1,2,3\n" * 30000 + "4,5,6,7\n"
    )
    with pytest.raises(IngestError) as caught:
        twin.run_on("spark", task)
    assert caught.value.message == (
        "task bad: raw/bad/b.csv:30002: 4 fields where 3 were expected: '4,5,6,7'; nothing was loaded"
    )
    assert "SQLSTATE" not in str(caught.value) and "OSError" not in str(caught.value)
    assert not twin.by_engine["spark"].lake.exists("bronze.bad")


def test_an_empty_file_is_skipped_recorded_and_reported_on_both_engines(twin: Twin) -> None:
    task = {"name": "load", "kind": "ingest", "source": "raw/x/*.csv", "target": "bronze.x"}
    twin.raw("raw/x/a.csv", "a,b,c\n1,2,3\n4,5,6\n")
    twin.raw("raw/x/empty.csv", "")
    contexts = twin.run(task)
    table = twin.assert_same("bronze.x")
    assert table.num_rows == 2 and "column0" not in table.schema.names
    for context in contexts.values():
        assert context.metrics.extra["skipped_files"] == [{"path": "raw/x/empty.csv", "reason": "empty file"}]
        assert context.metrics.extra["files_loaded"] == 1
    assert metrics_of(contexts["spark"]) == metrics_of(contexts["duckdb"])
    # Recorded: a second run reads nothing and skips nothing.
    again = twin.run_on("spark", task)
    assert again.metrics.rows_in == 0 and again.metrics.extra["skipped_files"] == []


def test_a_contract_type_spark_cannot_run_is_a_clear_error(twin: Twin) -> None:
    twin.raw("raw/x/a.csv", "a\n1\n")
    twin.file("contracts/bronze.x.yaml", "columns:\n  - {name: a, type: hugeint}\n")
    task = {"name": "x", "kind": "ingest", "source": "raw/x/*.csv", "target": "bronze.x", "contract": "bronze.x"}
    with pytest.raises(Exception, match=r"(?i)hugeint|spark") as caught:
        twin.run_on("spark", task)
    assert "Traceback" not in str(caught.value)


# -- other formats -----------------------------------------------------------------------------


def test_json_lines_and_parquet(twin: Twin, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    twin.raw("raw/events/a.jsonl", '{"id": 1, "at": "2024-01-01 10:00:00", "tags": ["a"]}\n{"id": 2, "at": "not a time"}\n')
    twin.file("contracts/bronze.events.yaml", "columns:\n  - {name: id, type: bigint}\n  - {name: at, type: timestamp}\n  - {name: tags}\n")
    task = {"name": "events", "kind": "ingest", "source": "raw/events/*.jsonl", "target": "bronze.events", "contract": "bronze.events"}
    twin.run(task)
    twin.assert_same("bronze.events")
    bad = twin.table("spark", "bronze.events__quarantine").to_pylist()
    assert [r["_reason"] for r in bad] == ["at: cannot parse 'not a time' as TIMESTAMP"]
    assert bad[0]["_line"] is None  # not numbered on Spark (see ingest_spark)

    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"k": [1, 2, 3], "v": ["x", "y", "z"]}), path)
    twin.raw("raw/p/a.parquet", path.read_bytes())
    twin.file("contracts/bronze.p.yaml", "columns:\n  - {name: k, type: int}\n  - {name: v, type: int}\n")
    ptask = {"name": "p", "kind": "ingest", "source": "raw/p/*.parquet", "target": "bronze.p", "contract": "bronze.p"}
    twin.run(ptask)
    twin.assert_same("bronze.p__quarantine")
    assert [r["_line"] for r in twin.table("spark", "bronze.p__quarantine").to_pylist()] == [1, 2, 3]


@pytest.fixture(autouse=True)
def _no_leaked_views(spark_workspace: Workspace) -> Iterator[None]:
    yield
    spark = spark_workspace.spark.spark
    assert not [t.name for t in spark.catalog.listTables() if t.name.startswith("__by_ingest_")]
