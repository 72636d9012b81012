"""The point-in-time join on DuckDB plans an ASOF join, never a nested loop, and breaks
ties by the rule without sorting the feature table by its values.

DuckDB 2.x runs `ASOF JOIN` as a nested loop join (every entity row against every feature
row of the join) when it estimates the entity side at no more than
`asof_loop_join_threshold` rows (64); Arrow scans (how the engine reads Delta tables) are
estimated at about one row, so without the setting every training set took quadratic
time: 200,000 feature rows x 50,000 entity rows ran 30-40 s instead of 0.3 s
(bench/featurestore.py), and 2,000,000 x 500,000 would run for hours."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pyarrow as pa

from brickyard import Workspace
from brickyard.engines.asof import AsOfJoin, EntitySource, FeatureLookup
from brickyard.engines.duckdb.asof import configure, join_sql


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
    con.register("__by_entities", ws.lake.delta("gold.snapshots").to_pyarrow_dataset())
    con.register("__by_features_0", ws.lake.delta("features.activity").to_pyarrow_dataset())
    con.register("__by_times_0", ws.lake.delta("features.activity").to_pyarrow_dataset())
    sql = join_sql(join, ["customer_id", "ts"], ["customer_id", "ts"])
    plan = "\n".join(str(row[1]) for row in con.execute(f"EXPLAIN {sql}").fetchall()).upper()
    assert "NESTED_LOOP" not in plan.replace(" ", "_"), plan
    assert "ASOF" in plan.replace(" ", "_").replace("-", "_") or "AS_OF" in plan, plan
    assert con.sql(sql).fetchall()[1] == (1, start + timedelta(hours=1, minutes=30), 1.0)


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
    assert "PARTITION BY customer_id" not in join_sql(join, ["customer_id", "ts"], []).replace('"', "")
    ws.lake.write("gold.snapshots", pa.table({"customer_id": [2], "ts": [at + timedelta(minutes=1)]}))
    joined = ws.engine.as_of_join(join)
    assert joined.table.column("spend").to_pylist() == [9.0]  # of the tied rows, the greatest value
