"""The point-in-time ("as of") join of entity rows with feature tables: what is asked.

Every engine answers an `AsOfJoin` with the same rows (`Engine.as_of_join`); the rules are
stated here once, and `docs/features.md` repeats them for users:

- For each entity row and each lookup, the feature values come from the feature row with
  the same keys whose event time is the latest one at or before the entity's timestamp
  (`event_time <= timestamp`), and, with a TTL, after `timestamp - ttl`
  (`event_time > timestamp - ttl`: a value exactly `ttl` old has expired). With no such row
  the values are null.
- `as_known_at`: for a lookup whose table declares a created time, a feature row counts
  only if it was also known by then (`created_time <= timestamp`).
- Ties (feature rows with equal keys and event time): the row with the latest created time
  wins (a null created time loses); among rows equal in that too, the row whose feature
  values are greatest, compared column by column in the table's column order (`tie_columns`:
  every feature column, looked up or not; a null is lower than any value). The result
  never depends on the order of rows or files in the table.
- No entity row is dropped: a row whose key or timestamp is null, or that finds no
  feature row, keeps null features. Feature rows with a null key or event time are never
  used (the `features` kind quarantines them).
- Output: the entity source's columns, then each lookup's columns in the order asked, in a
  defined order: by the timestamp, then the keys, then the other entity columns
  (`sort_columns`), ascending, nulls first. Entity rows equal in all of those are
  identical, so the order is the same on every engine and for every file layout.
- Timestamps compare as UTC wall-clock times (a DATE is its midnight), in microseconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

# The engines' working columns; an entity or feature column may not start with it.
INTERNAL_PREFIX = "__by_"


@dataclass(frozen=True)
class EntitySource:
    """The entity rows: a lake table (at `version`, or its current one) or a query in
    DuckDB's dialect whose lake tables are read at `pinned` versions (current otherwise)."""

    table: str | None = None
    version: int | None = None
    query: str | None = None
    pinned: Mapping[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        return f"table {self.table}" if self.table else "the entity query"


@dataclass(frozen=True)
class FeatureLookup:
    """Feature columns looked up from one feature table at one Delta version."""

    table: str
    version: int
    keys: tuple[str, ...]
    event_time: str
    columns: tuple[str, ...]  # the feature columns joined, in this order
    tie_columns: tuple[str, ...]  # every feature column of the table, in its order (ties)
    created_time: str | None = None
    ttl_seconds: float | None = None

    @property
    def ttl_microseconds(self) -> int | None:
        """The TTL in whole microseconds (the precision timestamps compare at)."""
        return None if self.ttl_seconds is None else round(self.ttl_seconds * 1_000_000)


@dataclass(frozen=True)
class AsOfJoin:
    """Entity rows with a timestamp column, and the lookups to join as of it."""

    entities: EntitySource
    timestamp: str
    lookups: tuple[FeatureLookup, ...]
    as_known_at: bool = False

    def uses_created_time(self, lookup: FeatureLookup) -> bool:
        """Whether `lookup` filters on its created time (as known at the timestamp)."""
        return self.as_known_at and lookup.created_time is not None

    def sort_columns(self, entity_columns: Sequence[str], orderable: Sequence[str] | None = None) -> list[str]:
        """The entity columns the output is ordered by: the timestamp, the keys of every
        lookup, then the other entity columns (those in `orderable`, when given)."""
        first = [self.timestamp, *(key for lookup in self.lookups for key in lookup.keys)]
        ordered = list(dict.fromkeys([*first, *entity_columns]))
        allowed = set(entity_columns if orderable is None else orderable)
        return [column for column in ordered if column in allowed]


@dataclass
class AsOfResult:
    """The joined rows, and the Delta version of every lake table the entity source read."""

    table: pa.Table
    reads: dict[str, int]
