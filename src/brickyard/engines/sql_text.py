"""Rewrites of the SQL a user types, done on DuckDB's own tokens so strings and comments
are never touched.

- Time travel, Databricks style: `bronze.trips VERSION AS OF 3` and
  `bronze.trips TIMESTAMP AS OF '2026-11-23 10:00'` become references to a snapshot view.
- Lake-relative raw paths (`read_csv('raw/taxi/*.csv')`, `FROM 'raw/x.parquet'`) become full
  URIs when the lake is not a local folder.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import duckdb

from brickyard.errors import SqlError

FILE_FUNCTIONS = frozenset(
    {
        "read_csv",
        "read_csv_auto",
        "read_parquet",
        "parquet_scan",
        "read_json",
        "read_json_auto",
        "read_ndjson",
        "read_ndjson_auto",
        "read_text",
        "read_blob",
        "glob",
        "parquet_metadata",
        "parquet_schema",
        "sniff_csv",
    }
)

_TIME_TRAVEL = re.compile(
    r"(?P<table>\b[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*)\s+"
    r"(?P<kind>VERSION|TIMESTAMP)\s+AS\s+OF\s+(?P<value>\d+|'[^']*')",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Snapshot:
    """A past version of a table that a query asked for."""

    table: str
    version: int | None
    timestamp: str | None

    @property
    def view_name(self) -> str:
        suffix = f"v{self.version}" if self.version is not None else f"t{self.timestamp}"
        return f"{self.table}@{suffix}"


def _code_positions(query: str) -> set[int]:
    """Start offsets of tokens that are SQL code (not strings, not comments)."""
    return {
        start
        for start, kind in duckdb.tokenize(query)
        if kind not in (duckdb.token_type.string_const, duckdb.token_type.comment)
    }


def rewrite_time_travel(query: str) -> tuple[str, list[Snapshot]]:
    """Replace `t VERSION|TIMESTAMP AS OF x` with a quoted snapshot view name."""
    if not re.search(r"\bAS\s+OF\b", query, re.IGNORECASE):
        return query, []
    code = _code_positions(query)
    snapshots: list[Snapshot] = []
    pieces: list[str] = []
    last = 0
    for match in _TIME_TRAVEL.finditer(query):
        if match.start("kind") not in code:
            continue
        value = match.group("value")
        if match.group("kind").upper() == "VERSION":
            snapshot = Snapshot(match.group("table").lower(), int(value), None)
        else:
            snapshot = Snapshot(match.group("table").lower(), None, value.strip("'"))
        snapshots.append(snapshot)
        pieces.append(query[last : match.start()])
        pieces.append(f'"{snapshot.view_name}"')
        last = match.end()
    pieces.append(query[last:])
    return "".join(pieces), snapshots


def rewrite_raw_paths(query: str, to_uri: Callable[[str], str]) -> str:
    """Turn relative path literals of file functions and `FROM 'path'` into full URIs."""
    tokens = duckdb.tokenize(query)
    edits: list[tuple[int, int, str]] = []
    for index, (start, kind) in enumerate(tokens):
        if kind != duckdb.token_type.string_const:
            continue
        end = tokens[index + 1][0] if index + 1 < len(tokens) else len(query)
        literal = query[start:end].rstrip()
        if not (literal.startswith("'") and literal.endswith("'")):
            continue
        if not _is_path_position(query, tokens, index):
            continue
        path = literal[1:-1]
        if "://" in path or path.startswith("/"):
            continue
        edits.append((start, start + len(literal), "'" + to_uri(path).replace("'", "''") + "'"))
    for start, stop, text in reversed(edits):
        query = query[:start] + text + query[stop:]
    return query


def _is_path_position(query: str, tokens: Sequence[tuple[int, object]], index: int) -> bool:
    """True for a string right after `file_function(` (or inside its first `[...]`) or FROM/JOIN."""
    back = index - 1
    while back >= 0 and query[tokens[back][0]] in "[,":
        back -= 1
        if back >= 0 and tokens[back][1] == duckdb.token_type.string_const:
            back -= 1
    if back < 0:
        return False
    previous = _token_text(query, tokens, back).lower()
    if previous in ("from", "join"):
        return True
    if previous == "(" and back >= 1:
        return _token_text(query, tokens, back - 1).lower() in FILE_FUNCTIONS
    return False


def _token_text(query: str, tokens: Sequence[tuple[int, object]], index: int) -> str:
    start = tokens[index][0]
    end = tokens[index + 1][0] if index + 1 < len(tokens) else len(query)
    return query[start:end].strip()


def one_line(message: str) -> str:
    """DuckDB's multi-line message as one line, with the position of the problem."""
    lines = [line for line in message.splitlines() if line.strip()]
    if not lines:
        return message
    head = [lines[0]]
    position = ""
    for index, line in enumerate(lines[1:], start=1):
        found = re.match(r"LINE (\d+): ", line)
        # DuckDB marks the position with one caret, or (newer versions) a run of them.
        if found and index + 1 < len(lines) and _is_caret(lines[index + 1]):
            caret = lines[index + 1]
            column = len(caret) - len(caret.lstrip()) - len(found.group(0)) + 1
            snippet = line[len(found.group(0)) :].strip()
            position = f" (line {found.group(1)}, column {column}: {snippet})"
            break
        if not found and not _is_caret(line):
            head.append(line.strip())
    return " ".join(head) + position


def _is_caret(line: str) -> bool:
    return bool(line.strip()) and set(line.strip()) == {"^"}


def single_select(text: str, where: str) -> None:
    """Check that `text` is exactly one query statement.

    Raises:
        SqlError: it does not parse, or holds several statements or no SELECT.
    """
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error as exc:
        raise SqlError(f"{where}: {one_line(str(exc))}") from exc
    if len(statements) != 1:
        raise SqlError(
            f"{where}: expected one SELECT statement, found {len(statements)}",
            hint="a sql task's query is a single SELECT (WITH ... SELECT is fine)",
        )
    if statements[0].type != duckdb.StatementType.SELECT:
        raise SqlError(
            f"{where}: expected a SELECT, found a {statements[0].type.name} statement",
            hint="the task writes the SELECT's rows to its target; do not write tables in the query",
        )
