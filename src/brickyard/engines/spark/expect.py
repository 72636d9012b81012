"""The `expect` kind's Spark steps (the kind is `brickyard.tasks.expect`): count
each rule's failures over one table version, and, on `drop`, append the bad rows to the
quarantine and rewrite the table without them, from Spark's executors.

The rules run as the same `checked_query` as on DuckDB, translated for Spark. The checked
rows are cached once, so counting and the rewrite read the table once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from brickyard.core.quality import FLAG, CheckedWrite, Rule, checked_query, quote
from brickyard.engines.base import TableCheck
from brickyard.engines.spark.quality import write_checked
from brickyard.engines.spark.sql import SparkQuery, text_quarantine
from brickyard.errors import LakeError
from brickyard.lake.names import TableName

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from brickyard.engines.spark.engine import SparkEngine
    from brickyard.lake import Lake


class SparkCheck(TableCheck):
    """The checked rows of `table` at `version` on Spark (cached until `close`)."""

    def __init__(self, engine: SparkEngine, lake: Lake, table: str, version: int, rules: Sequence[Rule]) -> None:
        from pyspark import StorageLevel

        name = TableName.parse(table)
        source = f"SELECT * FROM {quote(name.zone)}.{quote(name.name)}"
        query = SparkQuery.translate(engine, checked_query(source, rules), f"expectations on {table}")
        query.pin(lake, at={table: version})
        self.lake, self.table, self.version, self.rules = lake, table, version, rules
        self.frame: DataFrame = query.frame().persist(StorageLevel.MEMORY_AND_DISK)

    def count(self) -> tuple[int, list[int]]:
        """The number of rows, and per rule the number that break it."""
        from pyspark.sql import functions as F

        from brickyard.engines.spark.engine import translate_errors

        sums = [F.sum(F.col(FLAG.format(i)).cast("long")).alias(f"r{i}") for i in range(len(self.rules))]
        with translate_errors(f"expectations on {self.table}"):
            found = self.frame.agg(F.count(F.lit(1)).alias("n"), *sums).collect()[0]
        return int(found["n"]), [int(found[f"r{i}"] or 0) for i in range(len(self.rules))]

    def rewrite(
        self, *, metadata: Mapping[str, Any], transaction: tuple[str, int], run_id: str, loaded_at: datetime,
        max_quarantined: int | float | None = None,
    ) -> CheckedWrite:
        """Append the `drop` rows to the quarantine, then overwrite the table with the rest
        (its own schema and partitioning) in one commit; nothing past `max_quarantined`."""
        from pyspark.sql import functions as F

        files = self.lake.table_files(self.table, version=self.version)

        def unchanged() -> None:
            now = self.lake.version(self.table)
            if now != self.version:
                raise LakeError(
                    f"{self.table} changed (version {self.version} -> {now}) while it was checked; "
                    "nothing was written",
                    hint="run the task again",
                )

        def bad(rows: DataFrame) -> DataFrame:
            unchanged()
            return text_quarantine(rows, run_id=run_id, loaded_at=loaded_at)

        def good(rows: DataFrame) -> DataFrame:
            unchanged()
            return rows.select(*[F.col(f"`{name}`") for name in files.schema.names])

        return write_checked(
            self.frame,
            self.rules,
            lake=self.lake,
            target=self.table,
            mode="overwrite",
            quarantine_mode="append",
            metadata=metadata,
            transaction=transaction,
            partition_by=files.partition_columns or None,
            good=good,
            bad=bad,
            max_quarantined=max_quarantined,
        )

    def close(self) -> None:
        self.frame.unpersist()
