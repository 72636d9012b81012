"""The point-in-time join on DuckDB (rules in `brickyard.engines.asof`).

The entity rows are read once, sorted into the output's order, with each timestamp as UTC
microseconds (`__by_ts`). Each lookup then finds, per entity row, its feature values:

- most lookups in memory (`brickyard.engines.duckdb.asof_arrays`: sorted keys and times,
  a binary search, the matched rows' values read by position), which on the featurestore
  benchmark took about half the time of DuckDB's ASOF JOIN below;
- the others (`as_known_at`, key types that differ between the sides, a match that ties on
  key and event time, see that module) by SQL: an `ASOF JOIN` of the entity rows with the
  feature table's keys and event times alone (`timestamp >= event_time`): the latest event
  time per entity row, dropped when the TTL says it is too old (the latest row being
  expired means every older one is); then a hash join back to the feature rows with that
  key and event time (several only on a tie) and the tie rule over those. The feature
  table's value columns are never sorted or held. Carrying them through the ASOF join
  instead was slower (1.3 s against 0.8 s: the ASOF join sorts what it carries). With
  `as_known_at`, a lookup whose table has a created time is a range join on the keys,
  `event_time <= timestamp`, `created_time <= timestamp` (and the TTL), keeping the best
  row per entity row by the same order (ASOF allows only one inequality). For these the
  sorted entity rows are copied into DuckDB, numbered in order (`__by_e`, `__by_row`).

Either way a lookup answers its values in the entity rows' order (nulls where none), and
the output is the sorted entity rows with each lookup's columns appended: no join of the
entity rows with the values and no sort of the joined rows.

The join runs on a connection of its own, with the time zone UTC (so a zoned timestamp
compares by its UTC time) and the entity source's tables pinned at their versions.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING
from urllib.parse import unquote

import duckdb
import numpy as np
import pyarrow as pa

from brickyard.engines.asof import AsOfJoin, AsOfResult, FeatureLookup
from brickyard.engines.duckdb import asof_arrays
from brickyard.lake.datasets import arrow_dataset

if TYPE_CHECKING:
    from brickyard.engines.duckdb.engine import DuckDBEngine

ENTITIES = "__by_entities"
ORDERED = "__by_e"  # the entity rows in the output's order, numbered (ROW) in it
ROW = "__by_row"
TS = "__by_ts"
ET = "__by_et"
CT = "__by_ct"
KEY = "__by_k"
SCAN = {"batch_size": 65_536, "batch_readahead": 2, "fragment_readahead": 1}  # Arrow's read-ahead, kept small
UNORDERED_TYPES = ("MAP", "UNION", "STRUCT", "VARIANT")  # left out of the order, as on Spark


def q(name: str) -> str:
    """A quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def as_of_join(engine: DuckDBEngine, join: AsOfJoin) -> AsOfResult:
    """`Engine.as_of_join` on fresh connections of `engine`'s kind (see the module doc).
    The feature tables are indexed while DuckDB sorts the entity rows (DuckDB releases the
    GIL); lookups left to SQL get a connection of their own."""
    worker = join_engine(engine)
    try:
        reads = _register_entities(worker, join)
        with worker.errors():
            schema = worker.connection.sql(f"SELECT * FROM {ENTITIES} LIMIT 0").to_arrow_table().schema
        with ThreadPoolExecutor(max_workers=1) as pool:
            sorting = pool.submit(ordered_entities, worker, join)
            indexes = [feature_index(engine, join, lookup, schema) for lookup in join.lookups]
            with worker.errors():
                entities = sorting.result()
    finally:
        worker.close()
    table = entities.drop_columns([TS])
    sql_worker: DuckDBEngine | None = None
    try:
        for index, (lookup, found) in enumerate(zip(join.lookups, indexes, strict=True)):
            matches = None if found is None else found.match([entities.column(k) for k in lookup.keys], entities.column(TS))
            if found is not None and matches is not None:
                values = asof_arrays.values(found.dataset, list(lookup.columns), matches)
            else:
                if sql_worker is None:
                    sql_worker = join_engine(engine)
                    number_entities(sql_worker, entities)
                values = by_sql(sql_worker, join, index, entities.num_rows)
            for position, field in enumerate(values.schema):
                table = table.append_column(field, values.column(position))
    finally:
        if sql_worker is not None:
            sql_worker.close()
    return AsOfResult(table, reads)


def ordered_entities(worker: DuckDBEngine, join: AsOfJoin) -> pa.Table:
    """The entity rows (`__by_entities`) in the output's order, with `TS`."""
    con = worker.connection
    described = con.execute(f"DESCRIBE SELECT * FROM {ENTITIES}").fetchall()
    entity_columns = [str(row[0]) for row in described]
    orderable = [str(row[0]) for row in described if not str(row[1]).upper().startswith(UNORDERED_TYPES)]
    return con.sql(ordered_sql(join, entity_columns, orderable)).to_arrow_table()


def feature_index(engine: DuckDBEngine, join: AsOfJoin, lookup: FeatureLookup,
                  entities: pa.Schema) -> asof_arrays.FeatureIndex | None:
    """The lookup's in-memory index, or None where SQL must answer it."""
    if join.uses_created_time(lookup):
        return None
    dataset = arrow_dataset(engine.lake.delta(lookup.table, version=lookup.version))
    return asof_arrays.FeatureIndex.build(dataset, lookup, {key: entities.field(key).type for key in lookup.keys})


def number_entities(worker: DuckDBEngine, entities: pa.Table) -> None:
    """The sorted entity rows as DuckDB's temporary table `__by_e`, numbered (`ROW`, from 1).
    A copy, not a view of the Arrow table: over a view of an Arrow dataset the join took 20
    times the CPU (tests/unit/engines/test_asof_cost.py)."""
    numbered = entities.append_column(ROW, pa.array(np.arange(1, entities.num_rows + 1, dtype=np.int64)))
    con = worker.connection
    con.register("__by_sorted", numbered)
    with worker.errors():
        con.execute(f"CREATE OR REPLACE TEMP TABLE {ORDERED} AS SELECT * FROM __by_sorted")
    con.unregister("__by_sorted")


def by_sql(worker: DuckDBEngine, join: AsOfJoin, index: int, rows: int) -> pa.Table:
    """Lookup `index`'s values per entity row of `__by_e` (`rows` of them), by its SQL
    (`lookup_sql`)."""
    lookup = join.lookups[index]
    _register_features(worker, index, lookup, join.uses_created_time(lookup))
    with worker.errors():
        return placed(worker.connection.sql(lookup_sql(join, index)).to_arrow_table(), rows)


def placed(found: pa.Table, rows: int) -> pa.Table:
    """`found`'s columns but `ROW`, one row per entity row in order: row number n's values
    at position n - 1, nulls where `found` has no row for it."""
    position = np.full(rows, -1, dtype=np.int64)
    position[found.column(ROW).to_numpy() - 1] = np.arange(found.num_rows, dtype=np.int64)
    return found.drop_columns([ROW]).take(pa.array(position, mask=position < 0))


def join_engine(engine: DuckDBEngine) -> DuckDBEngine:
    """A fresh engine like `engine` whose connection is set up for the join: UTC, and the
    real ASOF join whatever the estimated sizes."""
    from brickyard.engines.duckdb.engine import DuckDBEngine

    worker = DuckDBEngine(engine.lake, engine.config)
    configure(worker.connection)
    return worker


def configure(con: duckdb.DuckDBPyConnection) -> None:
    """The join's connection settings: UTC time zone, and ASOF joins never run as nested
    loops (DuckDB picks one when it estimates the entity side at no more than
    `asof_loop_join_threshold` rows, and it estimates an Arrow scan or a CTE at about one
    row: quadratic per key, 1M x 200k rows took minutes instead of seconds). Older DuckDB
    versions lack the setting (and the nested-loop plan)."""
    con.execute("SET TimeZone = 'UTC'")
    try:
        con.execute("SET asof_loop_join_threshold = 0")
    except duckdb.Error:
        pass


def _register_features(worker: DuckDBEngine, index: int, lookup: FeatureLookup, known_at: bool) -> None:
    """A feature table as the views `__by_features_<i>` and, for the ASOF step,
    `__by_times_<i>`, of just the columns used, each referenced once by the query (so read
    once). Read by DuckDB's own Parquet reader from the version's files where it reads them
    as the Delta table's Arrow dataset does (`_parquet_source`): in parallel, with row
    counts the planner sees (so it builds the join back's hash table on the matched rows,
    not on the feature table) and with projection into the files. Otherwise one-pass Arrow
    scans with little read-ahead (Arrow's default buffers several files' worth of batches
    outside DuckDB's memory limit)."""
    dataset = arrow_dataset(worker.lake.delta(lookup.table, version=lookup.version))
    times = [*lookup.keys, lookup.event_time]
    used = list(dict.fromkeys([*times, *([lookup.created_time] if lookup.created_time else []), *lookup.columns, *lookup.tie_columns]))
    con = worker.connection
    arrow = f"__by_arrow_{index}"
    con.register(arrow, dataset)
    source = _parquet_source(worker, lookup.table, lookup.version, used, arrow)
    if source is not None:
        con.execute(f"CREATE OR REPLACE TEMP VIEW __by_features_{index} AS SELECT {_columns(used)} FROM {source}")
        con.execute(f"CREATE OR REPLACE TEMP VIEW __by_times_{index} AS SELECT {_columns(times)} FROM {source}")
        return
    con.unregister(arrow)
    con.register(f"__by_features_{index}", dataset.scanner(columns=used, **SCAN))
    if not known_at:
        con.register(f"__by_times_{index}", dataset.scanner(columns=times, **SCAN))


def _parquet_source(worker: DuckDBEngine, table: str, version: int | None, used: list[str], arrow: str) -> str | None:
    """`read_parquet([...])` over the files of `table` at `version`, or None where
    the Arrow dataset must read it: a remote lake, an empty or partitioned table, Delta
    features a plain Parquet reader gets wrong (deletion vectors, column mapping), or files
    whose columns DuckDB would read with other types than the table's (e.g. INT96 times)."""
    from brickyard.errors import BrickyardError

    lake = worker.lake
    if not lake.location.is_local:
        return None
    try:
        files = lake.table_files(table, version=version)
    except BrickyardError:
        return None
    if not files.files or files.partition_columns:
        return None
    paths = ", ".join(_literal(os.path.join(files.uri, unquote(file.path))) for file in files.files)
    source = f"read_parquet([{paths}], union_by_name = true)"
    con = worker.connection
    try:
        native = con.execute(f"DESCRIBE SELECT {_columns(used)} FROM {source}").fetchall()
        expected = con.execute(f"DESCRIBE SELECT {_columns(used)} FROM {arrow}").fetchall()
    except duckdb.Error:
        return None
    same = [row[:2] for row in native] == [row[:2] for row in expected]
    return source if same else None


def _columns(names: list[str]) -> str:
    return ", ".join(q(name) for name in names)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _register_entities(worker: DuckDBEngine, join: AsOfJoin) -> dict[str, int]:
    """The entity rows as the view `__by_entities`, each lake table at one version
    (`ordered_entities` reads it once, sorted). A lake table is read by DuckDB's own
    Parquet reader where it reads it as the Arrow dataset does (`_parquet_source`; about a
    third faster than through the Arrow dataset)."""
    con, lake, source = worker.connection, worker.lake, join.entities
    if source.table is not None:
        delta = lake.delta(source.table, version=source.version)
        dataset = arrow_dataset(delta)
        con.register("__by_entity_table", dataset)
        columns = list(dataset.schema.names)
        native = _parquet_source(worker, source.table, delta.version(), columns, "__by_entity_table")
        con.execute(f"CREATE OR REPLACE TEMP VIEW {ENTITIES} AS SELECT {_columns(columns)} FROM {native or '__by_entity_table'}")
        return {source.table: delta.version()}
    assert source.query is not None
    probe = type(worker)(lake, worker.config)
    try:
        probe.prepare(source.query)
        names = [
            f"{schema}.{view}"
            for schema, view in probe.connection.execute(
                "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal "
                "AND schema_name NOT IN ('main', 'temp', 'information_schema', 'pg_catalog', 'system')"
            ).fetchall()
        ]
    finally:
        probe.close()
    reads: dict[str, int] = {}
    for name in sorted(names):
        delta = lake.delta(name, version=source.pinned.get(name))
        reads[name] = delta.version()
        zone, table = name.split(".")
        con.register(f"__by_pinned_{zone}_{table}", arrow_dataset(delta))
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(zone)}")
        con.execute(f"CREATE OR REPLACE VIEW {q(zone)}.{q(table)} AS SELECT * FROM {q(f'__by_pinned_{zone}_{table}')}")
    with worker.errors():
        statements = duckdb.extract_statements(worker.prepare(source.query))
        for statement in statements[:-1]:
            con.execute(statement.query)
        last = statements[-1].query.strip().rstrip(";")
        con.execute(f"CREATE OR REPLACE TEMP VIEW {ENTITIES} AS {last}")
    return reads


def ordered_sql(join: AsOfJoin, entity_columns: list[str], orderable: list[str]) -> str:
    """The entity rows with their timestamp as UTC microseconds (`TS`), in the output's
    order: by `sort_columns`, ascending, nulls first. Rows equal in all of those are
    identical in every orderable column."""
    order = ", ".join(f"{q(column)} ASC NULLS FIRST" for column in join.sort_columns(entity_columns, orderable))
    return f"SELECT *, {_micros(q(join.timestamp))} AS {TS} FROM {ENTITIES}" + (f" ORDER BY {order}" if order else "")


def lookup_sql(join: AsOfJoin, index: int) -> str:
    """The SELECT of lookup `index`'s values (`ROW` and its columns) for the entity rows of
    `__by_e` that find some.

    Times compare as integer microseconds since the epoch (`epoch_us`: a zoned timestamp's
    UTC time, a DATE's midnight; no time zone conversion per row). A lookup without
    `as_known_at` runs in steps that never hold the feature table's value columns in
    memory: the ASOF JOIN over its keys and event times only (`m<i>`, the latest event time
    per entity row, TTL applied), a hash join back to the rows with that key and event time
    (`c<i>`: several only on a tie), and the tie rule over the entity rows that have
    several (`j<i>`).
    """
    lookup = join.lookups[index]
    ctes = [f"e AS (SELECT * FROM {ORDERED})"]
    if join.uses_created_time(lookup):
        ctes.append(f"f{index} AS ({_features_sql(index, lookup)})")
        ctes.append(f"j{index} AS ({_known_at_sql(index, lookup)})")
    else:
        ctes += _latest_sql(index, lookup)
    return f"WITH {', '.join(ctes)} SELECT {_columns([ROW, *lookup.columns])} FROM j{index}"


def _micros(expression: str) -> str:
    """A time as microseconds since the epoch, UTC (rule 7)."""
    return f"epoch_us({expression})"


def _latest_sql(index: int, lookup: FeatureLookup) -> list[str]:
    """CTEs `t<i>` (keys and event times), `m<i>` (per entity row, the latest live event
    time), `c<i>` (the feature rows with that key and event time), `d<i>` (the entity rows
    with several: ties) and `j<i>` (per entity row, the winning feature row's values; the
    tie rule's sort by every feature column runs over the tied rows alone)."""
    keys = [q(key) for key in lookup.keys]
    present = " AND ".join(f"{name} IS NOT NULL" for name in [*keys, q(lookup.event_time)])
    times = f"SELECT {', '.join(keys)}, {_micros(q(lookup.event_time))} AS {ET} FROM __by_times_{index} WHERE {present}"
    on = " AND ".join([*(f"e.{k} = t.{k}" for k in keys), f"e.{TS} >= t.{ET}"])
    live = _ttl_condition(f"t.{ET}", lookup)
    carried = ", ".join(f"e.{k} AS {q(f'{KEY}{n}')}" for n, k in enumerate(keys))
    matched = f"SELECT e.{ROW}, {carried}, t.{ET} FROM e ASOF JOIN t{index} t ON {on}" + (f" WHERE {live}" if live else "")
    back = " AND ".join([*(f"m.{q(f'{KEY}{n}')} = f.{k}" for n, k in enumerate(keys)), f"m.{ET} = {_micros(f'f.{q(lookup.event_time)}')}"])
    held = list(dict.fromkeys([*lookup.columns, *lookup.tie_columns]))
    created = [f"{_micros(f'f.{q(lookup.created_time)}')} AS {CT}"] if lookup.created_time else []
    candidates = f"SELECT m.{ROW}, {', '.join([*created, *(f'f.{q(c)}' for c in held)])} FROM m{index} m JOIN __by_features_{index} f ON {back}"
    tied = f"SELECT {ROW} FROM c{index} GROUP BY {ROW} HAVING count(*) > 1"
    columns = ", ".join([ROW, *(q(column) for column in lookup.columns)])
    order = ", ".join(_tie_order(lookup)) or ROW
    best = (
        f"SELECT {columns} FROM c{index} WHERE {ROW} NOT IN (SELECT {ROW} FROM d{index}) "
        f"UNION ALL SELECT {columns} FROM c{index} WHERE {ROW} IN (SELECT {ROW} FROM d{index}) "
        f"QUALIFY row_number() OVER (PARTITION BY {ROW} ORDER BY {order}) = 1"
    )
    return [f"t{index} AS ({times})", f"m{index} AS ({matched})", f"c{index} AS MATERIALIZED ({candidates})",
            f"d{index} AS ({tied})", f"j{index} AS ({best})"]


def _ttl_condition(event_time: str, lookup: FeatureLookup) -> str:
    """Live: younger than the TTL (`timestamp - event_time < ttl`, as a difference so that
    no time near the ends of the range overflows)."""
    micros = lookup.ttl_microseconds
    if micros is None:
        return ""
    return f"e.{TS} - {event_time} < CAST({micros} AS BIGINT)"


def _tie_order(lookup: FeatureLookup, prefix: str = "") -> list[str]:
    """The tie rule as ORDER BY terms: latest created time, then greatest values."""
    terms = [f"{prefix}{CT} DESC NULLS LAST"] if lookup.created_time else []
    return terms + [f"{prefix}{q(column)} DESC NULLS LAST" for column in lookup.tie_columns]


def _features_sql(index: int, lookup: FeatureLookup) -> str:
    """A feature table's usable rows (keys and event time present) with its times as UTC
    timestamps (`__by_et`, `__by_ct`)."""
    keys = [q(key) for key in lookup.keys]
    columns = list(dict.fromkeys([*lookup.columns, *lookup.tie_columns]))
    times = [f"{_micros(q(lookup.event_time))} AS {ET}"]
    if lookup.created_time:
        times.append(f"{_micros(q(lookup.created_time))} AS {CT}")
    present = " AND ".join(f"{name} IS NOT NULL" for name in [*keys, q(lookup.event_time)])
    return f"SELECT {', '.join([*keys, *times, *map(q, columns)])} FROM __by_features_{index} WHERE {present}"


def _known_at_sql(index: int, lookup: FeatureLookup) -> str:
    """Per entity row, the best feature row known at its timestamp (as_known_at)."""
    alias = f"f{index}"
    conditions = [f"e.{q(key)} = {alias}.{q(key)}" for key in lookup.keys]
    conditions += [f"{alias}.{ET} <= e.{TS}", f"{alias}.{CT} <= e.{TS}"]
    live = _ttl_condition(f"{alias}.{ET}", lookup)
    if live:
        conditions.append(live)
    order = ", ".join([f"{alias}.{ET} DESC", *_tie_order(lookup, f"{alias}.")])
    columns = ", ".join(f"{alias}.{q(column)}" for column in lookup.columns)
    return (
        f"SELECT e.{ROW}, {columns} FROM e JOIN {alias} ON {' AND '.join(conditions)} "
        f"QUALIFY row_number() OVER (PARTITION BY e.{ROW} ORDER BY {order}) = 1"
    )
