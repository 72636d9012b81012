"""The DuckDB engine's in-memory lookups (`brickyard.engines.duckdb.asof_arrays`) give the
very table its SQL path gives (types and every value), for the column types a lake holds,
keys coded by offset and by dictionary, times by offset and by rank; and they are the path
taken, except for what they leave to SQL (ties, `as_known_at`, keys of other types)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from unittest import mock

import numpy as np
import pyarrow as pa
import pytest

from brickyard import Workspace
from brickyard.engines.asof import AsOfJoin, EntitySource, FeatureLookup
from brickyard.engines.duckdb import asof, asof_arrays

ROWS = 400


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace.init(tmp_path / "ws")


def both_paths(ws: Workspace, join: AsOfJoin) -> tuple[pa.Table, pa.Table, list[bool]]:
    """(in-memory result, SQL result, per lookup whether the in-memory path answered it)."""
    taken: list[bool] = []
    original = asof_arrays.FeatureIndex.match

    def match(self: asof_arrays.FeatureIndex, *args: object) -> asof_arrays.Matches | None:
        found = original(self, *args)
        taken.append(found is not None)
        return found

    with mock.patch.object(asof_arrays.FeatureIndex, "match", match):
        fast = ws.engine.as_of_join(join).table
    with mock.patch("brickyard.engines.duckdb.asof.feature_index", return_value=None):
        slow = ws.engine.as_of_join(join).table
    return fast, slow, taken


def values_table(rng: np.random.Generator, rows: int) -> dict[str, pa.Array]:
    """One column of each type a feature table holds, with nulls (and a NaN)."""
    floats = rng.normal(size=rows)
    floats[::37] = np.nan
    nulls = rng.random(rows) < 0.1
    return {
        "v_int": pa.array(rng.integers(-5, 5, rows), pa.int32(), mask=nulls),
        "v_float": pa.array(floats, mask=nulls),
        "v_text": pa.array([f"t{i % 7}" for i in range(rows)], mask=nulls),
        "v_bool": pa.array(rng.random(rows) < 0.5, mask=nulls),
        "v_decimal": pa.array([Decimal(int(i)) / 100 for i in rng.integers(0, 10_000, rows)], pa.decimal128(9, 2), mask=nulls),
        "v_date": pa.array([date(2024, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 100, rows)], mask=nulls),
        "v_ts": pa.array([datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=int(s)) for s in rng.integers(0, 10**6, rows)],
                         pa.timestamp("us", tz="UTC"), mask=nulls),
        "v_list": pa.array([[int(i), int(i) + 1] for i in rng.integers(0, 9, rows)], mask=nulls),
        "v_struct": pa.array([{"a": int(i)} for i in rng.integers(0, 9, rows)], mask=nulls),
    }


VALUE_COLUMNS = ("v_int", "v_float", "v_text", "v_bool", "v_decimal", "v_date", "v_ts", "v_list", "v_struct")


@pytest.mark.parametrize("keys", ["int", "int32_entities", "text", "two", "spread_ints", "date"])
def test_in_memory_lookups_give_the_sql_paths_table(ws: Workspace, keys: str) -> None:
    rng = np.random.default_rng(len(keys))
    start = datetime(2024, 1, 1)
    key_values = {
        "int": (pa.array(rng.integers(0, 40, ROWS), pa.int64()), pa.array(rng.integers(-2, 42, ROWS), pa.int64())),
        "int32_entities": (pa.array(rng.integers(0, 40, ROWS), pa.int64()), pa.array(rng.integers(-2, 42, ROWS), pa.int32())),
        "text": (pa.array([f"c{i}" for i in rng.integers(0, 40, ROWS)]), pa.array([f"c{i}" for i in rng.integers(0, 42, ROWS)])),
        "spread_ints": (pa.array(rng.integers(0, 40, ROWS) * 10**15, pa.int64()), pa.array(rng.integers(0, 42, ROWS) * 10**15, pa.int64())),
        "date": (pa.array([date(2020, 1, 1) + timedelta(days=int(i)) for i in rng.integers(0, 40, ROWS)]),
                 pa.array([date(2020, 1, 1) + timedelta(days=int(i)) for i in rng.integers(0, 42, ROWS)])),
    }
    if keys == "two":
        feature_keys = {"k": pa.array(rng.integers(0, 8, ROWS), pa.int64()), "k2": pa.array([f"s{i}" for i in rng.integers(0, 5, ROWS)])}
        entity_keys = {"k": pa.array(rng.integers(0, 9, ROWS), pa.int64()), "k2": pa.array([f"s{i}" for i in rng.integers(0, 6, ROWS)])}
    else:
        feature_keys, entity_keys = {"k": key_values[keys][0]}, {"k": key_values[keys][1]}
    minutes = rng.permutation(ROWS * 10)[:ROWS]  # distinct times: no ties, so no lookup is left to SQL
    ws.lake.write("features.f", pa.table({
        **feature_keys,
        "at": pa.array([start + timedelta(minutes=int(m)) for m in minutes], pa.timestamp("us")),
        **values_table(rng, ROWS),
    }))
    ws.lake.write("features.f", pa.table({  # a second file, out of order with the first
        **{name: column.slice(0, 50) for name, column in feature_keys.items()},
        "at": pa.array([start - timedelta(minutes=int(m) + 1) for m in minutes[:50]], pa.timestamp("us")),
        **values_table(rng, 50),
    }), mode="append")
    ws.lake.write("gold.snapshots", pa.table({
        **entity_keys,
        "ts": pa.array([start + timedelta(minutes=int(m)) for m in rng.integers(-100, ROWS * 10 + 100, ROWS)], pa.timestamp("us")),
        "row": np.arange(ROWS),
    }))
    lookup = FeatureLookup("features.f", 1, tuple(feature_keys), "at", VALUE_COLUMNS, VALUE_COLUMNS, ttl_seconds=3600.0 * 5)
    fast, slow, taken = both_paths(ws, AsOfJoin(EntitySource(table="gold.snapshots"), "ts", (lookup,)))
    assert taken == [True]
    assert fast.schema == slow.schema
    assert fast.to_pylist() == slow.to_pylist() or _same_with_nan(fast, slow)
    assert 0 < fast.column("v_text").null_count < ROWS


def _same_with_nan(left: pa.Table, right: pa.Table) -> bool:
    """Equal, NaN equal to NaN (to_pylist compares NaN unequal)."""
    def key(table: pa.Table) -> list:
        return [[None if isinstance(v, float) and v != v else v for v in row.values()] for row in table.to_pylist()]

    return key(left) == key(right)


def test_times_by_rank_when_the_span_leaves_no_room_for_the_keys(ws: Workspace) -> None:
    """Microsecond times over 300 years and 1,000 keys need more than 62 bits as offsets:
    they are coded by rank among the feature times (dates as times: midnight UTC)."""
    rng = np.random.default_rng(3)
    rows = 3000
    days = rng.permutation(110_000)[:rows]
    ws.lake.write("features.f", pa.table({
        "k": pa.array(rng.integers(0, 1000, rows), pa.int64()),
        "at": pa.array([date(1900, 1, 1) + timedelta(days=int(d)) for d in days]),
        "v": rng.normal(size=rows),
    }))
    ws.lake.write("gold.snapshots", pa.table({
        "k": pa.array(rng.integers(0, 1000, rows), pa.int64()),
        "ts": pa.array([datetime(1900, 1, 1, tzinfo=UTC) + timedelta(days=int(d), hours=int(h))
                        for d, h in zip(rng.integers(0, 110_000, rows), rng.integers(-30, 30, rows), strict=True)],
                       pa.timestamp("us", tz="UTC")),
    }))
    lookup = FeatureLookup("features.f", 0, ("k",), "at", ("v",), ("v",), ttl_seconds=86400.0 * 400)
    dataset = asof.arrow_dataset(ws.lake.delta("features.f"))
    index = asof_arrays.FeatureIndex.build(dataset, lookup, {"k": pa.int64()})
    assert index is not None and index.times.distinct is not None
    fast, slow, taken = both_paths(ws, AsOfJoin(EntitySource(table="gold.snapshots"), "ts", (lookup,)))
    assert taken == [True]
    assert fast.equals(slow)
    assert 0 < fast.column("v").null_count < rows


def test_ties_and_keys_of_other_types_are_left_to_sql(ws: Workspace) -> None:
    at = datetime(2024, 1, 1)
    ws.lake.write("features.tied", pa.table({"k": [1, 1, 2], "at": [at, at, at], "v": [1.0, 3.0, 2.0]}))
    ws.lake.write("features.text_keys", pa.table({"k": ["1", "2"], "at": [at, at], "w": [5.0, 6.0]}))
    ws.lake.write("features.plain", pa.table({"k": [2, 1], "at": [at, at], "x": [7.0, 8.0]}))
    ws.lake.write("gold.snapshots", pa.table({"k": [1, 2], "ts": [at + timedelta(hours=1)] * 2}))
    lookups = (
        FeatureLookup("features.tied", 0, ("k",), "at", ("v",), ("v",)),
        FeatureLookup("features.text_keys", 0, ("k",), "at", ("w",), ("w",)),
        FeatureLookup("features.plain", 0, ("k",), "at", ("x",), ("x",)),
    )
    dataset = asof.arrow_dataset(ws.lake.delta("features.text_keys"))
    assert asof_arrays.FeatureIndex.build(dataset, lookups[1], {"k": pa.int64()}) is None
    fast, slow, taken = both_paths(ws, AsOfJoin(EntitySource(table="gold.snapshots"), "ts", lookups))
    assert taken == [False, True]  # the tie: answered by SQL; the text keys never got an index
    assert fast.equals(slow)
    assert fast.column("v").to_pylist() == [3.0, 2.0]  # the tie rule: the greatest value
    assert fast.column_names == ["k", "ts", "v", "w", "x"] and fast.column("x").to_pylist() == [8.0, 7.0]


@pytest.mark.parametrize("count", [1, 300, 2**16, 2**16 + 1, 2**31, 2**40])
def test_the_radix_order_is_numpys_stable_order(count: int) -> None:
    codes = np.random.default_rng(count % 97).integers(0, count, 20_000)
    assert np.array_equal(asof_arrays._stable_order(codes, count), np.argsort(codes, kind="stable"))


def test_a_zero_ttl_expires_every_value(ws: Workspace) -> None:
    at = datetime(2024, 1, 1)
    ws.lake.write("features.f", pa.table({"k": [1, 2], "at": [at, at], "v": [1.0, 2.0]}))
    ws.lake.write("gold.snapshots", pa.table({"k": [1, 2], "ts": [at, at + timedelta(hours=1)]}))
    lookup = FeatureLookup("features.f", 0, ("k",), "at", ("v",), ("v",), ttl_seconds=0.0)
    fast, slow, taken = both_paths(ws, AsOfJoin(EntitySource(table="gold.snapshots"), "ts", (lookup,)))
    assert taken == [True]
    assert fast.equals(slow)
    assert fast.column("v").to_pylist() == [None, None]


@pytest.mark.parametrize("empty", ["features", "entities"])
def test_empty_tables_give_the_sql_paths_table(ws: Workspace, empty: str) -> None:
    at = datetime(2024, 1, 1)
    features = pa.table({"k": pa.array([1, 2], pa.int64()), "at": [at, at], "v": [1.0, 2.0], "s": ["a", "b"]})
    entities = pa.table({"k": pa.array([1, 3], pa.int64()), "ts": [at, at + timedelta(hours=1)]})
    ws.lake.write("features.f", features.slice(0, 0) if empty == "features" else features)
    ws.lake.write("gold.snapshots", entities.slice(0, 0) if empty == "entities" else entities)
    lookup = FeatureLookup("features.f", 0, ("k",), "at", ("v", "s"), ("v", "s"), ttl_seconds=3600.0)
    fast, slow, taken = both_paths(ws, AsOfJoin(EntitySource(table="gold.snapshots"), "ts", (lookup,)))
    assert taken == [True]
    assert fast.equals(slow)
    assert fast.num_rows == (0 if empty == "entities" else 2)
