"""Why an ingest batch could not be read, as one line naming the lake file and, for a
malformed CSV line, the line: `task t: raw/taxi/b.csv:502: <what>; nothing was loaded`,
with the next thing to try as the hint.

DuckDB's sniffer (planning, and binding the scan) names no line or a wrong one, and Spark's
reader names the record but not its line: the file is then read again by DuckDB with the
task's dialect and no sniffing (`brickyard.engines.csv_errors.locate`), which names it.

When the task's contract has PII columns (`pii_columns`), the message never shows the bad
line's text nor what an engine quotes of the data (`brickyard.core.pii.withhold_values`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from brickyard.core import pii
from brickyard.core.sources import Format, ReaderOptions, null_arguments
from brickyard.engines.csv_errors import SNIFFED_RECORDS, CsvProblem, csv_problem, locate
from brickyard.engines.duckdb.engine import one_line
from brickyard.engines.duckdb.sources import dialect
from brickyard.errors import BrickyardError, is_transient

if TYPE_CHECKING:
    import duckdb

    from brickyard.core.sources import SourceFile
    from brickyard.engines.base import RawReadError
    from brickyard.lake import LakeLocation


class IngestError(BrickyardError):
    """Raw files could not be ingested (unreadable file, malformed line, bad options)."""


def read_error(
    con: duckdb.DuckDBPyConnection,
    location: LakeLocation,
    task: str,
    fmt: Format,
    reader: ReaderOptions,
    files: Sequence[SourceFile],
    uris: Sequence[str],
    exc: Exception,
    *,
    sniffing: bool = False,
    pii_columns: Collection[str] = (),
) -> IngestError:
    """DuckDB's error reading `files` (at `uris`) as an IngestError. `sniffing`: the error
    came from DuckDB's sniffer, whose line (if any) is not to be trusted; `pii_columns`:
    the files hold these PII columns (no value of the file is shown)."""
    text = str(exc)
    file = named_file(text, files, uris)
    problem = csv_problem(text) if fmt == "csv" else None
    if fmt == "csv" and (sniffing or (problem is not None and problem.line is None)):
        if file is None and len(files) == 1:
            file = files[0]
        limit = SNIFFED_RECORDS if sniffing else None
        located = locate_line(con, location, reader, file, limit=limit) if file is not None else None
        problem = located or problem
    if problem is not None and file is not None:
        return _line_error(task, file, problem, pii_columns)
    for uri, source in sorted(zip(uris, files, strict=True), key=lambda pair: -len(pair[0])):
        text = text.replace(uri, source.path)
    where = file.path if file is not None else _names(files)
    text = one_line(text)
    if pii_columns:
        text = pii.withhold_values(text, pii_columns)
    return IngestError(
        f"task {task}: {where}: cannot read the file as {fmt}: {_without_class(text)}; nothing was loaded",
        hint="check the file, or set format/options (delimiter, header, encoding) on the task",
        transient=is_transient(exc),  # raised `from None` (PII): say what the cause would have
    )


def spark_read_error(
    con: duckdb.DuckDBPyConnection,
    location: LakeLocation,
    task: str,
    fmt: Format,
    reader: ReaderOptions,
    files: Sequence[SourceFile],
    exc: RawReadError,
    *,
    pii_columns: Collection[str] = (),
) -> IngestError:
    """Spark's error reading `files` as an IngestError; for CSV, with the line DuckDB finds
    in the file Spark named (Spark's own message stays when DuckDB finds none).
    `pii_columns` as for `read_error`."""
    if fmt == "csv":
        named = [f for f in files if f.path == exc.file] or (list(files) if len(files) == 1 else [])
        for file in named:
            problem = locate_line(con, location, reader, file)
            if problem is not None:
                return _line_error(task, file, problem, pii_columns)
    message = pii.withhold_values(exc.message, pii_columns) if pii_columns else exc.message
    return IngestError(message, hint=exc.hint)


def locate_line(
    con: duckdb.DuckDBPyConnection,
    location: LakeLocation,
    reader: ReaderOptions,
    file: SourceFile,
    *,
    limit: int | None = None,
) -> CsvProblem | None:
    """The first malformed line of a CSV file, read with the task's dialect, unsniffed."""
    return locate(con, location.uri(file.path), dialect(reader), extra=null_arguments(reader), limit=limit)


def named_file(text: str, files: Sequence[SourceFile], uris: Sequence[str]) -> SourceFile | None:
    """The file of the batch that an error message names: by the URI DuckDB was given (the
    longest that matches: `a.csv.gz` before `a.csv`), or a path ending with its lake path."""
    for uri, file in sorted(zip(uris, files, strict=True), key=lambda pair: -len(pair[0])):
        if uri in text:
            return file
    problem = csv_problem(text)
    if problem is not None and problem.file:
        for file in files:
            if problem.file == file.path or problem.file.endswith("/" + file.path):
                return file
    return None


def _line_error(task: str, file: SourceFile, problem: CsvProblem, pii_columns: Collection[str]) -> IngestError:
    if pii_columns and problem.kind == "other":  # DuckDB's own words, which may quote a value
        problem = replace(problem, what=pii.WITHHELD_MESSAGE)
    at = problem.at(file.path, show_text=not pii_columns)
    return IngestError(f"task {task}: {at}; nothing was loaded", hint=problem.hint(task=True))


def _names(files: Sequence[SourceFile]) -> str:
    return ", ".join(f.path for f in files[:3]) + (" ..." if len(files) > 3 else "")


def _without_class(text: str) -> str:
    """DuckDB's message without its error class (`IO Error: `, `Invalid Input Error: `)."""
    return re.sub(r"^(?:[A-Z][A-Za-z]* )+Error: ", "", text)
