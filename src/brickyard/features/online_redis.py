"""The Redis online store (`online_store: redis://HOST:PORT/DB`).

One hash per entity, `NAMESPACE:TABLE:ENTITY`, with the fields `e` (event time, µs), `c`
(created time, µs, or empty), `w` (write time, µs) and `v` (the feature values, a JSON
object): a lookup is one HMGET. A table with a TTL also sets the key to expire at event time
+ TTL (PEXPIREAT), so expired rows leave memory; reads check the TTL themselves as well.
Writes go through non-transactional pipelines, a batch per round trip; table states are the
fields of the hash `NAMESPACE:__tables__`. The `redis` package is imported only here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from brickyard.config.secrets import mask
from brickyard.features.online import OnlineRow, OnlineStore, OnlineStoreError, TableState

SCAN_COUNT = 10_000


class RedisOnlineStore(OnlineStore):
    """Feature rows in Redis, under a namespace (a prefix of every key)."""

    def __init__(self, url: str, *, namespace: str = "brickyard") -> None:
        self.url = url
        self.namespace = namespace
        self._local = threading.local()

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
            client = redis.Redis.from_url(self.url, socket_timeout=30, socket_connect_timeout=5)
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

    def write(self, table: str, rows: Sequence[OnlineRow], *, guard: bool, ttl_us: int | None = None) -> int:
        if guard:
            stored = self.read_many(table, [row.entity for row in rows])
            rows = [row for row, old in zip(rows, stored) if old is None or row.newer_than(old.event_us, old.created_us)]
        if not rows:
            return 0

        def send() -> None:
            pipe = self.client.pipeline(transaction=False)
            command = pipe.execute_command
            for row in rows:
                key = self._key(table, row.entity)
                created = "" if row.created_us is None else row.created_us
                command("HSET", key, "e", row.event_us, "c", created, "w", row.write_us, "v", row.values_json)
                if ttl_us is not None:
                    command("PEXPIREAT", key, (row.event_us + ttl_us) // 1000)
                else:
                    command("PERSIST", key)
            pipe.execute()

        self._call("a write", send)
        return len(rows)

    def read(self, table: str, entity: str) -> OnlineRow | None:
        found = self._call("a read", self.client.execute_command, "HMGET", self._key(table, entity), "e", "c", "w", "v")
        return _row(entity, found)

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


def _row(entity: str, found: Any) -> OnlineRow | None:
    if not found or found[0] is None or found[3] is None:
        return None
    event, created, written, values = found
    return OnlineRow(entity, int(event), int(created) if created else None, int(written), bytes(values))


def _glob_escape(text: str) -> str:
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)
