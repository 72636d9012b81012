"""`brickyard features get`: one feature table's values for some entity keys, online (now)
or offline (as of a time, from the Delta table, with the same TTL rule as training sets).

A key is given as text; a table with several key columns takes them comma-separated
(`--` in front of keys that start with a dash).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from brickyard.errors import BrickyardError, UsageError
from brickyard.features.materialize import times_us
from brickyard.features.online import OnlineStore, entity_id, live, now_us, workspace_store

if TYPE_CHECKING:
    from brickyard.core.feature_table import FeatureTableSpec
    from brickyard.workspace import Workspace

Status = Literal["live", "expired", "missing"]


@dataclass(frozen=True)
class FeatureValues:
    """One entity's values: `live` (values given), `expired` (older than the TTL) or
    `missing` (no row for the key)."""

    key: str
    status: Status
    values: dict[str, Any] | None
    event_time: datetime | None
    write_time: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "status": self.status, "values": self.values,
            "event_time": self.event_time.isoformat() if self.event_time else None,
            "write_time": self.write_time.isoformat() if self.write_time else None,
        }


def parse_key(spec: FeatureTableSpec, text: str) -> str:
    """A key from the command line as the store's entity text.

    Raises:
        UsageError: a table with N key columns given other than N comma-separated values.
    """
    parts = text.split(",") if len(spec.keys) > 1 else [text]
    if len(parts) != len(spec.keys):
        raise UsageError(
            f"key {text!r}: {spec.table} has {len(spec.keys)} key columns ({', '.join(spec.keys)})",
            hint="give each key as VALUE1,VALUE2 in that order",
        )
    return entity_id(part.strip() for part in parts)


def parse_time(text: str) -> datetime:
    """An ISO date or timestamp (naive: UTC).

    Raises:
        UsageError: not one.
    """
    try:
        stamp = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{text!r} is not a date or timestamp", hint="write it as 2024-03-01 or 2024-03-01T12:00:00Z") from None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def get_online(
    ws: Workspace, name: str, keys: list[str], *, store: OnlineStore | None = None, at_us: int | None = None
) -> list[FeatureValues]:
    """The online store's values for `keys` now (TTL applied).

    Raises:
        BrickyardError: no such feature table, or it was never materialized to this store.
    """
    spec = ws.feature_table(name)
    store = store or workspace_store(ws)
    if store.state(spec.table) is None:
        raise BrickyardError(
            f"{spec.table} was never materialized to the online store {store.url}",
            hint=f"run `brickyard features materialize {spec.name}`, or add --at TIMESTAMP to read the Delta table",
        )
    ttl_us = _ttl_us(spec)
    at = at_us if at_us is not None else now_us()
    found = []
    for key in keys:
        row = store.read(spec.table, parse_key(spec, key))
        if row is None:
            found.append(FeatureValues(key, "missing", None, None))
        elif live(row, ttl_us=ttl_us, at_us=at) is None:
            found.append(FeatureValues(key, "expired", None, _stamp(row.event_us), _stamp(row.write_us)))
        else:
            found.append(FeatureValues(key, "live", row.values, _stamp(row.event_us), _stamp(row.write_us)))
    return found


def get_offline(ws: Workspace, name: str, keys: list[str], at: datetime) -> list[FeatureValues]:
    """The values as of `at` from the Delta table: per key the latest row with event time
    <= `at`, expired when at or before `at - ttl` (as training sets join them).

    Raises:
        BrickyardError: no such feature table, or it is not in the lake.
    """
    import pyarrow.compute as pc

    spec = ws.feature_table(name)
    if not ws.lake.exists(spec.table):
        raise BrickyardError(
            f"feature table {spec.table} is not in the lake yet",
            hint=f"run the pipeline task of kind features that builds it (features/{spec.name}.yaml)",
        )
    wanted = {parse_key(spec, key): key for key in keys}
    data = ws.lake.read(spec.table)
    first = pc.cast(data[spec.keys[0]], "string")
    data = data.filter(pc.is_in(first, value_set=_text_array({e.split("\x1f")[0] for e in wanted})))
    at_us = int(at.timestamp() * 1_000_000)
    events = times_us(data[spec.event_time], spec.event_time, spec.table)
    created = times_us(data[spec.created_time], spec.created_time, spec.table) if spec.created_time else [None] * data.num_rows
    key_values = [data[key].to_pylist() for key in spec.keys]
    best: dict[str, tuple[tuple[int, int], int]] = {}
    for index, (values, event, made) in enumerate(zip(zip(*key_values), events, created)):
        entity = entity_id(values)
        if entity not in wanted or event is None or event > at_us:
            continue
        order = (event, made or 0)
        if entity not in best or order >= best[entity][0]:
            best[entity] = (order, index)
    ttl_us = _ttl_us(spec)
    features = [column for column in data.column_names if column not in spec.feature_columns_excluded]
    found = []
    for entity, key in wanted.items():
        if entity not in best:
            found.append(FeatureValues(key, "missing", None, None))
            continue
        (event, _), index = best[entity]
        if ttl_us is not None and event <= at_us - ttl_us:
            found.append(FeatureValues(key, "expired", None, _stamp(event)))
            continue
        row = data.slice(index, 1).select(features).to_pylist()[0]
        found.append(FeatureValues(key, "live", row, _stamp(event)))
    return found


def _ttl_us(spec: FeatureTableSpec) -> int | None:
    return int(spec.ttl.total_seconds() * 1_000_000) if spec.ttl is not None else None


def _stamp(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC)


def _text_array(values: set[str]) -> Any:
    import pyarrow as pa

    return pa.array(sorted(values), pa.string())


def online_status(ws: Workspace, name: str, *, store: OnlineStore | None = None) -> dict[str, Any]:
    """What `brickyard features describe` shows of a table's online copy: the store, the
    Delta version last materialized, when, rows then written, the newest event time and its
    age (freshness, seconds), the TTL. `materialized: false` when never; `error` when the
    store cannot be read (never raised: a description must not fail on it)."""
    from brickyard.features.online import OnlineStoreError

    spec = ws.feature_table(name)
    store = store or workspace_store(ws)
    try:
        state = store.state(spec.table)
    except OnlineStoreError as exc:
        return {"store": store.url, "error": exc.message}
    if state is None:
        return {"store": store.url, "materialized": False}
    return {
        "store": store.url,
        "materialized": True,
        "version": state.version,
        "materialized_at": _stamp(state.materialized_at_us),
        "rows_written": state.rows_written,
        "newest_event_time": _stamp(state.newest_event_us) if state.newest_event_us is not None else None,
        "freshness_seconds": state.freshness_seconds(),
        "ttl_seconds": state.ttl_us / 1e6 if state.ttl_us is not None else None,
    }
