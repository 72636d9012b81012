"""Demo steps that install the example pipelines and run them."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from brickyard.demo.context import DemoContext
from brickyard.errors import BrickyardError

WORKSPACE_FILES = ("pipelines", "sql", "contracts")


def install_workspace_files(context: DemoContext) -> None:
    """Copy the example pipelines, SQL and contracts into the workspace (refreshing them)."""
    shipped = resources.files("brickyard.demo") / "workspace"
    with resources.as_file(shipped) as source:
        for folder in WORKSPACE_FILES:
            for path in sorted(Path(source, folder).glob("*")):
                target = context.workspace.root / folder / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
    context.report.step("Installed the example pipelines")
    for name in context.workspace.pipeline_names():
        spec = context.workspace.pipeline(name).spec
        context.report.say(f"  pipelines/{name}.yaml: {' -> '.join(t.name for t in spec.order())}")


def run_pipeline(context: DemoContext, name: str) -> None:
    """Run one pipeline as `brickyard run NAME` would, and report its tasks.

    Raises:
        BrickyardError: the run failed (naming the task and its error).
    """
    from brickyard.runtime import PipelineRunner

    context.report.step(f"Running pipeline {name}  (brickyard run {name})")
    result = PipelineRunner(context.workspace).run(name, trigger="demo")
    context.report.table(
        ["task", "status", "seconds", "rows in", "rows out"],
        ["VARCHAR", "VARCHAR", "DOUBLE", "BIGINT", "BIGINT"],
        [(t.name, t.status, round(t.wall_seconds or 0.0, 2), t.rows_in, t.rows_out) for t in result.tasks],
    )
    if not result.ok:
        raise BrickyardError(
            f"demo pipeline {name} failed: {result.error}",
            hint=f"see `brickyard run-show {result.run_id}` and `brickyard logs {result.run_id}`",
        )
    context.report.say(f"  run {result.run_id} succeeded")
    context.try_next.append(f"brickyard run-show {result.run_id}")


def run_taxi_trips(context: DemoContext) -> None:
    """raw CSV -> bronze -> silver -> gold, then what landed where."""
    run_pipeline(context, "taxi_trips")
    lake = context.workspace.lake
    rows = []
    for table in ("bronze.taxi_trips", "bronze.taxi_trips__quarantine", "silver.taxi_trips",
                  "silver.taxi_trips__quarantine", "gold.taxi_daily"):
        if lake.exists(table):
            info = lake.describe(table)
            rows.append((table, info.rows, info.version))
    context.report.table(["table", "rows", "version"], ["VARCHAR", "BIGINT", "BIGINT"], rows)
    reasons = context.workspace.sql(
        "SELECT _reason AS reason, count(*) AS rows FROM silver.taxi_trips__quarantine "
        "GROUP BY 1 ORDER BY 2 DESC LIMIT 5"
    ) if lake.exists("silver.taxi_trips__quarantine") else None
    if reasons is not None:
        context.report.say("  Why rows were quarantined in silver (top 5):")
        context.report.table(reasons.columns, [str(t) for t in reasons.types], reasons.fetchall())
    busiest = context.workspace.sql(
        "SELECT pickup_date, sum(trips) AS trips, round(sum(revenue), 2) AS revenue "
        "FROM gold.taxi_daily GROUP BY 1 ORDER BY 2 DESC LIMIT 5"
    )
    context.report.say("  Busiest days in gold.taxi_daily:")
    context.report.table(busiest.columns, [str(t) for t in busiest.types], busiest.fetchall())
    context.try_next += [
        "brickyard sql \"SELECT * FROM gold.taxi_daily ORDER BY trips DESC LIMIT 10\"",
        "brickyard sql \"SELECT _reason, _source_file, _line FROM bronze.taxi_trips__quarantine LIMIT 10\"",
        "brickyard history silver.taxi_trips",
        "brickyard runs",
    ]
