"""The SQL of an ingest batch, built from the planned target columns.

Three layers over the raw scan (see `brickyard.tasks.sources`):

1. `typed_sql`: every source column's raw text (`__by_raw_<i>`), every target column cast
   to its type (`TRY_CAST`, or `try_strptime` with the column's `format`), the file as
   `_source_file`, and `__by_cast`: why the row does not parse (NULL when it does).
2. `quality.checked_query`: one flag per expectation and `__by_reason`.
3. `final_sql`: the target columns (PII columns as HMAC tokens), `_source_file`, the
   reason and flags, and the raw text of bad rows only (PII hashed there too).

Raw text and typed values both stay in the plan, which also keeps DuckDB from pushing a
TRY_CAST into the CSV reader (where a bad value would fail the scan).
"""

from __future__ import annotations

from dataclasses import dataclass

from brickyard.tasks import pii
from brickyard.tasks.quality import (
    FLAG,
    REASON,
    SOURCE_FILE_COLUMN,
    Rule,
    checked_query,
    literal,
    quote,
)
from brickyard.tasks.sources import FILE_COLUMN, Format, raw_text

RAW = "__by_raw_{}"
RAW_LIST = "__by_raw"
CAST_REASON = "__by_cast"


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


def typed_expression(fmt: Format, column: PlannedColumn) -> str:
    """SQL casting a source column to its target type (NULL when the batch lacks it)."""
    source = quote(column.source)
    kind = column.type
    if not column.present:
        return f"CAST(NULL AS {kind})"
    if column.format:
        text = raw_text(fmt, column.source)
        return f"TRY_CAST(try_strptime({text}, {literal(column.format)}) AS {kind})"
    if kind == "VARCHAR":
        return raw_text(fmt, column.source)
    if column.fallback_format:
        text = raw_text(fmt, column.source)
        return (
            f"coalesce(TRY_CAST({source} AS {kind}), "
            f"TRY_CAST(try_strptime({text}, {literal(column.fallback_format)}) AS {kind}))"
        )
    return f"TRY_CAST({source} AS {kind})"

def typed_sql(
    fmt: Format,
    scan: str,
    planned: list[PlannedColumn],
    sources: list[str],
    prefix: int,
    files: list[str],
) -> str:
    """Raw text of every source column, the typed target columns, the file, and why a
    row does not parse (`__by_cast`).

    The file is an ENUM of the batch's lake-relative paths: it reaches Arrow as a
    dictionary array (one small integer a row, not a string) and Delta stores it as text.
    """
    raw_index = {name: index for index, name in enumerate(sources)}
    items = [f"{raw_text(fmt, name)} AS {RAW.format(i)}" for i, name in enumerate(sources)]
    items += [f"{typed_expression(fmt, c)} AS {quote(c.name)}" for c in planned]
    paths = ", ".join(literal(path) for path in dict.fromkeys(files))
    items.append(
        f"CAST(substr({quote(FILE_COLUMN)}, {prefix + 1}) AS ENUM({paths})) AS {quote(SOURCE_FILE_COLUMN)}"
    )
    reasons, conditions = [], []
    for column in planned:
        typed = quote(column.name)
        raw = RAW.format(raw_index[column.source]) if column.source in raw_index else None
        shown = f"'''' || left({raw}, 100) || ''''" if raw else "''"
        described = column.type + (f" with format {column.format}" if column.format else "")
        cases = []
        if raw and column.type != "VARCHAR":
            condition = f"({raw} IS NOT NULL AND {typed} IS NULL)"
            conditions.append(condition)
            cases.append(
                f"WHEN {condition} THEN "
                f"{literal(column.name + ': cannot parse ')} || {shown} || {literal(' as ' + described)}"
            )
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
    typed: str, planned: list[PlannedColumn], sources: list[str], rules: list[Rule], key: bytes | None
) -> str:
    """Good columns (PII hashed), the file, `__by_reason`, rule flags and, for bad rows
    only, the raw text of every source column (PII hashed too) packed in one list,
    `__by_raw` (NULL on good rows: one column to carry instead of one per source)."""
    checked = checked_query(typed, rules, gate=f"{CAST_REASON} IS NULL", pre_reason=CAST_REASON)
    pii_sources = {c.source for c in planned if c.pii}
    items = []
    for column in planned:
        name = quote(column.name)
        value = pii.hmac_sql(name, key) if column.pii and key else name
        items.append(f"{value} AS {name}")
    items.append(quote(SOURCE_FILE_COLUMN))
    items.append(REASON)
    items += [FLAG.format(i) for i in range(len(rules))]
    raws = []
    for index, source in enumerate(sources):
        raw = RAW.format(index)
        raws.append(pii.hmac_sql(raw, key) if source in pii_sources and key else raw)
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
