"""PostgreSQL bulk load: `COPY ... FROM STDIN` through psycopg 3.

Each Arrow batch is encoded in the binary COPY format (`stores.pg_binary`) when every
target column has a type it encodes, else as CSV by pyarrow's C++ writer, and streamed
into the COPY on the same connection and transaction as the ledger insert (see
`stores.sql_export`): the load is as atomic as a single INSERT and tens of times faster
than `executemany`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from brickyard.stores import arrow_sql, pg_binary
from brickyard.stores.sql_export import Progress, SqlLoader


class PostgresLoader(SqlLoader):
    """SqlLoader with COPY for rows and TRUNCATE for `replace` (both transactional)."""

    bulk_method = "copy"

    def write_rows(
        self, conn: sa.Connection, table: sa.Table, batches: Iterator[pa.RecordBatch], progress: Progress | None
    ) -> int:
        from psycopg import sql

        pending = iter(batches)
        first = next(pending, None)
        if first is None:
            return 0
        names = first.schema.names
        target = sql.Identifier(table.schema, table.name) if table.schema else sql.Identifier(table.name)
        columns = sql.SQL(", ").join(sql.Identifier(name) for name in names)
        raw = conn.connection.driver_connection
        total = 0
        with raw.cursor() as cursor:  # type: ignore[union-attr]
            types = column_types(cursor, target.as_string(raw), names)
            encode = pg_binary.encoder([types[name] for name in names], first.schema)
            if encode is None:
                # csv_bytes writes zoned timestamps as UTC wall time.
                cursor.execute("SET LOCAL TimeZone = 'UTC'")
            fmt = sql.SQL("binary" if encode else "csv")
            statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})").format(target, columns, fmt)
            with cursor.copy(statement) as copy:
                if encode:
                    copy.write(pg_binary.HEADER)
                for batch in itertools.chain([first], pending):
                    copy.write(encode(batch) if encode else arrow_sql.csv_bytes(batch))
                    total += batch.num_rows
                    if progress:
                        progress(total)
                if encode:
                    copy.write(pg_binary.TRAILER)
        return total

    def clear(self, conn: sa.Connection, table: sa.Table) -> None:
        conn.execute(sa.text(f"TRUNCATE TABLE {conn.dialect.identifier_preparer.format_table(table)}"))


def column_types(cursor: Any, qualified_name: str, names: list[str]) -> dict[str, str]:
    """`pg_type.typname` of each column of a table (temporary tables included)."""
    cursor.execute(
        "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
        [qualified_name],
    )
    found = dict(cursor.fetchall())
    return {name: found.get(name, "") for name in names}
