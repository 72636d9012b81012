"""`brickyard sql`, `tables`, `describe`, `history`: exploring the lake."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from brickyard.cli.options import FormatOption, WorkspaceOption, open_workspace
from brickyard.cli.render import TableFormat, console, emit, human_bytes, key_values, result_table, value_width
from brickyard.errors import UsageError


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def sql(
    query: Annotated[str, typer.Argument(help="SQL (DuckDB dialect). Tables are zone.name; raw files read_csv('raw/...').")],
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.table,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the result to this file (streamed).")] = None,
    max_rows: Annotated[int, typer.Option("--max-rows", "-n", min=1, help="Rows to show in table format.")] = 100,
    engine: Annotated[str | None, typer.Option("--engine", help="duckdb or spark (default: from config).")] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Run SQL over the lake's tables and raw files (time travel: `t VERSION AS OF 3`)."""
    ws = open_workspace(workspace)
    chosen = engine or ws.config.engine
    if chosen not in ("duckdb", "spark"):
        raise UsageError(f"unknown engine {chosen!r}; engines: duckdb, spark")
    if chosen == "spark":
        _spark_sql(ws, query, fmt, out, max_rows)
        return
    if fmt is OutputFormat.table:
        if out is not None:
            raise UsageError("--out needs --format csv, json or parquet")
        with ws.engine.errors():  # rows are read as they are fetched
            _show(ws.sql(query), max_rows)
        return
    if out is None and fmt is OutputFormat.parquet:
        raise UsageError("--format parquet writes binary data; add --out FILE")
    target = str(out.resolve()) if out else "/dev/stdout"
    sys.stdout.flush()
    ws.engine.copy_to(query, target, fmt.value)
    if out is not None:
        print(f"wrote {out}", file=sys.stderr)


def _spark_sql(ws: object, query: str, fmt: OutputFormat, out: Path | None, max_rows: int) -> None:
    """`brickyard sql --engine spark`: the query translated for Spark; a table is shown
    from its first rows, a file is written by Spark's executors (a folder of part files)."""
    engine = ws.spark  # type: ignore[attr-defined]
    frame = engine.dataframe(query)
    if fmt is OutputFormat.table:
        if out is not None:
            raise UsageError("--out needs --format csv, json or parquet")
        shown = engine.to_arrow(frame, limit=max_rows + 1)
        rows = [tuple(row.values()) for row in shown.to_pylist()]
        more = len(rows) > max_rows
        out_console = console()
        out_console.print(
            result_table(shown.column_names, [str(t) for t in shown.schema.types], rows[:max_rows], max_width=value_width(out_console))
        )
        note = f"showing the first {max_rows} rows; more with --max-rows N" if more else f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
        out_console.print(f"[dim]{note} (engine spark)[/dim]")
        return
    if out is None:
        raise UsageError("--engine spark writes csv, json or parquet to a folder; add --out DIR")
    from brickyard.engines.spark_delta import spark_path

    writer, folder = frame.write.mode("overwrite"), spark_path(str(out.resolve()))
    if fmt is OutputFormat.csv:
        writer.option("header", True).csv(folder)
    elif fmt is OutputFormat.json:
        writer.json(folder)
    else:
        writer.parquet(folder)
    print(f"wrote {out}/ (Spark part files)", file=sys.stderr)


def _show(relation: object, max_rows: int) -> None:
    out = console()
    if relation is None:
        out.print("OK")
        return
    rows = relation.limit(max_rows + 1).fetchall()  # type: ignore[attr-defined]
    more = len(rows) > max_rows
    rows = rows[:max_rows]
    out.print(result_table(relation.columns, [str(t) for t in relation.types], rows, max_width=value_width(out)))  # type: ignore[attr-defined]
    if more:
        out.print(
            f"[dim]showing the first {max_rows} rows; more with --max-rows N, "
            f"or all with --format csv --out FILE[/dim]"
        )
    else:
        out.print(f"[dim]{len(rows)} row{'s' if len(rows) != 1 else ''}[/dim]")


def tables(fmt: FormatOption = TableFormat.table, workspace: WorkspaceOption = None) -> None:
    """List the lake's Delta tables with their size and version."""
    ws = open_workspace(workspace)
    infos = [ws.lake.describe(name) for name in ws.lake.tables()]
    if fmt is not TableFormat.table:
        records = [
            {"table": i.name, "rows": i.rows, "files": i.files, "size_bytes": i.size_bytes,
             "version": i.version, "last_modified": i.last_modified}
            for i in infos
        ]
        emit(records, fmt, columns=["table", "rows", "files", "size_bytes", "version", "last_modified"])
        return
    out = console()
    if not infos:
        out.print("The lake has no tables yet. Raw files can be queried already:")
        out.print("  brickyard sql \"SELECT * FROM glob('raw/**')\"")
        return
    rows = [
        (i.name, i.rows, i.files, human_bytes(i.size_bytes), i.version, i.last_modified)
        for i in infos
    ]
    out.print(
        result_table(
            ["table", "rows", "files", "size", "version", "last modified"],
            ["VARCHAR", "BIGINT", "BIGINT", "VARCHAR", "BIGINT", "TIMESTAMP"],
            rows,
            max_width=None,
        )
    )


def describe(
    table: Annotated[str, typer.Argument(help="A table, zone.name.")],
    fmt: Annotated[
        TableFormat,
        typer.Option("--format", "-f", help="table (for people); json (everything) or csv (the columns) for scripts."),
    ] = TableFormat.table,
    workspace: WorkspaceOption = None,
) -> None:
    """Show a table's schema, row count, size and versions."""
    info = open_workspace(workspace).lake.describe(table)
    columns = [{"column": c.name, "type": c.type, "nullable": c.nullable} for c in info.columns]
    if fmt is TableFormat.csv:
        emit(columns, fmt, columns=["column", "type", "nullable"])
        return
    if fmt is TableFormat.json:
        emit(
            {
                "table": info.name, "location": info.uri, "rows": info.rows, "files": info.files,
                "size_bytes": info.size_bytes, "version": info.version, "versions": info.versions,
                "partition_columns": info.partition_columns, "last_modified": info.last_modified,
                "columns": [{"name": c.name, "type": c.type, "nullable": c.nullable} for c in info.columns],
            },
            fmt,
        )
        return
    out = console()
    out.print(
        key_values(
            [
                ("table", info.name),
                ("location", info.uri),
                ("rows", f"{info.rows:,}"),
                ("files", info.files),
                ("size", human_bytes(info.size_bytes)),
                ("version", f"{info.version} ({info.versions} versions)"),
                ("partitioned by", ", ".join(info.partition_columns) or "-"),
                ("last modified", info.last_modified),
            ]
        )
    )
    out.print(
        result_table(
            ["column", "type", "nullable"],
            ["VARCHAR", "VARCHAR", "VARCHAR"],
            [(c.name, c.type, "yes" if c.nullable else "no") for c in info.columns],
            max_width=None,
        )
    )


def history(
    table: Annotated[str, typer.Argument(help="A table, zone.name.")],
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Newest N versions.")] = None,
    fmt: FormatOption = TableFormat.table,
    workspace: WorkspaceOption = None,
) -> None:
    """Show a table's commits, newest first (query one with `VERSION AS OF n`)."""
    entries = open_workspace(workspace).lake.history(table, limit)
    if fmt is not TableFormat.table:
        records = [
            {
                "version": entry.get("version"),
                "timestamp": entry.get("timestamp"),
                "operation": entry.get("operation"),
                "parameters": entry.get("operationParameters") or {},
                "metrics": entry.get("operationMetrics") or {},
            }
            for entry in entries
        ]
        emit(records, fmt, columns=["version", "timestamp", "operation", "parameters", "metrics"])
        return
    rows = [
        (
            entry.get("version"),
            entry.get("timestamp"),
            entry.get("operation"),
            json.dumps(entry.get("operationParameters") or {}, default=str),
            _metrics(entry.get("operationMetrics") or {}),
        )
        for entry in entries
    ]
    out = console()
    out.print(
        result_table(
            ["version", "timestamp", "operation", "parameters", "metrics"],
            ["BIGINT", "TIMESTAMP", "VARCHAR", "VARCHAR", "VARCHAR"],
            rows,
            max_width=value_width(out),
        )
    )


def _metrics(metrics: dict[str, object]) -> str:
    keys = ("num_added_rows", "num_target_rows_inserted", "num_target_rows_updated", "num_added_files", "num_removed_files")
    return ", ".join(f"{key.removeprefix('num_')}={metrics[key]}" for key in keys if key in metrics)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command()(sql)
    app.command()(tables)
    app.command()(describe)
    app.command()(history)
