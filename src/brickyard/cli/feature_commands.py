"""`brickyard features list` and `brickyard features describe NAME`: the offline store.

The commands join the `features` group (`brickyard features ...`) whichever module made
it: `register` adds them to an existing group of that name, or makes one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from brickyard.cli.options import FormatOption, WorkspaceOption, open_workspace
from brickyard.cli.render import TableFormat, console, emit, key_values, result_table

if TYPE_CHECKING:
    from brickyard.core.feature_table import FeatureTableSpec
    from brickyard.workspace import Workspace

GROUP = "features"
LIST_COLUMNS = ["name", "table", "keys", "rows", "latest_event_time", "version"]


def register(app: typer.Typer) -> None:
    """Add `features list` and `features describe` to the app's `features` group (made when missing)."""
    group = next((info.typer_instance for info in app.registered_groups if info.name == GROUP), None)
    if group is None:
        group = typer.Typer(name=GROUP, help="Feature tables: list, describe, materialize, read.", no_args_is_help=True)
        app.add_typer(group, name=GROUP)
    group.command("list")(list_tables)
    group.command("describe")(describe)


@dataclass
class FeatureTableState:
    """A feature table's definition and what its Delta table holds now."""

    spec: FeatureTableSpec
    rows: int | None = None
    version: int | None = None
    versions: int | None = None
    last_modified: datetime | None = None
    latest_event_time: Any = None
    columns: list[tuple[str, str]] = field(default_factory=list)

    @property
    def freshness_seconds(self) -> float | None:
        """Now minus the latest event time (a zone-less time is UTC), in seconds."""
        latest = self.latest_event_time
        if latest is None:
            return None
        if isinstance(latest, date) and not isinstance(latest, datetime):
            latest = datetime(latest.year, latest.month, latest.day)
        if isinstance(latest, datetime) and latest.tzinfo is None:
            latest = latest.replace(tzinfo=UTC)
        return (datetime.now(UTC) - latest).total_seconds() if isinstance(latest, datetime) else None


def table_state(ws: Workspace, spec: FeatureTableSpec) -> FeatureTableState:
    """The definition with its table's rows, versions, columns and latest event time."""
    state = FeatureTableState(spec)
    if not ws.lake.exists(spec.table):
        return state
    info = ws.lake.describe(spec.table)
    state.rows, state.version, state.versions = info.rows, info.version, info.versions
    state.last_modified = info.last_modified
    state.columns = [(c.name, c.type) for c in info.columns]
    if spec.event_time in {name for name, _ in state.columns}:
        column = '"' + spec.event_time.replace('"', '""') + '"'
        state.latest_event_time = ws.sql(f"SELECT max({column}) FROM {spec.table}").fetchall()[0][0]
    return state


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    days, rest = divmod(int(value), 86400)
    return (f"{days}d " if days else "") + f"{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"


def list_tables(fmt: FormatOption = TableFormat.table, workspace: WorkspaceOption = None) -> None:
    """List the feature tables (features/*.yaml) with their rows, latest event time and version."""
    ws = open_workspace(workspace)
    states = [table_state(ws, ws.feature_table(name)) for name in ws.feature_table_names()]
    records = [
        {"name": s.spec.name, "table": s.spec.table, "keys": ",".join(s.spec.keys), "rows": s.rows,
         "latest_event_time": s.latest_event_time, "version": s.version}
        for s in states
    ]
    if fmt is not TableFormat.table:
        emit(records, fmt, columns=LIST_COLUMNS)
        return
    out = console()
    if not records:
        out.print("No feature tables yet: declare one in features/NAME.yaml (see docs/features.md).")
        return
    out.print(result_table(
        ["name", "table", "keys", "rows", "latest event time", "version"],
        ["VARCHAR", "VARCHAR", "VARCHAR", "BIGINT", "TIMESTAMP", "BIGINT"],
        [tuple(r.values()) for r in records],
        max_width=None,
    ))
    unmaterialized = [r["name"] for r in records if r["version"] is None]
    if unmaterialized:
        out.print(f"[dim]not materialized yet: {', '.join(unmaterialized)} (run a `kind: features` task)[/dim]")


def describe(
    name: Annotated[str, typer.Argument(help="The feature table: NAME (features/NAME.yaml) or features.NAME.")],
    fmt: Annotated[
        TableFormat,
        typer.Option("--format", "-f", help="table (for people); json (everything) or csv (the columns) for scripts."),
    ] = TableFormat.table,
    workspace: WorkspaceOption = None,
) -> None:
    """Show a feature table: keys, event time, TTL, columns, versions, freshness, the models that use it."""
    from brickyard.ml.training_set import models_using

    ws = open_workspace(workspace)
    state = table_state(ws, ws.feature_table(name))
    spec = state.spec
    features = [(c, t) for c, t in state.columns if c not in spec.feature_columns_excluded]
    if fmt is TableFormat.csv:
        emit([{"column": c, "type": t, "role": _role(spec, c)} for c, t in state.columns], fmt, columns=["column", "type", "role"])
        return
    models = models_using(ws, spec.table) if state.version is not None else []
    document = {
        "name": spec.name, "table": spec.table, "description": spec.description, "owner": spec.owner,
        "keys": list(spec.keys), "event_time": spec.event_time, "created_time": spec.created_time,
        "ttl_seconds": spec.ttl.total_seconds() if spec.ttl else None,
        "source": spec.source.model_dump(exclude_none=True),
        "materialized": state.version is not None, "rows": state.rows, "version": state.version,
        "versions": state.versions, "last_modified": state.last_modified,
        "latest_event_time": state.latest_event_time, "freshness_seconds": state.freshness_seconds,
        "columns": [{"name": c, "type": t, "role": _role(spec, c)} for c, t in state.columns],
        "features": [c for c, _ in features], "models": models,
    }
    online = _online_status(ws, spec.name)
    document["online"] = online
    if fmt is TableFormat.json:
        emit(document, fmt)
        return
    out = console()
    source = spec.source.table or spec.source.sql
    out.print(key_values([
        ("feature table", f"{spec.name} ({spec.table})"),
        ("description", spec.description or "-"),
        ("owner", spec.owner or "-"),
        ("keys", ", ".join(spec.keys)),
        ("event time", spec.event_time),
        ("created time", spec.created_time or "-"),
        ("ttl", _seconds(spec.ttl.total_seconds()) if spec.ttl else "none (values never expire)"),
        ("source", source),
        ("rows", f"{state.rows:,}" if state.rows is not None else "not materialized yet"),
        ("version", f"{state.version} ({state.versions} versions, last {state.last_modified})" if state.version is not None else "-"),
        ("latest event time", state.latest_event_time if state.latest_event_time is not None else "-"),
        ("freshness", f"{_seconds(state.freshness_seconds)} since the latest event time" if state.freshness_seconds is not None else "-"),
        ("online", _online_text(online)),
    ]))
    if state.columns:
        out.print(result_table(["column", "type", "role"], ["VARCHAR", "VARCHAR", "VARCHAR"],
                               [(c, t, _role(spec, c)) for c, t in state.columns], max_width=None))
    if models:
        out.print(result_table(
            ["model", "version", "aliases", "trained on version", "features"],
            ["VARCHAR", "BIGINT", "VARCHAR", "BIGINT", "VARCHAR"],
            [(m["model"], m["version"], ",".join(m["aliases"]) or "-", m["table_version"], ", ".join(m["features"])) for m in models],
            max_width=None,
        ))
    elif state.version is not None:
        out.print("[dim]no registered model was trained from it[/dim]")


def _online_status(ws: Workspace, name: str) -> dict[str, Any]:
    """The online copy's state (never raises: see `brickyard.features.get.online_status`)."""
    from brickyard.features.get import online_status

    return online_status(ws, name)


def _online_text(online: dict[str, Any]) -> str:
    if "error" in online:
        return f"{online['store']}: cannot be read ({online['error']})"
    if not online.get("materialized"):
        return f"{online['store']}: not materialized (brickyard features materialize NAME)"
    return (f"{online['store']}: version {online.get('version')} materialized at {online.get('materialized_at')}, "
            f"freshness {_seconds(online.get('freshness_seconds'))}")


def _role(spec: FeatureTableSpec, column: str) -> str:
    if column in spec.keys:
        return "key"
    if column == spec.event_time:
        return "event time"
    if column == spec.created_time:
        return "created time"
    return "feature"
