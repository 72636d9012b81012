"""Materialize a feature table into the online store: the latest row per entity.

>>> result = materialize(ws, "customer_rfm")          # doctest: +SKIP
>>> print(result.summary())                            # doctest: +SKIP
features.customer_rfm: versions 3..5, 1,204 rows read, 1,180 rows written to sqlite:///...

Incremental: the store records, per table, the Delta version it last materialized; the next
run reads only the rows added since (`Lake.added_since`), keeps the latest per entity and
writes those whose event time is not older than the stored row's. A run with no new version
writes nothing and says so. When the table was rewritten since (an overwrite, merge or
optimize removed files) or `full` is asked for, the whole table is read, every entity
written, and rows of entities no longer in the table are removed from the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from brickyard.core.feature_table import FeatureTableSpec
from brickyard.errors import BrickyardError, LakeError
from brickyard.features.online import OnlineStore, RowBatch, TableState, entity_id, now_us, workspace_store

if TYPE_CHECKING:
    import pyarrow as pa

    from brickyard.workspace import Workspace

BATCH_ROWS = 10_000


@dataclass(frozen=True)
class MaterializeResult:
    """What one materialization did."""

    table: str
    store: str
    from_version: int | None  # the version materialized before (None: never)
    to_version: int
    full: bool
    reason: str  # why the whole table was read ("" for an incremental run)
    rows_read: int
    rows_written: int
    rows_null_key: int  # rows skipped: a key or the event time is null
    rows_removed: int  # entities no longer in the table, removed after a full read
    seconds: float

    @property
    def up_to_date(self) -> bool:
        return self.from_version == self.to_version and not self.full

    def summary(self) -> str:
        """One line for a person."""
        if self.up_to_date:
            return f"{self.table} is up to date at version {self.to_version} in {self.store}: nothing written"
        span = f"version {self.to_version}" if self.from_version is None else f"versions {self.from_version}..{self.to_version}"
        text = (
            f"{self.table}: {span}, {self.rows_read:,} rows read, {self.rows_written:,} rows written to "
            f"{self.store} in {self.seconds:.1f}s"
        )
        if self.full:
            text += f" (whole table: {self.reason})"
        if self.rows_null_key:
            text += f"; {self.rows_null_key:,} rows skipped: a key or the event time is null"
        if self.rows_removed:
            text += f"; {self.rows_removed:,} entities no longer in the table removed"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table, "store": self.store, "up_to_date": self.up_to_date,
            "from_version": self.from_version, "to_version": self.to_version,
            "full": self.full, "reason": self.reason, "rows_read": self.rows_read,
            "rows_written": self.rows_written, "rows_null_key": self.rows_null_key,
            "rows_removed": self.rows_removed, "seconds": round(self.seconds, 3),
        }


def materialize(
    ws: Workspace,
    name: str,
    *,
    store: OnlineStore | None = None,
    full: bool = False,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[int], None] | None = None,
) -> MaterializeResult:
    """Write the latest row per entity of `features.NAME` to the online store.

    Raises:
        BrickyardError: no such feature table, or it is not in the lake yet.
        OnlineStoreError: the store cannot be reached.
    """
    started = time.perf_counter()
    spec = ws.feature_table(name)
    lake = ws.lake
    if not lake.exists(spec.table):
        raise BrickyardError(
            f"feature table {spec.table} is not in the lake yet: nothing to materialize",
            hint=f"run the pipeline task of kind features that builds it (features/{spec.name}.yaml)",
        )
    store = store or workspace_store(ws)
    state = store.state(spec.table)
    current = lake.version(spec.table)
    since = state.version if state is not None and not full else None
    reason = "asked for (--full)" if full else "first materialization" if state is None else ""
    if state is not None and state.version > current:
        since, reason = None, f"the table is at version {current}, older than the {state.version} last materialized (re-created)"
    if since == current:
        return MaterializeResult(spec.table, store.url, since, current, False, "", 0, 0, 0, 0, time.perf_counter() - started)
    try:
        dataset, version = lake.added_since(spec.table, since, until=current)
    except LakeError as exc:
        dataset, version = lake.added_since(spec.table, None, until=current)
        since, reason = None, f"rewritten since version {state.version if state else '?'}: {exc.message}"
    columns = [column.name for column in dataset.schema]
    features = [column for column in columns if column not in spec.feature_columns_excluded]
    wanted = [*spec.keys, spec.event_time, *((spec.created_time,) if spec.created_time else ()), *features]
    _check_columns(spec, columns)
    data = dataset.to_table(columns=wanted)
    latest, null_keys = latest_per_entity(data, spec)
    ttl_us = int(spec.ttl.total_seconds() * 1_000_000) if spec.ttl is not None else None
    write_us = now_us()
    written = 0
    newest = state.newest_event_us if state is not None and since is not None else None
    for rows in _online_rows(latest, spec, features, write_us, batch_rows):
        written += store.write(spec.table, rows, guard=since is not None, ttl_us=ttl_us)
        top = max(rows.event_us)
        newest = top if newest is None else max(newest, top)
        if progress is not None:
            progress(len(rows))
    removed = store.remove_written_before(spec.table, write_us) if since is None and state is not None else 0
    store.set_state(TableState(spec.table, version, now_us(), written, newest, ttl_us, tuple(features)))
    return MaterializeResult(
        spec.table, store.url, state.version if state is not None else None, version, since is None,
        reason, data.num_rows, written, null_keys, removed, time.perf_counter() - started,
    )


def _check_columns(spec: FeatureTableSpec, columns: list[str]) -> None:
    missing = [column for column in spec.feature_columns_excluded if column not in columns]
    if missing:
        raise BrickyardError(
            f"{spec.table} has no column(s) {', '.join(missing)}, which features/{spec.name}.yaml names",
            hint=f"the table has: {', '.join(columns)}",
        )


def latest_per_entity(data: pa.Table, spec: FeatureTableSpec) -> tuple[pa.Table, int]:
    """One row per entity: the one with the latest event time (then the latest created
    time; on equal times the row read last). Rows with a null key or event time are left
    out; returns the rows and how many were left out."""
    import pyarrow as pa
    import pyarrow.compute as pc

    valid = None
    for column in (*spec.keys, spec.event_time):
        mask = pc.is_valid(data[column])
        valid = mask if valid is None else pc.and_(valid, mask)
    kept = data.filter(valid) if valid is not None else data
    null_keys = data.num_rows - kept.num_rows
    if kept.num_rows == 0:
        return kept, null_keys
    order = [(key, "ascending", "at_start") for key in spec.keys] + [(spec.event_time, "ascending", "at_start")]
    if spec.created_time:
        order.append((spec.created_time, "ascending", "at_start"))  # unknown created time: the older
    ordered = kept.take(pc.sort_indices(kept, sort_keys=order))
    count = ordered.num_rows
    last = None
    for key in spec.keys:
        column = ordered[key]
        differs = pc.fill_null(pc.not_equal(column.slice(0, count - 1), column.slice(1)), True)
        last = differs if last is None else pc.or_(last, differs)
    mask = pa.concat_arrays([*(last.chunks if last is not None else []), pa.array([True])])
    return ordered.filter(mask), null_keys


def times_us(column: Any, name: str, table: str) -> list[int | None]:
    """A timestamp or date column as integer microseconds since the epoch (naive: UTC).

    Raises:
        BrickyardError: another type.
    """
    import pyarrow as pa

    kind = column.type
    if pa.types.is_timestamp(kind):
        micros = column.cast(pa.timestamp("us", tz=kind.tz))
    elif pa.types.is_date(kind):
        micros = column.cast(pa.timestamp("us"))
    else:
        raise BrickyardError(
            f"column {name} of {table} is {kind}, not a timestamp or a date",
            hint="cast it to TIMESTAMP in the feature table's source SQL",
        )
    result: list[int | None] = micros.cast(pa.int64()).to_pylist()
    return result


def _online_rows(
    latest: pa.Table, spec: FeatureTableSpec, features: list[str], write_us: int, batch_rows: int
) -> Iterator[RowBatch]:
    for start in range(0, latest.num_rows, batch_rows):
        chunk = latest.slice(start, batch_rows)
        keys = [chunk[key].to_pylist() for key in spec.keys]
        entities = [entity_id(values) for values in zip(*keys)]
        events = times_us(chunk[spec.event_time], spec.event_time, spec.table)  # no nulls: see latest_per_entity
        created = (
            times_us(chunk[spec.created_time], spec.created_time, spec.table)
            if spec.created_time
            else [None] * chunk.num_rows
        )
        values = [chunk[feature].to_pylist() for feature in features]
        dump = orjson.dumps
        yield RowBatch(
            entities, events, created, write_us,  # type: ignore[arg-type]
            [dump(dict(zip(features, row)), default=_json_default) for row in zip(*values)],
        )


def _json_default(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
