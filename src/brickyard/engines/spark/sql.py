"""The `sql` kind's execute-and-write step on the Spark engine (the rest is shared, in
`brickyard.tasks.sql_task`; the engine's side of it).

The query, wrapped by the same `checked_query` as on DuckDB, is translated for Spark once;
each lake table it names is registered as a view at one pinned version (whole, or only the
files added since the version the last run read, for an incremental source) in a Spark
session of its own (temporary views are per session, so concurrent tasks never see each
other's pins). `spark_quality.write_checked` then writes the quarantine and the target,
each in one Delta commit, from Spark's executors.

`mode: merge` is an upsert done in one overwrite commit: the table's current rows whose key
is not among the new rows, plus the new rows (cast to the table's types). It rewrites the
whole table, so it suits tables that fit a rewrite per run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from brickyard.core.quality import (
    FLAG,
    LOADED_AT_COLUMN,
    REASON,
    RUN_ID_COLUMN,
    CheckedWrite,
    Rule,
    checked_query,
    require_query_columns,
)
from brickyard.engines.base import TaskQuery
from brickyard.engines.spark.engine import SparkEngine, run_statement
from brickyard.engines.spark.quality import quarantine_rows, write_checked
from brickyard.engines.spark.text import arrow_text
from brickyard.engines.spark_delta import read_table
from brickyard.engines.spark_sql import SparkStatement, translate
from brickyard.errors import CommitConflictError, TableNotFoundError

if TYPE_CHECKING:
    import logging

    from pyspark.sql import DataFrame

    from brickyard.lake import Lake, WriteMode


@dataclass
class SparkQuery:
    """A task's query translated for Spark, in a session of its own."""

    engine: SparkEngine
    statement: SparkStatement
    where: str

    @classmethod
    def translate(cls, engine: SparkEngine, text: str, where: str) -> SparkQuery:
        """Translate `text` (DuckDB SQL). Raises SqlError / UntranslatableSqlError."""
        statement = translate(text, where=where)
        return cls(engine.in_new_session(), statement, where)

    @property
    def tables(self) -> list[str]:
        """The lake tables the query names, as `zone.name`."""
        return sorted(set(self.statement.tables.values()))

    def pin(
        self,
        lake: Lake,
        since: Callable[[str], int | None] = lambda _: None,
        at: Mapping[str, int] | None = None,
    ) -> dict[str, int]:
        """Register every named table at its version in `at`, else its current one (only
        the files added after `since(table)` where that is not None); returns
        {table: version}."""
        versions: dict[str, int] = {}
        for table in self.tables:
            if at is not None and table in at:
                versions[table] = at[table]
                continue
            if not lake.exists(table):
                raise TableNotFoundError(table, lake.tables())
            versions[table] = lake.version(table)
        for view, table in self.statement.tables.items():
            frame = read_table(
                self.engine.spark, lake, table, version=versions[table], since_version=since(table)
            )
            frame.createOrReplaceTempView(view)
        self.engine.register_views(replace(self.statement, tables={}))
        return versions

    def frame(self) -> DataFrame:
        """The query's rows (lazy). Raises SqlError on an analysis error."""
        return run_statement(self.engine.spark, self.statement, self.where)


class SparkTaskQuery(TaskQuery):
    """The `sql` kind's query on Spark (`SparkEngine.task_query`): `SparkQuery` pinned, then
    `write_result`."""

    def __init__(self, engine: SparkEngine, text: str, rules: Sequence[Rule], where: str) -> None:
        self.lake, self.rules, self.where = engine.lake, list(rules), where
        self.query = SparkQuery.translate(engine, checked_query(text, rules) if rules else text, where)

    def pin(
        self, since: Callable[[str], int | None] = lambda _: None, at: Mapping[str, int] | None = None
    ) -> dict[str, int]:
        return self.query.pin(self.lake, since, at=at)

    def write(
        self,
        target: str,
        *,
        mode: Literal["overwrite", "append", "merge"],
        quarantine_mode: WriteMode,
        skip_quarantine: bool,
        keys: Sequence[str],
        partition_by: Sequence[str],
        metadata: Mapping[str, str],
        transaction: tuple[str, int],
        run_id: str,
        loaded_at: datetime,
        log: logging.Logger,
        max_quarantined: int | float | None = None,
        quarantined: Callable[[int], None] = lambda _: None,
        order_by: Sequence[str] = (),
    ) -> CheckedWrite:
        frame = self.query.frame()
        if order_by:
            from pyspark.sql import functions as F

            frame = frame.orderBy(*(F.col(f"`{column}`").asc_nulls_first() for column in order_by))
        internal = {REASON} | {FLAG.format(i) for i in range(len(self.rules))}
        require_query_columns([c for c in frame.columns if c not in internal], [*keys, *partition_by], self.where)
        written = write_result(
            frame,
            self.rules,
            lake=self.lake,
            target=target,
            mode=mode,
            quarantine_mode=quarantine_mode,
            skip_quarantine=skip_quarantine,
            keys=keys,
            partition_by=partition_by,
            metadata=metadata,
            transaction=transaction,
            run_id=run_id,
            loaded_at=loaded_at,
            log=log if self.rules else None,
            max_quarantined=max_quarantined,
        )
        if written.quarantine_version is not None:
            quarantined(written.quarantine_version)
        return written


def text_quarantine(frame: DataFrame, *, run_id: str, loaded_at: datetime) -> DataFrame:
    """`quarantine_rows` with values written as the DuckDB engine writes them (Arrow's text)."""
    from pyspark.sql import functions as F

    keep = {REASON, RUN_ID_COLUMN, LOADED_AT_COLUMN}
    columns = [
        F.col(f"`{field.name}`")
        if field.name in keep or field.name.startswith("__by_rule_")
        else arrow_text(field.name, field.dataType).alias(field.name)
        for field in frame.schema.fields
    ]
    return quarantine_rows(frame.select(*columns), run_id=run_id, loaded_at=loaded_at)


def write_result(
    frame: DataFrame,
    rules: Sequence[Rule],
    *,
    lake: Lake,
    target: str,
    mode: Literal["overwrite", "append", "merge"],
    quarantine_mode: WriteMode,
    skip_quarantine: bool = False,
    keys: Sequence[str],
    partition_by: Sequence[str],
    metadata: Mapping[str, Any],
    transaction: tuple[str, int],
    run_id: str,
    loaded_at: datetime,
    log: Any = None,
    max_quarantined: int | float | None = None,
) -> CheckedWrite:
    """Write the checked rows: `mode` overwrite, append or merge (by `keys`); the
    quarantine `quarantine_mode` (append or overwrite), or not at all (`skip_quarantine`:
    its commit of this transaction landed already); nothing when the bad rows are past
    `max_quarantined`. A commit of the transaction by another writer first is a conflict.

    Raises:
        CommitConflictError: another writer committed the transaction first.
        QuarantineLimitError: more bad rows than `max_quarantined` (nothing is written).
    """
    bad = lambda rows: text_quarantine(rows, run_id=run_id, loaded_at=loaded_at)  # noqa: E731
    good = None
    if mode == "merge" and lake.exists(target):
        good = _upsert(lake, target, keys, rules)
        partition_by = lake.table_files(target).partition_columns
    return write_checked(
        frame,
        rules,
        lake=lake,
        target=target,
        mode="overwrite" if mode == "merge" else mode,
        quarantine_mode=quarantine_mode,
        skip_quarantine=skip_quarantine,
        if_committed="conflict",
        metadata=metadata,
        transaction=transaction,
        partition_by=partition_by or None,
        good=good,
        bad=bad,
        log=log,
        max_quarantined=max_quarantined,
    )


def _upsert(lake: Lake, target: str, keys: Sequence[str], rules: Sequence[Rule]) -> Callable[[DataFrame], DataFrame]:
    """A `good` shaper: the target's rows without the new rows' keys, plus the new rows."""
    from pyspark.sql import functions as F

    version = lake.version(target)
    internal = {REASON} | {FLAG.format(i) for i in range(len(rules))}

    def shape(kept: DataFrame) -> DataFrame:
        new = kept.select(*[F.col(f"`{c}`") for c in kept.columns if c not in internal])
        if lake.version(target) != version:
            raise CommitConflictError(
                f"{target} changed (version {version} -> {lake.version(target)}) while the merge "
                "read it; nothing was written to it",
                hint="read the table again and merge again",
            )
        current = read_table(new.sparkSession, lake, target, version=version)
        types = {f.name.lower(): f.dataType for f in current.schema.fields}
        new = new.select(
            *[
                F.col(f"`{c}`").cast(types[c.lower()]).alias(c) if c.lower() in types else F.col(f"`{c}`")
                for c in new.columns
            ]
        )
        untouched = current.join(new.select(*[F.col(f"`{k}`") for k in keys]).distinct(), list(keys), "left_anti")
        return untouched.unionByName(new, allowMissingColumns=True)

    return shape
