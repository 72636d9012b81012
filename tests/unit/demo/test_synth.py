"""Tests for brickyard.demo.synth (synthetic NYC taxi trips)."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from brickyard.demo import synth
from brickyard.demo.synth import (
    DIRTY_FRACTION,
    DIRTY_KINDS,
    TAXI_COLUMNS,
    generate_taxi_trips,
    write_taxi_csv,
)

EXPECTED_COLUMNS = (
    "VendorID", "tpep_pickup_datetime", "tpep_dropoff_datetime", "passenger_count",
    "trip_distance", "RatecodeID", "store_and_fwd_flag", "PULocationID", "DOLocationID",
    "payment_type", "fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount",
    "improvement_surcharge", "total_amount",
)
TS_FORMAT = "%Y-%m-%d %H:%M:%S"


def detect_dirt(table: pa.Table) -> dict[str, np.ndarray]:
    """Classify rows by looking only at the emitted values (independent of the generator)."""
    df = table.to_pandas()
    pickup = pd.to_datetime(df["tpep_pickup_datetime"], format=TS_FORMAT, errors="coerce")
    dropoff = pd.to_datetime(df["tpep_dropoff_datetime"], format=TS_FORMAT, errors="coerce")
    passengers = pd.to_numeric(df["passenger_count"])
    distance = df["trip_distance"].astype(float)
    pu = df["PULocationID"].astype(int)
    return {
        "bad_pickup_timestamp": pickup.isna().to_numpy(),
        "dropoff_before_pickup": (dropoff < pickup).to_numpy(),
        "negative_fare": (df["fare_amount"].astype(float) < 0).to_numpy(),
        "bad_passenger_count": (passengers.isna() | (passengers < 0)).to_numpy(),
        "bad_location": (~pu.between(1, 265)).to_numpy(),
        "bad_payment_type": (df["payment_type"].astype(int) == 9).to_numpy(),
        "absurd_distance": ((distance < 0) | (distance > 1000)).to_numpy(),
    }


@pytest.fixture(scope="module")
def trips_100k() -> tuple[pa.Table, np.ndarray]:
    """100,000 rows with the generator's own record of which rows are dirty, and how."""
    table, kinds = synth._build(100_000, np.random.default_rng([42, 0]), DIRTY_FRACTION,
                                "2017-01-01", 31)
    return table, kinds


def test_columns_names_order_and_types() -> None:
    assert TAXI_COLUMNS == EXPECTED_COLUMNS
    table = generate_taxi_trips(50)
    assert tuple(table.column_names) == EXPECTED_COLUMNS
    assert table.num_rows == 50
    assert all(field.type == pa.string() for field in table.schema)
    assert DIRTY_FRACTION == 0.01
    assert len(DIRTY_KINDS) >= 6 and len(set(DIRTY_KINDS)) == len(DIRTY_KINDS)


def test_same_seed_identical_different_seed_differs() -> None:
    a = generate_taxi_trips(5_000, seed=7)
    assert a.equals(generate_taxi_trips(5_000, seed=7))
    b = generate_taxi_trips(5_000, seed=8)
    assert not a.equals(b)
    assert a.column("tpep_pickup_datetime") != b.column("tpep_pickup_datetime")


def test_public_function_matches_internal_builder(trips_100k: tuple[pa.Table, np.ndarray]) -> None:
    assert generate_taxi_trips(100_000).equals(trips_100k[0])


def test_dirty_fraction_and_every_kind(trips_100k: tuple[pa.Table, np.ndarray]) -> None:
    table, kinds = trips_100k
    detected = detect_dirt(table)
    assert set(detected) == set(DIRTY_KINDS)
    for i, name in enumerate(DIRTY_KINDS):
        truth = kinds == i
        assert truth.sum() > 0, name
        np.testing.assert_array_equal(detected[name], truth, err_msg=name)
    dirty = np.logical_or.reduce(list(detected.values()))
    assert 0.005 <= dirty.mean() <= 0.02
    np.testing.assert_array_equal(dirty, kinds >= 0)
    # Each kind's variants all show up.
    df = table.to_pandas()
    passengers = df.loc[kinds == DIRTY_KINDS.index("bad_passenger_count"), "passenger_count"]
    assert passengers.isna().any() and (passengers.dropna().astype(int) < 0).any()
    locations = set(df.loc[kinds == DIRTY_KINDS.index("bad_location"), "PULocationID"])
    assert locations == {"0", "300"}
    bad_ts = set(df.loc[kinds == DIRTY_KINDS.index("bad_pickup_timestamp"),
                        "tpep_pickup_datetime"])
    assert "N/A" in bad_ts and "2017-13-45 25:61:00" in bad_ts


def test_clean_rows_are_valid_and_plausible(trips_100k: tuple[pa.Table, np.ndarray]) -> None:
    table, kinds = trips_100k
    df = table.to_pandas()[kinds < 0]
    pickup = pd.to_datetime(df["tpep_pickup_datetime"], format=TS_FORMAT)
    dropoff = pd.to_datetime(df["tpep_dropoff_datetime"], format=TS_FORMAT)
    assert (dropoff > pickup).all()
    assert pickup.min() >= pd.Timestamp("2017-01-01") and pickup.max() < pd.Timestamp("2017-02-01")
    num = df.drop(columns=["tpep_pickup_datetime", "tpep_dropoff_datetime",
                           "store_and_fwd_flag"]).astype(float)
    assert (num["fare_amount"] >= 0).all()
    for col in ("PULocationID", "DOLocationID"):
        assert num[col].between(1, 265).all()
    assert num["passenger_count"].between(0, 6).all()
    assert set(num["payment_type"]) <= {1, 2, 3, 4}
    assert set(num["RatecodeID"]) <= {1, 2, 3, 4, 5}
    assert set(num["VendorID"]) == {1, 2}
    assert set(df["store_and_fwd_flag"]) == {"N", "Y"}
    assert set(num["mta_tax"]) == {0.5} and set(num["improvement_surcharge"]) == {0.3}
    assert set(num["extra"]) <= {0.0, 0.5, 1.0}
    assert num["trip_distance"].between(0, 100).all()
    parts = num[["fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount",
                 "improvement_surcharge"]].sum(axis=1)
    assert ((num["total_amount"] - parts).abs() < 0.011).all()
    # Rough realism: median ~1.7 mi, mostly 1 passenger, mostly card, JFK flat fare.
    assert 1.4 <= num["trip_distance"].median() <= 2.0
    assert 0.65 <= (num["passenger_count"] == 1).mean() <= 0.75
    assert 0.62 <= (num["payment_type"] == 1).mean() <= 0.72
    assert (num.loc[num["payment_type"] == 2, "tip_amount"] == 0).all()
    assert (num.loc[num["RatecodeID"] == 2, "fare_amount"] == 52).all()
    hours = pickup.dt.hour.value_counts()
    assert hours[18] > 3 * hours[4]


def test_start_and_days() -> None:
    df = generate_taxi_trips(2_000, dirty_fraction=0.0, start="2017-06-10", days=2).to_pandas()
    pickup = pd.to_datetime(df["tpep_pickup_datetime"], format=TS_FORMAT)
    assert pickup.min() >= pd.Timestamp("2017-06-10") and pickup.max() < pd.Timestamp("2017-06-12")


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_dirty_fraction_extremes(fraction: float) -> None:
    detected = detect_dirt(generate_taxi_trips(3_000, dirty_fraction=fraction))
    assert np.logical_or.reduce(list(detected.values())).mean() == fraction


def test_duckdb_reads_written_file(tmp_path: Path) -> None:
    path = tmp_path / "taxi.csv"
    assert write_taxi_csv(path, 20_000, chunk_rows=7_000) == 20_000
    con = duckdb.connect()
    src = f"read_csv('{path}')"
    described = con.sql(f"DESCRIBE SELECT * FROM {src}").fetchall()
    assert tuple(row[0] for row in described) == EXPECTED_COLUMNS
    types = {row[0]: row[1] for row in described}
    assert types["fare_amount"] == "DOUBLE" and types["trip_distance"] == "DOUBLE"
    assert len(con.sql(f"SELECT * FROM {src}").fetchall()) == 20_000
    groups = con.sql(
        "SELECT passenger_count, count(*), avg(fare_amount), avg(trip_distance) "
        f"FROM {src} GROUP BY 1").fetchall()
    assert sum(row[1] for row in groups) == 20_000
    assert None in {row[0] for row in groups}  # empty passenger_count reads as NULL
    assert all(row[2] is not None and row[3] is not None for row in groups)


def test_chunked_write_header_once_and_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert write_taxi_csv(a, 25_001, seed=3, chunk_rows=10_000) == 25_001
    write_taxi_csv(b, 25_001, seed=3, chunk_rows=10_000)
    assert a.read_bytes() == b.read_bytes()
    lines = a.read_text().splitlines()
    assert lines[0] == ",".join(EXPECTED_COLUMNS)
    assert len(lines) == 25_002
    assert lines.count(lines[0]) == 1
    # Chunk 0 is generate_taxi_trips(chunk_rows, seed); chunk 1 is not a repeat of it.
    options = pacsv.ConvertOptions(column_types={c: pa.string() for c in EXPECTED_COLUMNS},
                                   strings_can_be_null=True, null_values=[""])
    back = pacsv.read_csv(a, convert_options=options)
    assert back.slice(0, 10_000).equals(generate_taxi_trips(10_000, seed=3))
    assert not back.slice(10_000, 10_000).equals(back.slice(0, 10_000))


def test_write_to_file_object_and_edge_cases() -> None:
    sink = io.BytesIO()
    assert write_taxi_csv(sink, 3, chunk_rows=2) == 3
    assert not sink.closed
    text = sink.getvalue().decode()
    assert not text.startswith("\ufeff") and '"' not in text
    assert len(text.splitlines()) == 4
    empty = io.BytesIO()
    assert write_taxi_csv(empty, 0) == 0
    assert empty.getvalue().decode() == ",".join(EXPECTED_COLUMNS) + "\n"
    assert generate_taxi_trips(0).num_rows == 0
    with pytest.raises(ValueError):
        write_taxi_csv(io.BytesIO(), 10, chunk_rows=0)
    with pytest.raises(ValueError):
        generate_taxi_trips(10, dirty_fraction=1.5)
