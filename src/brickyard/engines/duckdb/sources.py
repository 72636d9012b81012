"""Raw files read by DuckDB: the reader's fixed CSV dialect, the FROM-clause scan of a
batch's files, and what DuckDB detects in them (columns, types, date formats). The column
plan of an ingest batch comes from here on every engine (DuckDB's sniffer on a sample)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from brickyard.core.quality import literal
from brickyard.core.sources import FILE_COLUMN, NESTED_PREFIXES, Format, ReaderOptions, null_arguments
from brickyard.engines.csv_errors import Dialect

if TYPE_CHECKING:
    import duckdb


def dialect(options: ReaderOptions) -> Dialect:
    """The fixed CSV dialect of the reader options (RFC 4180 by default: comma, double
    quotes, a header)."""
    return Dialect(
        delimiter=options.delimiter or ",",
        quote=options.quote if options.quote is not None else '"',
        escape=options.escape if options.escape is not None else '"',
        header=options.header,
        encoding=options.encoding,
        max_line_size=options.max_line_size,
    )


def csv_arguments(options: ReaderOptions) -> list[str]:
    """The read_csv arguments for the reader options.

    The dialect is fixed (RFC 4180 by default: comma, double quotes, header, no skipped or
    comment lines) rather than sniffed per file: DuckDB's sniffer, faced with one malformed
    line, may pick another delimiter or skip lines, silently losing rows.
    """
    return dialect(options).arguments() + null_arguments(options)


def file_list(uris: Sequence[str]) -> str:
    return "[" + ", ".join(literal(uri) for uri in uris) + "]"


def scan_sql(
    fmt: Format, uris: Sequence[str], options: ReaderOptions, columns: Sequence[str]
) -> str:
    """A FROM-clause scan of the files: `columns` (text for CSV and JSON) plus `__file`."""
    files = file_list(uris)
    if fmt == "csv":
        args = ["all_varchar=true", f"filename={literal(FILE_COLUMN)}", "union_by_name=true"]
        return f"read_csv({files}, {', '.join(args + csv_arguments(options))})"
    if fmt == "json":
        declared = ", ".join(f"{literal(name)}: 'VARCHAR'" for name in columns)
        return (
            f"read_json({files}, format='newline_delimited', columns={{{declared}}}, "
            f"filename={literal(FILE_COLUMN)})"
        )
    return f"read_parquet({files}, filename={literal(FILE_COLUMN)}, union_by_name=true)"


def file_columns(
    con: duckdb.DuckDBPyConnection, fmt: Format, uri: str, options: ReaderOptions
) -> list[str]:
    """The column names of one file (CSV header, JSON keys from DuckDB's sample, Parquet
    schema)."""
    return [name for name, _ in describe(con, fmt, [uri], options, typed=False)]


def describe(
    con: duckdb.DuckDBPyConnection,
    fmt: Format,
    uris: Sequence[str],
    options: ReaderOptions,
    *,
    typed: bool,
) -> list[tuple[str, str]]:
    """(name, DuckDB type) of the files' columns as DuckDB detects them."""
    files = file_list(uris)
    if fmt == "csv":
        args = csv_arguments(options) + ["union_by_name=true"]
        if not typed:
            args.append("all_varchar=true")
        source = f"read_csv({files}, {', '.join(args)})"
    elif fmt == "json":
        source = f"read_json({files}, format='newline_delimited', union_by_name=true)"
    else:
        source = f"read_parquet({files}, union_by_name=true)"
    rows = con.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()
    found = []
    for row in rows:
        name, kind = str(row[0]), str(row[1])
        if fmt == "json" and (kind.startswith(NESTED_PREFIXES) or kind.endswith("]")):
            kind = "VARCHAR"  # nested JSON values are kept as JSON text
        found.append((name, kind))
    return found


def sniffed_formats(con: duckdb.DuckDBPyConnection, uri: str, options: ReaderOptions) -> dict[str, str]:
    """The date and timestamp formats DuckDB's CSV sniffer detected in a file
    (keys DATE and TIMESTAMP; empty when it found none)."""
    args = ", ".join(csv_arguments(options))
    rows = con.sql(f"SELECT DateFormat, TimestampFormat FROM sniff_csv({literal(uri)}, {args})").fetchall()
    found: dict[str, str] = {}
    if rows:
        date_format, timestamp_format = rows[0]
        if date_format:
            found["DATE"] = str(date_format)
        if timestamp_format:
            found["TIMESTAMP"] = str(timestamp_format)
    return found


