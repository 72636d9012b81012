"""Keys-only requests: the features a model was trained with, looked up online by entity key.

A model trained from a training set carries the MLflow artifact
`feature_store/training_set.json` on its run (the contract between the feature-store parts):

    {"entity_keys": ["customer_id"], "timestamp": "snapshot_at", "label": "churned",
     "lookups": [{"table": "features.customer_rfm", "version": 7, "keys": ["customer_id"],
                  "features": ["recency_days", "frequency"], "ttl_seconds": 2592000.0}],
     "request_features": ["channel"]}

`OnlineLookup.enrich` adds to a request's columns every feature it does not carry, read from
the online store now: a value whose event time is at or before now - TTL is null, as the
training set's as-of join made it null (the model's imputer handles it). Features the
request carries are used as sent. It also returns, per row, the values it used (for the
inference log). A lookup is one read per table and entity: one SQLite B-tree search, or
one Redis HMGET (a pipeline of them for a batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from brickyard.errors import BrickyardError
from brickyard.features.online import OnlineRow, OnlineStore, entity_id, live, now_us

ARTIFACT = "feature_store/training_set.json"


class TrainingSetError(BrickyardError):
    """A model's training_set.json that does not follow the contract."""

    transient = False


class MissingKeyError(BrickyardError):
    """A keys-only request lacks an entity key column (the caller's fault: HTTP 400)."""

    transient = False

    def __init__(self, message: str, *, column: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.column = column


@dataclass(frozen=True)
class TableLookup:
    """The features of one feature table that a model takes, and how they are keyed."""

    table: str
    keys: tuple[str, ...]
    features: tuple[str, ...]
    ttl_us: int | None
    version: int | None


@dataclass(frozen=True)
class TrainingSetInfo:
    """A model's `feature_store/training_set.json`."""

    entity_keys: tuple[str, ...]
    timestamp: str | None
    label: str | None
    lookups: tuple[TableLookup, ...]
    request_features: tuple[str, ...]

    @classmethod
    def parse(cls, text: bytes | str, where: str = ARTIFACT) -> TrainingSetInfo:
        """Read the artifact.

        Raises:
            TrainingSetError: not JSON, or not the contract's shape (says which field).
        """
        try:
            doc = orjson.loads(text)
            lookups = tuple(
                TableLookup(
                    str(item["table"]),
                    tuple(str(key) for key in item["keys"]),
                    tuple(str(feature) for feature in item["features"]),
                    None if item.get("ttl_seconds") is None else int(round(float(item["ttl_seconds"]) * 1_000_000)),
                    None if item.get("version") is None else int(item["version"]),
                )
                for item in doc["lookups"]
            )
            return cls(
                tuple(str(key) for key in doc["entity_keys"]),
                None if doc.get("timestamp") is None else str(doc["timestamp"]),
                None if doc.get("label") is None else str(doc["label"]),
                lookups,
                tuple(str(column) for column in doc.get("request_features") or ()),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise TrainingSetError(
                f"{where} does not follow the training set contract: {type(exc).__name__}: {exc}",
                hint="it needs entity_keys, lookups (table, keys, features, ttl_seconds) and request_features",
            ) from exc

    @property
    def features(self) -> tuple[str, ...]:
        """Every looked-up feature, in the model's column order."""
        return tuple(feature for lookup in self.lookups for feature in lookup.features)


class OnlineLookup:
    """Fills a request's missing features from the online store."""

    def __init__(self, info: TrainingSetInfo, store: OnlineStore) -> None:
        self.info = info
        self.store = store
        self.features = info.features
        self._lookup_columns = {*info.entity_keys, *(key for lookup in info.lookups for key in lookup.keys)}
        if info.timestamp:
            self._lookup_columns.add(info.timestamp)

    def needed(self, columns: dict[str, Any]) -> bool:
        """True when the request lacks a looked-up feature."""
        return any(feature not in columns for feature in self.features)

    def enrich(
        self, columns: dict[str, Any], rows: int, *, text: bool = False, takes: frozenset[str] | None = None,
        at_us: int | None = None,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The request's columns with the missing features added (null when absent or
        expired), the key columns the model does not take (`takes`) left out; and per row,
        the values used: `{table: {"key", "event_us", "values"}}` (values None: absent).

        Raises:
            MissingKeyError: a key column needed for a lookup is not in the request.
        """
        at = at_us if at_us is not None else now_us()
        plan = self._plan(columns, rows)
        stored = [
            [self.store.read(lookup.table, entities[0])] if rows == 1 else self.store.read_many(lookup.table, entities)
            for lookup, _, entities in plan
        ]
        return self._fill(columns, rows, plan, stored, at=at, text=text, takes=takes)

    async def enrich_async(
        self, columns: dict[str, Any], rows: int, *, text: bool = False, takes: frozenset[str] | None = None,
        at_us: int | None = None,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """`enrich` for the serving event loop: the store's reads are awaited
        (`OnlineStore.read_async`), so a Redis round trip does not hold other requests up."""
        at = at_us if at_us is not None else now_us()
        plan = self._plan(columns, rows)
        stored = []
        for lookup, _, entities in plan:
            if rows == 1:
                stored.append([await self.store.read_async(lookup.table, entities[0])])
            else:
                stored.append(await self.store.read_many_async(lookup.table, entities))
        return self._fill(columns, rows, plan, stored, at=at, text=text, takes=takes)

    def _plan(self, columns: dict[str, Any], rows: int) -> list[tuple[TableLookup, list[str], list[str]]]:
        """Per table with features the request lacks: (lookup, the features it lacks, the
        entity ids of its rows).

        Raises:
            MissingKeyError: a key column needed for a lookup is not in a request with rows
                (one with none, e.g. `{"dataframe_records": []}`, names no columns).
        """
        plan: list[tuple[TableLookup, list[str], list[str]]] = []
        for lookup in self.info.lookups:
            need = [feature for feature in lookup.features if feature not in columns]
            if not need:
                continue
            if rows == 0:
                plan.append((lookup, need, []))
                continue
            for key in lookup.keys:
                if key not in columns:
                    raise MissingKeyError(
                        f"the request has no column {key!r}, the entity key of {lookup.table}: send it "
                        f"(or every feature the model takes: {', '.join(self.features)})",
                        column=key,
                        hint=f"e.g. {{\"dataframe_records\": [{{{', '.join(repr(k) + ': ...' for k in lookup.keys)}}}]}}",
                    )
            plan.append((lookup, need, [entity_id(values) for values in zip(*(columns[key] for key in lookup.keys))]))
        return plan

    def _fill(
        self, columns: dict[str, Any], rows: int, plan: list[tuple[TableLookup, list[str], list[str]]],
        stored: list[list[OnlineRow | None]], *, at: int, text: bool, takes: frozenset[str] | None,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The request's columns with the looked-up values added (the TTL applied at `at`)
        and the values used per row (see `enrich`)."""
        out = dict(columns)
        used: list[dict[str, Any]] = [{} for _ in range(rows)]
        for (lookup, need, entities), rows_stored in zip(plan, stored):
            values: list[dict[str, Any] | None] = []
            for index, (entity, row) in enumerate(zip(entities, rows_stored)):
                found = live(row, ttl_us=lookup.ttl_us, at_us=at)
                row_values = found.values if found is not None else None
                values.append(row_values)
                used[index][lookup.table] = {
                    "key": entity,
                    "event_us": found.event_us if found is not None else None,
                    "values": {feature: row_values.get(feature) for feature in need} if row_values is not None else None,
                }
            for feature in need:
                column = [None if found is None else found.get(feature) for found in values]
                out[feature] = [_text(value) for value in column] if text else column
        if takes is not None:
            for name in self._lookup_columns:
                if name in out and name not in takes:
                    del out[name]
        return out, used


def _text(value: Any) -> str:
    """A looked-up value in a CSV request (typed later by the model's signature)."""
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)
