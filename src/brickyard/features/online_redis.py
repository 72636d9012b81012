"""The Redis online store (`online_store: redis://HOST:PORT/DB`).

One hash per entity, `NAMESPACE:TABLE:ENTITY`, with the fields `e` (event time, µs), `c`
(created time, µs, or empty), `w` (write time, µs) and `v` (the feature values, a JSON
object): a lookup is one HMGET. A table with a TTL also sets the key to expire at event time
+ TTL (PEXPIREAT), so expired rows leave memory; reads check the TTL themselves as well.
A write sends a batch of entities to a Lua script (`WRITE_SCRIPT`) in one command, packed
here (redis-py packs argument by argument, too slow for a million rows): the script applies
the guard (a stored row with a later event time, or the same event time and a later created
time, is kept) and sets the TTL, atomically per batch, without a read round trip. Table
states are the fields of the hash `NAMESPACE:__tables__`. The `redis` package is imported only here.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from brickyard.config.secrets import mask
from brickyard.features.online import OnlineRow, OnlineStore, OnlineStoreError, RowBatch, TableState
from brickyard.features.redis_pipe import Address, RedisPipe, RedisReplyError, pack

SCAN_COUNT = 10_000
READ_TIMEOUT_SECONDS = 30.0  # as the redis-py client's socket_timeout
SCRIPT_ENTITIES = 2_000  # entities per script call: Redis runs one call at a time, so keep each short

# KEYS: the entities' keys. ARGV: guard (1/0), TTL in µs (-1: none), write time, then per
# entity its event time, created time ("" when unknown) and values. Lua numbers are doubles:
# microseconds since the epoch stay exact (< 2^53). Returns how many entities were written.
WRITE_SCRIPT = """
local guard = ARGV[1] == '1'
local ttl = tonumber(ARGV[2])
local written_at = ARGV[3]
local written = 0
for i = 1, #KEYS do
  local at = 3 + (i - 1) * 3
  local event, created, values = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
  local event_us = tonumber(event)
  local write = true
  if guard then
    local old = redis.call('HMGET', KEYS[i], 'e', 'c')
    if old[1] then
      local old_event = tonumber(old[1])
      if old_event > event_us then
        write = false
      elseif old_event == event_us and (tonumber(old[2]) or 0) > (tonumber(created) or 0) then
        write = false
      end
    end
  end
  if write then
    redis.call('HSET', KEYS[i], 'e', event, 'c', created, 'w', written_at, 'v', values)
    if ttl >= 0 then
      redis.call('PEXPIREAT', KEYS[i], math.floor((event_us + ttl) / 1000))
    else
      redis.call('PERSIST', KEYS[i])
    end
    written = written + 1
  end
end
return written
"""
_SCRIPT = WRITE_SCRIPT.encode()


class RedisOnlineStore(OnlineStore):
    """Feature rows in Redis, under a namespace (a prefix of every key)."""

    def __init__(self, url: str, *, namespace: str = "brickyard") -> None:
        self.url = url
        self.namespace = namespace
        self._local = threading.local()
        self._pipe: RedisPipe | None = None  # the event loop's connection (`read_async`)
        self._connecting: asyncio.Task[RedisPipe] | None = None

    @property
    def client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            try:
                import redis
            except ImportError as exc:
                raise OnlineStoreError(
                    "the Redis online store needs the redis package", hint="pip install 'brickyard[redis]'"
                ) from exc
            client = redis.Redis.from_url(self.url, socket_timeout=READ_TIMEOUT_SECONDS, socket_connect_timeout=5)
            self._local.client = client
        return client

    def _key(self, table: str, entity: str) -> str:
        return f"{self.namespace}:{table}:{entity}"

    def _call(self, what: str, function: Any, *args: Any) -> Any:
        import redis

        try:
            return function(*args)
        except redis.RedisError as exc:
            raise OnlineStoreError(
                f"Redis online store {mask(self.url)}: {what} failed: {exc}",
                hint="check the server is running and online_store in brickyard.yaml points at it",
                transient=isinstance(exc, redis.ConnectionError | redis.TimeoutError),
            ) from exc

    def write(self, table: str, rows: RowBatch, *, guard: bool, ttl_us: int | None = None) -> int:
        if not len(rows):
            return 0
        prefix = f"{self.namespace}:{table}:".encode()
        head = [b"1" if guard else b"0", b"-1" if ttl_us is None else str(ttl_us).encode(), str(rows.write_us).encode()]

        def commands() -> Iterator[bytes]:
            for start in range(0, len(rows), SCRIPT_ENTITIES):
                end = start + SCRIPT_ENTITIES
                keys = [prefix + entity.encode() for entity in rows.entities[start:end]]
                args = list(head)
                for event, created, values in zip(rows.event_us[start:end], rows.created_us[start:end], rows.values_json[start:end]):
                    args += (str(event).encode(), b"" if created is None else str(created).encode(), values)
                yield _pack([b"EVAL", _SCRIPT, str(len(keys)).encode(), *keys, *args])

        replies: list[Any] = self._call("a write", self._send_overlapped, commands())
        return sum(int(reply) for reply in replies)

    def _send_overlapped(self, commands: Iterator[bytes]) -> list[Any]:
        """Send packed commands on one pooled connection, packing the next while Redis runs
        the one before; returns their replies.

        Raises:
            redis.RedisError: a command failed (the connection is dropped, not reused).
        """
        import redis

        pool = self.client.connection_pool
        connection = pool.get_connection()
        replies: list[Any] = []
        in_flight = 0
        try:
            for command in commands:
                connection.send_packed_command([command])
                if in_flight:
                    replies.append(connection.read_response())
                in_flight = 1
            if in_flight:
                replies.append(connection.read_response())
        except (redis.ConnectionError, redis.ResponseError):
            connection.disconnect()  # replies may be left unread on it
            raise
        finally:
            pool.release(connection)
        return replies

    def read(self, table: str, entity: str) -> OnlineRow | None:
        found = self._call("a read", self.client.execute_command, "HMGET", self._key(table, entity), "e", "c", "w", "v")
        return _row(entity, found)

    async def read_async(self, table: str, entity: str) -> OnlineRow | None:
        (found,) = await self.read_many_async(table, [entity])
        return found

    async def read_many_async(self, table: str, entities: Sequence[str]) -> list[OnlineRow | None]:
        """`read_many` on the event loop's pipelined connection (`redis_pipe`): the loop
        serves other requests while Redis answers. A rediss:// URL is read as `read_many`."""
        if not entities:
            return []
        if self.url.startswith("rediss://"):
            return self.read_many(table, entities)
        prefix = f"{self.namespace}:{table}:".encode()
        commands = [_pack([b"HMGET", prefix + entity.encode(), b"e", b"c", b"w", b"v"]) for entity in entities]
        try:
            pipe = self._pipe
            if pipe is None or pipe.loop is not asyncio.get_running_loop() or not pipe.usable:
                pipe = await self._connect()
            replies = await pipe.call_many(commands)
        except (OSError, TimeoutError, RedisReplyError) as exc:
            raise OnlineStoreError(
                f"Redis online store {mask(self.url)}: a read failed: {str(exc) or type(exc).__name__}",
                hint="check the server is running and online_store in brickyard.yaml points at it",
                transient=not isinstance(exc, RedisReplyError),
            ) from exc
        return [_row(entity, found) for entity, found in zip(entities, replies)]

    async def _connect(self) -> RedisPipe:
        """The running loop's connection, opened once however many requests ask at once."""
        loop = asyncio.get_running_loop()
        connecting = self._connecting
        if connecting is None or connecting.get_loop() is not loop or connecting.done():
            connecting = self._connecting = loop.create_task(RedisPipe.open(self._address(), timeout=READ_TIMEOUT_SECONDS))
        try:
            pipe = await asyncio.shield(connecting)
        finally:
            if self._connecting is connecting and connecting.done():
                self._connecting = None
        self._pipe = pipe
        return pipe

    def _address(self) -> Address:
        from redis.connection import parse_url

        parsed = parse_url(self.url)
        return Address(
            host=parsed.get("host") or "localhost", port=int(parsed.get("port") or 6379), path=parsed.get("path"),
            db=int(parsed.get("db") or 0), username=parsed.get("username"), password=parsed.get("password"),
        )

    def read_many(self, table: str, entities: Sequence[str]) -> list[OnlineRow | None]:
        def fetch() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            for entity in entities:
                pipe.execute_command("HMGET", self._key(table, entity), "e", "c", "w", "v")
            result: list[Any] = pipe.execute()
            return result

        return [_row(entity, found) for entity, found in zip(entities, self._call("a read", fetch))]

    def remove_written_before(self, table: str, write_us: int) -> int:
        def remove() -> int:
            client = self.client
            removed = 0
            pattern = f"{self.namespace}:{_glob_escape(table)}:*"
            batch: list[bytes] = []
            for key in client.scan_iter(match=pattern, count=SCAN_COUNT):
                batch.append(key)
                if len(batch) >= SCAN_COUNT:
                    removed += self._remove_stale(batch, write_us)
                    batch = []
            if batch:
                removed += self._remove_stale(batch, write_us)
            return removed

        result: int = self._call("removing stale rows", remove)
        return result

    def _remove_stale(self, keys: list[bytes], write_us: int) -> int:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hget(key, "w")
        stale = [key for key, written in zip(keys, pipe.execute()) if written is not None and int(written) < write_us]
        if stale:
            self.client.delete(*stale)
        return len(stale)

    def _tables_key(self) -> str:
        return f"{self.namespace}:__tables__"

    def state(self, table: str) -> TableState | None:
        found = self._call("reading the table state", self.client.hget, self._tables_key(), table)
        return TableState.from_json(found) if found else None

    def set_state(self, state: TableState) -> None:
        self._call("recording the table state", self.client.hset, self._tables_key(), state.table, state.to_json())

    def states(self) -> list[TableState]:
        found = self._call("reading the table states", self.client.hgetall, self._tables_key())
        return sorted((TableState.from_json(value) for value in found.values()), key=lambda state: state.table)

    def close(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None:
            client.close()
            self._local.client = None
        pipe, self._pipe = self._pipe, None
        if pipe is not None and not pipe.loop.is_closed():
            pipe.loop.call_soon_threadsafe(pipe.close)


def _pack(args: list[bytes]) -> bytes:
    """One command in Redis's protocol (RESP): an array of bulk strings."""
    return pack(*args)


def _row(entity: str, found: Any) -> OnlineRow | None:
    if not found or found[0] is None or found[3] is None:
        return None
    event, created, written, values = found
    return OnlineRow(entity, int(event), int(created) if created else None, int(written), bytes(values))


def _glob_escape(text: str) -> str:
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)
