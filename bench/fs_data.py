"""Data and the brute-force reference for bench/featurestore.py.

- `generate` writes seeded synthetic feature rows and entity rows to Parquet;
- `reference_join` is the point-in-time join done the obvious way with numpy (sort the
  feature rows by key and time, binary-search each entity row); `naive_join` is the same
  rule as a plain loop, to check `reference_join` on a sample;
- `compare` checks a join's output against the reference value by value, and says exactly
  which rows are missing, extra, or different, and how.

The rule (issue 13): for an entity row (key, t), the feature row of the same key with the
latest event time e such that e <= t and e > t - TTL; none (all features null) otherwise.
No entity row is dropped. Feature rows never share (key, event time) here, so "the latest"
is always one row. `lower_inclusive=True` gives Feast's variant, e >= t - TTL.

    >>> from pathlib import Path; import tempfile
    >>> data = generate(Path(tempfile.mkdtemp()), feature_rows=1000, entity_rows=300, keys=50, features=3)
    >>> bool((reference_join(data, data.ttl_s) == naive_join(data, data.ttl_s, range(300))).all())
    True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
EPOCH_S = int(EPOCH.timestamp())
YEAR_S = 365 * 86400
DAY_S = 86400
SEED = 13
UNKNOWN_KEY_SHARE = 0.05   # entity keys beyond the feature keys: rows with no feature row at all
EDGE_SHARE = 0.01          # entity rows placed exactly on a feature row's time, and exactly TTL after one


@dataclass
class Data:
    """Feature and entity rows in memory (times as int64 seconds since the Unix epoch)."""

    features_path: Path
    entities_path: Path
    feature_key: np.ndarray
    feature_time: np.ndarray
    values: np.ndarray           # float64, one column per feature
    entity_key: np.ndarray
    entity_time: np.ndarray
    ttl_s: int
    feature_names: list[str] = field(default_factory=list)
    edge_rows: dict[str, np.ndarray] = field(default_factory=dict)


def generate(
    folder: Path, *, feature_rows: int, entity_rows: int, keys: int, features: int = 20,
    ttl_days: float = 30.0, seed: int = SEED,
) -> Data:
    """Write `features.parquet` and `entities.parquet` into `folder`; return the rows.

    Feature rows: `keys` entity ids, event times uniform over 2025 at whole seconds, unique
    per (key, time), `features` standard-normal float64 columns f0..fN. Entity rows: ids
    uniform over 5% more keys than have features, times uniform over 2025 plus the TTL; 1%
    of them sit exactly on a feature row's event time and 1% exactly TTL after one (the
    edges of the window). Times are UTC-aware timestamps (microseconds) in the files.
    """
    rng = np.random.default_rng(seed)
    ttl_s = int(round(ttl_days * DAY_S))
    f_key, f_time = _unique_pairs(rng, feature_rows, keys)
    values = rng.standard_normal((feature_rows, features))
    names = [f"f{i}" for i in range(features)]

    e_key = rng.integers(0, int(keys * (1 + UNKNOWN_KEY_SHARE)) + 1, entity_rows, dtype=np.int64)
    e_time = EPOCH_S + rng.integers(0, YEAR_S + ttl_s, entity_rows, dtype=np.int64)
    edges = max(1, int(entity_rows * EDGE_SHARE))
    picked = rng.choice(entity_rows, 2 * edges, replace=False)
    on_time, at_ttl = picked[:edges], picked[edges:]
    source = rng.integers(0, feature_rows, 2 * edges)
    e_key[on_time], e_time[on_time] = f_key[source[:edges]], f_time[source[:edges]]
    e_key[at_ttl], e_time[at_ttl] = f_key[source[edges:]], f_time[source[edges:]] + ttl_s

    folder.mkdir(parents=True, exist_ok=True)
    features_path, entities_path = folder / "features.parquet", folder / "entities.parquet"
    feature_table = pa.table({
        "entity_id": f_key, "event_ts": _timestamps(f_time),
        **{name: values[:, i] for i, name in enumerate(names)},
    })
    pq.write_table(feature_table, features_path, row_group_size=1_000_000)
    entity_table = pa.table({
        "entity_id": e_key, "event_timestamp": _timestamps(e_time),
        "row_id": np.arange(entity_rows, dtype=np.int64),
    })
    pq.write_table(entity_table, entities_path)
    return Data(
        features_path, entities_path, f_key, f_time, values, e_key, e_time, ttl_s, names,
        {"on a feature row's time": np.sort(on_time), "exactly TTL after a feature row": np.sort(at_ttl)},
    )


def _unique_pairs(rng: np.random.Generator, rows: int, keys: int) -> tuple[np.ndarray, np.ndarray]:
    """`rows` distinct (key, time) pairs in random order."""
    key = np.empty(0, dtype=np.int64)
    time = np.empty(0, dtype=np.int64)
    while len(key) < rows:
        more = rows - len(key) + 1000
        key = np.concatenate([key, rng.integers(0, keys, more, dtype=np.int64)])
        time = np.concatenate([time, EPOCH_S + rng.integers(0, YEAR_S, more, dtype=np.int64)])
        _, first = np.unique(key * (YEAR_S * 4) + (time - EPOCH_S), return_index=True)
        keep = np.sort(first)
        key, time = key[keep], time[keep]
    return key[:rows], time[:rows]


def _timestamps(seconds: np.ndarray) -> pa.Array:
    return pa.array(seconds * 1_000_000, type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def reference_join(data: Data, ttl_s: int, lower_inclusive: bool = False) -> np.ndarray:
    """For each entity row, the index of its feature row, or -1 (vectorised brute force)."""
    order = np.lexsort((data.feature_time, data.feature_key))
    key, time = data.feature_key[order], data.feature_time[order]
    span = int(max(time.max(), data.entity_time.max()) - min(time.min(), data.entity_time.min())) + 1
    base = int(min(time.min(), data.entity_time.min()))
    sorted_pairs = key * span + (time - base)
    wanted = data.entity_key * span + (data.entity_time - base)
    pos = np.searchsorted(sorted_pairs, wanted, side="right") - 1   # last pair <= (key, t)
    clipped = np.clip(pos, 0, None)
    age = data.entity_time - time[clipped]
    live = (pos >= 0) & (key[clipped] == data.entity_key) & ((age <= ttl_s) if lower_inclusive else (age < ttl_s))
    return np.where(live, order[clipped], -1)


def naive_join(data: Data, ttl_s: int, rows: Iterable[int], lower_inclusive: bool = False) -> np.ndarray:
    """The rule as a loop over every feature row of the key: slow, obviously right."""
    by_key: dict[int, list[int]] = {}
    for index, key in enumerate(data.feature_key.tolist()):
        by_key.setdefault(key, []).append(index)
    found = []
    for row in rows:
        key, t = int(data.entity_key[row]), int(data.entity_time[row])
        best = -1
        for index in by_key.get(key, []):
            e = int(data.feature_time[index])
            live = e <= t and (t - e <= ttl_s if lower_inclusive else t - e < ttl_s)
            if live and (best < 0 or e > data.feature_time[best]):
                best = index
        found.append(best)
    return np.array(found, dtype=np.int64)


@dataclass
class Comparison:
    """How one join's output differs from the reference (counts of entity rows)."""

    rows_in: int
    rows_out: int
    missing: int = 0                  # entity rows absent from the output
    missing_reference_null: int = 0   # ... of which the reference has no live feature row
    missing_twin_kept: int = 0        # ... of the others, another entity row with the same key and time is present
    duplicated: int = 0               # output rows beyond the first for an entity row
    unknown: int = 0                  # output rows whose row_id is not an input row
    identical: int = 0                # present rows with every value identical (nulls alike)
    null_not_expected: int = 0        # all null where the reference has a value
    value_not_expected: int = 0       # values where the reference has none
    other_values: int = 0             # values from another feature row (or altered)
    explained_by_inclusive_ttl: int = 0   # differing rows that Feast's e >= t - TTL rule explains
    edge_rows_differing: dict[str, int] = field(default_factory=dict)

    @property
    def differing(self) -> int:
        return self.null_not_expected + self.value_not_expected + self.other_values

    @property
    def exact(self) -> bool:
        """Every entity row present once, every value identical to the reference."""
        return self.rows_out == self.rows_in and self.identical == self.rows_in


def compare(data: Data, reference: np.ndarray, row_id: np.ndarray, values: np.ndarray,
            inclusive_reference: np.ndarray | None = None) -> Comparison:
    """Check output rows (`row_id`, `values` in feature order) against the reference."""
    rows_in = len(data.entity_key)
    result = Comparison(rows_in=rows_in, rows_out=len(row_id))
    valid = (row_id >= 0) & (row_id < rows_in)
    result.unknown = int((~valid).sum())
    row_id, values = row_id[valid], values[valid]
    ids, first = np.unique(row_id, return_index=True)
    result.duplicated = len(row_id) - len(ids)
    present = np.zeros(rows_in, dtype=bool)
    present[ids] = True
    result.missing = int((~present).sum())
    result.missing_reference_null = int((~present & (reference < 0)).sum())
    result.missing_twin_kept = _missing_twins(data, present, reference >= 0)
    got = values[first]
    expected_index = reference[ids]
    state = _row_states(got, data.values, expected_index)
    result.identical = int((state == 0).sum())
    result.null_not_expected = int((state == 1).sum())
    result.value_not_expected = int((state == 2).sum())
    result.other_values = int((state == 3).sum())
    differing = ids[state != 0]
    if inclusive_reference is not None and len(differing):
        alt = _row_states(got[state != 0], data.values, inclusive_reference[differing])
        result.explained_by_inclusive_ttl = int((alt == 0).sum())
    for label, edge in data.edge_rows.items():
        result.edge_rows_differing[label] = int(np.isin(edge, differing).sum() + (~present[edge]).sum())
    return result


def _missing_twins(data: Data, present: np.ndarray, live: np.ndarray) -> int:
    """Absent entity rows with a live feature row whose (key, time) is also that of a
    present entity row."""
    pair = data.entity_key * (4 * YEAR_S) + (data.entity_time - EPOCH_S)
    kept = np.unique(pair[present])
    return int(np.isin(pair[~present & live], kept).sum())


def _row_states(got: np.ndarray, all_values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per row: 0 identical, 1 null where a value was expected, 2 a value where null was
    expected, 3 other values."""
    expected = np.full(got.shape, np.nan)
    has = index >= 0
    expected[has] = all_values[index[has]]
    same = ((got == expected) | (np.isnan(got) & np.isnan(expected))).all(axis=1)
    got_null = np.isnan(got).all(axis=1)
    state = np.full(len(got), 3, dtype=np.int8)
    state[same] = 0
    state[~same & got_null & has] = 1
    state[~same & ~has] = 2
    return state
