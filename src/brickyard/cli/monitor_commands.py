"""`brickyard monitors`, `monitor show NAME`, `alerts`: what the monitors saw and raised.

`monitors` and `alerts` read the workspace state database (no lake scan); `monitor show`
reads the monitor's results table `gold.monitor_<name>`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from brickyard.cli.options import FormatOption, WorkspaceOption, open_workspace
from brickyard.cli.render import TableFormat, console, emit
from brickyard.errors import UsageError

monitor_app = typer.Typer(
    name="monitor", help="Look at one monitor (its features over windows); compute a model version's baseline.",
    no_args_is_help=True,
)

MONITOR_FIELDS = ["name", "status", "model", "model_version", "target", "window_by", "windows", "last_window_start",
                  "last_window_end", "last_rows", "drift_share", "drifted_features", "performance", "alerts",
                  "results_table", "pipeline", "task", "run_id", "updated_at"]
ALERT_FIELDS = ["id", "monitor", "rule", "condition", "metric", "value", "estimated", "breach_start", "window_start",
                "window_end", "status", "started_run", "message", "actions", "run_id", "created_at"]
DATASET, PERFORMANCE = "__dataset__", "__performance__"


def monitors(fmt: FormatOption = TableFormat.table, workspace: WorkspaceOption = None) -> None:
    """Every monitor's last status: windows, latest drift share, drifted features, open alerts."""
    from brickyard.monitoring.state import MonitorStore

    ws = open_workspace(workspace)
    store = MonitorStore(ws.state_url)
    raised: dict[str, int] = {}
    for alert in store.alerts():
        raised[alert.monitor] = raised.get(alert.monitor, 0) + 1
    found = [{**row, "alerts": raised.get(row["name"], 0)} for row in store.monitors()]
    if fmt is not TableFormat.table:
        emit(found, fmt, columns=MONITOR_FIELDS)
        return
    if not found:
        console().print("no monitor has run yet: add a `kind: monitor` task to a pipeline and run it")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold")
    for column in ("monitor", "status", "model", "last window", "rows", "drift share", "drifted", "performance", "alerts"):
        table.add_column(column)
    for row in found:
        table.add_row(
            row["name"], _status(row["status"]), f"{row['model']} (v{row['model_version']})",
            _time(row["last_window_start"]), _number(row["last_rows"]), _share(row["drift_share"]),
            ", ".join(row["drifted_features"]) or "-", _performance(row["performance"]), str(row["alerts"]),
        )
    console().print(table)


@monitor_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="The monitor's name (its task's name unless `monitor:` sets one).")],
    last: Annotated[int, typer.Option("--last", "-n", min=1, help="How many of the latest windows.")] = 10,
    fmt: FormatOption = TableFormat.table,
    workspace: WorkspaceOption = None,
) -> None:
    """A monitor's features over its latest windows: the deciding statistic of each, drifted ones marked *."""
    from brickyard.monitoring.spec import results_table

    ws = open_workspace(workspace)
    table_name = results_table(name)
    if not ws.lake.exists(table_name):
        from brickyard.monitoring.state import MonitorStore

        known = [row["name"] for row in MonitorStore(ws.state_url).monitors()]
        raise UsageError(f"monitor {name!r} has no results ({table_name} does not exist)",
                         hint=f"monitors: {', '.join(known)}" if known else "no monitor has run yet")
    frame = ws.lake.read(table_name).to_pandas()
    starts = sorted(frame["window_start"].unique())[-last:]
    frame = frame[frame["window_start"].isin(starts)]
    shown = frame[frame["decisive"] | frame["feature"].isin([DATASET, PERFORMANCE])]
    if fmt is not TableFormat.table:
        columns = ["window_start", "window_end", "batch_version", "model_version", "feature", "method", "statistic",
                   "p_value", "threshold", "drifted", "rows", "estimated", "reference"]
        records = [{c: _plain(row[c]) for c in columns} for row in shown.to_dict("records")]
        emit(records, fmt, columns=columns)
        return
    windows = [_window_label(frame, start) for start in starts]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold", title=f"monitor {name} ({table_name})")
    table.add_column("feature")
    table.add_column("method")
    for label in windows:
        table.add_column(label, justify="right")
    for (feature, method, estimated), group in shown.groupby(["feature", "method", "estimated"], sort=False):
        cells = []
        for start in starts:
            found = group[group["window_start"] == start]
            if found.empty:
                cells.append("")
                continue
            row = found.iloc[0]
            value = row["p_value"] if method in ("ks", "chi_square") and row["p_value"] == row["p_value"] else row["statistic"]
            cells.append(f"{_number(value)}{'*' if bool(row['drifted']) else ''}")
        label = {DATASET: "(dataset)", PERFORMANCE: "(performance)"}.get(str(feature), str(feature))
        suffix = " p-value" if method in ("ks", "chi_square") else (" (estimated)" if bool(estimated) else "")
        table.add_row(label, str(method) + suffix, *cells)
    console().print(table)
    console().print("* drifted (a metric's _drop: worse than at evaluation by more than max_drop); "
                    "(estimated): from the model's scores (CBPE), not from labels")


@monitor_app.command("baseline")
def baseline(
    ref: Annotated[str, typer.Argument(help="The model version: NAME/VERSION, NAME@alias, or NAME (its latest).")],
    workspace: WorkspaceOption = None,
) -> None:
    """Compute and store the monitoring baseline of a version trained before baselines were
    recorded, from the training data its run recorded (read at the recorded table versions)."""
    from brickyard.monitoring.training import backfill_baseline

    ws = open_workspace(workspace)
    recorded = backfill_baseline(ws, ref)
    found = recorded.baseline
    console().print(
        f"baseline of {found.model_name} version {found.model_version}: {len(found.features)} features "
        f"from {found.rows:,} rows, outputs {', '.join(sorted(found.predictions)) or 'none'}; "
        f"{recorded.table} version {recorded.table_version}"
        + (f", MLflow artifact {recorded.artifact}" if recorded.artifact else "")
    )


def alerts(
    monitor: Annotated[str | None, typer.Option("--monitor", "-m", help="Only this monitor's alerts.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")] = 50,
    fmt: FormatOption = TableFormat.table,
    workspace: WorkspaceOption = None,
) -> None:
    """Alerts the monitors raised, newest first: one per breach, with what their actions did."""
    from brickyard.monitoring.state import MonitorStore

    ws = open_workspace(workspace)
    found = MonitorStore(ws.state_url).alerts(monitor=monitor, limit=limit)
    if fmt is not TableFormat.table:
        emit([alert.as_dict() for alert in found], fmt, columns=ALERT_FIELDS)
        return
    if not found:
        console().print("no alerts" + (f" for monitor {monitor}" if monitor else ""))
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold")
    for column in ("id", "monitor", "rule", "value", "window", "status", "actions", "run started"):
        table.add_column(column)
    for alert in found:
        actions = ", ".join(f"{a['action']} {'ok' if a.get('ok') else 'FAILED'}" for a in alert.actions) or "-"
        value = f"{alert.value:.4g}" + (" (est.)" if alert.estimated else "")
        table.add_row(str(alert.id), alert.monitor, alert.rule, value, _time(alert.window_start),
                      _status(alert.status), actions, alert.started_run or "-")
    console().print(table)


def _window_label(frame: Any, start: Any) -> str:
    versions = frame[frame["window_start"] == start]["batch_version"].dropna()
    if len(versions):
        return f"batch {int(versions.iloc[0])}"
    return _time(start)


def _plain(value: Any) -> Any:
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _time(value: Any) -> str:
    if value is None:
        return "-"
    stamp = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    if isinstance(stamp, datetime):
        return stamp.strftime("%Y-%m-%d %H:%M") if stamp.hour or stamp.minute else stamp.strftime("%Y-%m-%d")
    return str(stamp)


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{float(value):.3g}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _performance(values: dict[str, Any]) -> str:
    shown = [f"{name} {values[name]:.3f}" for name in ("roc_auc", "accuracy", "rmse") if values.get(name) is not None]
    if not shown:
        return "-"
    return ", ".join(shown) + (" (est.)" if values.get("estimated") else "")


def _status(status: str) -> str:
    colors = {"ok": "green", "sent": "green", "drift": "red", "failed": "red", "pending": "yellow"}
    return f"[{colors.get(status, 'white')}]{status}[/]"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("monitors")(monitors)
    app.add_typer(monitor_app)
    app.command("alerts")(alerts)
