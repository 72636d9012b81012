"""The `ingest` kind on Spark, where it needs Spark's internals: a crash between the two
commits, another writer committing a batch first, and a contract type Spark cannot run.
Everything a user sees that both engines do alike is in tests/conformance/test_conformance_ingest.py.
Real Spark in local mode (one session for the process), real Delta tables; nothing mocked
but a crash."""

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
from brickyard.engines.spark import quality as spark_quality
from brickyard.lake import Lake
from brickyard.tasks import get_kind
from brickyard.tasks.base import TaskContext
from brickyard.tasks.ingest import IngestError

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "src" / "brickyard" / "demo"
CONTRACTS = DEMO / "workspace" / "contracts"
VOLATILE = ("_loaded_at", "_run_id")

SYNTHETIC = {
    "name": "ingest_synthetic",
    "kind": "ingest",
    "source": "raw/taxi/*.csv",
    "target": "bronze.taxi_trips",
    "contract": "contracts/bronze.taxi_trips.yaml",
}


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


@pytest.fixture
def twin(spark_workspace: Workspace, tmp_path: Path) -> Twin:
    return Twin(Workspace.init(tmp_path / "duck"), spark_workspace)


def synthetic_csv(rows: int, seed: int, dirty: float) -> bytes:
    import io

    sink = io.BytesIO()
    write_taxi_csv(sink, rows, seed=seed, dirty_fraction=dirty)
    return sink.getvalue()


# -- the demo's inputs -----------------------------------------------------------------


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


# -- engine-specific errors -------------------------------------------------------------


def test_a_contract_type_spark_cannot_run_is_a_clear_error(twin: Twin) -> None:
    twin.raw("raw/x/a.csv", "a\n1\n")
    twin.file("contracts/bronze.x.yaml", "columns:\n  - {name: a, type: hugeint}\n")
    task = {"name": "x", "kind": "ingest", "source": "raw/x/*.csv", "target": "bronze.x", "contract": "bronze.x"}
    with pytest.raises(Exception, match=r"(?i)hugeint|spark") as caught:
        twin.run_on("spark", task)
    assert "Traceback" not in str(caught.value)


# -- other formats -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_leaked_views(spark_workspace: Workspace) -> Iterator[None]:
    yield
    spark = spark_workspace.spark.spark
    assert not [t.name for t in spark.catalog.listTables() if t.name.startswith("__by_ingest_")]


def test_a_parquet_file_spark_cannot_read_names_the_task_and_the_file(twin: Twin, tmp_path: Path) -> None:
    # Spark reads a Parquet file's schema when the read is set up (before any row is read);
    # a type it refuses there (nanosecond timestamps) is reported as the task's error about the file.
    import pyarrow.parquet as pq

    source = tmp_path / "nanos.parquet"
    pq.write_table(pa.table({"at": pa.array([1, 2], pa.timestamp("ns"))}), source)
    twin.raw("raw/nanos/a.parquet", source)
    task = {"name": "nanos", "kind": "ingest", "source": "raw/nanos/*.parquet", "target": "bronze.nanos"}
    with pytest.raises(IngestError) as caught:
        twin.run_on("spark", task)
    message = str(caught.value)
    assert message.startswith("task nanos: reading raw/nanos/a.parquet on Spark failed: ")
    assert "Traceback" not in message and "py4j" not in message.lower()
