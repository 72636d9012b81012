"""Arrow data to SQL: column types for CREATE TABLE, rows for executemany, CSV for COPY.

>>> import pyarrow as pa
>>> schema = pa.schema([("id", pa.int64()), ("name", pa.string()), ("at", pa.timestamp("us", "UTC"))])
>>> [type(sql_type(f.type)).__name__ for f in schema]
['BigInteger', 'Text', 'DateTime']
>>> csv_bytes(pa.table({"id": [1, None], "name": ["a", ""]}).to_batches()[0])
b'1,"a"\\n,""\\n'
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa

from brickyard.errors import BrickyardError


def sql_type(arrow_type: pa.DataType) -> sa.types.TypeEngine[Any]:
    """The SQLAlchemy column type for an Arrow type.

    Raises:
        BrickyardError: a type with no SQL counterpart (durations, unions).
    """
    t = arrow_type
    if pa.types.is_dictionary(t):
        return sql_type(t.value_type)
    if pa.types.is_boolean(t):
        return sa.Boolean()
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        return sa.SmallInteger()
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return sa.Integer()
    if pa.types.is_integer(t):
        return sa.BigInteger()
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return sa.REAL()
    if pa.types.is_floating(t):
        return sa.Double()
    if pa.types.is_decimal(t):
        return sa.Numeric(t.precision, t.scale)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t) or pa.types.is_null(t):
        return sa.Text()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t) or pa.types.is_binary_view(t):
        return sa.LargeBinary()
    if pa.types.is_date(t):
        return sa.Date()
    if pa.types.is_timestamp(t):
        return sa.DateTime(timezone=t.tz is not None)
    if pa.types.is_time(t):
        return sa.Time()
    if pa.types.is_nested(t):
        return sa.JSON()
    raise BrickyardError(
        f"cannot export a column of Arrow type {t} to SQL",
        hint="cast it in the source table (e.g. a duration to BIGINT seconds)",
    )


def table_definition(
    name: str, schema: pa.Schema, *, keys: Sequence[str] = (), primary_key: bool = False, db_schema: str | None = None
) -> sa.Table:
    """A SQLAlchemy table for an Arrow schema; the key columns become the primary key
    when `primary_key` (upserts need one)."""
    columns = [
        sa.Column(
            field.name,
            sql_type(field.type),
            primary_key=primary_key and field.name in keys,
            nullable=not (primary_key and field.name in keys),
        )
        for field in schema
    ]
    return sa.Table(name, sa.MetaData(), *columns, schema=db_schema)


def plain(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Dictionary columns decoded to their values (the form both load paths take)."""
    if not any(pa.types.is_dictionary(f.type) for f in batch.schema):
        return batch
    arrays = [pc.cast(col, col.type.value_type) if pa.types.is_dictionary(col.type) else col for col in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def rows(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    """Python rows for an executemany (nested values stay lists/dicts for JSON columns)."""
    return plain(batch).to_pylist()


def csv_bytes(batch: pa.RecordBatch) -> bytes:
    """The batch as PostgreSQL `COPY ... (FORMAT csv)` input: no header, NULL as an empty
    unquoted field, strings always quoted (so an empty string stays an empty string),
    binary as bytea hex text, nested values as JSON text, zoned timestamps as UTC wall
    time without a suffix (load them in a session whose TimeZone is UTC)."""
    batch = plain(batch)
    arrays = []
    for column in batch.columns:
        t = column.type
        if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t) or pa.types.is_binary_view(t):
            column = pa.array([None if v is None else "\\x" + v.hex() for v in column.to_pylist()], pa.string())
        elif pa.types.is_nested(t):
            column = pa.array(
                [None if v is None else json.dumps(v, default=str) for v in column.to_pylist()], pa.string()
            )
        elif pa.types.is_null(t):
            column = pa.nulls(len(column), pa.string())
        elif pa.types.is_timestamp(t) and t.tz is not None:
            # UTC wall time without a zone suffix: formatting through the time-zone
            # database is 20x slower. The COPY session runs with TimeZone = UTC.
            column = column.cast(pa.timestamp(t.unit))
        arrays.append(column)
    batch = pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)
    out = io.BytesIO()
    pacsv.write_csv(batch, out, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return out.getvalue()
