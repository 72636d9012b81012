"""The online store interface, the same suite for SQLite and for a real Redis server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from brickyard.features.online import (
    OnlineRow,
    OnlineStore,
    OnlineStoreError,
    RowBatch,
    TableState,
    entity_id,
    live,
    now_us,
    open_online_store,
)

HOUR_US = 3_600_000_000


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    if request.param == "sqlite":
        opened = open_online_store("sqlite:///online.db", root=tmp_path)
    else:
        url = request.getfixturevalue("redis_url")
        opened = open_online_store(url, namespace=f"test-{uuid.uuid4().hex[:8]}")
    yield opened
    opened.close()


WRITTEN = now_us()


def row(entity: str, event_us: int, values: bytes = b'{"x": 1}', created_us: int | None = None) -> OnlineRow:
    return OnlineRow(entity, event_us, created_us, WRITTEN, values)


def test_a_written_row_reads_back_with_its_times(store: OnlineStore) -> None:
    now = now_us()
    assert store.write("features.t", RowBatch.of([row("1", now - 5, b'{"x": 1.5, "s": "a", "n": null}')]), guard=False) == 1
    found = store.read("features.t", "1")
    assert found is not None and found.values == {"x": 1.5, "s": "a", "n": None}
    assert found.event_us == now - 5 and found.write_us == WRITTEN
    assert store.read("features.t", "2") is None
    assert store.read("features.other", "1") is None


def test_ttl_is_exact_at_the_boundary(store: OnlineStore) -> None:
    """A value whose event time is exactly `now - ttl` is expired (absent); one microsecond
    later it is live: the training set's rule (event time > T - TTL)."""
    event = now_us() - 10 * 1_000_000
    store.write("features.t", RowBatch.of([row("1", event)]), guard=False, ttl_us=HOUR_US)
    stored = store.read("features.t", "1")
    assert live(stored, ttl_us=HOUR_US, at_us=event + HOUR_US) is None
    assert live(stored, ttl_us=HOUR_US, at_us=event + HOUR_US - 1) is stored
    assert live(stored, ttl_us=None, at_us=event + 1000 * HOUR_US) is stored


def test_the_guard_keeps_a_newer_stored_row(store: OnlineStore) -> None:
    now = now_us()
    store.write("features.t", RowBatch.of([row("1", now, b'{"x": "new"}')]), guard=False)
    assert store.write("features.t", RowBatch.of([row("1", now - 1, b'{"x": "late"}'), row("2", now, b'{"x": 2}')]), guard=True) == 1
    assert store.read("features.t", "1").values == {"x": "new"}  # type: ignore[union-attr]
    # the same event time: the later created time wins; without the guard, anything goes
    store.write("features.t", RowBatch.of([row("1", now, b'{"x": "known later"}', created_us=5)]), guard=True)
    assert store.read("features.t", "1").values == {"x": "known later"}  # type: ignore[union-attr]
    store.write("features.t", RowBatch.of([row("1", now - 99, b'{"x": "rebuilt"}')]), guard=False)
    assert store.read("features.t", "1").values == {"x": "rebuilt"}  # type: ignore[union-attr]


def test_read_many_keeps_the_order_and_the_gaps(store: OnlineStore) -> None:
    now = now_us()
    store.write("features.t", RowBatch.of([row("a", now, b'{"x": 1}'), row("c", now, b'{"x": 3}')]), guard=False)
    found = store.read_many("features.t", ["c", "b", "a"])
    assert [item.values["x"] if item else None for item in found] == [3, None, 1]


def test_rows_written_before_a_rebuild_are_removed(store: OnlineStore) -> None:
    old = OnlineRow("gone", now_us(), None, 100, b"{}")
    store.write("features.t", RowBatch.of([old]), guard=False)
    cut = WRITTEN
    store.write("features.t", RowBatch.of([row("kept", now_us())]), guard=False)
    store.write("features.u", RowBatch.of([OnlineRow("other table", now_us(), None, 100, b"{}")]), guard=False)
    assert store.remove_written_before("features.t", cut) == 1
    assert store.read("features.t", "gone") is None and store.read("features.t", "kept") is not None
    assert store.read("features.u", "other table") is not None


def test_table_states_round_trip(store: OnlineStore) -> None:
    assert store.state("features.t") is None and store.states() == []
    state = TableState("features.t", 3, now_us(), 10, now_us() - 2_000_000, HOUR_US, ("a", "b"))
    store.set_state(state)
    store.set_state(TableState("features.a", 1, 0, 0, None, None, ()))
    assert store.state("features.t") == state
    assert [found.table for found in store.states()] == ["features.a", "features.t"]
    freshness = state.freshness_seconds(state.newest_event_us + 5_000_000)  # type: ignore[operator]
    assert freshness == 5.0


def test_keys_are_compared_as_text() -> None:
    assert entity_id([42]) == entity_id(["42"]) == entity_id([42.0]) == "42"
    assert entity_id([1, "a"]) == "1\x1fa"


@pytest.mark.redis
def test_redis_expires_keys_of_a_ttl_table_by_itself(redis_url: str) -> None:
    import redis

    store = open_online_store(redis_url, namespace=f"test-{uuid.uuid4().hex[:8]}")
    store.write("features.t", RowBatch.of([row("1", now_us() - HOUR_US - 1000)]), guard=False, ttl_us=HOUR_US)
    store.write("features.t", RowBatch.of([row("2", now_us())]), guard=False, ttl_us=HOUR_US)
    assert store.read("features.t", "1") is None  # already past event time + TTL: gone from memory
    ttl_ms = redis.Redis.from_url(redis_url).pttl(f"{store.namespace}:features.t:2")  # type: ignore[attr-defined]
    assert 0 < ttl_ms <= 3_600_000


def test_an_unreachable_redis_is_a_clear_error() -> None:
    store = open_online_store("redis://127.0.0.1:1/0")
    with pytest.raises(OnlineStoreError) as caught:
        store.read("features.t", "1")
    assert "redis://127.0.0.1:1/0" in str(caught.value) and "check the server is running" in str(caught.value)
    assert caught.value.transient is True


def test_an_unknown_url_is_refused() -> None:
    with pytest.raises(OnlineStoreError, match="not a sqlite:/// or redis:// URL"):
        open_online_store("postgres://x/y")


def test_a_large_batch_is_written_whole(store: OnlineStore) -> None:
    """More entities than one Redis script call takes (SCRIPT_ENTITIES): every one lands."""
    now = now_us()
    count = 4_500
    batch = RowBatch([str(i) for i in range(count)], [now - i for i in range(count)], [None] * count, WRITTEN,
                     [b'{"i": %d}' % i for i in range(count)])
    assert store.write("features.big", batch, guard=True) == count
    found = store.read_many("features.big", ["0", "2000", "4499", "4500"])
    assert [item.values if item else None for item in found] == [{"i": 0}, {"i": 2000}, {"i": 4499}, None]
    assert found[2].event_us == now - 4499  # type: ignore[union-attr]
    assert store.write("features.big", batch, guard=True) == count  # the same times: rewritten, not skipped
    older = RowBatch(batch.entities, [t - 1 for t in batch.event_us], batch.created_us, WRITTEN, batch.values_json)
    assert store.write("features.big", older, guard=True) == 0


@pytest.mark.redis
def test_a_failed_redis_write_is_an_error_and_the_connection_stays_usable(redis_url: str) -> None:
    import redis

    store = open_online_store(redis_url, namespace=f"test-{uuid.uuid4().hex[:8]}")
    redis.Redis.from_url(redis_url).set(f"{store.namespace}:features.t:taken", "a string, not a hash")
    with pytest.raises(OnlineStoreError, match="a write failed: .*WRONGTYPE"):
        store.write("features.t", RowBatch.of([row("ok", now_us()), row("taken", now_us())]), guard=False)
    assert store.write("features.t", RowBatch.of([row("next", now_us())]), guard=False) == 1
    assert store.read("features.t", "next") is not None


def test_reads_on_the_event_loop_give_what_reads_give(store: OnlineStore) -> None:
    """`read_async` / `read_many_async` (the serving request path): the same rows, the same
    gaps, in order, many at once (on Redis, pipelined on one connection)."""
    import asyncio

    now = now_us()
    count = 300
    batch = RowBatch([str(i) for i in range(count)], [now - i for i in range(count)], [None] * count, WRITTEN,
                     [b'{"i": %d}' % i for i in range(count)])
    store.write("features.t", batch, guard=False)
    wanted = [str(i) for i in range(0, count + 50, 7)]

    async def read_all() -> tuple[list[OnlineRow | None], list[OnlineRow | None]]:
        one_by_one = await asyncio.gather(*(store.read_async("features.t", entity) for entity in wanted))
        return list(one_by_one), await store.read_many_async("features.t", wanted)

    one_by_one, many = asyncio.run(read_all())
    assert one_by_one == many == store.read_many("features.t", wanted)
    assert asyncio.run(store.read_many_async("features.t", [])) == []
    assert [found.values["i"] if found else None for found in many] == [int(e) if int(e) < count else None for e in wanted]
    assert asyncio.run(read_all()) == (one_by_one, many)  # a second event loop connects again


@pytest.mark.redis
def test_a_redis_read_on_the_event_loop_lets_it_serve_others_meanwhile(redis_url: str) -> None:
    """While Redis holds a keys-only lookup's answer back (CLIENT PAUSE), the event loop runs
    other requests: the lookup is awaited, not a blocking round trip."""
    import asyncio

    import redis

    store = open_online_store(redis_url, namespace=f"test-{uuid.uuid4().hex[:8]}")
    store.write("features.t", RowBatch.of([row("1", now_us(), b'{"x": 7}')]), guard=False)
    ticks = 0

    async def ticker(stop: asyncio.Event) -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    async def lookup_while_paused() -> tuple[OnlineRow | None, float]:
        await store.read_async("features.t", "1")  # connected before the pause
        stop = asyncio.Event()
        running = asyncio.create_task(ticker(stop))
        redis.Redis.from_url(redis_url).execute_command("CLIENT", "PAUSE", "400", "ALL")
        started = asyncio.get_running_loop().time()
        found = await store.read_async("features.t", "1")
        waited = asyncio.get_running_loop().time() - started
        stop.set()
        await running
        return found, waited

    found, waited = asyncio.run(lookup_while_paused())
    assert found is not None and found.values == {"x": 7}
    assert waited >= 0.3 and ticks >= 10, (waited, ticks)


def test_an_unreachable_redis_is_a_clear_error_on_the_event_loop_too() -> None:
    import asyncio

    store = open_online_store("redis://127.0.0.1:1/0")
    with pytest.raises(OnlineStoreError) as caught:
        asyncio.run(store.read_async("features.t", "1"))
    assert "redis://127.0.0.1:1/0" in str(caught.value) and "check the server is running" in str(caught.value)
    assert caught.value.transient is True


@pytest.mark.redis
def test_a_redis_restart_fails_the_waiting_reads_and_the_next_one_reconnects(redis_url: str, tmp_path: Path) -> None:
    """A dropped connection fails every lookup waiting on it (a 503 for those requests,
    never another entity's answer); the next lookup connects again."""
    import asyncio

    import redis

    store = open_online_store(redis_url, namespace=f"test-{uuid.uuid4().hex[:8]}")
    store.write("features.t", RowBatch.of([row("1", now_us(), b'{"x": 1}')]), guard=False)
    admin = redis.Redis.from_url(redis_url)

    async def scenario() -> tuple[list[object], OnlineRow | None]:
        await store.read_async("features.t", "1")
        admin.execute_command("CLIENT", "PAUSE", "300", "ALL")
        waiting = [asyncio.create_task(store.read_async("features.t", "1")) for _ in range(5)]
        await asyncio.sleep(0.05)
        admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        await asyncio.sleep(0.4)  # the pause is over
        return outcomes, await store.read_async("features.t", "1")

    outcomes, again = asyncio.run(scenario())
    assert outcomes and all(isinstance(outcome, OnlineStoreError) and outcome.transient for outcome in outcomes), outcomes
    assert again is not None and again.values == {"x": 1}


@pytest.mark.parametrize("cut", range(1, 60))
def test_redis_replies_split_anywhere_are_read_whole(cut: int) -> None:
    from brickyard.features.redis_pipe import _INCOMPLETE, RedisReplyError, parse

    stream = b"*4\r\n$3\r\n123\r\n$0\r\n\r\n$-1\r\n$5\r\n{\"a\"}\r\n*-1\r\n+OK\r\n-ERR no\r\n:12\r\n"
    cut = min(cut, len(stream) - 1)
    replies, start, buffer = [], 0, bytearray(stream[:cut])
    for chunk in (stream[cut:], b""):
        while True:
            reply, end = parse(buffer, start)
            if reply is _INCOMPLETE:
                break
            replies.append(reply)
            start = end
        buffer += chunk
    assert replies[:4] == [[b"123", b"", None, b'{"a"}'], None, b"OK", replies[3]]
    assert isinstance(replies[3], RedisReplyError) and str(replies[3]) == "ERR no" and replies[4] == 12
