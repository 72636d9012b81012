"""`brickyard slo`: the configured service-level objectives over a window, pass or fail."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table

from brickyard.cli.options import FormatOption, WorkspaceOption, open_workspace
from brickyard.cli.render import TableFormat, console, emit

SLO_FIELDS = ["slo", "scope", "target", "actual", "unit", "samples", "error_budget_left", "status"]
COLOURS = {"pass": "green", "fail": "red", "no data": "yellow"}


def slo(
    window: Annotated[
        str | None, typer.Option("--window", help="How far back to look: 90s, 30m, 24h, 7d, 2w (default: slos.window, 7d).")
    ] = None,
    fmt: FormatOption = TableFormat.table,
    workspace: WorkspaceOption = None,
) -> None:
    """Report the SLOs of brickyard.yaml (`slos:`): serving p95 latency and availability per
    endpoint (inference log), feature freshness (online store), training time (run records).
    Exits 1 when one fails; `no data` is shown and neither passes nor fails."""
    from brickyard.runtime.slo import format_value, slo_report

    ws = open_workspace(workspace)
    report = slo_report(ws, window)
    if fmt is TableFormat.json:
        emit(report.as_dict(), fmt)
    elif fmt is TableFormat.csv:
        emit([result.as_dict() for result in report.results], fmt, columns=SLO_FIELDS)
    else:
        out = console()
        out.print(f"SLOs over the last {report.window} ({report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC)",
                  markup=False)
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold")
        for column in ("SLO", "scope", "target", "actual", "samples", "error budget left", "result"):
            table.add_column(column, justify="right" if column in ("samples", "error budget left") else "left")
        for result in report.results:
            left = "-" if result.error_budget_left is None else f"{result.error_budget_left * 100:.1f}%"
            colour = COLOURS[result.status]
            table.add_row(result.slo, result.scope, format_value(result.target, result.unit),
                          format_value(result.actual, result.unit), str(result.samples), left,
                          f"[{colour}]{result.status}[/{colour}]")
        out.print(table)
        failed = [result for result in report.results if result.status == "fail"]
        measured = [result for result in report.results if result.status != "no data"]
        if failed:
            summary = f"{len(failed)} of {len(measured)} SLO(s) with data failed"
        elif measured:
            summary = f"all {len(measured)} SLO(s) with data passed"
        else:
            summary = "no SLO had data in the window"
        unmeasured = len(report.results) - len(measured)
        out.print(summary + (f"; {unmeasured} had no data" if unmeasured and measured else ""), markup=False)
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("slo")(slo)
