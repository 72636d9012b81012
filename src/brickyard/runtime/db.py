"""The workspace state database (runs, attempts, tokens) through SQLAlchemy.

SQLite in the workspace by default; any SQLAlchemy URL (e.g. PostgreSQL) can replace it.
Each module that keeps state declares its tables on `METADATA`; `connect` creates them.
"""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

METADATA = sa.MetaData()
_ENGINES: dict[str, sa.Engine] = {}
_LOCK = threading.Lock()


def connect(url: str) -> sa.Engine:
    """An engine for the state database at `url`, with every declared table created.

    SQLite runs in WAL mode with a busy timeout, so a server, a scheduler and CLI runs can
    share the file.
    """
    with _LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _create(url)
            _ENGINES[url] = engine
        METADATA.create_all(engine)
        return engine


def _create(url: str) -> sa.Engine:
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)
