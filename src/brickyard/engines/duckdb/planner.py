"""DuckDB's look at raw files, for the column plan of an ingest batch on every engine: each
file's columns, the types and date formats DuckDB's sniffer detects on a sample, DuckDB's
names for a table's Arrow types, and a read error located at its file and line."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import duckdb

from brickyard.core.sources import Format, ReaderOptions, SourceFile
from brickyard.engines.duckdb.engine import DuckDBEngine
from brickyard.engines.duckdb.ingest_errors import IngestError, read_error, spark_read_error
from brickyard.engines.duckdb.sources import describe, file_columns, sniffed_formats

if TYPE_CHECKING:
    import pyarrow as pa

    from brickyard.engines.base import RawReadError


class RawFilePlanner:
    """Plans one ingest task's batches with DuckDB (a fresh engine of its own; `close` it).
    Errors name the task's files and lines; with `pii_columns`, data values are withheld."""

    def __init__(
        self, base: DuckDBEngine, *, task: str, fmt: Format, reader: ReaderOptions, pii_columns: Collection[str] = ()
    ) -> None:
        self.task, self.fmt, self.reader, self.pii_columns = task, fmt, reader, list(pii_columns)
        self.location = base.lake.location
        self.engine = base.fresh()
        # Rows must stream in file order for their line numbers to be counted.
        self.engine.connection.execute("SET preserve_insertion_order = true")

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        return self.engine.connection

    def close(self) -> None:
        self.engine.close()

    def columns(self, file: SourceFile, uri: str) -> list[str]:
        """One file's column names. Raises: IngestError (the file cannot be read)."""
        try:
            return file_columns(self.con, self.fmt, uri, self.reader)
        except (duckdb.Error, OSError) as exc:
            # from None: the engine's text may quote raw rows with PII values; the message withholds them
            raise self.read_error([file], [uri], exc, sniffing=True) from None

    def detected(self, files: Sequence[SourceFile], uris: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
        """The files' column types as DuckDB detects them, and (CSV) the date and timestamp
        formats its sniffer found in the first file. Raises: IngestError."""
        try:
            inferred = dict(describe(self.con, self.fmt, uris, self.reader, typed=True))
            formats = sniffed_formats(self.con, uris[0], self.reader) if self.fmt == "csv" else {}
        except (duckdb.Error, OSError) as exc:
            # from None: the engine's text may quote raw rows with PII values; the message withholds them
            raise self.read_error(files, uris, exc, sniffing=True) from None
        return inferred, formats

    def duckdb_types(self, schema: pa.Schema) -> list[tuple[str, str]]:
        """(name, DuckDB type) of each column of an Arrow schema."""
        relation = self.con.from_arrow(schema.empty_table())
        return [(name, str(kind)) for name, kind in zip(relation.columns, relation.types, strict=True)]

    def read_error(
        self, files: Sequence[SourceFile], uris: Sequence[str], exc: Exception, *, sniffing: bool = False
    ) -> IngestError:
        return read_error(
            self.con, self.location, self.task, self.fmt, self.reader, files, uris, exc,
            sniffing=sniffing, pii_columns=self.pii_columns,
        )

    def located(self, exc: RawReadError, files: Sequence[SourceFile]) -> IngestError:
        """An engine's error reading `files` as the task's error; for CSV, at the line
        DuckDB finds in the file the engine named."""
        return spark_read_error(
            self.con, self.location, self.task, self.fmt, self.reader, files, exc, pii_columns=self.pii_columns
        )
