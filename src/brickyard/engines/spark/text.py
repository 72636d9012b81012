"""Values as text on Spark, written the way the DuckDB engine's quarantine writes them
(Arrow's cast to string, `quality.as_text`), so both engines quarantine the same text.

Arrow and Spark agree on integers, decimals, dates, booleans and strings; they differ on
floating-point numbers (Arrow `10`, `1e+10`, `1e-7`, `nan`, `inf`; Spark `10.0`, `1.0E10`,
`1.0E-7`, `NaN`, `Infinity`) and timestamps (Arrow always writes six fraction digits).
`arrow_text` rewrites Spark's forms into Arrow's with column expressions (no Python UDF).
Nested values become JSON (compact, where Python's `json.dumps` puts a space after `,`/`:`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column
    from pyspark.sql.types import DataType

# Arrow writes a float in plain notation when its decimal exponent is in this range.
PLAIN_EXPONENTS = (-6, 9)


def arrow_text(name: str, data_type: DataType) -> Column:
    """Column `name` (of `data_type`) as the string Arrow's cast would give."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    column = F.col(quote_name(name))
    if isinstance(data_type, T.DoubleType | T.FloatType):
        return _float_text(name)
    if isinstance(data_type, T.TimestampNTZType):
        return F.date_format(column, "yyyy-MM-dd HH:mm:ss.SSSSSS")
    if isinstance(data_type, T.TimestampType):  # zoned (the session's zone is UTC)
        return F.concat(F.date_format(column, "yyyy-MM-dd HH:mm:ss.SSSSSS"), F.lit("Z"))
    if isinstance(data_type, T.StructType | T.ArrayType | T.MapType):
        return F.to_json(column)
    return column.cast("string")


# Java's shortest digits of a float (`CAST(x AS STRING)`: "-12.5", "0.001", "1.2345678E7")
# laid out as Arrow (double-conversion) does. Lambdas bind the intermediate values, so the
# expression stays small (inlined, it grows past what Spark's code generator compiles).
FLOAT_TEXT = """element_at(transform(array(CAST({column} AS STRING)), j ->
  CASE WHEN j IS NULL THEN NULL
       WHEN j = 'NaN' THEN 'nan' WHEN j = 'Infinity' THEN 'inf' WHEN j = '-Infinity' THEN '-inf'
       ELSE element_at(transform(array(named_struct(
              's', IF(j LIKE '-%', '-', ''),
              'a', regexp_replace(regexp_extract(j, '^-?([0-9.]+)', 1), '[.]', ''),
              'w', length(split(regexp_extract(j, '^-?([0-9.]+)', 1), '[.]')[0]),
              'p', coalesce(try_cast(regexp_extract(j, 'E(-?[0-9]+)$', 1) AS INT), 0))), v ->
            element_at(transform(array(named_struct(
                's', v.s,
                'd', regexp_replace(regexp_replace(v.a, '^0+', ''), '0+$', ''),
                'e', v.p + v.w - 1 - (length(v.a) - length(regexp_replace(v.a, '^0+', ''))))), u ->
              concat(u.s, CASE
                WHEN u.d = '' THEN '0'
                WHEN u.e BETWEEN 0 AND {high} THEN
                  IF(length(u.d) <= u.e + 1, concat(u.d, repeat('0', u.e + 1 - length(u.d))),
                     concat(substr(u.d, 1, u.e + 1), '.', substr(u.d, u.e + 2)))
                WHEN u.e BETWEEN {low} AND -1 THEN concat('0.', repeat('0', -u.e - 1), u.d)
                ELSE concat(substr(u.d, 1, 1), IF(length(u.d) > 1, concat('.', substr(u.d, 2)), ''),
                            'e', IF(u.e >= 0, '+', '-'), CAST(abs(u.e) AS STRING))
              END)), 1)), 1)
  END), 1)"""


def _float_text(name: str) -> Column:
    from pyspark.sql import functions as F

    low, high = PLAIN_EXPONENTS
    return F.expr(FLOAT_TEXT.format(column=quote_name(name), low=low, high=high))


def quote_name(name: str) -> str:
    """A column name for Spark SQL text, back-quoted."""
    return "`" + name.replace("`", "``") + "`"
