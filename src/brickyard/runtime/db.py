"""The workspace state database (runs, attempts, tokens) through SQLAlchemy.

SQLite in the workspace by default; any SQLAlchemy URL (e.g. PostgreSQL) can replace it.
Each module that keeps state declares its tables on `METADATA`; `connect` creates them,
and adds to an existing table the nullable columns a newer brickyard declares (a state
database made by an older version keeps working; its old rows read NULL there).

Processes that start at the same moment on a fresh workspace all create the schema: each
creates the missing tables (and columns) in one transaction under a database-wide lock
(SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a transaction-scoped advisory lock), so the second
finds the tables the first made. Other databases retry when a table appeared meanwhile.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_after_delay, wait_random_exponential

from brickyard.errors import BrickyardError

METADATA = sa.MetaData()
BUSY_TIMEOUT_SECONDS = 30
SCHEMA_LOCK_KEY = 0x62726B79  # "brky": the PostgreSQL advisory lock taken while creating tables
_ENGINES: dict[str, sa.Engine] = {}
_SCHEMA_READY: dict[str, frozenset[str]] = {}
_LOCK = threading.Lock()


def connect(url: str) -> sa.Engine:
    """An engine for the state database at `url`, with every declared table created.

    SQLite runs in WAL mode with a busy timeout, so a server, a scheduler and CLI runs can
    share the file. The tables are created once per process (again when a module declares
    more), safely when other processes do the same at the same moment.
    """
    with _LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _create(url)
            _ENGINES[url] = engine
        declared = frozenset(METADATA.tables)
        if not declared <= _SCHEMA_READY.get(url, frozenset()):
            create_schema(engine)
            _SCHEMA_READY[url] = declared
        return engine


def create_schema(engine: sa.Engine) -> None:
    """Create the declared tables that are missing and add the declared columns existing
    tables lack, in one locked transaction; a table another process created meanwhile
    (where no lock is known) makes it try again.

    Raises:
        BrickyardError: a missing column that cannot be added in place (not nullable).
    """
    if _schema_gaps(engine):
        for attempt in Retrying(
            stop=stop_after_attempt(5), wait=wait_random_exponential(0.05, max=1), retry=retry_if_exception(_raced),
            reraise=True,
        ):
            with attempt, engine.begin() as conn:
                _lock_schema(conn)
                METADATA.create_all(conn)
                add_missing_columns(conn)
                for index in _missing_indexes(conn):
                    index.create(conn)


def add_missing_columns(conn: sa.Connection) -> list[str]:
    """Add the declared columns that existing tables lack (`table.column` of each added).

    Only nullable columns without a server default can be added this way: old rows read
    NULL there.

    Raises:
        BrickyardError: a missing column that is not nullable (the database needs a
            manual migration).
    """
    added: list[str] = []
    preparer = conn.dialect.identifier_preparer
    for table, column in _missing_columns(conn):
        if not column.nullable or column.server_default is not None:
            raise BrickyardError(
                f"the state database lacks column {table.name}.{column.name}, which cannot be added in place",
                hint="back up the state database and let brickyard create a new one",
            )
        kind = column.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(
            f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {preparer.format_column(column)} {kind}"
        ))
        added.append(f"{table.name}.{column.name}")
    return added


def _schema_gaps(engine: sa.Engine) -> bool:
    """Whether a declared table, or a declared column or index of an existing table, is missing."""
    with engine.connect() as conn:
        return (
            bool(set(METADATA.tables) - set(sa.inspect(conn).get_table_names()))
            or bool(_missing_columns(conn)) or bool(_missing_indexes(conn))
        )


def _missing_indexes(conn: sa.Connection) -> list[sa.Index]:
    """Declared indexes of existing tables that the database lacks (added after a release)."""
    inspector = sa.inspect(conn)
    present = set(inspector.get_table_names())
    missing = []
    for table in METADATA.sorted_tables:
        if table.name not in present or not table.indexes:
            continue
        names = {index["name"] for index in inspector.get_indexes(table.name)}
        missing += [index for index in table.indexes if index.name not in names]
    return missing


def _missing_columns(conn: sa.Connection) -> list[tuple[sa.Table, sa.Column[object]]]:
    inspector = sa.inspect(conn)
    present = set(inspector.get_table_names())
    missing = []
    for table in METADATA.sorted_tables:
        if table.name not in present:
            continue
        columns = {str(column["name"]) for column in inspector.get_columns(table.name)}
        missing += [(table, column) for column in table.columns if column.name not in columns]
    return missing


def _lock_schema(conn: sa.Connection) -> None:
    """Hold a lock that makes concurrent schema creation wait, until the transaction ends."""
    if conn.dialect.name == "sqlite":
        # pysqlite leaves DDL outside a transaction; this makes the whole creation one
        # transaction holding SQLite's write lock (waiting up to the busy timeout for it).
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})


def _raced(exc: BaseException) -> bool:
    """A schema error that another process creating the same tables can cause."""
    text = str(exc).lower()
    return isinstance(exc, sa.exc.DBAPIError) and any(
        word in text for word in ("already exists", "duplicate", "database is locked")
    )


def _create(url: str) -> sa.Engine:
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False}
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
            _use_wal(cursor)
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the database to WAL mode. SQLite answers `database is locked` at once, without
    waiting out the busy timeout, while another connection holds a lock on a database
    that is not in WAL mode yet (a fresh file that a second process is setting up), so
    this waits and tries again."""
    for attempt in Retrying(
        stop=stop_after_delay(BUSY_TIMEOUT_SECONDS), wait=wait_random_exponential(0.01, max=0.5),
        retry=retry_if_exception(lambda exc: isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)),
        reraise=True,
    ):
        with attempt:
            cursor.execute("PRAGMA journal_mode=WAL")
