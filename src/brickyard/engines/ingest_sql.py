"""The SQL of an ingest batch, built from the planned target columns.

Three layers over the raw scan (see `brickyard.engines.duckdb.sources`):

1. `typed_sql`: every source column's raw text (`__by_raw_<i>`), every target column cast
   to its type (`TRY_CAST`, or `try_strptime` with the column's `format`), the file as
   `_source_file`, and `__by_cast`: why the row does not parse (NULL when it does).
   Casts to exact numeric types are exact: a value that an integer or DECIMAL(p,s) column
   cannot hold as it is (`1.5` into BIGINT, `1.234` into DECIMAL(5,2)) does not parse,
   where a plain cast would round it (`ExactNumber`).
2. `quality.checked_query`: one flag per expectation and `__by_reason`.
3. `final_sql`: the target columns (PII columns as HMAC tokens), `_source_file`, the
   reason and flags, and the raw text of bad rows only (PII hashed there too).

Raw text and typed values both stay in the plan, which also keeps DuckDB from pushing a
TRY_CAST into the CSV reader (where a bad value would fail the scan).

With `spark=True` the same layers are built for the Spark engine (still DuckDB-dialect text,
translated by `brickyard.engines.spark_sql`), where DuckDB-only constructs cannot translate
or Spark's casts differ: the file is plain text (no ENUM), casts are wrapped to accept and
reject the same strings as DuckDB's (`spark_cast`), `format`s become Java patterns
(`engines.spark_sql.java_format`), PII uses Spark's `sha2`, and the raw text of bad rows stays one column per
source (no VARCHAR[] list).

Reasons never carry a PII column's value: they name the column and the problem, with
`<pii value withheld>` where the value would be (`brickyard.core.pii.WITHHELD`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from brickyard.core import pii
from brickyard.core.quality import FLAG, REASON, SOURCE_FILE_COLUMN, Rule, checked_query, literal, quote
from brickyard.core.sources import FILE_COLUMN, Format, raw_text
from brickyard.engines.spark_sql import java_format

RAW = "__by_raw_{}"
RAW_LIST = "__by_raw"
CAST_REASON = "__by_cast"
INTEGRAL = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "INT", "INT2", "INT4", "INT8", "LONG", "SHORT"})
FLOATING = frozenset({"DOUBLE", "FLOAT", "REAL", "FLOAT4", "FLOAT8"})
TEMPORAL = ("TIMESTAMP", "DATE", "DATETIME")
# A number in decimal notation: "3.5", ".5", "1e3", " 7 ".
DECIMAL_TEXT = "^ *[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)? *$"
# The significant digits after the point of a number written without exponent ("1.230" -> "23").
FRACTION = "^ *[+-]?[0-9]*[.]([0-9]*[1-9])0* *$"
# How many decimal digits each integer type holds before the point.
INTEGER_DIGITS = {
    "TINYINT": 3, "INT1": 3, "UTINYINT": 3,
    "SMALLINT": 5, "INT2": 5, "SHORT": 5, "USMALLINT": 5,
    "INTEGER": 10, "INT": 10, "INT4": 10, "UINTEGER": 10,
    "BIGINT": 19, "INT8": 19, "LONG": 19, "UBIGINT": 20,
    "HUGEINT": 38, "UHUGEINT": 38,
}
DECIMAL_TYPE = re.compile(r"^\s*(?:DECIMAL|NUMERIC)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$", re.IGNORECASE)
# Java's number suffixes, which Spark's cast to DOUBLE accepts and DuckDB's does not ("1d").
SUFFIXED = "^ *[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?[dDfF] *$"
# DuckDB casts text to DATE/TIMESTAMP only from a full ISO date; Spark also from "2017", "2017-01".
FULL_DATE = "^ *-?[0-9]{4,}-[0-9]{1,2}-[0-9]{1,2}"


@dataclass(frozen=True)
class PlannedColumn:
    """A target column: where it comes from and how it is typed."""

    name: str
    source: str
    type: str
    format: str | None = None
    nullable: bool = True
    pii: bool = False
    present: bool = True
    fallback_format: str | None = None  # a sniffed format tried after a plain cast


@dataclass(frozen=True)
class ExactNumber:
    """An exact numeric type (integer or DECIMAL): the digits it holds before and after
    the point."""

    type: str
    integer_digits: int
    scale: int

    @classmethod
    def of(cls, kind: str) -> ExactNumber | None:
        """The shape of an integer or DECIMAL type (None for any other type)."""
        base = kind.strip().upper()
        if base in INTEGER_DIGITS:
            return cls(base, INTEGER_DIGITS[base], 0)
        found = DECIMAL_TYPE.match(kind)
        if found is None:
            return None
        precision = int(found.group(1) or 18)  # DuckDB's DECIMAL is DECIMAL(18,3)
        scale = int(found.group(2) or (3 if found.group(1) is None else 0))
        return cls(f"DECIMAL({precision},{scale})", precision - scale, scale)

    @property
    def is_integer(self) -> bool:
        return not self.type.startswith("DECIMAL")

    def inexact(self, text: str) -> str:
        """SQL, TRUE when the number written in `text` cannot be held by this type without
        changing it: more significant digits after the point than the scale (counted in
        the text), or a number read with more scale than the type has that differs from
        its cast (which rounds on DuckDB and truncates on Spark: either is a change)."""
        wide = f"TRY_CAST({text} AS DECIMAL(38, {max(38 - self.integer_digits, self.scale)}))"
        fraction = f"length(regexp_extract({text}, {literal(FRACTION)}, 1))"
        return (
            f"coalesce(regexp_matches({text}, {literal(DECIMAL_TEXT)}) AND "
            f"({fraction} > {self.scale} OR {wide} <> TRY_CAST({wide} AS {self.type})), false)"
        )

    def problem(self) -> str:
        """How a value this type cannot hold exactly is described in a reason."""
        if self.is_integer:
            return f" is not an integer ({self.type})"
        return f" has more decimal places than {self.type} holds"


def typed_expression(fmt: Format, column: PlannedColumn, *, spark: bool = False) -> str:
    """SQL casting a source column to its target type: NULL when the batch lacks it, when
    the value does not parse, or when an exact numeric type cannot hold it as it is."""
    source = quote(column.source)
    kind = column.type
    if not column.present:
        return f"CAST(NULL AS {kind})"
    text = raw_text(fmt, column.source)
    if column.format:
        return f"TRY_CAST({strptime(text, column.format, spark=spark)} AS {kind})"
    if kind == "VARCHAR":
        return text
    cast = spark_cast(source, kind) if spark and fmt != "parquet" else f"TRY_CAST({source} AS {kind})"
    exact = ExactNumber.of(kind)
    if exact is not None:
        # Only text with a point or an exponent can be inexact: the rest skips the check.
        plain = f"{text} NOT LIKE '%.%' AND {text} NOT ILIKE '%e%'"
        return f"CASE WHEN {plain} THEN {cast} WHEN {exact.inexact(text)} THEN NULL ELSE {cast} END"
    if column.fallback_format:
        return f"coalesce({cast}, TRY_CAST({strptime(text, column.fallback_format, spark=spark)} AS {kind}))"
    return cast


def cast_problem(column: PlannedColumn, raw: str, shown: str) -> str:
    """SQL text saying why the raw text `raw` of `column` did not become its type:
    not exact, out of range, or not a value of the type at all. `shown` is the SQL of
    the value as a reason shows it."""
    described = column.type + (f" with format {column.format}" if column.format else "")
    cannot = f"{literal(column.name + ': cannot parse ')} || {shown} || {literal(' as ' + described)}"
    exact = None if column.format else ExactNumber.of(column.type)
    if exact is None:
        return cannot
    name = literal(column.name + ": ")
    return (
        f"CASE WHEN {exact.inexact(raw)} THEN {name} || {shown} || {literal(exact.problem())} "
        f"WHEN regexp_matches({raw}, {literal(DECIMAL_TEXT)}) "
        f"THEN {name} || {shown} || {literal(' is out of range for ' + exact.type)} "
        f"ELSE {cannot} END"
    )


def strptime(text: str, format: str, *, spark: bool = False) -> str:
    """SQL parsing text with a strptime format (NULL when it does not match)."""
    if spark:
        return f"try_to_timestamp({text}, {literal(java_format(format))})"
    return f"try_strptime({text}, {literal(format)})"


def spark_cast(source: str, kind: str) -> str:
    """TRY_CAST of text for Spark, accepting and rejecting the strings DuckDB's TRY_CAST does:
    integers also from decimal text of a whole number ("2.0", "1e3"; `typed_expression`
    refuses any other before this cast), no Java number suffixes for floating types, dates
    and timestamps only from a full `yyyy-mm-dd` date."""
    base = kind.split("(")[0].strip().upper()
    cast = f"TRY_CAST({source} AS {kind})"
    if base in INTEGRAL:
        return (
            f"coalesce({cast}, CASE WHEN regexp_matches({source}, {literal(DECIMAL_TEXT)}) "
            f"THEN TRY_CAST(round(TRY_CAST({source} AS DECIMAL(38, 10))) AS {kind}) END)"
        )
    if base in FLOATING:
        return f"CASE WHEN NOT regexp_matches({source}, {literal(SUFFIXED)}) THEN {cast} END"
    if base.startswith(TEMPORAL):
        return f"CASE WHEN regexp_matches({source}, {literal(FULL_DATE)}) THEN {cast} END"
    return cast


def typed_sql(
    fmt: Format,
    scan: str,
    planned: list[PlannedColumn],
    sources: list[str],
    prefix: int,
    files: list[str],
    *,
    spark: bool = False,
    keep: Sequence[str] = (),
) -> str:
    """Raw text of every source column, the typed target columns, the file, and why a
    row does not parse (`__by_cast`).

    On DuckDB the file is an ENUM of the batch's lake-relative paths: it reaches Arrow as a
    dictionary array (one small integer a row, not a string) and Delta stores it as text.
    On Spark (`spark=True`) the scan's `__file` already is the lake-relative path. `keep`
    names scan columns passed through as they are (e.g. a row number).
    """
    raw_index = {name: index for index, name in enumerate(sources)}
    items = [f"{raw_text(fmt, name)} AS {RAW.format(i)}" for i, name in enumerate(sources)]
    items += [f"{typed_expression(fmt, c, spark=spark)} AS {quote(c.name)}" for c in planned]
    if spark:
        items.append(f"{quote(FILE_COLUMN)} AS {quote(SOURCE_FILE_COLUMN)}")
    else:
        paths = ", ".join(literal(path) for path in dict.fromkeys(files))
        items.append(
            f"CAST(substr({quote(FILE_COLUMN)}, {prefix + 1}) AS ENUM({paths})) AS {quote(SOURCE_FILE_COLUMN)}"
        )
    items += [quote(name) for name in keep]
    reasons, conditions = [], []
    for column in planned:
        typed = quote(column.name)
        raw = RAW.format(raw_index[column.source]) if column.source in raw_index else None
        if column.pii:
            shown = literal(pii.WITHHELD)
        else:
            shown = f"'''' || left({raw}, 100) || ''''" if raw else "''"
        cases = []
        if raw and column.type != "VARCHAR":
            condition = f"({raw} IS NOT NULL AND {typed} IS NULL)"
            conditions.append(condition)
            cases.append(f"WHEN {condition} THEN {cast_problem(column, raw, shown)}")
        if not column.nullable:
            conditions.append(f"({typed} IS NULL)")
            cases.append(
                f"WHEN {typed} IS NULL THEN {literal(column.name + ': missing value (nullable: false)')}"
            )
        if cases:
            reasons.append(f"CASE {' '.join(cases)} END")
    # The text is built only for the few rows that need it (CASE evaluates lazily).
    cast = (
        f"CASE WHEN {' OR '.join(conditions)} THEN NULLIF(concat_ws('; ', {', '.join(reasons)}), '') END"
        if reasons
        else "CAST(NULL AS VARCHAR)"
    )
    inner = f"SELECT {', '.join(items)} FROM {scan}"
    return f"SELECT *, {cast} AS {CAST_REASON} FROM ({inner}) AS __by_typed"

def final_sql(
    typed: str,
    planned: list[PlannedColumn],
    sources: list[str],
    rules: list[Rule],
    key: bytes | None,
    *,
    spark: bool = False,
    keep: Sequence[str] = (),
) -> str:
    """Good columns (PII hashed), the file, `__by_reason`, rule flags and, for bad rows
    only, the raw text of every source column (PII hashed too) packed in one list,
    `__by_raw` (NULL on good rows: one column to carry instead of one per source).

    With `spark=True`, the raw text stays one column per source (`__by_raw_<i>`, NULL on
    good rows); `keep` names typed columns passed through."""
    checked = checked_query(typed, rules, gate=f"{CAST_REASON} IS NULL", pre_reason=CAST_REASON)
    hmac = pii.hmac_spark_sql if spark else pii.hmac_sql
    pii_sources = {c.source for c in planned if c.pii}
    items = []
    for column in planned:
        name = quote(column.name)
        value = hmac(name, key) if column.pii and key else name
        items.append(f"{value} AS {name}")
    items.append(quote(SOURCE_FILE_COLUMN))
    items.append(REASON)
    items += [FLAG.format(i) for i in range(len(rules))]
    items += [quote(name) for name in keep]
    raws = []
    for index, source in enumerate(sources):
        raw = RAW.format(index)
        raws.append(hmac(raw, key) if source in pii_sources and key else raw)
    if spark:
        items += [
            f"CASE WHEN {REASON} IS NOT NULL THEN {raw} END AS {RAW.format(index)}"
            for index, raw in enumerate(raws)
        ]
        return f"SELECT {', '.join(items)} FROM ({checked}) AS __by_checked"
    packed = f"CAST([{', '.join(raws)}] AS VARCHAR[])" if raws else "CAST([] AS VARCHAR[])"
    items.append(f"CASE WHEN {REASON} IS NOT NULL THEN {packed} END AS {RAW_LIST}")
    return f"SELECT {', '.join(items)} FROM ({checked}) AS __by_checked"


def duplicates_sql(typed: str, rule: Rule) -> str:
    """SQL counting the parsed rows whose `unique` key occurs more than once."""
    keys = ", ".join(quote(k) for k in rule.columns)
    return (
        f"SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM ({typed}) AS t "
        f"WHERE {CAST_REASON} IS NULL GROUP BY {keys} HAVING count(*) > 1)"
    )
