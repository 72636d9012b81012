"""The SQLite online store (the default): one file, WAL mode, a connection per thread.

Rows live in `online_rows` (primary key table + entity, WITHOUT ROWID: a lookup is one
B-tree search), table states in `online_tables`. Writes are `executemany` upserts in one
transaction per batch; with the guard, the upsert's WHERE keeps a newer stored row.
"""

from __future__ import annotations

import sqlite3
import threading
from itertools import repeat
from pathlib import Path

from brickyard.features.online import OnlineRow, OnlineStore, OnlineStoreError, RowBatch, TableState

SCHEMA = """
CREATE TABLE IF NOT EXISTS online_rows (
    tbl TEXT NOT NULL,
    entity TEXT NOT NULL,
    event_us INTEGER NOT NULL,
    created_us INTEGER,
    write_us INTEGER NOT NULL,
    vals BLOB NOT NULL,
    PRIMARY KEY (tbl, entity)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS online_tables (tbl TEXT PRIMARY KEY, state TEXT NOT NULL);
"""
_UPSERT = (
    "INSERT INTO online_rows (tbl, entity, event_us, created_us, write_us, vals) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (tbl, entity) DO UPDATE SET event_us = excluded.event_us, created_us = excluded.created_us, "
    "write_us = excluded.write_us, vals = excluded.vals"
)
_GUARD = (
    " WHERE excluded.event_us > online_rows.event_us OR (excluded.event_us = online_rows.event_us "
    "AND coalesce(excluded.created_us, 0) >= coalesce(online_rows.created_us, 0))"
)
_READ = "SELECT event_us, created_us, write_us, vals FROM online_rows WHERE tbl = ? AND entity = ?"


MMAP_BYTES = 1 << 30


class SqliteOnlineStore(OnlineStore):
    """Feature rows in a SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, cached_statements=64)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                # Lookups read pages through a memory map, not a read() call per page: a
                # keys-only request's tail is its slowest page read.
                connection.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
                connection.executescript(SCHEMA)
            except sqlite3.Error as exc:
                raise OnlineStoreError(
                    f"cannot open the online store {self.path}: {exc}",
                    hint="check the folder exists and is writable, or set online_store in brickyard.yaml",
                ) from exc
            self._local.connection = connection
        return connection

    def write(self, table: str, rows: RowBatch, *, guard: bool, ttl_us: int | None = None) -> int:
        connection = self._connection()
        before = connection.total_changes
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany(
                _UPSERT + (_GUARD if guard else ""),
                zip(repeat(table), rows.entities, rows.event_us, rows.created_us, repeat(rows.write_us), rows.values_json),
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return connection.total_changes - before

    def read(self, table: str, entity: str) -> OnlineRow | None:
        found = self._connection().execute(_READ, (table, entity)).fetchone()
        if found is None:
            return None
        return OnlineRow(entity, found[0], found[1], found[2], found[3])

    def remove_written_before(self, table: str, write_us: int) -> int:
        cursor = self._connection().execute("DELETE FROM online_rows WHERE tbl = ? AND write_us < ?", (table, write_us))
        return cursor.rowcount

    def state(self, table: str) -> TableState | None:
        found = self._connection().execute("SELECT state FROM online_tables WHERE tbl = ?", (table,)).fetchone()
        return TableState.from_json(found[0]) if found else None

    def set_state(self, state: TableState) -> None:
        self._connection().execute(
            "INSERT INTO online_tables (tbl, state) VALUES (?, ?) ON CONFLICT (tbl) DO UPDATE SET state = excluded.state",
            (state.table, state.to_json().decode()),
        )

    def states(self) -> list[TableState]:
        if not self.path.exists():
            return []
        rows = self._connection().execute("SELECT state FROM online_tables ORDER BY tbl").fetchall()
        return [TableState.from_json(row[0]) for row in rows]

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
