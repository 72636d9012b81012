"""Rendering results: rich tables for people, JSON and CSV for scripts.

On a terminal, tables fit its width (query values are cut at `MAX_COLUMN_WIDTH`); with
no terminal (a pipe, a file, CI) nothing is cut: the console is as wide as the table.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.rule import Rule
from rich.table import Table

MAX_COLUMN_WIDTH = 32
NO_TERMINAL_WIDTH = 100_000  # wide enough that no table is ever cut
RULE_WIDTH = 80


class TableFormat(str, Enum):
    """How a listing command prints: a table for people, json or csv for scripts."""

    table = "table"
    json = "json"
    csv = "csv"


def result_table(
    columns: Sequence[str],
    types: Sequence[str],
    rows: Iterable[Sequence[Any]],
    title: str | None = None,
    *,
    max_width: int | None = MAX_COLUMN_WIDTH,
) -> Table:
    """A rich table of rows; values longer than `max_width` are cut with an ellipsis
    (None: never, for names and counts that must stay whole)."""
    table = Table(title=title, show_lines=False, header_style="bold")
    for name, kind in zip(columns, types, strict=True):
        numeric = any(word in kind.upper() for word in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL"))
        table.add_column(
            name,
            justify="right" if numeric else "left",
            max_width=max_width,
            overflow="ellipsis",
            no_wrap=True,
        )
    for row in rows:
        table.add_row(*(format_value(value) for value in row))
    return table


def format_value(value: Any) -> str:
    """One cell as text: NULL shown as such, a float in the fewest digits that give it back
    exactly (Python's repr, as DuckDB's own shell prints doubles: a table never rounds a
    value), times to the second."""
    if value is None:
        return "[dim]NULL[/dim]"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    text = str(value)
    return text.replace("[", r"\[")


def key_values(pairs: Iterable[tuple[str, Any]], title: str | None = None) -> Table:
    """A two-column table of facts."""
    table = Table(title=title, show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold cyan")
    table.add_column()
    for key, value in pairs:
        table.add_row(key, format_value(value))
    return table


def human_bytes(size: int) -> str:
    """1234567 -> '1.2 MB'."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def console() -> Console:
    """The console commands print to (stdout): a terminal's width, or, with no terminal,
    wide enough that tables are never cut."""
    out = Console(highlight=False, soft_wrap=True)
    if not out.is_terminal:
        out.width = NO_TERMINAL_WIDTH
    return out


def value_width(out: Console) -> int | None:
    """How wide a query value may be in a table on `out`: cut on a terminal, whole otherwise."""
    return MAX_COLUMN_WIDTH if out.is_terminal else None


def rule(out: Console, title: str) -> None:
    """A horizontal rule with a title, at most `RULE_WIDTH` wide without a terminal."""
    out.print(Rule(title), width=None if out.is_terminal else RULE_WIDTH)


def emit(document: Any, fmt: TableFormat, columns: Sequence[str] | None = None) -> None:
    """Print `document` for scripts: `json` as is (datetimes in ISO 8601); `csv` needs a
    list of records, one line each, with `columns` (default: every key, in order of first
    appearance); nested values become JSON text and None an empty field."""
    if fmt is TableFormat.json:
        sys.stdout.write(json.dumps(document, indent=2, default=_json_value, ensure_ascii=False) + "\n")
        return
    records: list[Mapping[str, Any]] = list(document)
    names = list(columns) if columns is not None else list(dict.fromkeys(key for record in records for key in record))
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(names)
    for record in records:
        writer.writerow([_csv_value(record.get(name)) for name in names])


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Path | Enum):
        return str(value.value if isinstance(value, Enum) else value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=_json_value, ensure_ascii=False)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
