"""`brickyard models`, `models promote`, `gate`, `reproduce`, `mlflow-ui`: the model registry.

MLflow and scikit-learn are imported inside the commands (through `brickyard.ml`), never
when the CLI starts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from brickyard.cli.options import WorkspaceOption, open_workspace
from brickyard.cli.render import TableFormat, console, emit
from brickyard.errors import UsageError

if TYPE_CHECKING:
    from brickyard.ml.gate import GateResult
    from brickyard.ml.registry import VersionRow
    from brickyard.workspace import Workspace

models_app = typer.Typer(
    name="models",
    help="List registered models (versions, aliases, key metrics); promote one through the gate.",
    invoke_without_command=True,
    no_args_is_help=False,
)

RulesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--rules", "-r",
        help="A gate rule such as 'accuracy >= 0.75' (repeat, or separate with ';'). "
        "Default: the rules of the promote task that names the model.",
        show_default=False,
    ),
]


@models_app.callback()
def models(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Only this model.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Newest versions shown per model.")] = 5,
    fmt: Annotated[
        TableFormat,
        typer.Option("--format", "-f", help="table (for people); json or csv (every metric, for scripts)."),
    ] = TableFormat.table,
    workspace: WorkspaceOption = None,
) -> None:
    """List registered models: versions, aliases, gate decisions and key metrics."""
    if ctx.invoked_subcommand is not None:
        return
    from brickyard.ml import registry, tracking
    from brickyard.ml.metrics import KEY_METRICS

    ws = open_workspace(workspace)
    rows = registry.overview(tracking.connect(ws), name, limit)
    if fmt is not TableFormat.table:
        _emit_models(rows, fmt)
        return
    out = console()
    if not rows:
        out.print("No registered models yet: a pipeline with a `kind: train` task registers one.")
        return
    table = Table(header_style="bold")
    for column in ("model", "version", "aliases", "gate", "created (UTC)", "key metrics"):
        table.add_column(column, justify="right" if column == "version" else "left", overflow="fold")
    for row in rows:
        keys = KEY_METRICS.get(row.problem) or tuple(sorted(row.metrics))[:3]
        shown = " ".join(f"{key}={row.metrics[key]:.4g}" for key in keys if key in row.metrics)
        created = datetime.fromtimestamp(row.created, tz=UTC).strftime("%Y-%m-%d %H:%M")
        table.add_row(row.name, str(row.version), ", ".join(row.aliases), row.decision, created, shown)
    out.print(table)


def _emit_models(rows: list[VersionRow], fmt: TableFormat) -> None:
    """json: one object per version with its metrics; csv: one column per metric name."""
    records = [
        {
            "model": row.name, "version": row.version, "aliases": row.aliases, "gate": row.decision,
            "created": datetime.fromtimestamp(row.created, tz=UTC), "problem": row.problem,
            "mlflow_run_id": row.run_id, "metrics": row.metrics,
        }
        for row in rows
    ]
    if fmt is TableFormat.json:
        emit(records, fmt)
        return
    metric_names = sorted({key for row in rows for key in row.metrics})
    flat = [
        {**{k: v for k, v in record.items() if k != "metrics"}, "aliases": ";".join(row.aliases), **row.metrics}
        for record, row in zip(records, rows, strict=True)
    ]
    emit(flat, fmt, columns=["model", "version", "aliases", "gate", "created", "problem", "mlflow_run_id", *metric_names])


@models_app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Argument(help="Version number, latest, or an alias.")],
    force: Annotated[bool, typer.Option("--force", help="Promote even if the gate fails (tagged as forced).")] = False,
    rules: RulesOption = None,
    workspace: WorkspaceOption = None,
) -> int:
    """Run the gate and move the aliases: pass -> champion, fail -> challenger (exit 1); --force: champion."""
    from brickyard.ml import gate, tracking

    ws = open_workspace(workspace)
    found, where = _rules(ws, name, rules, required=False)
    result = gate.promote(
        tracking.connect(ws), name, version, found, force=force,
        extra_tags={"brickyard.gate.by": "cli", **({"brickyard.gate.rules_from": where} if where else {})},
    )
    out = console()
    out.print(_rule_table(result.gate, where))
    text = {
        "promoted": f"version {result.gate.version} is now champion",
        "forced": f"version {result.gate.version} failed the gate but is now champion (--force; tagged as forced)",
        "rejected": f"version {result.gate.version} failed the gate and is now challenger",
        "unchanged": f"version {result.gate.version} already is the champion",
    }[result.decision]
    out.print(f"{name}: {text}")
    return 0 if result.decision != "rejected" else 1


def gate_command(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[
        str | None, typer.Argument(help="Version number, latest, or an alias (default: latest).", show_default=False)
    ] = None,
    version_option: Annotated[
        str | None,
        typer.Option("--version", "-v", help="The version, as an option (same as the VERSION argument).", show_default=False),
    ] = None,
    rules: RulesOption = None,
    workspace: WorkspaceOption = None,
) -> int:
    """Check a model version against its gate rules and the champion: a table of each
    rule (value, champion, threshold, pass/fail); exit 0 when all pass, 1 otherwise."""
    from brickyard.ml import gate, tracking

    if version is not None and version_option is not None and version != version_option:
        raise UsageError(
            f"version {version!r} and --version {version_option!r} differ", hint="give the version once"
        )
    version = version or version_option or "latest"
    ws = open_workspace(workspace)
    found, where = _rules(ws, name, rules, required=True)
    result = gate.check(tracking.connect(ws), name, version, found)
    out = console()
    out.print(_rule_table(result, where))
    verdict = "PASS" if result.passed else "FAIL"
    champion = f"champion: version {result.champion_version}" if result.champion_version else "no champion yet"
    out.print(f"{verdict}: {name} version {result.version} ({champion})")
    return 0 if result.passed else 1


def reproduce(
    run_id: Annotated[str, typer.Argument(help="A brickyard run id (all its train tasks) or an MLflow run id.")],
    workspace: WorkspaceOption = None,
) -> int:
    """Retrain from a run's pinned table versions and parameters; exit 1 if metrics differ."""
    from brickyard.ml.reproduce import TOLERANCE
    from brickyard.ml.reproduce import reproduce as run_reproduce

    ws = open_workspace(workspace)
    out = console()
    results = run_reproduce(ws, run_id)
    for result in results:
        pins = ", ".join(f"{table}@v{version}" for table, version in sorted(result.inputs.items()))
        table = Table(title=f"MLflow run {result.mlflow_run_id} ({result.task or 'train'}) from {pins}", header_style="bold")
        for column in ("metric", "logged", "reproduced", "|difference|", "match"):
            table.add_column(column, justify="left" if column in ("metric", "match") else "right")
        for check in result.checks:
            table.add_row(
                check.metric,
                _number(check.logged),
                _number(check.reproduced),
                "-" if check.difference is None else f"{check.difference:.3g}",
                "yes" if check.matches else "[red]NO[/red]",
            )
        out.print(table)
    same = all(result.matches for result in results)
    out.print(
        f"{'REPRODUCED' if same else 'DIFFERENT'}: metrics {'match' if same else 'differ'} "
        f"(tolerance {TOLERANCE:g})"
    )
    return 0 if same else 1


def mlflow_ui(
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on.")] = 5000,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    print_only: Annotated[bool, typer.Option("--print", help="Print the command instead of running it.")] = False,
    workspace: WorkspaceOption = None,
) -> int:
    """Run the MLflow UI on this workspace's tracking store and artifacts; Ctrl-C stops it (all its processes)."""
    import shlex

    from brickyard.cli.supervise import supervise
    from brickyard.ml.tracking import relocate_artifacts, ui_command

    ws = open_workspace(workspace)
    command = ui_command(ws, port=port, host=host)
    if print_only:
        typer.echo(shlex.join(command))
        return 0
    out = console()
    for moved in relocate_artifacts(ws):  # a copied or moved workspace
        out.print(str(moved), markup=False)
    url = f"http://{_local_host(host)}:{port}"
    out.print(f"Starting the MLflow UI on {url} ...", markup=False)
    code = supervise(
        command,
        health_url=f"{url}/health",
        on_ready=lambda: out.print(f"MLflow UI ready at {url} (Ctrl-C to stop)", markup=False),
        name="the MLflow UI",
    )
    out.print("MLflow UI stopped", markup=False)
    return code


def _local_host(host: str) -> str:
    """The address to reach a server listening on `host` from this machine."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _rules(ws: Workspace, name: str, given: list[str] | None, *, required: bool) -> tuple[list[str], str | None]:
    from brickyard.ml.gate import rules_for_model

    if given:
        return [part.strip() for text in given for part in text.split(";") if part.strip()], "--rules"
    found, where = rules_for_model(ws, name)
    if not found and required:
        raise UsageError(
            f"no gate rules for model {name!r}",
            hint="pass --rules 'accuracy >= 0.75', or add rules: to the promote task of its pipeline",
        )
    return found, where


def _rule_table(result: GateResult, where: str | None) -> Table:
    title = f"gate for {result.model} version {result.version}" + (f" (rules from {where})" if where else "")
    table = Table(title=title, header_style="bold")
    for column in ("rule", "metric", "value", "champion", "threshold", "result"):
        table.add_column(column, justify="right" if column in ("value", "champion", "threshold") else "left")
    for outcome in result.outcomes:
        verdict = (
            f"[dim]{outcome.detail}[/dim]" if outcome.skipped
            else "[green]pass[/green]" if outcome.passed
            else "[red]FAIL[/red]" if outcome.candidate is not None
            else f"[red]FAIL[/red] [dim]{outcome.detail.replace('[', chr(92) + '[')}[/dim]"
        )
        table.add_row(
            outcome.rule.replace("[", r"\["), outcome.metric, _number(outcome.candidate),
            _number(outcome.champion), _number(outcome.threshold), verdict,
        )
    return table


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(models_app)
    app.command("gate")(gate_command)
    app.command()(reproduce)
    app.command("mlflow-ui")(mlflow_ui)
