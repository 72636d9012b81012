"""`brickyard features materialize` and `brickyard features get`: the online store.

The commands join the `features` group (`brickyard features ...`) whichever module made it:
`register` adds them to an existing group of that name, or makes one.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from brickyard.cli.options import FormatOption, WorkspaceOption, open_workspace
from brickyard.cli.render import TableFormat, console, emit, format_value

GROUP = "features"


def register(app: typer.Typer) -> None:
    """Add the online-store commands to the app's `features` group (made when missing)."""
    group = next((info.typer_instance for info in app.registered_groups if info.name == GROUP), None)
    if group is None:
        group = typer.Typer(name=GROUP, help="Feature tables: materialize them online, read their values.", no_args_is_help=True)
        app.add_typer(group, name=GROUP)
    group.command("materialize")(materialize)
    group.command("get")(get)


def materialize(
    name: Annotated[str, typer.Argument(help="The feature table (features/NAME.yaml).")],
    full: Annotated[bool, typer.Option("--full", help="Read the whole table, not only the versions added since the last run.")] = False,
    fmt: FormatOption = TableFormat.table,
    workspace: WorkspaceOption = None,
) -> None:
    """Write the latest row per entity of features.NAME to the online store (incremental)."""
    from brickyard.features.materialize import materialize as run

    ws = open_workspace(workspace)
    result = run(ws, name, full=full)
    if fmt is not TableFormat.table:
        emit(result.as_dict() if fmt is TableFormat.json else [result.as_dict()], fmt)
        return
    console().print(result.summary(), highlight=False, soft_wrap=True)


def get(
    name: Annotated[str, typer.Argument(help="The feature table (features/NAME.yaml).")],
    keys: Annotated[list[str], typer.Argument(help="Entity keys (several key columns: VALUE1,VALUE2).")],
    at: Annotated[
        str | None,
        typer.Option("--at", help="Read the Delta table as of this time (ISO date or timestamp) instead of the online store."),
    ] = None,
    fmt: FormatOption = TableFormat.table,
    workspace: WorkspaceOption = None,
) -> None:
    """Feature values for entity keys: online now (TTL applied), or offline as of --at."""
    from brickyard.features.get import get_offline, get_online, parse_time

    ws = open_workspace(workspace)
    found = get_offline(ws, name, keys, parse_time(at)) if at is not None else get_online(ws, name, keys)
    records = [item.as_dict() for item in found]
    if fmt is not TableFormat.table:
        emit(records, fmt)
        return
    features = list(dict.fromkeys(feature for item in found if item.values for feature in item.values))
    table = Table("key", "status", "event_time", *features, title=f"features.{name.removeprefix('features.')}"
                  + (f" as of {at}" if at else " (online)"))
    for item in found:
        values = item.values or {}
        table.add_row(item.key, item.status, format_value(item.event_time), *(format_value(values.get(f)) for f in features))
    console().print(table)
