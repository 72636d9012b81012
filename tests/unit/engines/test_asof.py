"""The point-in-time join (`Engine.as_of_join`) on both engines, against a brute-force
reference written from the rules in `brickyard.engines.asof`: random entity rows and
feature rows on a coarse time grid (so equal timestamps and TTL edges happen), nulls in
keys, times and values, two keys, two lookups, with and without `as_known_at`."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brickyard import Workspace
from brickyard.engines.asof import AsOfJoin, EntitySource, FeatureLookup

BASE = datetime(2024, 1, 1)
MINUTE = timedelta(minutes=1)
ENTITY_SCHEMA = pa.schema([("k1", pa.int64()), ("k2", pa.string()), ("ts", pa.timestamp("us")), ("label", pa.int64())])
PAIR_SCHEMA = pa.schema([
    ("k1", pa.int64()), ("k2", pa.string()), ("et", pa.timestamp("us")), ("ct", pa.timestamp("us")),
    ("v1", pa.int64()), ("v2", pa.string()),
])
SINGLE_SCHEMA = pa.schema([("k1", pa.int64()), ("et", pa.timestamp("us")), ("w", pa.int64())])
_names = itertools.count()

minutes = st.integers(min_value=0, max_value=12)
times = st.one_of(st.none(), minutes.map(lambda m: BASE + m * MINUTE))
k1s = st.one_of(st.none(), st.integers(min_value=0, max_value=2))
k2s = st.one_of(st.none(), st.sampled_from(["a", "b"]))
entity_rows = st.lists(
    st.fixed_dictionaries({"k1": k1s, "k2": k2s, "ts": times, "label": st.integers(0, 1)}), max_size=12
)


@st.composite
def pair_rows(draw: Any) -> dict[str, Any]:
    event = draw(st.one_of(st.none(), st.integers(0, 6).map(lambda m: BASE + m * MINUTE)))  # dense: ties
    created = draw(st.one_of(st.none(), st.integers(0, 2).map(lambda m: None if event is None else event + m * MINUTE)))
    return {
        "k1": draw(st.one_of(st.none(), st.integers(0, 1))), "k2": draw(k2s), "et": event, "ct": created,
        "v1": draw(st.one_of(st.none(), st.integers(0, 3))), "v2": draw(st.one_of(st.none(), st.sampled_from(["x", "y"]))),
    }


single_rows = st.lists(st.fixed_dictionaries({"k1": k1s, "et": times, "w": st.one_of(st.none(), st.integers(0, 3))}), max_size=10)
ttls = st.one_of(st.none(), st.integers(1, 6).map(lambda m: m * 60.0))
values = st.fixed_dictionaries({"v1": st.one_of(st.none(), st.integers(0, 3)), "v2": st.one_of(st.none(), st.sampled_from(["x", "y"]))})


@st.composite
def scenario(draw: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(entities, pair-keyed feature rows, single-keyed feature rows), with ties and hits
    made likely: some feature rows copy another's keys and times with other values, and
    some entity rows ask for a feature row's keys at or a little after its event time."""
    pairs = draw(st.lists(pair_rows(), max_size=12))
    entities = draw(entity_rows)
    asked = []
    for index, other, ask in draw(st.lists(st.tuples(st.integers(0, 99), values, st.booleans()), max_size=4)) if pairs else []:
        clone = {**pairs[index % len(pairs)], **other}
        pairs.append(clone)
        if ask and clone["et"] is not None:
            asked.append(clone)
    asked += [row for row in pairs if row["et"] is not None and draw(st.booleans())]
    for row in asked:
        entities.append({"k1": row["k1"], "k2": row["k2"], "ts": row["et"] + draw(st.integers(0, 7)) * MINUTE, "label": draw(st.integers(0, 1))})
    singles = draw(single_rows)
    return draw(st.permutations(entities)), draw(st.permutations(pairs)), singles


def reference(entities: list[dict[str, Any]], tables: list[tuple[FeatureLookup, list[dict[str, Any]]]], as_known_at: bool) -> list[dict[str, Any]]:
    """The join by brute force, straight from the stated rules."""
    out = []
    for entity in entities:
        row = dict(entity)
        ts = entity["ts"]
        for lookup, rows in tables:
            known_at = as_known_at and lookup.created_time is not None
            candidates = [
                r for r in rows
                if ts is not None and r[lookup.event_time] is not None
                and all(entity[k] is not None and r[k] == entity[k] for k in lookup.keys)
                and r[lookup.event_time] <= ts
                and (not known_at or (r[lookup.created_time] is not None and r[lookup.created_time] <= ts))
            ]
            best = max(candidates, key=lambda r, lk=lookup: _rank(r, lk), default=None)
            ttl = lookup.ttl_seconds
            if best is not None and ttl is not None and not best[lookup.event_time] > ts - timedelta(seconds=ttl):
                best = None
            for column in lookup.columns:
                row[column] = None if best is None else best[column]
        out.append(row)
    order = ["ts", "k1", "k2", "label"]
    return sorted(out, key=lambda r: tuple(_low_null(r[c]) for c in order))


def _low_null(value: Any) -> tuple[int, Any]:
    return (0, 0) if value is None else (1, value)


def _rank(row: dict[str, Any], lookup: FeatureLookup) -> tuple[Any, ...]:
    created = (_low_null(row[lookup.created_time]),) if lookup.created_time else ()
    return (row[lookup.event_time], *created, *(_low_null(row[c]) for c in lookup.tie_columns))


def _write(ws: Workspace, rows: list[dict[str, Any]], schema: pa.Schema, parts: int = 1) -> tuple[str, int]:
    """Rows as a new Delta table (in `parts` commits, so ties span files); (name, version)."""
    name = f"silver.t{next(_names)}"
    version = ws.lake.write(name, pa.Table.from_pylist(rows[: len(rows) // parts], schema=schema), mode="overwrite")
    if parts > 1:
        version = ws.lake.write(name, pa.Table.from_pylist(rows[len(rows) // parts :], schema=schema), mode="append")
    return name, version


def check_engine(ws: Workspace, engine_name: str, entities: list[dict[str, Any]], pairs: list[dict[str, Any]],
                 singles: list[dict[str, Any]], ttl_pair: float | None, ttl_single: float | None, as_known_at: bool) -> None:
    entity_table, _ = _write(ws, entities, ENTITY_SCHEMA)
    pair_table, pair_version = _write(ws, pairs, PAIR_SCHEMA, parts=2)
    single_table, single_version = _write(ws, singles, SINGLE_SCHEMA)
    lookups = (
        FeatureLookup(pair_table, pair_version, ("k1", "k2"), "et", ("v2", "v1"), ("v1", "v2"), "ct", ttl_pair),
        FeatureLookup(single_table, single_version, ("k1",), "et", ("w",), ("w",), None, ttl_single),
    )
    join = AsOfJoin(EntitySource(table=entity_table), "ts", lookups, as_known_at=as_known_at)
    result = ws.engine_named(engine_name).as_of_join(join)
    expected = reference(entities, [(lookups[0], pairs), (lookups[1], singles)], as_known_at)
    assert result.table.column_names == ["k1", "k2", "ts", "label", "v2", "v1", "w"]
    assert result.table.to_pylist() == expected
    assert result.reads == {entity_table: 0}


@pytest.fixture(scope="module")
def duck_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace.init(tmp_path_factory.mktemp("asof") / "ws")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario(), ttls, ttls, st.booleans())
def test_duckdb_matches_the_reference(duck_ws: Workspace, rows: Any, ttl_pair: Any, ttl_single: Any, as_known_at: bool) -> None:
    entities, pairs, singles = rows
    check_engine(duck_ws, "duckdb", entities, pairs, singles, ttl_pair, ttl_single, as_known_at)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario(), ttls, ttls, st.booleans())
def test_duckdb_sql_path_matches_the_reference(duck_ws: Workspace, rows: Any, ttl_pair: Any, ttl_single: Any,
                                               as_known_at: bool) -> None:
    """The same with every lookup on DuckDB's SQL path (most take the in-memory one)."""
    from unittest import mock

    entities, pairs, singles = rows
    with mock.patch("brickyard.engines.duckdb.asof.feature_index", return_value=None):
        check_engine(duck_ws, "duckdb", entities, pairs, singles, ttl_pair, ttl_single, as_known_at)


SPARK_CONFIG = """
engine: spark
spark:
  master: local[2]
  conf:
    spark.sql.shuffle.partitions: "2"
    spark.default.parallelism: "2"
"""


@pytest.fixture(scope="module")
def spark_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    ws = Workspace.init(tmp_path_factory.mktemp("asof_spark") / "ws")
    text = ws.config_path.read_text(encoding="utf-8").replace("engine: duckdb\n", "")
    ws.config_path.write_text(text + SPARK_CONFIG, encoding="utf-8")
    yield Workspace.open(ws.root)


@pytest.mark.spark
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario(), ttls, ttls, st.booleans())
def test_spark_matches_the_reference(spark_ws: Workspace, rows: Any, ttl_pair: Any, ttl_single: Any, as_known_at: bool) -> None:
    entities, pairs, singles = rows
    check_engine(spark_ws, "spark", entities, pairs, singles, ttl_pair, ttl_single, as_known_at)


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def test_ttl_edge_ties_and_no_future_leak(engine: str, request: pytest.FixtureRequest) -> None:
    """The stated edges, by hand: a value exactly TTL old is expired, one a microsecond
    younger is live, a future row is never used, and a tie on event time goes to the
    latest created time, then to the greatest values, whatever the file order."""
    ws: Workspace = request.getfixturevalue("duck_ws" if engine == "duckdb" else "spark_ws")
    at = BASE + 10 * MINUTE
    entities = [{"k1": 1, "k2": "a", "ts": at, "label": 0}, {"k1": 2, "k2": "a", "ts": at, "label": 0},
                {"k1": 3, "k2": "a", "ts": at, "label": 0}, {"k1": None, "k2": "a", "ts": at, "label": 1}]
    pairs = [
        {"k1": 1, "k2": "a", "et": at - 5 * MINUTE, "ct": None, "v1": 1, "v2": "old"},  # exactly 5 min old
        {"k1": 1, "k2": "a", "et": at + MINUTE, "ct": None, "v1": 9, "v2": "future"},
        {"k1": 2, "k2": "a", "et": at - 5 * MINUTE + timedelta(microseconds=1), "ct": at, "v1": 1, "v2": "x"},
        {"k1": 2, "k2": "a", "et": at - 5 * MINUTE + timedelta(microseconds=1), "ct": at - MINUTE, "v1": 7, "v2": "y"},
        {"k1": 3, "k2": "a", "et": at, "ct": None, "v1": 2, "v2": "b"},
        {"k1": 3, "k2": "a", "et": at, "ct": None, "v1": 2, "v2": "c"},
        {"k1": 3, "k2": "a", "et": at, "ct": None, "v1": 1, "v2": "z"},
    ]
    for order in (pairs, pairs[::-1]):
        table, version = _write(ws, order, PAIR_SCHEMA, parts=2)
        entity_table, _ = _write(ws, entities, ENTITY_SCHEMA)
        lookup = FeatureLookup(table, version, ("k1", "k2"), "et", ("v1", "v2"), ("v1", "v2"), "ct", 300.0)
        rows = ws.engine_named(engine).as_of_join(AsOfJoin(EntitySource(table=entity_table), "ts", (lookup,))).table.to_pylist()
        assert [(r["k1"], r["v1"], r["v2"]) for r in rows] == [(None, None, None), (1, None, None), (2, 1, "x"), (3, 2, "c")]


def test_duckdb_plans_a_real_asof_join(duck_ws: Workspace) -> None:
    """DuckDB turns an ASOF JOIN with a left side it thinks small into a nested loop join
    (a 1M x 200k join took minutes); the join's connection keeps the ASOF join."""
    from brickyard.engines.duckdb.asof import ENTITIES, ORDERED, ROW, join_engine, lookup_sql, ordered_sql

    pairs, _ = _write(duck_ws, [], PAIR_SCHEMA)
    lookup = FeatureLookup(pairs, 0, ("k1", "k2"), "et", ("v1",), ("v1", "v2"), "ct", 60.0)
    join = AsOfJoin(EntitySource(table="x.y"), "ts", (lookup,))
    worker = join_engine(duck_ws.engine)
    try:
        con = worker.connection
        con.register(ENTITIES, pa.Table.from_pylist([], schema=ENTITY_SCHEMA))
        con.execute(f"CREATE TEMP TABLE {ORDERED} AS SELECT *, 1 AS {ROW} FROM ({ordered_sql(join, ENTITY_SCHEMA.names, ENTITY_SCHEMA.names)})")
        con.register("__by_features_0", pa.Table.from_pylist([], schema=PAIR_SCHEMA))
        con.register("__by_times_0", pa.Table.from_pylist([], schema=PAIR_SCHEMA))
        plan = "\n".join(row[1] for row in con.sql("EXPLAIN " + lookup_sql(join, 0)).fetchall())
    finally:
        worker.close()
    assert "ASOF_JOIN" in plan.replace(" ", "_").upper() and "NESTED_LOOP" not in plan.replace(" ", "_").upper()
