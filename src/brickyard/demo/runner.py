"""`brickyard demo`: a workspace with real and synthetic data, walked through step by step.

The demo is a list of steps; each later capability (pipelines, training, serving) adds
its own step to `STEPS`, and the closing "try next" lines grow with it.
"""

from __future__ import annotations

import os
import shlex
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from brickyard.demo.context import DemoContext, Reporter, Step
from brickyard.demo.feature_store import EXAMPLE_CUSTOMER, MODEL, PIPELINE, run_customer_churn
from brickyard.demo.monitoring import run_churn_monitoring
from brickyard.demo.pipelines import (
    install_workspace_files,
    run_taxi_segmentation,
    run_taxi_trips,
    run_titanic,
)
from brickyard.workspace import Workspace

SYNTHETIC_TAXI = "raw/taxi/yellow_tripdata_2017-01_synthetic.csv"
REAL_TAXI_SAMPLE = "raw/taxi/sample_2017/nyc_taxi_2017_sample.csv"
TITANIC = "raw/titanic/titanic.csv"
CDNOW = "raw/cdnow/cdnow_transactions.txt"
FIRST_ROWS_SQL = "SELECT * FROM read_csv('raw/taxi/*.csv') LIMIT 100"
PREVIEW_COLUMNS = (
    "tpep_pickup_datetime",
    "passenger_count",
    "trip_distance",
    "PULocationID",
    "DOLocationID",
    "fare_amount",
    "tip_amount",
    "total_amount",
)


# What the demo uses beyond the default install: module -> how to install it.
OPTIONAL_MODULES = {"lightgbm": "pip install 'brickyard[ml]' (make demo installs it)"}  # titanic's tune task


def run_demo(folder: str | Path, rows: int, report: Reporter, seed: int = 42) -> DemoContext:
    """Create (or refresh) the demo workspace in `folder` and run every demo step.

    Raises:
        BrickyardError: a module the demo uses cannot be imported (before any step runs).
    """
    check_modules()
    root = Path(folder)
    if (root / "brickyard.yaml").exists():
        workspace = Workspace.open(root)
        report.step(f"Refreshing the demo workspace in {workspace.root}")
    else:
        workspace = Workspace.init(root, name="brickyard_demo")
        report.step(f"Created a workspace in {workspace.root}")
    context = DemoContext(workspace, rows, seed, report)
    for step in STEPS:
        step(context)
    return context


def check_modules() -> None:
    """Every module of `OPTIONAL_MODULES` imports.

    Raises:
        BrickyardError: one does not (says why and how to install it).
    """
    from brickyard.errors import BrickyardError
    from brickyard.ml.estimators import cannot_import

    for module, install in OPTIONAL_MODULES.items():
        why = cannot_import(module)
        if why is not None:
            raise BrickyardError(f"the demo tunes {module}, which cannot be imported here: {why}", hint=install)


def try_next_block(context: DemoContext, cwd: Path | None = None) -> list[str]:
    """The shell lines the demo ends with, to run one by one from `cwd` (default: the
    current folder): activate the virtual environment brickyard runs in (when it runs in
    one), go to the workspace, then every step's 'try next' lines."""
    here = (cwd or Path.cwd()).resolve()
    lines = []
    if sys.prefix != sys.base_prefix:
        scripts = "Scripts" if os.name == "nt" else "bin"
        lines.append(f". {_shown(Path(sys.prefix) / scripts / 'activate', here)}   # puts brickyard on your PATH")
    lines.append(f"cd {_shown(context.workspace.root, here)}")
    return lines + context.try_next


def _shown(path: Path, here: Path) -> str:
    """`path` relative to `here` when inside it, else absolute; quoted for a shell."""
    resolved = path.resolve()
    return shlex.quote(str(resolved.relative_to(here) if resolved.is_relative_to(here) else resolved))


def land_raw_files(context: DemoContext) -> None:
    """Copy the shipped real data and generate the synthetic taxi trips into `raw/`."""
    from brickyard.demo.synth import write_taxi_csv

    lake = context.workspace.lake
    context.report.step("Landing raw files in the lake")
    shipped = resources.files("brickyard.demo") / "data"
    shipped_files = (
        ("titanic.csv", TITANIC), ("nyc_taxi_2017_sample.csv", REAL_TAXI_SAMPLE), ("cdnow_transactions.txt", CDNOW),
    )
    for name, target in shipped_files:
        with resources.as_file(shipped / name) as source:
            _put(lake.location, source, target)
        context.report.say(f"  {target}  (real data, shipped with brickyard)")
    marker = f"{context.rows}:{context.seed}"
    stamp = Path(context.workspace.root, ".brickyard", "synthetic_taxi")
    target_uri = lake.location.uri(SYNTHETIC_TAXI)
    if lake.location.is_local and Path(target_uri).exists() and stamp.exists() and stamp.read_text() == marker:
        context.report.say(f"  {SYNTHETIC_TAXI}  (synthetic, {context.rows:,} rows, unchanged)")
        return
    if lake.location.is_local:
        Path(target_uri).parent.mkdir(parents=True, exist_ok=True)
    with lake.location.filesystem.open(lake.location.fs_path(SYNTHETIC_TAXI), "wb") as out:
        written = write_taxi_csv(out, rows=context.rows, seed=context.seed)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(marker)
    context.report.say(
        f"  {SYNTHETIC_TAXI}  (synthetic, {written:,} rows, seed {context.seed}, ~1% dirty rows)"
    )


def explore_raw_taxi(context: DemoContext) -> None:
    """The 'first 100 rows from the data lake' step: SQL straight over the raw CSV."""
    context.report.step("Querying the raw taxi CSV straight from the lake (no load step)")
    context.report.say(f"  brickyard sql \"{FIRST_ROWS_SQL}\"")
    relation = context.workspace.sql(FIRST_ROWS_SQL)
    fetched = relation.fetchall()
    wanted = [relation.columns.index(name) for name in PREVIEW_COLUMNS]
    types = [str(relation.types[index]) for index in wanted]
    preview = [[row[index] for index in wanted] for row in fetched[:10]]
    context.report.table(list(PREVIEW_COLUMNS), types, preview)
    context.report.say(
        f"  {len(fetched)} rows fetched, first 10 shown with {len(PREVIEW_COLUMNS)} of "
        f"{len(relation.columns)} columns."
    )
    context.try_next += [
        "brickyard sql \"SELECT passenger_count, count(*) AS trips, avg(fare_amount) AS avg_fare "
        "FROM read_csv('raw/taxi/*.csv') GROUP BY 1 ORDER BY 1\"",
        "brickyard sql \"SELECT * FROM read_csv('raw/titanic/titanic.csv') WHERE Survived = 1\" --format csv",
        "brickyard info",
    ]


def serving_lines(context: DemoContext) -> None:
    """'Try next' lines that serve the champions: Titanic scored from a passenger's columns,
    and churn (when its pipeline ran) from a customer_id alone."""
    try:
        from brickyard.serving import demo_hint
    except ImportError:
        return
    keys_only = {MODEL: {"customer_id": EXAMPLE_CUSTOMER}} if PIPELINE in context.runs else None
    context.try_next += demo_hint(context.workspace, keys_only=keys_only)


CONSOLE_PORT = 8000


def console_lines(context: DemoContext) -> None:
    """The closing lines: open the web console (`brickyard server`) with a token."""
    where = f" --workspace {shlex.quote(str(context.workspace.root))}"
    context.try_next += [
        "# the web console: tables, runs, models, endpoints, monitors, SQL. First a token to log in with",
        f"brickyard tokens create --role runner --name console{where}   # prints it once: paste it on the login page",
        f"brickyard server --port {CONSOLE_PORT}{where}   # then open http://127.0.0.1:{CONSOLE_PORT}/ (Ctrl-C stops it)",
    ]


def _put(location: Any, source: Path, target: str) -> None:
    fs = location.filesystem
    if location.is_local:
        fs.makedirs(location.fs_path(target.rsplit("/", 1)[0]), exist_ok=True)
    fs.put_file(str(source), location.fs_path(target))


STEPS: list[Step] = [
    land_raw_files,
    explore_raw_taxi,
    install_workspace_files,
    run_taxi_trips,
    run_taxi_segmentation,
    run_titanic,
    run_customer_churn,
    run_churn_monitoring,
    serving_lines,
    console_lines,
]
