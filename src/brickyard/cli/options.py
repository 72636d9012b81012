"""Options shared by several commands, and how a command opens its workspace."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from brickyard.cli.render import TableFormat

if TYPE_CHECKING:
    from brickyard.workspace import Workspace

WorkspaceOption = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        envvar="BRICKYARD_WORKSPACE",
        help="Workspace folder (default: the nearest folder with brickyard.yaml).",
        show_default=False,
    ),
]


FormatOption = Annotated[
    TableFormat,
    typer.Option("--format", "-f", help="table (for people), json or csv (for scripts)."),
]


def open_workspace(path: Path | None) -> Workspace:
    """Open the workspace a command runs in (imported lazily to keep start-up fast)."""
    from brickyard.workspace import Workspace

    return Workspace.open(path)
