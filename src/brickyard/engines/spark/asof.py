"""The point-in-time join on Spark (rules in `brickyard.engines.asof`).

A lookup is a window over the union of the entity rows and the feature rows (reduced to
one row per key and event time by the tie rule), partitioned by the keys and ordered by
time, feature rows before entity rows at equal times: each entity row takes the last
feature row before it (`last(..., ignorenulls)`), then the TTL nulls a value too old. The
entity row travels through the union as a struct, so nothing is joined back and no row
id is needed. With `as_known_at` (a table with a created time), a lookup is a left range
join on the keys and the times, keeping the best row per entity row by the same order.

Spark's session is UTC (`brickyard.engines.spark_session`); times compare as
`timestamp_ntz`, a DATE as its midnight. The result is computed by the executors; only
`as_of_join` collects it (for training); `as_of_frame` gives it lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from brickyard.engines.asof import AsOfJoin, AsOfResult, FeatureLookup
from brickyard.engines.spark.engine import run_statement, translate_errors
from brickyard.engines.spark_delta import read_table
from brickyard.engines.spark_sql import translate_all
from brickyard.errors import SqlError, TableNotFoundError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from brickyard.engines.spark.engine import SparkEngine

TS = "__by_ts"
ET = "__by_et"
CT = "__by_ct"
ROW = "__by_row"
SIDE = "__by_side"
TIME = "__by_t"
ENTITY = "__by_e"
VALUE = "__by_v"
LAST = "__by_last"
UNORDERED = ("map", "struct<", "variant")  # not sorted by (Spark cannot order maps)


def as_of_frame(engine: SparkEngine, join: AsOfJoin) -> tuple[DataFrame, dict[str, int]]:
    """(the joined rows as a lazy, ordered DataFrame, {table: version the entities read})."""
    from pyspark.sql import functions as F

    entities, reads = _entities(engine, join)
    entity_columns = list(entities.columns)
    orderable = [f.name for f in entities.schema.fields if not f.dataType.simpleString().startswith(UNORDERED)]
    frame = entities.withColumn(TS, F.col(_q(join.timestamp)).cast("timestamp_ntz"))
    for lookup in join.lookups:
        features = _features(engine, lookup)
        if join.uses_created_time(lookup):
            frame = _known_at(frame, features, lookup)
        else:
            frame = _latest(frame, features, lookup)
    order = [F.col(_q(column)).asc_nulls_first() for column in join.sort_columns(entity_columns, orderable)]
    selected = [*entity_columns, *(column for lookup in join.lookups for column in lookup.columns)]
    frame = frame.orderBy(*order) if order else frame
    return frame.select(*(F.col(_q(column)) for column in selected)), reads


def as_of_join(engine: SparkEngine, join: AsOfJoin) -> AsOfResult:
    """`Engine.as_of_join`: `as_of_frame`, collected to the driver as Arrow."""
    frame, reads = as_of_frame(engine, join)
    with translate_errors("the point-in-time join"):
        return AsOfResult(frame.toArrow(), reads)


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _entities(engine: SparkEngine, join: AsOfJoin) -> tuple[DataFrame, dict[str, int]]:
    """The entity rows, every lake table read at one version."""
    lake, spark, source = engine.lake, engine.spark, join.entities
    if source.table is not None:
        version = lake.delta(source.table, version=source.version).version()
        return read_table(spark, lake, source.table, version=version), {source.table: version}
    assert source.query is not None
    statements = translate_all(source.query, where="the entity query")
    if not statements:
        raise SqlError("the entity query holds no SQL statement")
    reads: dict[str, int] = {}
    result = None
    for statement in statements:
        for view, table in statement.tables.items():
            if not lake.exists(table):
                raise TableNotFoundError(table, lake.tables())
            if table not in reads:
                reads[table] = lake.delta(table, version=source.pinned.get(table)).version()
            read_table(spark, lake, table, version=reads[table]).createOrReplaceTempView(view)
        for view, snapshot in statement.snapshots.items():
            read_table(spark, lake, snapshot.table, version=snapshot.version, as_of=snapshot.timestamp).createOrReplaceTempView(view)
        for view, scan in statement.raw.items():
            engine.raw_frame(scan).createOrReplaceTempView(view)
        result = run_statement(spark, statement, "the entity query")
    assert result is not None
    return result, reads


def _features(engine: SparkEngine, lookup: FeatureLookup) -> DataFrame:
    """The feature table's usable rows: keys and event time present, times as UTC
    `timestamp_ntz` (`__by_et`, `__by_ct`)."""
    from pyspark.sql import functions as F

    frame = read_table(engine.spark, engine.lake, lookup.table, version=lookup.version)
    present = [F.col(_q(name)).isNotNull() for name in [*lookup.keys, lookup.event_time]]
    condition = present[0]
    for more in present[1:]:
        condition = condition & more
    columns = list(dict.fromkeys([*lookup.columns, *lookup.tie_columns]))
    times = [F.col(_q(lookup.event_time)).cast("timestamp_ntz").alias(ET)]
    if lookup.created_time:
        times.append(F.col(_q(lookup.created_time)).cast("timestamp_ntz").alias(CT))
    return frame.where(condition).select(*(F.col(_q(k)) for k in lookup.keys), *times, *(F.col(_q(c)) for c in columns))


def _tie_order(lookup: FeatureLookup, prefix: str = "") -> list[Column]:
    from pyspark.sql import functions as F

    terms = [F.col(prefix + CT).desc_nulls_last()] if lookup.created_time else []
    return terms + [F.col(prefix + _q(column)).desc_nulls_last() for column in lookup.tie_columns]


def _live(event_time: Column, lookup: FeatureLookup) -> Column | None:
    """`event_time > timestamp - ttl`, or None without a TTL."""
    from pyspark.sql import functions as F

    micros = lookup.ttl_microseconds
    if micros is None:
        return None
    days, rest = divmod(micros, 86_400_000_000)
    seconds, fraction = divmod(rest, 1_000_000)
    text = f"{days} {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{fraction:06d}"
    return event_time > F.col(TS) - F.expr(f"INTERVAL '{text}' DAY TO SECOND")


def _latest(frame: DataFrame, features: DataFrame, lookup: FeatureLookup) -> DataFrame:
    """One lookup by a window over entity rows and (deduplicated) feature rows."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ties = Window.partitionBy(*(F.col(_q(k)) for k in lookup.keys), F.col(ET)).orderBy(*_tie_order(lookup) or [F.col(ET)])
    unique = features.withColumn(ROW, F.row_number().over(ties)).where(F.col(ROW) == 1).drop(ROW)
    key_types = {field.name: field.dataType for field in unique.schema.fields}
    value = F.struct(F.col(ET), *(F.col(_q(c)) for c in lookup.columns))
    entity = F.struct(*(F.col(_q(c)) for c in frame.columns))
    entity_type = frame.select(entity.alias(ENTITY)).schema[ENTITY].dataType
    value_type = unique.select(value.alias(VALUE)).schema[VALUE].dataType
    left = frame.select(
        *(F.col(_q(k)).cast(key_types[k]).alias(k) for k in lookup.keys),
        F.col(TS).alias(TIME), F.lit(1).alias(SIDE), entity.alias(ENTITY), F.lit(None).cast(value_type).alias(VALUE),
    )
    right = unique.select(
        *(F.col(_q(k)) for k in lookup.keys),
        F.col(ET).alias(TIME), F.lit(0).alias(SIDE), F.lit(None).cast(entity_type).alias(ENTITY), value.alias(VALUE),
    )
    window = (
        Window.partitionBy(*(F.col(_q(k)) for k in lookup.keys))
        .orderBy(F.col(TIME).asc_nulls_first(), F.col(SIDE))
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    both = left.unionByName(right).withColumn(LAST, F.last(F.col(VALUE), ignorenulls=True).over(window))
    found = both.where(F.col(SIDE) == 1).select(F.col(f"{ENTITY}.*"), F.col(LAST))
    keys_present = F.col(TS).isNotNull()
    for key in lookup.keys:
        keys_present = keys_present & F.col(_q(key)).isNotNull()
    live = _live(F.col(f"{LAST}.{ET}"), lookup)
    usable = keys_present if live is None else keys_present & live
    return found.select(
        *(F.col(_q(c)) for c in frame.columns),
        *(F.when(usable, F.col(f"{LAST}.{_q(c)}")).alias(c) for c in lookup.columns),
    )


def _known_at(frame: DataFrame, features: DataFrame, lookup: FeatureLookup) -> DataFrame:
    """One lookup as known at the timestamp: a left range join, the best row per entity row."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    entity = frame.withColumn(ROW, F.monotonically_increasing_id()).alias("e")
    found = features.alias("f")
    condition = F.col(f"f.{ET}") <= F.col(f"e.{TS}")
    condition = condition & (F.col(f"f.{CT}") <= F.col(f"e.{TS}"))
    for key in lookup.keys:
        condition = condition & (F.col(f"e.{_q(key)}") == F.col(f"f.{_q(key)}"))
    live = _live(F.col(f"f.{ET}"), lookup)
    if live is not None:
        condition = condition & live
    order = [F.col(f"f.{ET}").desc(), *_tie_order(lookup, "f.")]
    best = Window.partitionBy(F.col(f"e.{ROW}")).orderBy(*order)
    joined = entity.join(found, condition, "left").withColumn("__by_rank", F.row_number().over(best))
    return joined.where(F.col("__by_rank") == 1).select(
        *(F.col(f"e.{_q(c)}") for c in frame.columns), *(F.col(f"f.{_q(c)}").alias(c) for c in lookup.columns)
    )
