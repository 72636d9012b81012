"""The Spark side of `brickyard.core.quality`: a checked DataFrame split into the rows to
write and the rows to quarantine, each written by Spark's executors and committed to Delta.

The checked rows come from the same SQL as on DuckDB (`checked_query`, translated for
Spark), so both engines apply the same rules. The frame is cached once, counted once (one
aggregate over every rule's flag), then its bad rows go to `<target>__quarantine` and its
good rows to the target, quarantine first, each commit carrying the same application
transaction, as on DuckDB. A broken `fail` rule, or more bad rows than `max_quarantined`,
writes nothing. The top `_reason` texts of the bad rows are counted on the cached frame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from brickyard.core.quality import (
    FLAG,
    LOADED_AT_COLUMN,
    REASON,
    REASON_COLUMN,
    RUN_ID_COLUMN,
    TOP_REASONS,
    CheckedWrite,
    ExpectationResult,
    Rule,
    Splitter,
    check_quarantine_limit,
    quarantine_name,
)
from brickyard.engines.spark_delta import write_table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from brickyard.lake import IfCommitted, Lake, WriteMode

Shape = Callable[["DataFrame"], "DataFrame"]


def write_checked(
    frame: DataFrame,
    rules: Sequence[Rule],
    *,
    lake: Lake,
    target: str,
    mode: WriteMode,
    quarantine_mode: WriteMode | None = None,
    skip_quarantine: bool = False,
    if_committed: IfCommitted = "skip",
    metadata: Mapping[str, Any],
    transaction: tuple[str, int],
    partition_by: Sequence[str] | None = None,
    good: Shape | None = None,
    bad: Shape | None = None,
    counted: Sequence[ExpectationResult] = (),
    log: logging.Logger | None = None,
    max_quarantined: int | float | None = None,
) -> CheckedWrite:
    """Split a frame carrying `checked_query`'s flags and `__by_reason`, and write both parts.

    `good(frame)` shapes the good rows (default: every column but the flags and reason);
    `bad(frame)` the quarantine rows (default: `quarantine_rows`). `mode` is `append` or
    `overwrite` (an overwrite also rebuilds the quarantine); `quarantine_mode`, when given,
    is the quarantine's (a merge overwrites the target but appends to its quarantine).
    `skip_quarantine`: the quarantine commit of this transaction landed already (a parked
    batch redone). `if_committed` is `Lake.write`'s, for both commits.

    Raises:
        ExpectationFailedError: a `fail` rule was broken (nothing is written).
        QuarantineLimitError: more bad rows than `max_quarantined` (nothing is written).
        CommitConflictError: another writer committed the transaction first.
        LakeError: a write failed.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    internal = {REASON} | {FLAG.format(i) for i in range(len(rules))}
    columns = [c for c in frame.columns if c not in internal]
    has_reason = REASON in frame.columns
    cached = frame.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        sums = [F.sum(F.col(FLAG.format(i)).cast("long")).alias(f"r{i}") for i in range(len(rules))]
        bad_count = F.sum(F.col(REASON).isNotNull().cast("long")) if has_reason else F.lit(0)
        totals = cached.agg(F.count(F.lit(1)).alias("n"), bad_count.alias("bad"), *sums).collect()[0]
        splitter = Splitter(rules=rules, good_columns=columns, bad_rows=_unused, target=target, counted=counted)
        splitter.counts = [int(totals[f"r{i}"] or 0) for i in range(len(rules))]
        splitter.rows_in = int(totals["n"])
        splitter.raise_on_failure()
        rows_bad = int(totals["bad"] or 0)
        reasons = _top_reasons(cached) if rows_bad else []
        check_quarantine_limit(
            max_quarantined, rows_in=splitter.rows_in, rows_bad=rows_bad, reasons=reasons, target=target
        )
        quarantine_mode = quarantine_mode or mode
        overwrite = quarantine_mode == "overwrite"
        quarantine_version = None
        name = quarantine_name(target)
        if not skip_quarantine and (rows_bad or (overwrite and has_reason and lake.exists(name))):
            shaped = (bad or quarantine_rows)(cached.filter(F.col(REASON).isNotNull()))
            quarantine_version = write_table(
                lake,
                name,
                shaped,
                mode=quarantine_mode,
                evolve_schema=True,
                metadata=metadata,
                transaction=transaction,
                if_committed=if_committed,
            )
        kept = cached.filter(F.col(REASON).isNull()) if has_reason else cached
        shaped_good = good(kept) if good is not None else kept.select(*[F.col(f"`{c}`") for c in columns])
        version = write_table(
            lake,
            target,
            shaped_good,
            mode=mode,
            partition_by=partition_by,
            evolve_schema=True,
            metadata=metadata,
            transaction=transaction,
            if_committed=if_committed,
        )
        if log is not None:
            splitter.log_warnings(log)
        return CheckedWrite(
            rows_in=splitter.rows_in,
            rows_good=splitter.rows_in - rows_bad,
            rows_bad=rows_bad,
            results=splitter.results(),
            version=version,
            quarantine_version=quarantine_version,
            reasons=reasons,
        )
    finally:
        cached.unpersist()


def _top_reasons(checked: DataFrame) -> list[tuple[str, int]]:
    """The most frequent reasons of the bad rows (ties by text, as `Splitter.reasons`)."""
    from pyspark.sql import functions as F

    found = (
        checked.filter(F.col(REASON).isNotNull())
        .groupBy(F.col(REASON).alias("reason"))
        .count()
        .orderBy(F.desc("count"), F.asc("reason"))
        .limit(TOP_REASONS)
        .collect()
    )
    return [(str(row["reason"]), int(row["count"])) for row in found]


def quarantine_rows(frame: DataFrame, *, run_id: str = "", loaded_at: datetime | None = None) -> DataFrame:
    """Quarantine rows as on DuckDB (`quality.text_rows`): every column as text, the
    table's own `_loaded_at` kept, plus `_reason` and `_run_id`."""
    from pyspark.sql import functions as F

    internal = {REASON, REASON_COLUMN, RUN_ID_COLUMN, LOADED_AT_COLUMN}
    items = [
        F.col(f"`{c}`").cast("string").alias(c)
        for c in frame.columns
        if c not in internal and not c.startswith("__by_rule_")
    ]
    stamp = F.lit(loaded_at.replace(tzinfo=None) if loaded_at else None).cast("timestamp_ntz")
    if LOADED_AT_COLUMN in frame.columns:
        stamp = F.coalesce(F.col(LOADED_AT_COLUMN).cast("timestamp_ntz"), stamp)
    items += [
        F.col(REASON).alias(REASON_COLUMN),
        stamp.alias(LOADED_AT_COLUMN),
        F.lit(run_id).alias(RUN_ID_COLUMN),
    ]
    return frame.select(*items)


def _unused(*_: Any) -> Any:  # Splitter here only counts; rows never pass through Python
    raise AssertionError("the Spark split does not stream rows through Python")
