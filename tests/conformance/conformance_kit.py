"""The conformance suite's kit: a user's workspace on one engine, run as `brickyard run` runs it.

A test gets a `project`: a workspace folder as a user keeps it (brickyard.yaml naming the
engine, pipelines/*.yaml, contracts/, sql/, raw files under the lake), run the way
`brickyard run` runs it (`PipelineRunner`), and asserts on the resulting tables, run
records and logs. The assertions are the same for every engine; where engines differ by
design, the difference is a capability looked up in `CAPABILITIES`, never an engine name
tested inside a test.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from brickyard import Workspace
from brickyard.runtime import PipelineRunner
from brickyard.runtime.records import AttemptRecord
from brickyard.runtime.state import StateStore

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "src" / "brickyard" / "demo"
TAXI_SAMPLE = DEMO / "data" / "nyc_taxi_2017_sample.csv"
TITANIC = DEMO / "data" / "titanic.csv"
DEMO_CONTRACTS = DEMO / "workspace" / "contracts"
DEMO_SQL = DEMO / "workspace" / "sql"
VOLATILE = ("_loaded_at", "_run_id")

ENGINES = [pytest.param("duckdb", id="duckdb"), pytest.param("spark", id="spark", marks=[pytest.mark.spark, pytest.mark.slow])]

# What an engine does differently by design (to become the Engine interface's flags).
CAPABILITIES: dict[str, dict[str, bool]] = {
    "duckdb": {"line_numbers_in_json": True},
    "spark": {"line_numbers_in_json": False},
}


@dataclass
class Run:
    """One finished pipeline run: how it ended, and the last attempt of each task."""

    run_id: str
    status: str
    error: str | None
    attempts: dict[str, AttemptRecord]

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def task(self, name: str) -> AttemptRecord:
        return self.attempts[name]

    def log(self, name: str) -> str:
        path = self.attempts[name].log_path
        return Path(path).read_text(encoding="utf-8") if path else ""


class Project:
    """A workspace on one engine, built from files and run as a user runs it."""

    def __init__(self, ws: Workspace, engine: str) -> None:
        self.ws, self.engine = ws, engine
        self.capabilities = CAPABILITIES[engine]

    @property
    def lake(self) -> Any:
        return Workspace.open(self.ws.root).lake

    def raw(self, relative: str, content: str | bytes | Path) -> Path:
        """A raw file in the lake (e.g. `raw/taxi/a.csv`)."""
        path = Path(self.ws.lake.location.uri(relative))
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def file(self, relative: str, content: str | Path) -> Path:
        """A file of the workspace (contracts/..., sql/...)."""
        path = self.ws.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, path)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def pipeline(self, name: str, tasks: list[dict[str, Any]] | dict[str, Any]) -> None:
        """pipelines/`name`.yaml with `tasks`."""
        tasks = [tasks] if isinstance(tasks, dict) else tasks
        self.file(f"pipelines/{name}.yaml", yaml.safe_dump({"tasks": tasks}, sort_keys=False))

    def run(self, name: str, *, full_refresh: bool = False) -> Run:
        """`brickyard run NAME` (the engine is the one brickyard.yaml names)."""
        ws = Workspace.open(self.ws.root)
        result = PipelineRunner(ws).run(name, full_refresh=full_refresh, trigger="test")
        attempts = {a.task: a for a in StateStore(ws.state_url).attempts(result.run_id)}
        return Run(result.run_id, result.status, result.error, attempts)

    def run_ok(self, name: str, **options: Any) -> Run:
        run = self.run(name, **options)
        assert run.ok, run.error
        return run

    def run_failing(self, name: str, *, one_line: bool = True, **options: Any) -> str:
        """Run a pipeline that must fail; its error, checked to hold no traceback and
        (unless `one_line` is False) to be one line."""
        run = self.run(name, **options)
        assert run.status == "failed", run
        assert run.error and "Traceback" not in run.error, run.error
        assert not one_line or "\n" not in run.error, run.error
        return run.error

    def read(self, table: str) -> pa.Table:
        return self.ws.lake.read(table)

    def exists(self, table: str) -> bool:
        return bool(self.ws.lake.exists(table))

    def rows(self, table: str, drop: tuple[str, ...] = VOLATILE) -> list[dict[str, Any]]:
        """The table's rows without `drop` columns, in a stable order."""
        data = self.read(table)
        data = data.select([c for c in data.column_names if c not in drop])
        return sorted(data.to_pylist(), key=lambda row: [(v is None, repr(v)) for v in row.values()])


def fingerprint(table: pa.Table, drop: tuple[str, ...] = VOLATILE) -> str:
    """A short digest of a table's column names, types and rows (sorted; without `drop`
    columns): two engines that write the same table give the same fingerprint."""
    keep = [c for c in table.column_names if c not in drop]
    schema = [(f.name, str(f.type)) for f in table.schema if f.name in keep]
    rows = sorted(repr(tuple(r.values())) for r in table.select(keep).to_pylist())
    return hashlib.sha256(repr((schema, rows)).encode()).hexdigest()[:16]


def types(table: pa.Table) -> dict[str, str]:
    return {f.name: str(f.type) for f in table.schema}


def assert_no_leaked_views() -> None:
    """A task leaves no temporary view behind in brickyard's shared Spark session (the
    views of a session a task made for itself go with that session)."""
    from brickyard.engines.spark_session import current_session

    session = current_session()
    if session is not None:
        leaked = [t.name for t in session.catalog.listTables() if t.isTemporary]
        assert not leaked, leaked
