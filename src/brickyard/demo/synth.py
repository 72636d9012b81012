"""Seeded synthetic NYC yellow-taxi trips with the 2017 TLC schema and a little dirt.

Everything is vectorised with numpy; columns are emitted as pyarrow strings so that
dirty values (e.g. an unparseable timestamp) fit in the same column as clean ones.
"""

from __future__ import annotations

import functools
import os
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

TAXI_COLUMNS: tuple[str, ...] = (
    "VendorID", "tpep_pickup_datetime", "tpep_dropoff_datetime", "passenger_count",
    "trip_distance", "RatecodeID", "store_and_fwd_flag", "PULocationID", "DOLocationID",
    "payment_type", "fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount",
    "improvement_surcharge", "total_amount",
)
DIRTY_FRACTION: float = 0.01
DIRTY_KINDS: tuple[str, ...] = (
    "bad_pickup_timestamp",   # "N/A" / impossible date in tpep_pickup_datetime
    "dropoff_before_pickup",  # tpep_dropoff_datetime < tpep_pickup_datetime
    "negative_fare",          # fare_amount < 0 (still a number)
    "bad_passenger_count",    # passenger_count empty (null) or negative
    "bad_location",           # PULocationID 0 or 300
    "bad_payment_type",       # payment_type 9
    "absurd_distance",        # trip_distance 99999.0 or negative (still a number)
)
_SCHEMA = pa.schema([(name, pa.string()) for name in TAXI_COLUMNS])

# Pickups per hour of day (relative): quiet at 4-5am, busy in the morning and evening rush.
_HOUR_PROFILE = np.array([
    3.0, 2.2, 1.6, 1.1, 0.8, 0.9, 2.0, 3.5, 4.3, 4.4, 4.3, 4.4,
    4.7, 4.7, 4.9, 4.7, 4.2, 5.0, 6.0, 6.0, 5.5, 5.4, 5.3, 4.3,
])
_HOUR_P = _HOUR_PROFILE / _HOUR_PROFILE.sum()
# Manhattan taxi zones get most of the trips, the airports a fair share, the rest a trickle.
_MANHATTAN = (
    4, 12, 13, 24, 41, 42, 43, 45, 48, 50, 68, 74, 75, 79, 87, 88, 90, 100, 103, 107,
    113, 114, 116, 120, 125, 127, 128, 137, 140, 141, 142, 143, 144, 148, 151, 152, 153,
    158, 161, 162, 163, 164, 166, 170, 186, 194, 202, 209, 211, 224, 229, 230, 231, 232,
    233, 234, 236, 237, 238, 239, 243, 244, 246, 249, 261, 262, 263,
)
_ZONE_W = np.ones(265)
_ZONE_W[np.array(_MANHATTAN) - 1] = 40.0
_ZONE_W[np.array(_MANHATTAN[-30:]) - 1] = 80.0  # mostly midtown + upper east/west: hottest
_ZONE_W[[131, 137]] = 30.0  # JFK (132), LaGuardia (138)
_ZONE_P = _ZONE_W / _ZONE_W.sum()
_BAD_TIMESTAMPS = np.array(["N/A", "2017-13-45 25:61:00", "2017-02-30 12:00:00"])
_FRACTIONS = pa.array([""] + [f".{k:02d}".rstrip("0") for k in range(1, 100)])


def _ints(values: np.ndarray, lo: int, hi: int, mask: np.ndarray | None = None) -> pa.Array:
    """Small-range integers in [lo, hi] -> strings via a lookup table (mask marks nulls)."""
    table = pa.array([str(v) for v in range(lo, hi + 1)], pa.string())
    return table.take(pa.array(values - lo, mask=mask))


def _fmt_cents(cents: np.ndarray) -> pa.Array:
    """Integer cents -> shortest decimal strings ("13", "2.5", "-2.76")."""
    whole, frac = np.divmod(np.abs(cents), 100)
    sign = pa.array(["", "-"]).take(pa.array((cents < 0).view(np.int8)))
    return pc.binary_join_element_wise(
        sign, pa.array(whole).cast(pa.string()), _FRACTIONS.take(pa.array(frac)), "")


@functools.cache
def _money_table() -> pa.Array:
    """Strings for every amount from $0.00 to $999.99, indexed by cents."""
    return _fmt_cents(np.arange(100_000, dtype=np.int64))


def _patch(strings: pa.Array, mask: np.ndarray, replacements: pa.Array) -> pa.Array:
    """Replace strings[mask] by replacements (one take; cheaper than replace_with_mask)."""
    index = np.arange(len(strings))
    index[mask] = len(strings) + np.arange(len(replacements))
    return pa.concat_arrays([strings, replacements]).take(pa.array(index))


def _money(values: np.ndarray) -> pa.Array:
    """2-decimal floats -> strings, via a lookup table (much faster than a cast)."""
    cents = np.rint(values * 100.0).astype(np.int64)
    outside = (cents < 0) | (cents >= 100_000)
    out = _money_table().take(pa.array(np.where(outside, 0, cents)))
    return _patch(out, outside, _fmt_cents(cents[outside])) if outside.any() else out


def _pick(rng: np.random.Generator, values: np.ndarray, p: np.ndarray, n: int) -> np.ndarray:
    """Like rng.choice(values, n, p=p) with p quantised to 1/65536: one table lookup."""
    grid = (np.arange(65536) + 0.5) / 65536
    table = np.searchsorted(np.cumsum(p) / np.sum(p), grid, side="right")
    return values[table[rng.integers(0, 65536, n)]]


def _build(rows: int, rng: np.random.Generator, dirty_fraction: float,
           start: str, days: int) -> tuple[pa.Table, np.ndarray]:
    """Generate `rows` trips; also return each row's dirty-kind index (-1 = clean)."""
    if rows < 0 or days < 1 or not 0.0 <= dirty_fraction <= 1.0:
        raise ValueError("need rows >= 0, days >= 1 and 0 <= dirty_fraction <= 1")
    n = rows
    start_day = np.datetime64(start, "D").astype(np.int64)
    day = rng.integers(0, days, n)
    hour = _pick(rng, np.arange(24), _HOUR_P, n)
    weekday = (start_day + day + 3) % 7  # 1970-01-01 was a Thursday; Monday == 0
    pickup = (start_day + day) * 86400 + hour * 3600 + rng.integers(0, 3600, n)

    rate = _pick(rng, np.arange(1, 6), np.array([0.973, 0.02, 0.003, 0.001, 0.003]), n)
    dist = np.clip(rng.lognormal(np.log(1.7), 1.0, n), 0.05, 60.0)
    dist = np.where(rate == 2, np.clip(rng.normal(17.5, 2.5, n), 10.0, 30.0), dist)
    dist = np.round(dist, 2)
    speed = np.clip(11.0 * rng.lognormal(0.0, 0.3, n), 3.0, 40.0)  # mph while moving
    idle_min = rng.exponential(3.0, n)
    duration = np.maximum(np.rint((dist / speed * 60.0 + idle_min) * 60.0), 60).astype(np.int64)
    dropoff = pickup + duration

    fare = np.round((2.5 + 2.5 * dist + 0.5 * idle_min) * 2.0) / 2.0  # $0.50 steps
    fare = np.select([rate == 2, rate == 3, rate == 4, rate == 5],
                     [np.full(n, 52.0), fare + 17.5, fare * 2.0,
                      np.round(rng.uniform(10.0, 100.0, n))], fare)
    night = (hour >= 20) | (hour < 6)
    peak = (weekday < 5) & (hour >= 16) & (hour < 20)
    extra = np.where(peak, 1.0, np.where(night, 0.5, 0.0))
    payment = _pick(rng, np.arange(1, 5), np.array([0.67, 0.32, 0.008, 0.002]), n)
    tip_pct = rng.uniform(0.15, 0.25, n) * (rng.random(n) > 0.08)  # some card riders skip
    tip = np.where(payment == 1, np.round(fare * tip_pct, 2), 0.0)
    toll_p = np.where(dist > 8.0, 0.35, 0.02)
    tolls = np.where(rng.random(n) < toll_p, 5.76, 0.0)
    passenger_p = np.array([0.01, 0.70, 0.14, 0.05, 0.03, 0.045, 0.025])  # 0..6 riders
    passengers = _pick(rng, np.arange(7), passenger_p, n)
    vendor = np.where(rng.random(n) < 0.44, 1, 2)
    stored = (rng.random(n) < 0.005).view(np.int8)  # store_and_fwd_flag "Y"
    pu = _pick(rng, np.arange(1, 266), _ZONE_P, n)
    do = _pick(rng, np.arange(1, 266), _ZONE_P, n)
    to_jfk = rng.random(n) < 0.5  # RatecodeID 2 trips start or end at JFK (zone 132)
    pu = np.where((rate == 2) & ~to_jfk, 132, pu)
    do = np.where((rate == 2) & to_jfk, 132, do)

    # Dirt: each dirty row gets exactly one kind, applied numerically where possible.
    kind = np.full(n, -1, dtype=np.int64)
    dirty = np.flatnonzero(rng.random(n) < dirty_fraction)
    kind[dirty] = rng.integers(0, len(DIRTY_KINDS), dirty.size)
    coin = rng.random(n) < 0.5
    k = {name: kind == i for i, name in enumerate(DIRTY_KINDS)}
    dropoff = np.where(k["dropoff_before_pickup"], pickup - duration, dropoff)
    fare = np.where(k["negative_fare"], -fare, fare)
    passenger_null = k["bad_passenger_count"] & coin
    passengers = np.where(k["bad_passenger_count"], -1, passengers)
    pu = np.where(k["bad_location"], np.where(coin, 0, 300), pu)
    payment = np.where(k["bad_payment_type"], 9, payment)
    dist = np.where(k["absurd_distance"], np.where(coin, 99999.0, -dist), dist)
    total = np.round(fare + extra + 0.5 + tip + tolls + 0.3, 2)

    ts = pa.timestamp("s")
    pickup_s = pa.array(pickup, type=pa.int64()).cast(ts).cast(pa.string())
    bad_ts = k["bad_pickup_timestamp"]
    if bad_ts.any():
        bad = _BAD_TIMESTAMPS[rng.integers(0, len(_BAD_TIMESTAMPS), int(bad_ts.sum()))]
        pickup_s = _patch(pickup_s, bad_ts, pa.array(bad))
    columns = [
        _ints(vendor, 1, 2), pickup_s,
        pa.array(dropoff, type=pa.int64()).cast(ts).cast(pa.string()),
        _ints(passengers, -1, 6, passenger_null), _money(dist), _ints(rate, 1, 5),
        pa.array(["N", "Y"]).take(pa.array(stored)), _ints(pu, 0, 300), _ints(do, 1, 265),
        _ints(payment, 1, 9), _money(fare), _money(extra), _money(np.full(n, 0.5)),
        _money(tip), _money(tolls), _money(np.full(n, 0.3)), _money(total),
    ]
    return pa.Table.from_arrays(columns, schema=_SCHEMA), kind


def generate_taxi_trips(rows: int, seed: int = 42, dirty_fraction: float = DIRTY_FRACTION,
                        start: str = "2017-01-01", days: int = 31) -> pa.Table:
    """All columns as pyarrow strings (so dirty values fit); deterministic for a given seed.

    Equals chunk 0 of `write_taxi_csv(..., seed=seed)` for the same row count.
    """
    return _build(rows, np.random.default_rng([seed, 0]), dirty_fraction, start, days)[0]


def write_taxi_csv(path: str | os.PathLike[str] | BinaryIO, rows: int, seed: int = 42,
                   dirty_fraction: float = DIRTY_FRACTION, chunk_rows: int = 1_000_000) -> int:
    """Write the CSV (header once), generating in chunks of chunk_rows so memory stays
    bounded for 20M rows; returns rows written. Chunk i is seeded from (seed, i), so the
    output is deterministic for a given (seed, chunk_rows)."""
    if rows < 0 or chunk_rows < 1 or not 0.0 <= dirty_fraction <= 1.0:
        raise ValueError("need rows >= 0, chunk_rows >= 1 and 0 <= dirty_fraction <= 1")
    opts = pacsv.WriteOptions(include_header=False, quoting_style="none")
    own = isinstance(path, (str, os.PathLike))
    sink: BinaryIO = open(path, "wb") if own else path  # type: ignore[arg-type,assignment]  # noqa: SIM115 - closed below when own
    written = 0
    try:
        sink.write((",".join(TAXI_COLUMNS) + "\n").encode())  # unquoted, like TLC files
        sink.flush()
        with pacsv.CSVWriter(sink, _SCHEMA, write_options=opts) as writer:
            for i, lo in enumerate(range(0, rows, chunk_rows)):
                n = min(chunk_rows, rows - lo)
                rng = np.random.default_rng([seed, i])
                writer.write_table(_build(n, rng, dirty_fraction, "2017-01-01", 31)[0])
                written += n
    finally:
        if own:
            sink.close()
    return written
