"""`brickyard features get`: one feature table's values for some entity keys, online (now)
or offline (as of a time, from the Delta table, with the same TTL rule as training sets).

A key is given as text; a table with several key columns takes them comma-separated
(`--` in front of keys that start with a dash). A value for an integer key column must be
a whole number (a typo is an error, not a missing key).
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


def parse_key(spec: FeatureTableSpec, text: str, key_types: dict[str, Any] | None = None) -> str:
    """A key from the command line as the store's entity text. With `key_types` (the key
    columns' Arrow types), a value for an integer key column must be an integer.

    Raises:
        UsageError: a table with N key columns given other than N comma-separated values,
            or a value its key column cannot hold.
    """
    import pyarrow as pa

    parts = [part.strip() for part in (text.split(",") if len(spec.keys) > 1 else [text])]
    if len(parts) != len(spec.keys):
        raise UsageError(
            f"key {text!r}: {spec.table} has {len(spec.keys)} key columns ({', '.join(spec.keys)})",
            hint="give each key as VALUE1,VALUE2 in that order",
        )
    values: list[Any] = []
    for column, part in zip(spec.keys, parts):
        kind = (key_types or {}).get(column)
        if kind is not None and pa.types.is_integer(kind):
            try:
                values.append(int(part))  # "+7" and "007" are the key 7
            except ValueError:
                raise UsageError(
                    f"key {text!r}: {part!r} is not an integer, and {spec.table}'s key column {column} is {kind}",
                    hint=f"give {column} as a whole number",
                ) from None
        else:
            values.append(part)
    return entity_id(values)


def key_types(ws: Workspace, spec: FeatureTableSpec) -> dict[str, Any]:
    """The Arrow types of `spec`'s key columns in its Delta table (none when the table is
    not in the lake)."""
    import pyarrow as pa

    if not ws.lake.exists(spec.table):
        return {}
    schema = pa.schema(ws.lake.delta(spec.table).schema().to_arrow())
    return {name: schema.field(name).type for name in spec.keys if name in schema.names}


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
    types = key_types(ws, spec)
    found = []
    for key in keys:
        row = store.read(spec.table, parse_key(spec, key, types))
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
    types = key_types(ws, spec)
    wanted = {parse_key(spec, key, types): key for key in keys}
    data = ws.lake.read(spec.table)
    first = pc.cast(data[spec.keys[0]], "string")
    data = data.filter(pc.is_in(first, value_set=_text_array({e.split("\x1f")[0] for e in wanted})))
    at_us = int(at.timestamp() * 1_000_000)
    events = times_us(data[spec.event_time], spec.event_time, spec.table)
    created = times_us(data[spec.created_time], spec.created_time, spec.table) if spec.created_time else [None] * data.num_rows
    key_values = [data[key].to_pylist() for key in spec.keys]
    features = [column for column in data.column_names if column not in spec.feature_columns_excluded]
    feature_values = data.select(features).to_pylist()
    best: dict[str, tuple[tuple[Any, ...], int]] = {}
    for index, (values, event, made) in enumerate(zip(zip(*key_values), events, created)):
        entity = entity_id(values)
        if entity not in wanted or event is None or event > at_us:
            continue
        # The as-of join's tie rule (engines/asof.py): latest event time, then created time,
        # then the greatest feature values column by column; a null is lowest.
        order = (event, _low_null(made), *(_low_null(v) for v in feature_values[index].values()))
        if entity not in best or order > best[entity][0]:
            best[entity] = (order, index)
    ttl_us = _ttl_us(spec)
    found = []
    for entity, key in wanted.items():
        if entity not in best:
            found.append(FeatureValues(key, "missing", None, None))
            continue
        (event, *_), index = best[entity]
        if ttl_us is not None and event <= at_us - ttl_us:
            found.append(FeatureValues(key, "expired", None, _stamp(event)))
            continue
        found.append(FeatureValues(key, "live", feature_values[index], _stamp(event)))
    return found


def _low_null(value: Any) -> tuple[int, Any]:
    return (0, 0) if value is None else (1, value)


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
