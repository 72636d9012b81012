"""The `sql` kind's DuckDB steps (the kind is `brickyard.tasks.sql_task`): the query's lake
tables pinned at one version each (whole, or only the rows added since a version), and the
checked rows streamed through this process into the target and its quarantine.

The query runs on a fresh engine of its own (tables an earlier task registered must not be
seen at their old versions); HUGEINT columns are written as BIGINT, as Spark writes them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import duckdb

from brickyard.core.quality import (
    REASON,
    CheckedWrite,
    Rule,
    Splitter,
    StreamGuard,
    checked_query,
    prefetched,
    quote,
    require_query_columns,
    text_rows,
)
from brickyard.engines.base import TaskQuery
from brickyard.engines.duckdb.engine import DuckDBEngine
from brickyard.engines.duckdb.quarantine import write_quarantine
from brickyard.engines.duckdb.views import register, registered_tables
from brickyard.engines.sql_text import one_line
from brickyard.errors import SqlError

if TYPE_CHECKING:
    from datetime import datetime

    import pyarrow as pa

    from brickyard.lake import WriteMode

BATCH_ROWS = 256 * 1024


class DuckDBQuery(TaskQuery):
    """A task's query prepared on a fresh DuckDB engine (see the module doc)."""

    def __init__(self, engine: DuckDBEngine, text: str, rules: Sequence[Rule], where: str) -> None:
        self.lake, self.rules, self.where = engine.lake, list(rules), where
        self.engine = engine.fresh()
        try:
            self.prepared = self.engine.prepare(text)
        except SqlError as exc:
            self.engine.close()
            raise SqlError(f"{where}: {exc.message}", hint=exc.hint) from exc
        except BaseException:
            self.engine.close()
            raise

    def pin(
        self, since: Callable[[str], int | None] = lambda _: None, at: Mapping[str, int] | None = None
    ) -> dict[str, int]:
        versions: dict[str, int] = {}
        for table in registered_tables(self.engine):
            dataset, version = self.lake.added_since(table, since(table), until=(at or {}).get(table))
            register(self.engine, table, dataset)
            versions[table] = version
        return versions

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
        import pyarrow as pa

        rules, where, engine, lake = self.rules, self.where, self.engine, self.lake
        query = checked_query(self.prepared, rules) if rules else self.prepared
        try:
            relation = _without_hugeint(engine.connection.sql(query))
            if order_by:
                relation = relation.order(", ".join(f"{quote(column)} ASC NULLS FIRST" for column in order_by))
            reader = relation.to_arrow_reader(BATCH_ROWS)
        except duckdb.Error as exc:
            raise _query_error(engine, where, exc) from exc
        internal = {REASON} | {f for f in reader.schema.names if f.startswith("__by_rule_")}
        columns = [name for name in reader.schema.names if name not in internal]
        good_schema = pa.schema([reader.schema.field(name) for name in columns])
        require_query_columns(columns, [*keys, *partition_by], where)
        splitter = Splitter(
            rules=rules,
            good_columns=columns,
            bad_rows=lambda rows, mask: text_rows(rows, mask, columns, run_id=run_id, loaded_at=loaded_at),
            target=target,
            max_quarantined=max_quarantined,
        )
        versions: list[int] = []

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from reader
            except (duckdb.Error, OSError) as exc:  # an Arrow reader raises DuckDB's errors as OSError
                raise _query_error(engine, where, exc) from exc

        def quarantine() -> None:
            if not rules or skip_quarantine:
                return
            schema = pa.Table.from_batches(splitter.bad).schema if splitter.bad else _text_schema(columns)
            version = write_quarantine(
                lake,
                target,
                splitter.bad,
                schema,
                overwrite=quarantine_mode == "overwrite",
                metadata=dict(metadata),
                transaction=transaction,
                if_committed="conflict",
            )
            if version is not None:
                quarantined(version)
                versions.append(version)

        try:
            partitions = list(partition_by) or None
            guard = StreamGuard()
            if mode == "merge":
                good = pa.Table.from_batches(list(splitter.split(batches())), good_schema)
                quarantine()
                version = lake.merge(
                    target,
                    good,
                    keys=list(keys),
                    partition_by=partitions,
                    evolve_schema=True,
                    metadata=dict(metadata),
                    transaction=transaction,
                    if_committed="conflict",
                )
            else:
                stream = pa.RecordBatchReader.from_batches(good_schema, guard.wrap(prefetched(splitter.split(batches()))))
                with guard:
                    version = lake.write(
                        target,
                        stream,
                        mode=mode,
                        partition_by=partitions,
                        evolve_schema=True,
                        metadata=dict(metadata),
                        transaction=transaction,
                        before_commit=quarantine,
                        if_committed="conflict",
                    )
        finally:
            reader.close()  # a write refused before it read the stream leaves the result open
        if rules:
            splitter.log_warnings(log)
        return CheckedWrite(
            rows_in=splitter.rows_in,
            rows_good=splitter.rows_good,
            rows_bad=splitter.rows_bad,
            results=splitter.results(),
            version=version,
            quarantine_version=versions[-1] if versions else None,
            reasons=splitter.reasons(),
        )

    def close(self) -> None:
        self.engine.close()


def _query_error(engine: DuckDBEngine, where: str, exc: Exception) -> SqlError:
    """DuckDB's error running a task's query as one line; a malformed raw CSV line is named
    by its lake file and line (see `DuckDBEngine.csv_error`)."""
    found = engine.csv_error(str(exc))
    if found is not None:
        return SqlError(f"{where}: {found.message}", hint=found.hint)
    return SqlError(f"{where}: {one_line(str(exc))}")


def _without_hugeint(relation: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """HUGEINT columns (DuckDB's `sum` of integers) as BIGINT: a 128-bit integer would land
    in Delta as DECIMAL(38,0), where Spark (and Databricks) give BIGINT; a sum beyond BIGINT
    fails the cast instead of being written."""
    hugeint = [name for name, kind in zip(relation.columns, relation.types, strict=True) if str(kind) == "HUGEINT"]
    if not hugeint:
        return relation
    replaced = ", ".join(f"CAST({quote(name)} AS BIGINT) AS {quote(name)}" for name in hugeint)
    return relation.select(f"* REPLACE ({replaced})")


def _text_schema(columns: list[str]) -> pa.Schema:
    import pyarrow as pa

    from brickyard.core.quality import LOADED_AT_COLUMN, REASON_COLUMN, RUN_ID_COLUMN

    fields = [pa.field(c, pa.string()) for c in columns if c not in (REASON_COLUMN, RUN_ID_COLUMN, LOADED_AT_COLUMN)]
    fields += [
        pa.field(REASON_COLUMN, pa.string()),
        pa.field(LOADED_AT_COLUMN, pa.timestamp("us")),
        pa.field(RUN_ID_COLUMN, pa.string()),
    ]
    return pa.schema(fields)

