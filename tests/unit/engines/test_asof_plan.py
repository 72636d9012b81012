"""The point-in-time join on DuckDB plans an ASOF join, never a nested loop, and breaks
ties by the rule without sorting the feature table by its values.

DuckDB 2.x runs `ASOF JOIN` as a nested loop join (every entity row against every feature
row of the join) when it estimates the entity side at no more than
`asof_loop_join_threshold` rows (64); Arrow scans (how the engine reads Delta tables) are
estimated at about one row, so without the setting every training set took quadratic
time: 200,000 feature rows x 50,000 entity rows ran 30-40 s instead of 0.3 s
(bench/featurestore.py), and 2,000,000 x 500,000 would run for hours."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa

from brickyard import Workspace
from brickyard.engines.asof import AsOfJoin, EntitySource, FeatureLookup
from brickyard.engines.duckdb.asof import (
    ENTITIES,
    ORDERED,
    ROW,
    _register_entities,
    _register_features,
    configure,
    join_engine,
    lookup_sql,
    number_entities,
    ordered_entities,
    ordered_sql,
)


def test_the_join_is_planned_as_an_asof_join_over_arrow_scans(tmp_path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    start = datetime(2024, 1, 1)
    ws.lake.write("features.activity", pa.table({
        "customer_id": list(range(1000)), "at": [start + timedelta(hours=i) for i in range(1000)],
        "spend": [float(i) for i in range(1000)],
    }))
    ws.lake.write("gold.snapshots", pa.table({
        "customer_id": list(range(1000)), "ts": [start + timedelta(hours=i, minutes=30) for i in range(1000)],
    }))
    lookup = FeatureLookup(table="features.activity", version=0, keys=("customer_id",), event_time="at",
                           columns=("spend",), tie_columns=("spend",), ttl_seconds=86400.0)
    join = AsOfJoin(EntitySource(table="gold.snapshots"), "ts", (lookup,))
    con = duckdb.connect()
    configure(con)
    con.register(ENTITIES, ws.lake.delta("gold.snapshots").to_pyarrow_dataset())
    con.register("__by_features_0", ws.lake.delta("features.activity").to_pyarrow_dataset())
    con.register("__by_times_0", ws.lake.delta("features.activity").to_pyarrow_dataset())
    ordered = ordered_sql(join, ["customer_id", "ts"], ["customer_id", "ts"])
    con.execute(f"CREATE TEMP TABLE {ORDERED} AS SELECT *, row_number() OVER () AS {ROW} FROM ({ordered})")
    sql = lookup_sql(join, 0)
    plan = "\n".join(str(row[1]) for row in con.execute(f"EXPLAIN {sql}").fetchall()).upper()
    assert "NESTED_LOOP" not in plan.replace(" ", "_"), plan
    assert "ASOF" in plan.replace(" ", "_").replace("-", "_") or "AS_OF" in plan, plan
    assert sorted(con.sql(sql).fetchall())[1] == (2, 1.0)  # the second entity row (by time) finds spend 1.0


def test_ties_are_broken_among_the_matched_rows_only(tmp_path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    at = datetime(2024, 1, 1)
    ws.lake.write("features.activity", pa.table({
        "customer_id": [1, 1, 2, None, None], "at": [at, at + timedelta(hours=1), at, at, at],
        "spend": [1.0, 2.0, 3.0, 4.0, 5.0],
    }))
    ws.lake.write("features.activity", pa.table({"customer_id": [2], "at": [at], "spend": [9.0]}))
    lookup = FeatureLookup(table="features.activity", version=1, keys=("customer_id",), event_time="at",
                           columns=("spend",), tie_columns=("spend",))
    join = AsOfJoin(EntitySource(table="gold.snapshots"), "ts", (lookup,))
    assert "PARTITION BY customer_id" not in lookup_sql(join, 0).replace('"', "")
    ws.lake.write("gold.snapshots", pa.table({"customer_id": [2], "ts": [at + timedelta(minutes=1)]}))
    joined = ws.engine.as_of_join(join)
    assert joined.table.column("spend").to_pylist() == [9.0]  # of the tied rows, the greatest value


def _operators(node: dict) -> list[str]:
    found = [str(node.get("name", ""))]
    for child in node.get("children", []):
        found += _operators(child)
    return found


def test_the_join_back_hashes_the_matched_rows_not_the_feature_table(tmp_path) -> None:
    """The feature table (every value column) is streamed through the join back to the
    matched rows, never held in its hash table: it is read by DuckDB's Parquet reader, whose
    row counts the planner sees. Read as an Arrow scan (estimated at one row) it was the
    build side: 2,000,000 rows x 20 features took 7.7 s and 1.4 GiB instead of 2.5 s and
    0.8 GiB (bench/featurestore.py), 10,000,000 rows 36 s and 3.6 GiB."""
    ws = Workspace.init(tmp_path / "ws")
    start = datetime(2024, 1, 1)
    ws.lake.write("features.activity", pa.table({
        "customer_id": list(range(5000)) * 4, "at": [start + timedelta(hours=i) for i in range(20000)],
        **{f"f{n}": [float(i) for i in range(20000)] for n in range(5)},
    }))
    ws.lake.write("gold.snapshots", pa.table({
        "customer_id": list(range(1000)), "ts": [start + timedelta(hours=i, minutes=30) for i in range(1000)],
    }))
    columns = tuple(f"f{n}" for n in range(5))
    lookup = FeatureLookup(table="features.activity", version=0, keys=("customer_id",), event_time="at",
                           columns=columns, tie_columns=columns, ttl_seconds=86400.0)
    worker = join_engine(ws.engine)
    try:
        join = AsOfJoin(EntitySource(table="gold.snapshots"), "ts", (lookup,))
        _register_entities(worker, join)
        number_entities(worker, ordered_entities(worker, join))
        _register_features(worker, 0, lookup, known_at=False)
        sql = lookup_sql(join, 0)
        plan = json.loads(worker.connection.execute(f"EXPLAIN (FORMAT JSON) {sql}").fetchall()[0][1])
    finally:
        worker.close()
    joins = [node for node in _walk(plan) if node.get("name") == "HASH_JOIN" and "__by_k0" in json.dumps(node.get("extra_info"))]
    assert len(joins) == 1, plan
    probe, build = joins[0]["children"]
    assert "READ_PARQUET" in _operators(probe) and "ASOF_JOIN" not in _operators(probe), probe
    assert "ASOF_JOIN" in _operators(build), build


def _walk(node: object) -> list[dict]:
    if isinstance(node, list):
        return [found for item in node for found in _walk(item)]
    if not isinstance(node, dict):
        return []
    return [node, *(found for child in node.get("children", []) for found in _walk(child))]


def test_partitioned_and_evolved_feature_tables_join_like_the_others(tmp_path) -> None:
    """Tables DuckDB's Parquet reader would read differently from the Delta table (a
    partition column lives in the log, not in the files; a column added later is missing
    from the older files) give the same rows as any other."""
    ws = Workspace.init(tmp_path / "ws")
    at = datetime(2024, 1, 1)
    ws.lake.write("features.parted", pa.table({
        "customer_id": [1, 2], "at": [at, at], "region": ["north", "south"], "spend": [1.0, 2.0],
    }), partition_by=["region"])
    ws.lake.write("features.evolved", pa.table({"customer_id": [1, 2], "at": [at, at], "spend": [3.0, 4.0]}))
    ws.lake.write("features.evolved", pa.table({
        "customer_id": [2], "at": [at + timedelta(hours=1)], "spend": [5.0], "visits": [7],
    }), evolve_schema=True)
    ws.lake.write("gold.snapshots", pa.table({"customer_id": [1, 2, 3], "ts": [at + timedelta(hours=2)] * 3}))
    lookups = (
        FeatureLookup("features.parted", 0, ("customer_id",), "at", ("region", "spend"), ("region", "spend")),
        FeatureLookup("features.evolved", 1, ("customer_id",), "at", ("visits",), ("spend", "visits")),
    )
    rows = ws.engine.as_of_join(AsOfJoin(EntitySource(table="gold.snapshots"), "ts", lookups)).table.to_pylist()
    assert [(r["customer_id"], r["region"], r["spend"], r["visits"]) for r in rows] == [
        (1, "north", 1.0, None), (2, "south", 2.0, 7), (3, None, None, None),
    ]
