"""Raw files as DuckDB scans for ingest: CSV, JSON lines and Parquet.

Every scan keeps the file's values as text (CSV `all_varchar`, JSON columns declared
VARCHAR; Parquet keeps its own types and is cast to text where text is needed), adds the
file name as `__file`, and keeps DuckDB's insertion order, so rows stream in file order
and a row's line number can be counted while streaming.

Line numbers (`_line`): CSV counts the header as line 1, so the first data row is line 2;
JSON lines start at 1; Parquet gives the 1-based row number. They are record numbers: a
file with blank lines or quoted values spanning lines has physical lines that differ.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from brickyard.core.quality import literal, quote
from brickyard.engines.csv_errors import Dialect
from brickyard.tasks.base import TaskOptions

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

Format = Literal["csv", "json", "parquet"]
EXTENSIONS: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
FILE_COLUMN = "__file"
BLANK_FILE_BYTES = 32  # files up to this size are read to see whether they are blank
NESTED_PREFIXES = ("STRUCT", "MAP", "UNION")


class ReaderOptions(TaskOptions):
    """Options for the file reader (CSV only; JSON lines and Parquet need none)."""

    delimiter: str | None = Field(default=None, min_length=1, max_length=4)  # default ","
    header: bool = True
    quote: str | None = Field(default=None, max_length=1)
    escape: str | None = Field(default=None, max_length=1)
    null_strings: tuple[str, ...] | None = None
    encoding: Literal["utf-8", "utf-16", "latin-1"] | None = None
    # DuckDB's limit on a line's bytes (its default is 2,000,000); Spark reads lines of any
    # length, but the column plan, from DuckDB's look at each file, still applies it.
    max_line_size: int | None = Field(default=None, ge=1)


def format_of(path: str) -> Format | None:
    """The format implied by a path's extension (`.csv.gz` counts as `.csv`)."""
    name = path.lower()
    for suffix in (".gz", ".zst"):
        name = name.removesuffix(suffix)
    for extension, fmt in EXTENSIONS.items():
        if name.endswith(extension):
            return fmt
    return None


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


def null_arguments(options: ReaderOptions) -> list[str]:
    """The read_csv argument for the reader's null strings (none when not set)."""
    if options.null_strings is None:
        return []
    return [f"nullstr=[{', '.join(literal(s) for s in options.null_strings)}]"]


def csv_arguments(options: ReaderOptions) -> list[str]:
    """The read_csv arguments for the reader options.

    The dialect is fixed (RFC 4180 by default: comma, double quotes, header, no skipped or
    comment lines) rather than sniffed per file: DuckDB's sniffer, faced with one malformed
    line, may pick another delimiter or skip lines, silently losing rows.
    """
    return dialect(options).arguments() + null_arguments(options)


def is_empty(fs: Any, fs_path: str, size: int) -> bool:
    """True when a raw file holds no data: no bytes, or (a small file) only line breaks,
    spaces and a byte-order mark, also once a `.gz` file is decompressed. Such a file has
    no header to give columns, and DuckDB would invent one (`column0`)."""
    if size == 0:
        return True
    if size > BLANK_FILE_BYTES:
        return False
    try:
        with fs.open(fs_path, "rb") as handle:
            content = handle.read()
        if fs_path.lower().endswith(".gz"):
            content = gzip.decompress(content)
    except (OSError, EOFError):
        return False  # gone, or not gzip after all: the read reports it
    return not content.removeprefix(b"\xef\xbb\xbf").strip()


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


def raw_text(fmt: Format, column: str) -> str:
    """SQL for a source column's value as text."""
    if fmt == "parquet":
        return f"CAST({quote(column)} AS VARCHAR)"
    return quote(column)


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


def line_offset(fmt: Format, options: ReaderOptions) -> int:
    """What to add to a 1-based record number to get its line (1 for a CSV header)."""
    return 1 if fmt == "csv" and options.header else 0


class LineCounter:
    """Numbers rows per file while a stream in file order goes by, batch after batch."""

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.seen: dict[str, int] = {}
        self._ends = np.zeros(0, dtype=np.int64)
        self._bases = np.zeros(0, dtype=np.int64)

    def observe(self, files: pa.Array) -> None:
        """Count the rows of the next batch (its file-name column)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(files, pa.ChunkedArray):
            files = files.combine_chunks()
        if len(files) == 0:
            self._ends = np.zeros(0, dtype=np.int64)
            self._bases = np.zeros(0, dtype=np.int64)
            return
        if pa.types.is_dictionary(files.type):  # count runs of the small integer codes
            encoded = pc.run_end_encode(files.indices)
            names = files.dictionary.take(encoded.values).to_pylist()
        else:
            encoded = pc.run_end_encode(files)
            names = encoded.values.to_pylist()
        ends = encoded.run_ends.to_numpy().astype(np.int64)
        bases = np.empty(len(ends), dtype=np.int64)
        start = 0
        for index, (end, name) in enumerate(zip(ends, names, strict=True)):
            before = self.seen.get(name, 0)
            bases[index] = before - start
            self.seen[name] = before + int(end) - start
            start = int(end)
        self._ends, self._bases = ends, bases

    def lines(self, positions: np.ndarray) -> np.ndarray:
        """Line numbers of rows at `positions` of the last observed batch."""
        runs = np.searchsorted(self._ends, positions, side="right")
        return positions + self._bases[runs] + 1 + self.offset
