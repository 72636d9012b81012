"""The data half of the demo's `customer_churn` (raw CDNOW text -> bronze -> silver ->
features.customer_rfm and gold.churn_snapshots) gives the same tables on Spark as on
DuckDB, row for row (floats to 1e-9 relative). The model half is the `train` kind's
(its training set on Spark is tested with the kind)."""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from brickyard import Workspace
from brickyard.demo.context import DemoContext
from brickyard.demo.pipelines import install_workspace_files
from brickyard.demo.runner import CDNOW
from brickyard.runtime import PipelineRunner

pytestmark = [pytest.mark.spark, pytest.mark.slow]

DATA_KINDS = ("ingest", "sql", "features")
# each table by the columns that order it (bronze: the line; identical lines are identical rows)
TABLES = {
    "bronze.cdnow_transactions": ("line",),
    "silver.transactions": ("transaction_id",),
    "features.customer_rfm": ("customer_id", "purchased_at"),
    "gold.churn_snapshots": ("customer_id", "snapshot_at"),
}
VOLATILE = {"_loaded_at", "_run_id"}


class Silent:
    def step(self, title: str) -> None: ...
    def say(self, text: str) -> None: ...
    def table(self, columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...


def prepare(ws: Workspace) -> None:
    """The demo's files and the raw log, and `churn_data`: customer_churn's data tasks."""
    target = Path(ws.lake.location.uri(CDNOW))
    target.parent.mkdir(parents=True, exist_ok=True)
    with resources.as_file(resources.files("brickyard.demo") / "data" / "cdnow_transactions.txt") as source:
        shutil.copyfile(source, target)
    install_workspace_files(DemoContext(ws, 0, 0, Silent()))
    pipeline = yaml.safe_load((ws.root / "pipelines" / "customer_churn.yaml").read_text())
    pipeline["tasks"] = [task for task in pipeline["tasks"] if task["kind"] in DATA_KINDS]
    (ws.root / "pipelines" / "churn_data.yaml").write_text(yaml.safe_dump(pipeline))


def rows_of(ws: Workspace, table: str) -> list[tuple[Any, ...]]:
    data = ws.lake.read(table)
    names = [*TABLES[table], *sorted(n for n in data.column_names if n not in VOLATILE and n not in TABLES[table])]
    return sorted(tuple(record[name] for name in names) for record in data.select(names).to_pylist())


def same(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=1e-9)
    return bool(left == right)


def test_the_data_tables_are_the_same_on_both_engines(
    spark_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workspace = Workspace.init(tmp_path_factory.mktemp("duckdb") / "ws")  # the fixtures share tmp_path/ws
    for ws in (workspace, spark_workspace):
        prepare(ws)
        result = PipelineRunner(ws).run("churn_data", trigger="test")
        assert result.ok, f"{ws.config.engine}: {result.error}"
    for table in TABLES:
        duck, spark = rows_of(workspace, table), rows_of(spark_workspace, table)
        assert len(duck) == len(spark) > 0, table
        different = [(d, s) for d, s in zip(duck, spark, strict=True) if not all(map(same, d, s))]
        assert not different, f"{len(different)} rows differ in {table}, e.g. {different[:2]}"
