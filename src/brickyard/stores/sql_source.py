"""Reading a SQL table or query as a stream of Arrow record batches.

Rows are fetched `batch_size` at a time through a server-side cursor where the driver has
one (PostgreSQL), so a table larger than memory can be read. Column types are inferred by
Arrow per batch from the Python values the driver returns.

>>> import tempfile, sqlalchemy as sa
>>> db = Database("default", f"sqlite:///{tempfile.mkdtemp()}/w.db")
>>> with db.engine().begin() as conn:
...     _ = conn.execute(sa.text("CREATE TABLE t (id INTEGER, name TEXT)"))
...     _ = conn.execute(sa.text("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, NULL)"))
>>> [b.num_rows for b in read_sql_batches(db, table="t", batch_size=2)]
[2, 1]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from brickyard.errors import BrickyardError
from brickyard.stores.database import Database


def read_sql_batches(
    database: Database,
    *,
    table: str | None = None,
    query: str | None = None,
    columns: Sequence[str] | None = None,
    batch_size: int = 100_000,
) -> Iterator[pa.RecordBatch]:
    """Stream `table` (only `columns` when given; `schema.table` allowed) or the rows of
    `query` as Arrow record batches of at most `batch_size` rows.

    Raises:
        BrickyardError: the table does not exist or the query fails (database masked).
    """
    if (table is None) == (query is None):
        raise BrickyardError("read a SQL source by `table` or by `query`, not both or neither")
    if table is not None:
        db_schema, _, name = table.rpartition(".")
        source = sa.table(name, schema=db_schema or None)
        picked: list[sa.ColumnElement[Any]] = [sa.column(c) for c in columns] if columns else [sa.literal_column("*")]
        statement: sa.Executable = sa.select(*picked).select_from(source)
        what = f"table {table}"
    else:
        statement = sa.text(query or "")
        what = "query"
    engine = database.engine()
    try:
        with engine.connect() as conn:
            try:
                result = conn.execution_options(yield_per=batch_size).execute(statement)
            except sa.exc.DBAPIError as exc:
                first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                raise BrickyardError(
                    f"cannot read {what} from database {database.name!r} ({database.display_url}): {database.redact(first)}",
                    hint="check the table name or the query (run it with the database's own client)",
                ) from exc
            names = list(result.keys())
            for rows in result.partitions(batch_size):
                if rows:
                    values = list(zip(*rows, strict=True))
                    yield pa.RecordBatch.from_arrays([pa.array(list(v)) for v in values], names=names)
    finally:
        engine.dispose()
