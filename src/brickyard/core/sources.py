"""Raw files for ingest (CSV, JSON lines, Parquet), as every engine reads them: the reader
options, the format, a listed file (`SourceFile`), and how records are numbered.

Every engine's scan (`brickyard.engines.duckdb.sources`, `brickyard.engines.spark.ingest`) keeps the file's values as text (CSV `all_varchar`, JSON columns declared
VARCHAR; Parquet keeps its own types and is cast to text where text is needed), adds the
file name as `__file`, and keeps DuckDB's insertion order, so rows stream in file order
and a row's line number can be counted while streaming.

Line numbers (`_line`): CSV counts the header as line 1, so the first data row is line 2;
JSON lines start at 1; Parquet gives the 1-based row number. They are record numbers: a
file with blank lines or quoted values spanning lines has physical lines that differ.
"""

from __future__ import annotations

import gzip
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from brickyard.core.options import TaskOptions
from brickyard.core.quality import literal, quote

if TYPE_CHECKING:
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


def null_arguments(options: ReaderOptions) -> list[str]:
    """The read_csv argument for the reader's null strings (none when not set)."""
    if options.null_strings is None:
        return []
    return [f"nullstr=[{', '.join(literal(s) for s in options.null_strings)}]"]


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


def raw_text(fmt: Format, column: str) -> str:
    """SQL for a source column's value as text."""
    if fmt == "parquet":
        return f"CAST({quote(column)} AS VARCHAR)"
    return quote(column)


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


@dataclass(frozen=True)
class SourceFile:
    """One raw file as listed: its lake-relative path and what identifies its content."""

    path: str
    size: int
    modified: str
    etag: str | None = None

    def changed_from(self, other: SourceFile) -> bool:
        """True when the file's size, modification time or etag differ."""
        if self.etag and other.etag:
            return self.etag != other.etag or self.size != other.size
        return self.size != other.size or self.modified != other.modified

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        if found["etag"] is None:
            del found["etag"]
        return found


