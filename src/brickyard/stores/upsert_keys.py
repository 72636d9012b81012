"""One row per key for `upsert`: the keys that repeat in a staged batch, and the latest
row of each key when the export says which column orders them (`dedupe: {latest_by: COL}`).

Both run as SQL over the batch's temporary staging table, inside the load transaction, so
they scale with the database and nothing is committed when a check fails. Messages show a
few repeated keys with their row counts; values of PII key columns are shown as `<pii>`.

>>> describe(Repeats(keys=2, rows=5, examples=[((1,), 3), (("a@b.c",), 2)]), ["id"], set())
"2 keys repeat (5 rows): id=1 (3 rows), id='a@b.c' (2 rows)"
>>> describe(Repeats(keys=1, rows=2, examples=[(("eu", "a@b.c"), 2)]), ["region", "email"], {"email"})
"1 key repeats (2 rows): region='eu' email=<pii> (2 rows)"
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

SHOWN = 5
VALUE_CHARS = 40
PII = "<pii>"
RANK = "brickyard_rank_"


@dataclass(frozen=True)
class Repeats:
    """Keys with more than one row: how many, their rows in all, and the first few
    (key values, rows) in key order."""

    keys: int
    rows: int
    examples: list[tuple[tuple[Any, ...], int]]


def repeated_keys(conn: sa.Connection, rows: sa.FromClause, keys: Sequence[str]) -> Repeats | None:
    """The keys of `rows` (a table or subquery) that have more than one row; None if none."""
    count = sa.func.count().label("rows_of_key")
    groups = (
        sa.select(*[rows.c[key] for key in keys], count)
        .group_by(*[rows.c[key] for key in keys])
        .having(sa.func.count() > 1)
        .subquery()
    )
    found, total = conn.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(groups.c.rows_of_key), 0)).select_from(groups)
    ).one()
    if not found:
        return None
    shown = sa.select(groups).order_by(*[groups.c[key] for key in keys]).limit(SHOWN)
    examples = [(tuple(row[: len(keys)]), int(row[-1])) for row in conn.execute(shown)]
    return Repeats(int(found), int(total), examples)


def latest_ties(rows: sa.FromClause, keys: Sequence[str], latest_by: str) -> sa.Subquery:
    """The rows that share the greatest `latest_by` value of their key (nulls lowest):
    one per key unless the latest value is a tie."""
    rank = sa.func.rank().over(partition_by=[rows.c[key] for key in keys], order_by=_newest_first(rows, latest_by))
    ranked = sa.select(*[rows.c[key] for key in keys], rank.label(RANK)).subquery()
    return sa.select(ranked).where(ranked.c[RANK] == 1).subquery()


def latest_rows(rows: sa.FromClause, columns: Sequence[str], keys: Sequence[str], latest_by: str) -> sa.Select[Any]:
    """`columns` of the row with the greatest `latest_by` value of each key (nulls lowest)."""
    number = sa.func.row_number().over(
        partition_by=[rows.c[key] for key in keys], order_by=_newest_first(rows, latest_by)
    )
    ranked = sa.select(*[rows.c[column] for column in columns], number.label(RANK)).subquery()
    return sa.select(*[ranked.c[column] for column in columns]).where(ranked.c[RANK] == 1)


def describe(repeats: Repeats, keys: Sequence[str], pii_columns: Collection[str]) -> str:
    """`N keys repeat (M rows): id=1 (3 rows), ... and K more`, PII values elided."""
    phrase = "1 key repeats" if repeats.keys == 1 else f"{repeats.keys} keys repeat"
    return f"{phrase} ({repeats.rows} rows): {examples(repeats, keys, pii_columns)}"


def examples(repeats: Repeats, keys: Sequence[str], pii_columns: Collection[str]) -> str:
    """`id=1 (3 rows), id=3 (2 rows) and K more`, PII values elided."""
    shown = ", ".join(f"{_key_text(values, keys, pii_columns)} ({count} rows)" for values, count in repeats.examples)
    more = repeats.keys - len(repeats.examples)
    return shown + (f" and {more} more" if more > 0 else "")


def _newest_first(rows: sa.FromClause, latest_by: str) -> sa.UnaryExpression[Any]:
    return rows.c[latest_by].desc().nulls_last()


def _key_text(values: tuple[Any, ...], keys: Sequence[str], pii_columns: Collection[str]) -> str:
    return " ".join(f"{key}={PII if key in pii_columns else _value_text(value)}" for key, value in zip(keys, values, strict=True))


def _value_text(value: Any) -> str:
    if value is None:
        return "null"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"
