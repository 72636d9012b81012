"""Rendering results for people: rich tables with bounded rows and column widths."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

MAX_COLUMN_WIDTH = 32


def result_table(
    columns: Sequence[str], types: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None
) -> Table:
    """A rich table of query rows; long values are cut with an ellipsis."""
    table = Table(title=title, show_lines=False, header_style="bold")
    for name, kind in zip(columns, types, strict=True):
        numeric = any(word in kind.upper() for word in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL"))
        table.add_column(
            name,
            justify="right" if numeric else "left",
            max_width=MAX_COLUMN_WIDTH,
            overflow="ellipsis",
            no_wrap=True,
        )
    for row in rows:
        table.add_row(*(format_value(value) for value in row))
    return table


def format_value(value: Any) -> str:
    """One cell as text: NULL shown as such, floats trimmed, times without microseconds."""
    if value is None:
        return "[dim]NULL[/dim]"
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e15 else f"{value:.3e}"
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
    """The console commands print to (stdout)."""
    return Console(highlight=False, soft_wrap=True)
