"""`brickyard run taxi_trips --full-refresh` rebuilds what the incremental runs built, on
every engine.

The demo pipeline has two ingest tasks writing bronze.taxi_trips (the synthetic trips and
the real 2017 sample), an incremental append into silver and an overwrite of gold. On each
engine: an incremental run, then two full-refresh runs, then a plain run; every time the
bronze, silver and gold tables and both quarantines hold the same rows (compared row for
row, without the columns that say when and by which run a row was loaded).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conformance_kit import Project

from brickyard import Workspace
from brickyard.demo.context import DemoContext
from brickyard.demo.pipelines import install_workspace_files
from brickyard.demo.runner import land_raw_files
from brickyard.runtime import PipelineRunner

ROWS = 2_000
TABLES = (
    "bronze.taxi_trips",
    "bronze.taxi_trips__quarantine",
    "silver.taxi_trips",
    "silver.taxi_trips__quarantine",
    "gold.taxi_daily",
)
VOLATILE = {"_loaded_at", "_run_id"}


class Silent:
    def step(self, title: str) -> None: ...
    def say(self, text: str) -> None: ...
    def table(self, columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...


def rows_of(ws: Workspace, table: str) -> list[tuple[Any, ...]]:
    data = ws.lake.read(table)
    names = sorted(name for name in data.column_names if name not in VOLATILE)
    return sorted((tuple(r[n] for n in names) for r in data.select(names).to_pylist()), key=repr)


def tables(ws: Workspace) -> dict[str, list[tuple[Any, ...]]]:
    return {table: rows_of(ws, table) for table in TABLES}


def run(ws: Workspace, engine: str, full_refresh: bool = False) -> Any:
    result = PipelineRunner(ws).run("taxi_trips", full_refresh=full_refresh, engine=engine, trigger="test")
    assert result.ok, result.error
    return result


def check_full_refresh_equals_incremental(ws: Workspace, engine: str) -> None:
    context = DemoContext(ws, ROWS, 42, Silent())
    land_raw_files(context)
    install_workspace_files(context)
    run(ws, engine)
    incremental = tables(ws)
    assert len(incremental["bronze.taxi_trips"]) + len(incremental["bronze.taxi_trips__quarantine"]) == ROWS + 999

    for attempt in ("first", "second"):
        result = run(ws, engine, full_refresh=True)
        refreshed = tables(ws)
        for table in TABLES:
            assert refreshed[table] == incremental[table], f"{table} after the {attempt} full refresh"
        ingests = {t.name: t.rows_in for t in result.tasks if t.name.startswith("ingest")}
        assert ingests == {"ingest_synthetic": ROWS, "ingest_sample_2017": 999}

    plain = run(ws, engine)
    assert {t.name: t.rows_in for t in plain.tasks if t.name.startswith("ingest")} == {
        "ingest_synthetic": 0,
        "ingest_sample_2017": 0,
    }
    assert tables(ws) == incremental


def test_full_refresh_equals_the_incremental_result(project: Project) -> None:
    check_full_refresh_equals_incremental(project.ws, project.engine)
