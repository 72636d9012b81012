"""`round(double, n)` on Spark gives what the installed DuckDB gives, value for value.

The values are built to sit on or next to a rounding tie (k + 0.5 units of the last digit,
most of which a double cannot hold exactly, so they lie a hair above or below), plus
ordinary values of every magnitude; every row is compared, none sampled.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

pytestmark = pytest.mark.slow


def values() -> pa.Table:
    rng = np.random.default_rng(2026)
    ties = (rng.integers(-10**7, 10**7, 3000) * 10 + 5) / 1000.0       # x.xx5
    fine_ties = (rng.integers(-10**9, 10**9, 3000) * 10 + 5) / 10**6    # x.xxxxx5
    ordinary = rng.normal(0, 1000, 3000)
    extremes = np.array([0.0, -0.0, 1e300, -1e300, 2.5e15 + 0.5, 1e-300, math.inf, -math.inf, math.nan])
    data = np.concatenate([ties, fine_ties, ordinary, extremes])
    return pa.table({"id": np.arange(len(data)), "x": data})


def test_round_of_doubles_matches_duckdb_row_for_row(spark_workspace) -> None:  # type: ignore[no-untyped-def]
    ws = spark_workspace
    ws.lake.write("bronze.numbers", values())
    query = "SELECT id, round(x, 2) AS r2, round(x, 5) AS r5, round(avg(x) OVER (), 3) AS mean3 FROM bronze.numbers"
    duck = sorted(ws.sql(query).fetchall())
    spark = sorted(tuple(row) for row in ws.spark.dataframe(query).toArrow().to_pylist() for row in [row.values()])
    assert len(duck) == len(spark) == values().num_rows
    different = [(d, s) for d, s in zip(duck, spark, strict=True) if not all(map(same, d, s))]
    assert not different, f"{len(different)} of {len(duck)} rows differ, e.g. {different[:3]}"


def same(left: object, right: object) -> bool:
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    return left == right
