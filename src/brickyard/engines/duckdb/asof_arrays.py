"""One point-in-time lookup matched in memory, with Arrow and numpy (rules in
`brickyard.engines.asof`): the DuckDB engine's join for the lookups it can take.

Each row's keys become one integer code (an integer key by its offset from the feature
table's least key, any other key by its place among the feature table's distinct keys), and
the code with the event time one 64-bit number that sorts by key, then time. The feature rows
are sorted by it (stably: a table stored in key and event-time order, as the `features` task
writes it, is already in order and costs one pass), the entity rows too, and a binary search
finds per entity row the last feature row at or before its timestamp with its key; the TTL
then drops it when too old. Only then are the value columns read, streamed batch by batch,
each batch keeping the matched rows alone (memory stays bounded by the matches).

Why not DuckDB's ASOF JOIN, which the SQL path (`brickyard.engines.duckdb.asof`) still runs for
what this does not take: it sorts both sides again on every join, and the values need a
hash join back to the feature rows; bench/featurestore.py (2M feature rows, 500k entity
rows, 20 features) measured the whole join at about half the time this way.

`FeatureIndex.build` answers None, and the caller runs the SQL path, for key columns whose
types differ between the two sides (beyond integer widths and string kinds), float keys,
event times other than timestamps or dates, and key spaces too large for 64-bit codes;
`FeatureIndex.match` answers None when a matched feature row ties with another on key and
event time (the tie rule compares values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    import pyarrow.dataset as pads

    from brickyard.engines.asof import FeatureLookup

MICROS = {"s": 1_000_000, "ms": 1_000, "us": 1}
DAY_MICROS = 86_400_000_000
CODE_LIMIT = 2**62  # codes x time span stays below this, so no sum or product overflows int64
DIRECT_RANGE = 2**32  # integer keys spanning more than this are coded by dictionary
# value rows decoded at a time per file, and batches decoded ahead (Arrow's default, 16, held
# several times the memory and was slower: fresh memory for every batch)
SCAN = {"batch_size": 65_536, "batch_readahead": 2}


@dataclass(frozen=True)
class Matches:
    """The entity rows that found a live feature row (their positions in the entity rows'
    order) and those feature rows (positions in the dataset's row order), pair by pair."""

    entity_rows: np.ndarray
    feature_rows: np.ndarray
    rows: int  # how many entity rows there are


class _KeyCode:
    """One key column's integer codes, alike on both sides: an integer key's offset from
    the feature table's least key (when the keys span little), any other key's place among
    the feature table's distinct keys. -1 for a null key, or an entity key no feature row has."""

    def __init__(self, column: pa.ChunkedArray, entity_type: pa.DataType) -> None:
        self.least: int | None = None
        self.dictionary: pa.Array | None = None
        if _integer(column.type) and _integer(entity_type):
            values, known = _numpy(column)
            present = values if known is None else values[known]
            least, most = (int(present.min()), int(present.max())) if present.size else (0, 0)
            if most - least < DIRECT_RANGE:
                self.least, self.size = least, most - least + 1
                self.features = values - least
                if known is not None:
                    self.features[~known] = -1
                return
            column = column.cast(pa.int64())
        encoded = pc.dictionary_encode(column.cast(_plain(column.type)).combine_chunks())
        self.dictionary = encoded.dictionary
        self.size = max(1, len(self.dictionary))
        self.features = pc.fill_null(encoded.indices.cast(pa.int64()), -1).to_numpy()

    def entities(self, column: pa.ChunkedArray) -> np.ndarray:
        if self.least is not None:
            values, known = _numpy(column)
            inside = (values >= self.least) & (values < self.least + self.size)
            if known is not None:
                inside &= known
            codes = values - self.least
            codes[~inside] = -1
            return codes
        assert self.dictionary is not None
        found = pc.index_in(column.cast(self.dictionary.type), value_set=self.dictionary)
        return pc.fill_null(found.cast(pa.int64()), -1).to_numpy()


class FeatureIndex:
    """A feature table's usable rows (key and event time present) sorted by key code, then
    event time: `match` answers any entity rows against it. `build` reads only the key and
    event time columns."""

    def __init__(self, dataset: pads.Dataset, lookup: FeatureLookup, codes: list[_KeyCode], count: int,
                 times: _TimeCode, keys: np.ndarray, rows: np.ndarray | None, micros: np.ndarray) -> None:
        self.dataset, self.lookup, self.codes, self.count, self.times = dataset, lookup, codes, count, times
        self.keys, self.micros = keys, micros
        self.rows = rows  # each key's row in the dataset (None: key i is row i)

    @classmethod
    def build(cls, dataset: pads.Dataset, lookup: FeatureLookup, entity_types: dict[str, pa.DataType]) -> FeatureIndex | None:
        """The index of `lookup`'s table, or None where `match` cannot take it (see the module doc)."""
        schema = dataset.schema
        time_type = schema.field(lookup.event_time).type
        if not (pa.types.is_date32(time_type) or (pa.types.is_timestamp(time_type) and time_type.unit in MICROS)):
            return None
        if not all(_comparable(schema.field(key).type, entity_types[key]) for key in lookup.keys):
            return None
        columns = dataset.to_table(columns=[*lookup.keys, lookup.event_time])
        codes = [_KeyCode(columns.column(key), entity_types[key]) for key in lookup.keys]
        count = int(np.prod([code.size for code in codes], dtype=object))
        if count >= CODE_LIMIT:
            return None
        code = _combined([code.features for code in codes], [code.size for code in codes])
        micros, known = _micros(columns.column(lookup.event_time))
        usable = code >= 0 if known is None else (code >= 0) & known
        rows = None
        if not usable.all():
            rows = np.flatnonzero(usable)
            code, micros = code[rows], micros[rows]
        times = _TimeCode.of(micros, count)
        if times is None:
            return None
        keys = code * times.span
        keys += times.features(micros)
        if keys.size and not np.all(keys[1:] >= keys[:-1]):
            order = np.argsort(keys, kind="stable")
            keys, micros = keys[order], micros[order]
            rows = order if rows is None else rows[order]
        return cls(dataset, lookup, codes, count, times, keys, rows, micros)

    def match(self, entity_keys: list[pa.ChunkedArray], entity_micros: pa.ChunkedArray) -> Matches | None:
        """Per entity row (in the given order) the feature row it finds, if any; None when
        a match ties (see the module doc). `entity_micros`: each entity row's timestamp as
        UTC microseconds (null: no match)."""
        code = _combined([key.entities(column) for key, column in zip(self.codes, entity_keys, strict=True)],
                         [key.size for key in self.codes])
        micros, known = _numpy(entity_micros)
        none = np.empty(0, dtype=np.int64)
        if self.keys.size == 0:
            return Matches(none, none, len(code))
        asking = np.flatnonzero(code >= 0 if known is None else (code >= 0) & known)
        # Searching in key order keeps the search's reads close together. The entity rows
        # come in timestamp order, so a stable sort by key code alone puts them in key, then
        # time order (any order would give the same matches, only slower).
        asking = asking[_stable_order(code[asking], self.count)]
        span = self.times.span
        keys = code[asking] * span + self.times.entities(micros[asking])
        found = np.searchsorted(self.keys, keys, side="right") - 1
        hit = found >= 0
        at = np.where(hit, found, 0)
        hit &= self.keys[at] // span == keys // span
        ttl = self.lookup.ttl_microseconds
        if ttl is not None:
            hit &= micros[asking] - self.micros[at] < ttl
        if np.any(hit & (at > 0) & (self.keys[at - 1] == self.keys[at])):
            return None
        at = at[hit]
        return Matches(asking[hit], at if self.rows is None else self.rows[at], len(code))


class _TimeCode:
    """Times as offsets that compare like them (a feature time <= an entity time exactly
    when its offset is <= the entity's), within `span`: from the least feature time when
    the times' range leaves room for the key codes, else ranks among the distinct feature
    times."""

    def __init__(self, span: int, least: int, most: int, distinct: np.ndarray | None) -> None:
        self.span, self.least, self.most, self.distinct = span, least, most, distinct

    @classmethod
    def of(cls, micros: np.ndarray, count: int) -> _TimeCode | None:
        if micros.size == 0:
            return cls(2, 0, 0, None)
        least, most = int(micros.min()), int(micros.max())
        if count * (most - least + 2) < CODE_LIMIT:
            return cls(most - least + 2, least, most, None)
        distinct = np.unique(micros)
        if count * (len(distinct) + 1) >= CODE_LIMIT:
            return None
        return cls(len(distinct) + 1, least, most, distinct)

    def features(self, micros: np.ndarray) -> np.ndarray:
        if self.distinct is None:
            return micros - (self.least - 1)
        return np.searchsorted(self.distinct, micros) + 1

    def entities(self, micros: np.ndarray) -> np.ndarray:
        if self.distinct is None:
            return np.clip(micros, self.least - 1, self.most) - (self.least - 1)
        return np.searchsorted(self.distinct, micros, side="right")


def _stable_order(codes: np.ndarray, count: int) -> np.ndarray:
    """The stable sort order of `codes` (each in [0, count)): by numpy's radix sort over
    16-bit digits where they fit in two (a quarter of a general sort's time)."""
    if count > 2**32:
        return np.argsort(codes, kind="stable")
    order = np.argsort((codes & 0xFFFF).astype(np.uint16), kind="stable")
    if count > 2**16:
        order = order[np.argsort((codes[order] >> 16).astype(np.uint16), kind="stable")]
    return order


def _combined(parts: list[np.ndarray], sizes: list[int]) -> np.ndarray:
    """The codes of several key columns as one (-1 where any is -1)."""
    code = parts[0]
    for part, size in zip(parts[1:], sizes[1:], strict=True):
        code = np.where((code >= 0) & (part >= 0), code * size + part, -1)
    return code


def values(dataset: pads.Dataset, columns: list[str], matches: Matches) -> pa.Table:
    """`columns` of the matched feature rows, one row per entity row in its order, null
    where it found none. The files are streamed once, in order (Arrow decodes each batch's
    columns in parallel; a pool of files at once was no faster on two cores and used more
    memory); each batch keeps its matched rows, and one gather per column puts them in the
    output's order."""
    order = np.argsort(matches.feature_rows, kind="stable")  # one pass when already in order
    wanted, positions = matches.entity_rows[order], matches.feature_rows[order]
    kept: list[list[pa.Array]] = []  # per batch with matches, its matched rows' columns
    first = 0
    for fragment in dataset.get_fragments():
        size = fragment.count_rows()
        local = positions[np.searchsorted(positions, first):np.searchsorted(positions, first + size)] - first
        if local.size:
            for batch in fragment.to_batches(schema=dataset.schema, columns=columns, **SCAN):
                end = int(np.searchsorted(local, batch.num_rows))
                if end:
                    rows = pa.array(local[:end])
                    kept.append([column.take(rows) for column in batch.columns])
                local = local[end:] - batch.num_rows
        first += size
    schema = pa.schema([dataset.schema.field(name) for name in columns])
    place = _Placement(wanted, matches.rows)
    return _plain_types(pa.table([place.column(field, [k[i] for k in kept]) for i, field in enumerate(schema)], schema=schema))


class _Placement:
    """Where the kept rows (concatenated in file order) go: output row i holds kept row
    `place[i]`, or null (-1). A column is gathered by Arrow's `take` with indices that are
    never null (numpy's fancy indexing took 2-3 times as long, Arrow's take with null
    indices 5 times), then given the output's validity."""

    def __init__(self, wanted: np.ndarray, rows: int) -> None:
        self.place = np.full(rows, -1, dtype=np.int64)
        self.place[wanted] = np.arange(len(wanted), dtype=np.int64)
        self.absent = self.place < 0
        self.at = pa.array(np.where(self.absent, 0, self.place))
        self.validity = pa.py_buffer(np.packbits(~self.absent, bitorder="little"))
        self.nulls = int(self.absent.sum())

    def column(self, field: pa.Field, pieces: list[pa.Array]) -> pa.Array:
        """One output column from its kept pieces (each batch's matched rows, in file order)."""
        rows = len(self.place)
        if not pieces:
            return pa.nulls(rows, field.type)
        found = pa.concat_arrays(pieces)
        if field.type.num_fields or pa.types.is_dictionary(field.type):
            return found.take(pa.array(self.place, mask=self.absent))
        taken = found.take(self.at)
        validity, nulls = self.validity, self.nulls
        if taken.null_count:
            valid = taken.is_valid().to_numpy(zero_copy_only=False) & ~self.absent
            validity, nulls = pa.py_buffer(np.packbits(valid, bitorder="little")), int(rows - valid.sum())
        return pa.Array.from_buffers(taken.type, rows, [validity, *taken.buffers()[1:]], null_count=nulls, offset=taken.offset)


def _comparable(feature: pa.DataType, entity: pa.DataType) -> bool:
    if _integer(feature) and _integer(entity):
        return True
    if pa.types.is_floating(feature) or pa.types.is_floating(entity):
        return False
    return _plain(feature) == _plain(entity)


def _integer(kind: pa.DataType) -> bool:
    return pa.types.is_signed_integer(kind) or (pa.types.is_unsigned_integer(kind) and kind.bit_width < 64)


def _plain(kind: pa.DataType) -> pa.DataType:
    """A string or binary type as DuckDB hands it back (plain, not large or view)."""
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.string()
    if pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind):
        return pa.binary()
    return kind


def _plain_types(table: pa.Table) -> pa.Table:
    schema = pa.schema([field.with_type(_plain(field.type)) for field in table.schema])
    return table if schema == table.schema else table.cast(schema)


def _numpy(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | None]:
    """int64 values (0 where null), and whether each is present (None: all are)."""
    column = column.cast(pa.int64())
    if column.null_count == 0:
        return column.to_numpy(), None
    return pc.fill_null(column, 0).to_numpy(), column.is_valid().to_numpy()


def _micros(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | None]:
    """An event time column as UTC microseconds (a date as its midnight), and presence."""
    kind = column.type
    if pa.types.is_date32(kind):
        days, known = _numpy(column.cast(pa.int32()))
        return days * DAY_MICROS, known
    values, known = _numpy(column.cast(pa.int64()))
    return (values if kind.unit == "us" else values * MICROS[kind.unit]), known
