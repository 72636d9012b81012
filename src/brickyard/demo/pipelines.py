"""Demo steps that install the example pipelines and run them."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from brickyard.demo.context import DemoContext
from brickyard.errors import BrickyardError

WORKSPACE_FILES = ("pipelines", "sql", "contracts", "features")


def install_workspace_files(context: DemoContext) -> None:
    """Copy the example pipelines, SQL, contracts and feature tables into the workspace (refreshing them)."""
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
    """Run one pipeline as `brickyard run NAME` would, and report its tasks and the rows
    they quarantined (which table, how many, the top reasons).

    Raises:
        BrickyardError: the run failed (naming the task and its error).
    """
    from brickyard.runtime import PipelineRunner
    from brickyard.runtime.report import quarantine_lines

    context.report.step(f"Running pipeline {name}  (brickyard run {name})")
    result = PipelineRunner(context.workspace).run(name, trigger="demo")
    context.report.table(
        ["task", "status", "seconds", "rows in", "rows out", "quarantined"],
        ["VARCHAR", "VARCHAR", "DOUBLE", "BIGINT", "BIGINT", "BIGINT"],
        [(t.name, t.status, round(t.wall_seconds or 0.0, 2), t.rows_in, t.rows_out, t.quarantined_rows)
         for t in result.tasks],
    )
    for line in quarantine_lines(result.quarantine):
        context.report.say(f"  {line}")
    if not result.ok:
        raise BrickyardError(
            f"demo pipeline {name} failed: {result.error}",
            hint=f"see `brickyard run-show {result.run_id}` and `brickyard logs {result.run_id}`",
        )
    context.runs[name] = result.run_id
    context.report.say(f"  run {result.run_id} succeeded; details: brickyard run-show {result.run_id}")


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
    busiest = context.workspace.sql(
        "SELECT pickup_date, sum(trips) AS trips, round(sum(revenue), 2) AS revenue "
        "FROM gold.taxi_daily GROUP BY 1 ORDER BY 2 DESC LIMIT 5"
    )
    context.report.say("  Busiest days in gold.taxi_daily:")
    context.report.table(busiest.columns, [str(t) for t in busiest.types], busiest.fetchall())
    context.try_next += [
        "brickyard sql \"SELECT * FROM gold.taxi_daily ORDER BY trips DESC LIMIT 10\"",
        "brickyard sql \"SELECT _reason, _source_file, _line FROM bronze.taxi_trips__quarantine LIMIT 10\"",
        "brickyard sql \"SELECT _reason, count(*) FROM silver.taxi_trips__quarantine GROUP BY 1 ORDER BY 2 DESC\"",
        "brickyard history silver.taxi_trips",
        "brickyard runs",
        f"brickyard run-show {context.runs['taxi_trips']}   # its tasks: timings, CPU-seconds, rows, lineage, cost",
        f"brickyard logs {context.runs['taxi_trips']} clean_trips",
        "pip install 'brickyard[spark]'   # PySpark, for the next line (Spark also needs Java 17+)",
        "brickyard run taxi_trips --engine spark --full-refresh   # the same pipeline on PySpark",
    ]


def run_taxi_segmentation(context: DemoContext) -> None:
    """KMeans segmentation of the silver trips, and the cluster profile it produced."""
    run_pipeline(context, "taxi_segmentation")
    profile = context.workspace.sql(
        "SELECT cluster, rows, round(share, 3) AS share, round(trip_distance_mean, 2) AS miles, "
        "round(fare_amount_mean, 2) AS fare, round(passenger_count_mean, 2) AS passengers, label "
        "FROM gold.taxi_segment_profile ORDER BY cluster"
    )
    context.report.say("  Cluster profile (gold.taxi_segment_profile):")
    context.report.table(profile.columns, [str(t) for t in profile.types], profile.fetchall())
    context.try_next.append("brickyard sql \"SELECT cluster, count(*) FROM gold.taxi_segments GROUP BY 1\"")


TUNE_SHOWN = 5


def show_tuning(context: DemoContext) -> None:
    """The titanic tune task's budget and the top rows of its leaderboard."""
    import os

    from brickyard.ml.tuning import load_leaderboard

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one small JSON file
    ws = context.workspace
    task = ws.pipeline("titanic").spec.task("tune")
    budget = ", ".join(f"{key}: {task.options[key]}" for key in ("trials", "timeout", "folds") if key in task.options)
    run_id, board = load_leaderboard(ws, context.runs["titanic"])
    complete = [row for row in board if row["state"] == "COMPLETE"]
    context.report.say(
        f"  Tuned logistic regression, random forest and LightGBM ({budget}; {len(board)} trials in the study; "
        "the full search: timeout: 60 in place of trials: in pipelines/titanic.yaml). Top trials:"
    )
    context.report.table(
        ["rank", "trial", "family", board[0]["metric"] if board else "value", "seconds"],
        ["BIGINT", "VARCHAR", "VARCHAR", "DOUBLE", "DOUBLE"],
        [(row["rank"], str(row["trial"]) if row["trial"] is not None else "+".join(map(str, row["members"])),
          row["family"], round(row["value"], 4), round(row["seconds"] or 0.0, 2)) for row in complete[:TUNE_SHOWN]],
    )


def seed_passengers_database(context: DemoContext) -> None:
    """Put the passengers to score in the workspace's SQL database, as the seed's source DB."""
    import sqlalchemy as sa

    from brickyard.demo.runner import TITANIC

    passengers = context.workspace.sql(
        f"SELECT * EXCLUDE (Survived) FROM read_csv('{TITANIC}')"
    ).to_arrow_table().to_pandas()
    url = context.workspace.local_url(context.workspace.config.databases["default"].url)
    engine = sa.create_engine(url)
    try:
        passengers.to_sql("passengers", engine, if_exists="replace", index=False)
    finally:
        engine.dispose()
    context.report.step("Loaded the passengers to score into the SQL database")
    context.report.say(f"  {len(passengers)} rows in table passengers of {url}")


def show_gate(context: DemoContext, client: Any, name: str) -> None:
    """The newest version's SHAP importances and fairness numbers, and the gate's decision
    with every rule's values, as the promote task recorded them."""
    from brickyard.ml import gate
    from brickyard.ml.explanations import importance_from_metrics
    from brickyard.ml.registry import resolve_version, run_metrics

    newest = resolve_version(client, name, "latest")
    metrics = run_metrics(client, newest)
    importance = sorted(importance_from_metrics(metrics).items(), key=lambda item: -item[1])
    if importance:
        shown = ", ".join(f"{feature} {value:.3f}" for feature, value in importance[:5])
        context.report.say(f"  SHAP (held-out rows), mean |SHAP| per feature: {shown}")
    if "demographic_parity_difference" in metrics:
        low = metrics.get("demographic_parity_difference_ci_low", float("nan"))
        high = metrics.get("demographic_parity_difference_ci_high", float("nan"))
        context.report.say(
            f"  Fairness by Sex: demographic parity difference {metrics['demographic_parity_difference']:.3f} "
            f"(95% CI {low:.3f} to {high:.3f}), equalized odds difference "
            f"{metrics.get('equalized_odds_difference', float('nan')):.3f}"
        )
    decision, outcomes = gate.recorded(client, name, newest.version)
    if decision is None:
        return
    context.report.say(f"  Gate for {name} version {newest.version}: {decision}")
    context.report.table(
        ["rule", "value", "threshold", "result"], ["VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR"],
        [
            (
                outcome.rule,
                "-" if outcome.candidate is None else f"{outcome.candidate:.4g}",
                "-" if outcome.threshold is None else f"{outcome.threshold:.4g}",
                outcome.detail if outcome.skipped else "pass" if outcome.passed else "FAIL",
            )
            for outcome in outcomes
        ],
    )


def run_titanic(context: DemoContext) -> None:
    """Train, evaluate, gate, score from SQL and export back to SQL; then the results."""
    import sqlalchemy as sa

    seed_passengers_database(context)
    run_pipeline(context, "titanic")
    show_tuning(context)
    from brickyard.ml.registry import champion, run_metrics
    from brickyard.ml.tracking import connect

    client = connect(context.workspace)
    current = champion(client, "titanic")
    if current is not None:
        shown = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
        metrics = run_metrics(client, current)
        context.report.say(f"  Model titanic: champion is version {current.version}; its held-out metrics:")
        context.report.table(
            ["metric", "value"], ["VARCHAR", "DOUBLE"],
            [(name, round(metrics[name], 4)) for name in shown if name in metrics],
        )
    show_gate(context, client, "titanic")
    url = context.workspace.local_url(context.workspace.config.databases["default"].url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            exported = connection.execute(sa.text("SELECT count(*) FROM titanic_predictions")).scalar_one()
    finally:
        engine.dispose()
    context.report.say(f"  Exported {exported} predictions into table titanic_predictions of {url}")
    context.try_next += [
        "brickyard models",
        f"brickyard tune show {context.runs['titanic']}   # every trial of the study, best first",
        "brickyard gate titanic latest",
        "brickyard gate titanic --rules 'demographic_parity_difference <= 0.1' || echo \"exit $?: fails a 0.1 parity policy\"",
        "brickyard mlflow-ui --port 5000   # then open http://127.0.0.1:5000 (Ctrl-C stops it)",
    ]
