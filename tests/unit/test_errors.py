"""`is_transient`, the one place that decides whether a failure is worth another attempt,
against errors that real engines, drivers and the OS raise."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import duckdb
import pytest

from brickyard.errors import (
    BrickyardError,
    CommitConflictError,
    ConfigError,
    DataFileNotFoundError,
    SqlError,
    TableNotFoundError,
    is_transient,
)
from brickyard.ml.errors import EstimatorError


def duckdb_error(query: str) -> duckdb.Error:
    with pytest.raises(duckdb.Error) as caught:
        duckdb.sql(query).fetchall()
    return caught.value


@pytest.mark.parametrize("query", [
    "SELEC 1",  # syntax
    "SELECT nope FROM range(3)",  # missing column
    "SELECT * FROM no_such_table",  # missing table
    "SELECT 'x'::INTEGER",  # a value that does not convert
])
def test_duckdb_mistakes_are_terminal_raw_and_wrapped(query: str) -> None:
    exc = duckdb_error(query)
    assert not is_transient(exc)
    try:
        raise SqlError(f"task t: {exc}") from exc
    except SqlError as wrapped:
        assert not is_transient(wrapped)


def test_a_locked_sqlite_database_is_transient(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, timeout=0)
    with pytest.raises(sqlite3.OperationalError, match="locked") as caught:
        other.execute("SELECT * FROM t").fetchall()
    holder.execute("ROLLBACK")
    assert is_transient(caught.value)
    with pytest.raises(sqlite3.OperationalError) as missing:
        other.execute("SELECT * FROM no_such_table")
    assert not is_transient(missing.value)


def test_io_and_connection_errors_are_transient_but_missing_paths_are_not(tmp_path: Path) -> None:
    assert is_transient(OSError(errno.EIO, "Input/output error"))
    assert is_transient(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"))
    assert is_transient(TimeoutError())
    with pytest.raises(FileNotFoundError) as caught:
        (tmp_path / "missing.csv").read_text()
    assert not is_transient(caught.value)
    # DuckDB's errors that arrive through an Arrow reader as OSError keep DuckDB's kind
    assert not is_transient(OSError('Conversion Error: Could not convert string "x" to INT32'))
    assert is_transient(OSError("IO Error: Could not set lock on file \"lake.duckdb\""))


def test_brickyard_errors_say_so_themselves_or_follow_their_cause() -> None:
    assert is_transient(CommitConflictError("another writer committed first"))
    assert not is_transient(BrickyardError("a plain mistake"))
    assert is_transient(BrickyardError("flaky", transient=True))
    for terminal in (ConfigError("bad"), TableNotFoundError("silver.x", []), DataFileNotFoundError("none"),
                     EstimatorError("cannot import")):
        assert not is_transient(terminal)
    try:
        raise BrickyardError("reading the file failed") from OSError(errno.EIO, "Input/output error")
    except BrickyardError as wrapped:
        assert is_transient(wrapped)
    try:  # an error class that is terminal stays terminal, whatever it was raised from
        raise DataFileNotFoundError("no file matches raw/x*.csv") from OSError(errno.EIO, "I/O")
    except DataFileNotFoundError as wrapped:
        assert not is_transient(wrapped)
