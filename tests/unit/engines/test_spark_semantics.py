"""DuckDB SQL gives the same rows on Spark, construct by construct, or is rejected by name.

Each query runs on real DuckDB and on real local Spark over the same random table (timestamps
spread over decades, before 1970, and bunched at year, month, leap-day and DST-change
boundaries; negatives, NULLs, ties, empty and NULL lists), and every row is compared.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from brickyard.engines.spark_semantics import DifferentOnSparkError
from brickyard.engines.spark_sql import translate

SECOND = 10**6
ANCHORS = ["2019-12-31T23:59:00", "2020-03-29T01:59:00", "2020-10-25T02:30:00", "2021-02-28T23:59:59",
           "2024-02-29T12:00:00", "1969-12-31T23:59:30", "2020-01-05T23:59:59"]


def random_table(n: int = 3000, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    anchors = np.array([np.datetime64(text, "us").astype(np.int64) for text in ANCHORS])

    def timestamps() -> pa.Array:
        near = anchors[rng.integers(0, len(anchors), n)] + rng.integers(-3 * 86400 * SECOND, 3 * 86400 * SECOND, n)
        wide = rng.integers(-10 * 365 * 86400 * SECOND, 60 * 365 * 86400 * SECOND, n)
        close = anchors[rng.integers(0, len(anchors), n)] + rng.integers(-90, 90, n) * SECOND + rng.integers(0, SECOND, n)
        pick = rng.integers(0, 3, n)
        values = np.where(pick == 0, near, np.where(pick == 1, wide, close))
        return pa.array(values, pa.int64(), mask=rng.random(n) < 0.05).cast(pa.timestamp("us"))

    x = np.concatenate([rng.normal(0, 100, n // 2), rng.integers(-50, 50, n - n // 2) / 2.0])  # halves: ties
    rng.shuffle(x)
    lists = [None if rng.random() < 0.05 else rng.integers(0, 9, rng.integers(0, 5)).tolist() for _ in range(n)]
    a = timestamps()
    return pa.table({
        "id": np.arange(n),
        "a": a,
        "b": timestamps(),
        "d": a.cast(pa.date32()),
        "x": pa.array(x, mask=rng.random(n) < 0.05),
        "i": pa.array(rng.integers(-100, 100, n), mask=rng.random(n) < 0.05),
        "j": rng.integers(-5, 6, n),
        "k": pa.array(rng.choice(["a", "b", "c", "d"], n), mask=rng.random(n) < 0.03),
        "l": pa.array(lists, pa.list_(pa.int64())),
    })


SAME = {
    "dayofweek": "SELECT id, dayofweek(a) AS v1, dayofweek(d) AS v2, weekday(a) AS v3 FROM bronze.t",
    "date_part_dow": "SELECT id, date_part('dow', a) AS v1, datepart('dow', d) AS v2, extract(dow FROM a) AS v3 FROM bronze.t",
    "isodow": "SELECT id, isodow(a) AS v1, date_part('isodow', d) AS v2, extract(isodow FROM a) AS v3 FROM bronze.t",
    "dayname_monthname": "SELECT id, dayname(a) AS v1, monthname(a) AS v2, dayname(d) AS v3 FROM bronze.t",
    "date_part": (
        "SELECT id, date_part('year', a) AS v1, date_part('month', a) AS v2, date_part('day', a) AS v3, "
        "date_part('hour', a) AS v4, date_part('minute', a) AS v5, date_part('second', a) AS v6, "
        "date_part('millisecond', a) AS v7, date_part('microsecond', a) AS v8, date_part('quarter', a) AS v9, "
        "date_part('doy', a) AS v10, date_part('week', a) AS v11, extract(second FROM a) AS v12 FROM bronze.t"
    ),
    "strftime": (
        "SELECT id, strftime(a, '%a %A %b %B %j %-j %d/%-m/%y %I:%M:%S %p %f %g') AS v1, "
        "strftime(d, '%Y-%m-%d') AS v2, strftime(a, '%Y-%m-%dT%H:%M:%S.%f') AS v3 FROM bronze.t"
    ),
    "date_diff_minute": "SELECT id, date_diff('minute', a, b) AS v1, datediff('minutes', b, a) AS v2 FROM bronze.t",
    "date_diff_small": (
        "SELECT id, date_diff('microsecond', a, b) AS v1, date_diff('millisecond', a, b) AS v2, "
        "date_diff('second', a, b) AS v3, date_diff('hour', a, b) AS v4 FROM bronze.t"
    ),
    "date_diff_days": (
        "SELECT id, date_diff('day', a, b) AS v1, date_diff('week', a, b) AS v2, "
        "date_diff('day', d, CAST(b AS DATE)) AS v3 FROM bronze.t"
    ),
    "date_diff_calendar": (
        "SELECT id, date_diff('month', a, b) AS v1, date_diff('quarter', a, b) AS v2, date_diff('year', a, b) AS v3 FROM bronze.t"
    ),
    "date_sub": (
        "SELECT id, date_sub('minute', a, b) AS v1, date_sub('second', a, b) AS v2, date_sub('hour', a, b) AS v3, "
        "date_sub('day', a, b) AS v4, date_sub('week', a, b) AS v5 FROM bronze.t"
    ),
    "len_list": "SELECT id, len(l) AS v1, length(l) AS v2, len([1, 2, 3]) AS v3, len(k) AS v4 FROM bronze.t",
    "integer_division": (
        "SELECT id, x // 2 AS v1, x // 0.7 AS v2, i // 4 AS v3, x // i AS v4, i // j AS v5 FROM bronze.t WHERE i <> 0 AND j <> 0"
    ),
    "median_quantiles": (
        "SELECT id % 97 AS g, median(x) AS v1, median(i) AS v2, quantile_cont(x, 0.5) AS v3, quantile_disc(x, 0.3) AS v4, "
        "quantile_disc(i, 0.1) AS v5, quantile(x, 0.9) AS v6 FROM bronze.t GROUP BY g"
    ),
    "ordered_set_percentiles": (
        "SELECT id % 13 AS g, percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS v1, "
        "percentile_disc(0.7) WITHIN GROUP (ORDER BY x) AS v2 FROM bronze.t GROUP BY g"
    ),
    "median_window": "SELECT id, median(x) OVER (PARTITION BY j) AS v1 FROM bronze.t",
    "round_avg": (
        "SELECT id % 200 AS g, round(avg(x), 2) AS v1, round(avg(i), 1) AS v2, round(avg(x) / 3, 3) AS v3, "
        "round(avg(x), 4) AS v4 FROM bronze.t GROUP BY g"
    ),
    "pivot_standard": "SELECT * FROM (SELECT j, k, x FROM bronze.t) PIVOT (sum(x) FOR k IN ('a', 'b', 'c'))",
    "unpivot_standard": "SELECT * FROM (SELECT id, x, i FROM bronze.t) UNPIVOT (v FOR n IN (x, i))",
    # Spark's parser refuses a window that refines a named one (OVER (w ROWS ...), w2 AS (w ...))
    "named_windows": (
        "SELECT id, sum(i) OVER f AS v1, sum(i) OVER (w ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS v2, "
        "avg(i) OVER w2 AS v3, count(*) OVER w AS v4, max(i) OVER (p ORDER BY id) AS v5, min(i) OVER (p) AS v6 "
        "FROM bronze.t WINDOW f AS (PARTITION BY j ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW), "
        "w AS (PARTITION BY j ORDER BY id), w2 AS (w ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING), p AS (PARTITION BY k)"
    ),
    # collect_list drops NULLs, ignores ORDER BY and gives [] for no rows; DuckDB does none of these
    "ordered_lists": (
        "SELECT j, list(i ORDER BY id) AS v1, list(i ORDER BY x DESC NULLS FIRST, id) AS v2, "
        "array_agg(k ORDER BY a NULLS FIRST, id DESC) AS v3, list(x ORDER BY k DESC, id) FILTER (WHERE i > 90) AS v4, "
        "len(list(i)) AS v5, len(list(DISTINCT k)) AS v6, list(i) FILTER (WHERE x > 1e9) AS v7 FROM bronze.t GROUP BY j"
    ),
    "ordered_first_last": (
        "SELECT j, first(i ORDER BY id) AS v1, last(k ORDER BY x, id) AS v2, first(x ORDER BY a DESC, id) AS v3, "
        "first(i ORDER BY id) FILTER (WHERE x > 1e9) AS v4 FROM bronze.t GROUP BY j"
    ),
    "string_agg": (
        "SELECT j, string_agg(k, ',' ORDER BY id) AS v1, string_agg(k, '-') FILTER (WHERE x > 1e9) AS v2, "
        "group_concat(k ORDER BY x DESC, id) AS v3 FROM bronze.t GROUP BY j"
    ),
    "list_over_window": (
        "SELECT id, list(i ORDER BY id) OVER (PARTITION BY j ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS v1, "
        "len(list(k) OVER (PARTITION BY j ORDER BY id ROWS BETWEEN 3 PRECEDING AND 1 PRECEDING)) AS v2 FROM bronze.t"
    ),
}

REJECTED = {
    "SELECT * FROM (PIVOT bronze.t ON k USING sum(x))": "PIVOT ... ON ... (DuckDB's own form)",
    "PIVOT bronze.t ON k USING sum(x) GROUP BY j": "PIVOT ... ON ... (DuckDB's own form)",
    "SELECT quantile_cont(x, 0.3) FROM bronze.t": "quantile_cont(..., 0.3)",
    "SELECT percentile_cont(0.25) WITHIN GROUP (ORDER BY x) FROM bronze.t": "percentile_cont(0.25) WITHIN GROUP (...)",
    "SELECT quantile_disc(x, [0.1, 0.5]) FROM bronze.t": "quantile_disc(x, [...])",
    "SELECT date_diff('decade', a, b) FROM bronze.t": "date_diff('decade', ...)",
    "SELECT date_sub('month', a, b) FROM bronze.t": "date_sub('month', ...)",
    "SELECT date_part('epoch', a) FROM bronze.t": "date_part('epoch', ...)",
    "SELECT extract(isoyear FROM a) FROM bronze.t": "extract(isoyear FROM ...)",
    "SELECT strftime(a, '%w') FROM bronze.t": "strftime(..., '%w')",
    "SELECT strftime(a, '%u %V') FROM bronze.t": "strftime(..., '%u')",
    "SELECT * REPLACE (i + 1 AS i) FROM bronze.t": "SELECT * REPLACE (...)",
    "SELECT sum(i) OVER (ORDER BY j GROUPS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM bronze.t": "a GROUPS window frame",
    "SELECT list(DISTINCT i ORDER BY i) FROM bronze.t": "list(DISTINCT ... ORDER BY ...)",
}


@pytest.mark.slow
@pytest.mark.parametrize("query", SAME.values(), ids=SAME.keys())
def test_spark_gives_duckdbs_rows(spark_workspace, query: str) -> None:  # type: ignore[no-untyped-def]
    ws = spark_workspace
    ws.lake.write("bronze.t", random_table())
    duck = sorted(ws.sql(query).fetchall(), key=order)
    spark = sorted((tuple(row.values()) for row in ws.spark.dataframe(query).toArrow().to_pylist()), key=order)
    assert len(duck) == len(spark) > 0
    different = [(d, s) for d, s in zip(duck, spark, strict=True) if not (len(d) == len(s) and all(map(same, d, s)))]
    assert not different, f"{len(different)} of {len(duck)} rows differ, e.g. {different[:3]}"


@pytest.mark.parametrize("query", REJECTED, ids=REJECTED.values())
def test_constructs_spark_computes_differently_are_rejected_by_name(query: str) -> None:
    with pytest.raises(DifferentOnSparkError) as raised:
        translate(query, where="sql/gold.sql")
    message = str(raised.value)
    assert message.startswith(f"sql/gold.sql uses {REJECTED[query]}, which brickyard cannot run the same on Spark")
    assert "engine: duckdb" in message


def order(row: tuple) -> tuple:  # type: ignore[type-arg]
    return tuple((value is None, str(value)) for value in row)


def same(left: object, right: object) -> bool:
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    return left == right
