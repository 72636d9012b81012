"""`brickyard tune show RUN`: the leaderboard of a tune task's study, as its run logged it."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from brickyard.cli.options import FormatOption, WorkspaceOption, open_workspace
from brickyard.cli.render import TableFormat, console, emit

tune_app = typer.Typer(name="tune", help="Look at a tune task's trials.", no_args_is_help=True)
FIELDS = ["rank", "trial", "family", "params", "value", "metric", "state", "seconds", "cpu_seconds", "error",
          "mlflow_run_id", "run", "members", "chosen"]


@tune_app.command("show")
def show(
    run: Annotated[str, typer.Argument(help="A brickyard run id (of a run with one tune task) or the tuning MLflow run id.")],
    fmt: FormatOption = TableFormat.table,
    workspace: WorkspaceOption = None,
) -> None:
    """Every trial of the study and every ensemble tried, best first: number (or members),
    family, params, metric, state, seconds; `*` marks the registered result."""
    from brickyard.ml.tuning import load_leaderboard

    ws = open_workspace(workspace)
    run_id, board = load_leaderboard(ws, run)
    if fmt is not TableFormat.table:
        emit(board, fmt, columns=FIELDS)
        return
    metric = board[0]["metric"] if board else "value"
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold", title=f"tuning run {run_id}")
    for column in ("rank", "trial", "family", "params", metric, "state", "seconds", "error"):
        table.add_column(column, justify="right" if column in ("rank", "trial", metric, "seconds") else "left")
    for row in board:
        table.add_row(
            f"{row['rank']}{'*' if row.get('chosen') else ''}", _trial_text(row), str(row["family"] or "-"),
            _params_text(row), "-" if row["value"] is None else f"{row['value']:.6g}",
            row["state"], "-" if row["seconds"] is None else f"{row['seconds']:.2f}", row["error"] or "",
        )
    console().print(table)
    if any(row.get("chosen") for row in board):
        console().print("* the registered result (an ensemble only when it scored better than the best trial)")


def _trial_text(row: dict[str, Any]) -> str:
    if row["trial"] is not None:
        return str(row["trial"])
    return "+".join(str(member) for member in row.get("members") or []) or "-"


def _params_text(row: dict[str, Any]) -> str:
    if row["trial"] is None:  # an ensemble: its members are in the trial column
        extra = {key: value for key, value in row["params"].items() if key != "members"}
        return f"ensemble of trials {row.get('members')}" + (f" {json.dumps(extra)}" if extra else "")
    return json.dumps(row["params"], sort_keys=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(tune_app)
