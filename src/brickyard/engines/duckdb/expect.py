"""The `expect` kind's DuckDB steps (the kind is `brickyard.tasks.expect`): count each
rule's failures over one table version, and, on `drop`, append the bad rows to the
quarantine and rewrite the table without them, streaming Arrow batches through this process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb

from brickyard.core.quality import (
    FLAG,
    CheckedWrite,
    Rule,
    Splitter,
    StreamGuard,
    checked_query,
    prefetched,
    quote,
    text_rows,
)
from brickyard.engines.base import TableCheck
from brickyard.engines.duckdb.engine import DuckDBEngine, one_line
from brickyard.engines.duckdb.quarantine import write_quarantine
from brickyard.engines.duckdb.views import register
from brickyard.errors import LakeError, SqlError
from brickyard.lake.datasets import arrow_dataset
from brickyard.lake.names import TableName

BATCH_ROWS = 256 * 1024


class DuckDBCheck(TableCheck):
    """The checked rows of `table`'s current version on DuckDB."""

    def __init__(self, engine: DuckDBEngine, table: str, rules: Sequence[Rule], *, task: str) -> None:
        self.lake, self.table, self.rules, self.task = engine.lake, table, rules, task
        self.engine = engine.fresh()
        try:
            self.delta = self.lake.delta(table)
            self.version: int = self.delta.version()
            register(self.engine, table, arrow_dataset(self.delta))
        except BaseException:
            self.engine.close()
            raise
        name = TableName.parse(table)
        self.checked = checked_query(f"SELECT * FROM {quote(name.zone)}.{quote(name.name)}", rules)

    def count(self) -> tuple[int, list[int]]:
        """The number of rows, and per rule the number that break it."""
        counters = ", ".join(f"count(*) FILTER (WHERE {FLAG.format(i)})" for i in range(len(self.rules)))
        try:
            found = self.engine.connection.sql(f"SELECT count(*), {counters} FROM ({self.checked})").fetchall()[0]
        except duckdb.Error as exc:
            raise SqlError(f"expectations on {self.table}: {one_line(str(exc))}") from exc
        return int(found[0]), [int(c) for c in found[1:]]

    def rewrite(
        self, *, metadata: Mapping[str, Any], transaction: tuple[str, int], run_id: str, loaded_at: datetime,
        max_quarantined: int | float | None = None,
    ) -> CheckedWrite:
        """Append the `drop` rows to the quarantine and overwrite the table with the rest,
        in one commit made only if the table is still at the checked version; nothing when
        the `drop` rows are past `max_quarantined`."""
        import pyarrow as pa

        lake, table, version = self.lake, self.table, self.version
        schema = pa.schema(self.delta.schema().to_arrow())
        partitions = list(self.delta.metadata().partition_columns)
        splitter = Splitter(
            rules=self.rules,
            good_columns=schema.names,
            bad_rows=lambda rows, mask: text_rows(rows, mask, schema.names, run_id=run_id, loaded_at=loaded_at),
            target=table,
            finish_good=lambda rows: rows.cast(schema),
            max_quarantined=max_quarantined,
        )
        reader = self.engine.connection.sql(self.checked).to_arrow_reader(BATCH_ROWS)
        quarantined: list[int] = []

        def before_commit() -> None:
            now = lake.version(table)
            if now != version:
                raise LakeError(
                    f"{table} changed (version {version} -> {now}) while task {self.task} "
                    "checked it; nothing was written",
                    hint="run the task again",
                )
            bad = pa.Table.from_batches(splitter.bad)
            written = write_quarantine(
                lake, table, splitter.bad, bad.schema, overwrite=False,
                metadata=dict(metadata), transaction=transaction,
            )
            if written is not None:
                quarantined.append(written)

        guard = StreamGuard()
        stream = pa.RecordBatchReader.from_batches(schema, guard.wrap(prefetched(splitter.split(reader))))
        with guard:
            written = lake.write(
                table, stream, mode="overwrite", partition_by=partitions or None,
                metadata=dict(metadata), transaction=transaction, before_commit=before_commit,
            )
        return CheckedWrite(
            rows_in=splitter.rows_in,
            rows_good=splitter.rows_good,
            rows_bad=splitter.rows_bad,
            results=splitter.results(),
            version=written,
            quarantine_version=quarantined[0] if quarantined else None,
            reasons=splitter.reasons(),
        )

    def close(self) -> None:
        self.engine.close()
