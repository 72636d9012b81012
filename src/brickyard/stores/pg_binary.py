"""Arrow record batches in PostgreSQL's binary COPY format, built with Arrow kernels.

The server parses binary COPY about four times faster than CSV (no number or timestamp
parsing), so this is the load path whenever every target column has one of the types
below; otherwise `stores.postgres` falls back to CSV.

Each column becomes a binary array holding, per row, its field as COPY wants it (a 4-byte
big-endian length and the value's bytes, or length -1 for NULL); the columns are then
joined row by row with `binary_join_element_wise`, whose result buffer is the rows
back to back, ready to send without another copy.

>>> import pyarrow as pa
>>> encode = encoder(["int8", "text"], pa.schema([("id", pa.int64()), ("name", pa.string())]))
>>> bytes(encode(pa.record_batch({"id": [1], "name": [None]})))
b'\\x00\\x02\\x00\\x00\\x00\\x08\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x01\\xff\\xff\\xff\\xff'
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
NULL_FIELD = pa.scalar(struct.pack(">i", -1), pa.binary())

_US_2000 = 946_684_800_000_000  # PostgreSQL's epoch, 2000-01-01, in Unix microseconds
_DAYS_2000 = 10_957

# PostgreSQL type name -> (numpy big-endian dtype of the value, Arrow type to cast to)
_FIXED: dict[str, tuple[str, pa.DataType]] = {
    "int8": (">i8", pa.int64()),
    "int4": (">i4", pa.int32()),
    "int2": (">i2", pa.int16()),
    "float8": (">f8", pa.float64()),
    "float4": (">f4", pa.float32()),
    "bool": ("u1", pa.uint8()),
    "timestamptz": (">i8", pa.int64()),
    "timestamp": (">i8", pa.int64()),
    "date": (">i4", pa.int32()),
}
_VARIABLE = {"text", "varchar", "bpchar", "name", "bytea"}

Encoder = Callable[[pa.RecordBatch], "pa.Buffer"]


def encoder(pg_types: Sequence[str], schema: pa.Schema) -> Encoder | None:
    """A function that encodes batches of `schema` as binary COPY rows for target columns
    of `pg_types` (the `pg_type.typname` of each column, in order), or None when some
    column needs a type this module does not encode (use CSV then)."""
    if len(pg_types) != len(schema):
        return None
    for pg_type, field in zip(pg_types, schema, strict=True):
        if not _compatible(pg_type, field.type):
            return None
    header = pa.scalar(struct.pack(">h", len(schema)), pa.binary())

    def encode(batch: pa.RecordBatch) -> pa.Buffer:
        fields = [_field(column, pg_type) for column, pg_type in zip(batch.columns, pg_types, strict=True)]
        rows = pc.binary_join_element_wise(header, *fields, b"")
        offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32, count=len(rows) + 1, offset=rows.offset * 4)
        return rows.buffers()[2][int(offsets[0]) : int(offsets[-1])]

    return encode


def _compatible(pg_type: str, arrow_type: pa.DataType) -> bool:
    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    if pg_type in ("int8", "int4", "int2"):
        return pa.types.is_integer(t)
    if pg_type in ("float8", "float4"):
        return pa.types.is_floating(t) or pa.types.is_integer(t)
    if pg_type == "bool":
        return pa.types.is_boolean(t)
    if pg_type in ("timestamptz", "timestamp"):
        return pa.types.is_timestamp(t)
    if pg_type == "date":
        return pa.types.is_date(t)
    if pg_type == "bytea":
        return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
    if pg_type in _VARIABLE:
        return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
    return False


def _field(column: pa.Array, pg_type: str) -> pa.Array:
    """Per row: the 4-byte length and the value's bytes, or the NULL marker."""
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pg_type in _FIXED:
        encoded = _fixed(column, pg_type)
    else:
        values = column.cast(pa.binary())
        lengths = pc.binary_length(values).fill_null(0).to_numpy(zero_copy_only=False).astype(">i4")
        prefix = _fixed_width_array(lengths.view(np.uint8).reshape(len(column), 4), 4)
        encoded = pc.binary_join_element_wise(prefix, values.fill_null(b""), b"")
    if column.null_count:
        return pc.if_else(column.is_valid(), encoded, NULL_FIELD)
    return encoded


def _fixed(column: pa.Array, pg_type: str) -> pa.Array:
    dtype, arrow_type = _FIXED[pg_type]
    n = len(column)
    if pg_type in ("timestamptz", "timestamp"):
        micros = column.cast(pa.timestamp("us", column.type.tz), safe=False).cast(pa.int64())
        values = micros.fill_null(0).to_numpy(zero_copy_only=False) - _US_2000
    elif pg_type == "date":
        days = column.cast(pa.date32()).cast(pa.int32())
        values = days.fill_null(0).to_numpy(zero_copy_only=False) - _DAYS_2000
    else:
        values = column.cast(arrow_type).fill_null(0).to_numpy(zero_copy_only=False)
    width = np.dtype(dtype).itemsize
    record = np.empty(n, dtype=np.dtype([("length", ">i4"), ("value", dtype)]))
    record["length"] = width
    record["value"] = values
    return _fixed_width_array(record.view(np.uint8).reshape(n, 4 + width), 4 + width)


def _fixed_width_array(rows: np.ndarray, width: int) -> pa.Array:
    """A binary array whose item i is `rows[i]` (all of `width` bytes), without copying."""
    n = rows.shape[0]
    offsets = pa.py_buffer(np.arange(0, (n + 1) * width, width, dtype=np.int32))
    data = pa.py_buffer(np.ascontiguousarray(rows))
    return pa.Array.from_buffers(pa.binary(), n, [None, offsets, data])
