"""`materialize` and `get`: a real Delta table `features.NAME` into SQLite and a real Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from brickyard import Workspace
from brickyard.errors import BrickyardError, UsageError
from brickyard.features.get import get_offline, get_online, online_status
from brickyard.features.materialize import materialize
from brickyard.features.online import OnlineStore, open_online_store
from feature_store_example import BASE_FEATURES, EVENT, KEY, as_of, feature_rows, write_feature_table

TTL = timedelta(days=30)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    if request.param == "sqlite":
        opened = open_online_store("sqlite:///online.db", root=tmp_path)
    else:
        opened = open_online_store(request.getfixturevalue("redis_url"), namespace=f"test-{uuid.uuid4().hex[:8]}")
    yield opened
    opened.close()


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.init(tmp_path / "ws")


def latest(rows: pa.Table, customer: int) -> dict[str, object]:
    mine = [row for row in rows.to_pylist() if row[KEY] == customer]
    return max(mine, key=lambda row: row[EVENT])


def test_materialize_writes_the_latest_row_per_entity_and_ttl_hides_expired_ones(ws: Workspace, store: OnlineStore) -> None:
    now = datetime.now(UTC)
    rows = feature_rows(range(40), now)
    write_feature_table(ws, rows)
    result = materialize(ws, "customer_stats", store=store)
    assert (result.from_version, result.to_version, result.rows_read, result.rows_written) == (None, 0, 120, 40)
    assert result.full and result.reason == "first materialization"
    found = {int(item.key): item for item in get_online(ws, "customer_stats", [str(c) for c in range(40)], store=store)}
    expired = 0
    for customer, item in found.items():
        newest = latest(rows, customer)
        if newest[EVENT] <= now - TTL:  # older than the TTL: never served as present
            expired += 1
            assert item.values is None and item.status in ("expired", "missing")
        else:
            assert item.status == "live"
            assert item.values == {name: newest[name] for name in BASE_FEATURES}
            assert item.event_time is not None and abs(item.event_time - newest[EVENT]) < timedelta(microseconds=1)  # type: ignore[operator]
    assert 0 < expired < 40  # the example has both


def test_a_rerun_with_no_new_version_writes_nothing_and_says_so(ws: Workspace, store: OnlineStore) -> None:
    write_feature_table(ws, feature_rows(range(5), datetime.now(UTC)))
    materialize(ws, "customer_stats", store=store)
    again = materialize(ws, "customer_stats", store=store)
    assert again.up_to_date and again.rows_written == 0 and again.rows_read == 0
    assert again.summary().endswith("is up to date at version 0 in " + store.url + ": nothing written")


def test_materialize_is_incremental_and_a_late_older_row_does_not_win(ws: Workspace, store: OnlineStore) -> None:
    now = datetime.now(UTC)
    rows = feature_rows(range(10), now, days=(0,))
    write_feature_table(ws, rows)
    materialize(ws, "customer_stats", store=store)
    # customer `fresh` has a live row; a late row older than it arrives in the next version
    fresh = next(c for c in range(2, 10) if latest(rows, c)[EVENT] > now - TTL + timedelta(days=2))  # type: ignore[operator]
    newer = pa.table({
        KEY: pa.array([1, fresh], pa.int64()),
        EVENT: pa.array([now - timedelta(minutes=1), latest(rows, fresh)[EVENT] - timedelta(days=1)], pa.timestamp("us", tz="UTC")),  # type: ignore[operator]
        "recency_days": [111.0, 222.0], "orders": pa.array([1, 2], pa.int64()), "amount_90d": [1.0, 2.0], "segment": ["new", "late"],
    })
    write_feature_table(ws, newer)
    result = materialize(ws, "customer_stats", store=store)
    assert (result.from_version, result.to_version, result.full) == (0, 1, False)
    assert (result.rows_read, result.rows_written) == (2, 1)  # only the new version's rows; the late one skipped
    got = {item.key: item for item in get_online(ws, "customer_stats", ["1", str(fresh)], store=store)}
    assert got["1"].values is not None and got["1"].values["recency_days"] == 111.0
    assert got[str(fresh)].values == {name: latest(rows, fresh)[name] for name in BASE_FEATURES}


def test_a_rewritten_table_is_read_whole_and_vanished_entities_leave_the_store(ws: Workspace, store: OnlineStore) -> None:
    now = datetime.now(UTC)
    write_feature_table(ws, feature_rows(range(6), now, days=(0,)))
    materialize(ws, "customer_stats", store=store)
    write_feature_table(ws, feature_rows(range(4), now, days=(0,), seed=1), mode="overwrite")
    result = materialize(ws, "customer_stats", store=store)
    assert result.full and result.reason.startswith("rewritten since version 0")
    assert (result.rows_written, result.rows_removed) == (4, 2)
    assert "2 entities no longer in the table removed" in result.summary()
    statuses = [item.status for item in get_online(ws, "customer_stats", ["4", "5"], store=store)]
    assert statuses == ["missing", "missing"]


def test_rows_with_a_null_key_are_skipped_and_counted(ws: Workspace, store: OnlineStore) -> None:
    rows = feature_rows(range(3), datetime.now(UTC), days=(0,))
    keys = pa.array([0, None, 2], pa.int64())
    write_feature_table(ws, rows.set_column(0, KEY, keys))
    result = materialize(ws, "customer_stats", store=store)
    assert (result.rows_written, result.rows_null_key) == (2, 1)
    assert "1 rows skipped: a key or the event time is null" in result.summary()


def test_unknown_tables_and_keys_say_what_to_do(ws: Workspace, store: OnlineStore) -> None:
    with pytest.raises(BrickyardError, match="no feature table 'custmer_stats'"):
        materialize(ws, "custmer_stats", store=store)
    write_feature_table(ws, feature_rows(range(2), datetime.now(UTC)))
    (ws.root / "features" / "not_built.yaml").write_text("keys: [k]\nevent_time: t\nsource: {table: silver.x}\n")
    with pytest.raises(BrickyardError, match="features.not_built is not in the lake yet") as caught:
        materialize(ws, "not_built", store=store)
    assert "run the pipeline task of kind features" in str(caught.value)
    with pytest.raises(BrickyardError, match="was never materialized to the online store") as never:
        get_online(ws, "customer_stats", ["1"], store=store)
    assert "brickyard features materialize customer_stats" in str(never.value)
    materialize(ws, "customer_stats", store=store)
    assert get_online(ws, "customer_stats", ["999"], store=store)[0].status == "missing"


def test_get_offline_as_of_a_time_matches_the_brute_force_as_of(ws: Workspace) -> None:
    now = datetime.now(UTC)
    rows = feature_rows(range(30), now)
    write_feature_table(ws, rows)
    for at in (now, now - timedelta(days=20), now - timedelta(days=50)):
        for item in get_offline(ws, "customer_stats", [str(c) for c in range(30)], at):
            expected = as_of(rows, int(item.key), at, TTL, BASE_FEATURES)
            if all(value is None for value in expected.values()) and item.status != "live":
                continue
            assert item.status == "live" and item.values == expected


def test_a_key_of_a_two_key_table_is_comma_separated(ws: Workspace) -> None:
    (ws.root / "features").mkdir(exist_ok=True)
    (ws.root / "features" / "pairs.yaml").write_text("keys: [a, b]\nevent_time: t\nsource: {table: silver.x}\n")
    ws.lake.write("features.pairs", pa.table({
        "a": [1, 1], "b": ["x", "y"], "t": pa.array([datetime.now(UTC)] * 2, pa.timestamp("us", tz="UTC")), "v": [10, 20],
    }))
    store = open_online_store("sqlite:///o.db", root=ws.root)
    materialize(ws, "pairs", store=store)
    assert [item.values for item in get_online(ws, "pairs", ["1,y", "1,x"], store=store)] == [{"v": 20}, {"v": 10}]
    with pytest.raises(UsageError, match="has 2 key columns"):
        get_online(ws, "pairs", ["1"], store=store)
    # an integer key column takes whole numbers only (a typo was "missing"), written any way
    assert [item.values for item in get_online(ws, "pairs", ["+1,y", "001,x"], store=store)] == [{"v": 20}, {"v": 10}]
    for wrong in ("one,x", "1.0,x"):
        with pytest.raises(UsageError, match=r"is not an integer, and features.pairs's key column a is int64"):
            get_online(ws, "pairs", [wrong], store=store)
        with pytest.raises(UsageError, match="is not an integer"):
            get_offline(ws, "pairs", [wrong], datetime.now(UTC))
    assert [item.values for item in get_offline(ws, "pairs", [" 1 , y"], datetime.now(UTC))] == [{"v": 20}]


def test_online_status_gives_describe_the_freshness(ws: Workspace, store: OnlineStore) -> None:
    now = datetime.now(UTC)
    rows = feature_rows(range(5), now, days=(0,))
    write_feature_table(ws, rows)
    assert online_status(ws, "customer_stats", store=store) == {"store": store.url, "materialized": False}
    materialize(ws, "customer_stats", store=store)
    status = online_status(ws, "customer_stats", store=store)
    newest = max(rows.column(EVENT).to_pylist())
    assert status["materialized"] and status["version"] == 0 and status["rows_written"] == 5
    assert abs(status["newest_event_time"] - newest) < timedelta(microseconds=1)
    assert abs(status["freshness_seconds"] - (datetime.now(UTC) - newest).total_seconds()) < 5
    assert status["ttl_seconds"] == TTL.total_seconds()
    assert "error" in online_status(ws, "customer_stats", store=open_online_store("redis://127.0.0.1:1/0"))


def test_rows_tied_on_event_time_resolve_as_the_offline_join_does(ws: Workspace, store: OnlineStore) -> None:
    """Equal key and event time: the greatest feature values win, column by column, a null
    lowest (engines/asof.py), online and offline alike, whatever the rows' order."""
    now = datetime.now(UTC).replace(microsecond=0)
    tied = [
        (1, 5.0, 3, "loyal"), (1, 5.0, 7, None), (1, None, 9, "new"),  # 5.0 > null; then 7 > 3
        (2, 1.0, None, "lapsed"), (2, 1.0, 2, "new"),  # equal amount: 2 > null orders
        (3, 2.0, 1, None), (3, 2.0, 1, "new"),  # equal but the segment: "new" > null
    ]
    rows = pa.table({
        KEY: pa.array([r[0] for r in reversed(tied)], pa.int64()),
        EVENT: pa.array([now - timedelta(days=1)] * len(tied), pa.timestamp("us", tz="UTC")),
        "recency_days": pa.array([1.0] * len(tied)),
        "amount_90d": pa.array([r[1] for r in reversed(tied)], pa.float64()),
        "orders": pa.array([r[2] for r in reversed(tied)], pa.int64()),
        "segment": pa.array([r[3] for r in reversed(tied)], pa.string()),
    })
    write_feature_table(ws, rows)
    materialize(ws, "customer_stats", store=store)
    expected = {
        "1": {"recency_days": 1.0, "amount_90d": 5.0, "orders": 7, "segment": None},
        "2": {"recency_days": 1.0, "amount_90d": 1.0, "orders": 2, "segment": "new"},
        "3": {"recency_days": 1.0, "amount_90d": 2.0, "orders": 1, "segment": "new"},
    }
    online = {item.key: item.values for item in get_online(ws, "customer_stats", ["1", "2", "3"], store=store)}
    offline = {item.key: item.values for item in get_offline(ws, "customer_stats", ["1", "2", "3"], now)}
    assert online == offline == expected
