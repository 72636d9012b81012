"""`brickyard init`, `demo`, `info`: making and describing workspaces."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from brickyard.cli.options import WorkspaceOption, open_workspace
from brickyard.cli.render import console, key_values, result_table, rule, value_width


class InfoFormat(str, Enum):
    table = "table"
    json = "json"


def init(
    folder: Annotated[Path, typer.Argument(help="Folder for the new workspace.")] = Path("."),
    name: Annotated[str | None, typer.Option(help="Workspace name (default: the folder's).")] = None,
    example: Annotated[
        bool, typer.Option("--example/--no-example", help="Add a commented example pipeline and the CSV it reads.")
    ] = True,
) -> None:
    """Create a workspace: brickyard.yaml, its folders and a small example pipeline."""
    from brickyard.workspace import EXAMPLE_CSV_PATH, FOLDERS, Workspace

    ws = Workspace.init(folder, name=name, example=example)
    out = console()
    out.print(f"Created workspace [bold]{ws.config.name}[/bold] in {ws.root}")
    out.print(f"  {ws.config_path.name}  " + "  ".join(f"{sub}/" for sub in FOLDERS))
    if example:
        out.print(f"  pipelines/example.yaml (commented), reading lake/{EXAMPLE_CSV_PATH}")
        out.print("Next: brickyard run example   (from inside the workspace, or add --workspace)", markup=False)
    else:
        out.print("Next: put files under lake/raw/ and query them with brickyard sql.")


def demo(
    folder: Annotated[Path, typer.Argument(help="Demo workspace folder.")] = Path("brickyard-demo"),
    rows: Annotated[int, typer.Option("--rows", min=1, help="Rows of synthetic taxi trips.")] = 1_000_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic data.")] = 42,
) -> None:
    """Create or refresh the demo workspace and walk through the platform."""
    from brickyard.demo import run_demo, try_next_block

    started = time.perf_counter()
    reporter = RichReporter()
    context = run_demo(folder, rows=rows, report=reporter, seed=seed)
    out = reporter.out
    rule(out, f"Demo finished in {time.perf_counter() - started:.1f} s")
    out.print(f"Workspace: {context.workspace.root}")
    out.print("Try next, in a shell, line by line:")
    for line in try_next_block(context):
        out.print(f"  {line}", markup=False)


def info(
    fmt: Annotated[InfoFormat, typer.Option("--format", "-f")] = InfoFormat.table,
    workspace: WorkspaceOption = None,
) -> None:
    """Show the workspace, lake, engine, MLflow, state database and versions."""
    facts = open_workspace(workspace).info()
    if fmt is InfoFormat.json:
        typer.echo(json.dumps(facts, indent=2))
        return
    out = console()
    flat = [(key, value) for key, value in facts.items() if not isinstance(value, dict)]
    out.print(key_values(flat, title="brickyard"))
    for key in ("databases", "versions"):
        out.print(key_values(facts[key].items(), title=key))


class RichReporter:
    """Prints demo progress with rich."""

    def __init__(self) -> None:
        self.out = console()

    def step(self, title: str) -> None:
        self.out.print(f"\n[bold green]==>[/bold green] [bold]{title}[/bold]")

    def say(self, text: str) -> None:
        self.out.print(text, markup=False)

    def table(self, columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.out.print(result_table(columns, types, rows, max_width=value_width(self.out)))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command()(init)
    app.command()(demo)
    app.command()(info)
