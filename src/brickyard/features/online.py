"""The online store: per feature table and entity, the latest feature row, for lookups by key.

>>> import tempfile, time
>>> store = open_online_store("sqlite:///" + tempfile.mkdtemp() + "/online.db")
>>> now = now_us()
>>> store.write("features.rfm", RowBatch(["42"], [now - 10], [None], now, [b'{"recency": 3}']), guard=True)
1
>>> live(store.read("features.rfm", "42"), ttl_us=None, at_us=now).values
{'recency': 3}

Two implementations share the interface `OnlineStore`: SQLite (`online_sqlite`, the default:
a file in the workspace) and Redis (`online_redis`: `online_store: redis://HOST:PORT/DB` in
brickyard.yaml). A row holds the feature values (a JSON object), the event time (when they
became true), the created time (when known, for ties) and the write time. Times are integer
microseconds since the epoch, so a TTL boundary is exact.

TTL is enforced on read (`live`): a value whose event time is at or before `now - ttl` is
absent, never served as present; Redis also lets such keys expire by themselves. Keys are
compared as text: one key column's value as `str(value)`, several joined by U+001F.
Per table the store also keeps a `TableState`: the Delta version last materialized, when,
how many rows that run wrote, the newest event time (its freshness).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from brickyard.errors import BrickyardError

KEY_SEPARATOR = "\x1f"


class OnlineStoreError(BrickyardError):
    """The online store cannot be reached or used (a bad URL, Redis down, no such table)."""


@dataclass(frozen=True)
class OnlineRow:
    """One entity's latest feature row, as stored: `values` is a JSON object (bytes)."""

    entity: str
    event_us: int
    created_us: int | None
    write_us: int
    values_json: bytes

    @property
    def values(self) -> dict[str, Any]:
        loaded: dict[str, Any] = orjson.loads(self.values_json)
        return loaded

    def newer_than(self, event_us: int, created_us: int | None) -> bool:
        """True when this row wins over one with these times (the same event time: the
        later created time wins, and a rewrite of the same times replaces it)."""
        return (self.event_us, self.created_us or 0) >= (event_us, created_us or 0)


@dataclass(frozen=True)
class RowBatch:
    """Rows to write, column by column (no object per row: a million of them must be
    cheap), all with the same write time."""

    entities: list[str]
    event_us: list[int]
    created_us: list[int | None]
    write_us: int
    values_json: list[bytes]

    def __len__(self) -> int:
        return len(self.entities)

    @classmethod
    def of(cls, rows: Sequence[OnlineRow]) -> RowBatch:
        """A batch of rows that share one write time."""
        write_times = {row.write_us for row in rows}
        if len(write_times) > 1:
            raise ValueError("the rows of a batch share one write time")
        return cls(
            [row.entity for row in rows], [row.event_us for row in rows], [row.created_us for row in rows],
            write_times.pop() if write_times else 0, [row.values_json for row in rows],
        )

    def rows(self) -> list[OnlineRow]:
        return [
            OnlineRow(entity, event, created, self.write_us, values)
            for entity, event, created, values in zip(self.entities, self.event_us, self.created_us, self.values_json)
        ]


@dataclass(frozen=True)
class TableState:
    """What the store knows about one materialized feature table."""

    table: str
    version: int  # the Delta version last materialized
    materialized_at_us: int
    rows_written: int  # by the last materialization
    newest_event_us: int | None
    ttl_us: int | None
    features: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: bytes | str) -> TableState:
        doc = orjson.loads(text)
        doc["features"] = tuple(doc.get("features") or ())
        return cls(**doc)

    def freshness_seconds(self, at_us: int | None = None) -> float | None:
        """Seconds between the newest event time in the store and now (None: no rows)."""
        if self.newest_event_us is None:
            return None
        return ((at_us if at_us is not None else now_us()) - self.newest_event_us) / 1e6


class OnlineStore(ABC):
    """Latest feature rows per (feature table, entity), and a state per table."""

    url: str

    @abstractmethod
    def write(self, table: str, rows: RowBatch, *, guard: bool, ttl_us: int | None = None) -> int:
        """Store rows; returns how many were written. With `guard`, a row older than the
        stored one for its entity (`OnlineRow.newer_than`) is skipped."""

    @abstractmethod
    def read(self, table: str, entity: str) -> OnlineRow | None:
        """The stored row of one entity (TTL not applied: see `live`), or None."""

    def read_many(self, table: str, entities: Sequence[str]) -> list[OnlineRow | None]:
        """The stored rows of several entities, in order."""
        return [self.read(table, entity) for entity in entities]

    async def read_async(self, table: str, entity: str) -> OnlineRow | None:
        """`read` for the serving event loop. This default reads inline (a SQLite lookup is
        one B-tree search, cheaper than a hop to a thread); a store that waits on the
        network overrides it so that the loop serves other requests meanwhile."""
        return self.read(table, entity)

    async def read_many_async(self, table: str, entities: Sequence[str]) -> list[OnlineRow | None]:
        """`read_many` for the serving event loop (see `read_async`)."""
        return self.read_many(table, entities)

    @abstractmethod
    def remove_written_before(self, table: str, write_us: int) -> int:
        """Delete the table's rows written before `write_us` (after a full rebuild);
        returns how many."""

    @abstractmethod
    def state(self, table: str) -> TableState | None:
        """The table's state, or None when it was never materialized here."""

    @abstractmethod
    def set_state(self, state: TableState) -> None:
        """Record a table's state (after its rows are written)."""

    @abstractmethod
    def states(self) -> list[TableState]:
        """Every materialized table's state, sorted by table."""

    @abstractmethod
    def close(self) -> None:
        """Release connections (the store may be used again: it reconnects)."""


def now_us() -> int:
    """The current time in integer microseconds since the epoch."""
    return time.time_ns() // 1000


def entity_id(values: Iterable[Any]) -> str:
    """The text form of an entity key (one value, or several joined by U+001F)."""
    return KEY_SEPARATOR.join(_key_text(value) for value in values)


def _key_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 42.0 from a JSON number is the key 42
    return str(value)


def live(row: OnlineRow | None, *, ttl_us: int | None, at_us: int) -> OnlineRow | None:
    """The row when its value is live at `at_us`: its event time is after `at_us - ttl`
    (the training set's rule); None when it is absent or expired."""
    if row is None:
        return None
    if ttl_us is not None and row.event_us <= at_us - ttl_us:
        return None
    return row


def open_online_store(url: str, *, root: Any = None, namespace: str = "brickyard") -> OnlineStore:
    """The store a URL names: `sqlite:///PATH` (relative to `root`) or `redis://...`.
    Constructors do no I/O: the first read or write connects.

    Raises:
        OnlineStoreError: a URL of no known kind.
    """
    if url.startswith("sqlite:///"):
        from pathlib import Path

        from brickyard.features.online_sqlite import SqliteOnlineStore

        path = Path(url[len("sqlite:///") :])
        if not path.is_absolute() and root is not None:
            path = Path(root) / path
        return SqliteOnlineStore(path)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from brickyard.features.online_redis import RedisOnlineStore

        return RedisOnlineStore(url, namespace=namespace)
    raise OnlineStoreError(
        f"online store {url!r} is not a sqlite:/// or redis:// URL",
        hint="set online_store in brickyard.yaml to sqlite:///.brickyard/online.db or redis://HOST:PORT/DB",
    )


def workspace_store(ws: Any) -> OnlineStore:
    """The workspace's online store (`online_store` in brickyard.yaml, `${env:...}` resolved)."""
    from brickyard.config.secrets import resolve

    return open_online_store(resolve(ws.config.online_store), root=ws.root, namespace=f"brickyard:{ws.config.name}")
