"""The quality options and steps only the kinds use: `max_quarantined` (`QuarantineLimit`),
the DuckDB engine a data task runs on, and the quarantine commit of a DuckDB batch. The rules
themselves are in `brickyard.core.quality`, shared with the engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import field_validator
from pydantic_core import PydanticCustomError

from brickyard.core.quality import quarantine_name
from brickyard.tasks.base import TaskOptions

if TYPE_CHECKING:
    import pyarrow as pa

    from brickyard.engines.duckdb.engine import DuckDBEngine
    from brickyard.lake import IfCommitted, Lake


class QuarantineLimit(TaskOptions):
    """`max_quarantined`, for the kinds that quarantine: a share of the checked rows (a
    number in [0, 1): 0.01 = 1%) or a count of rows (a whole number >= 0). Past it the task
    fails with nothing committed. None (the default): no limit."""

    max_quarantined: int | float | None = None

    @field_validator("max_quarantined", mode="before")
    @classmethod
    def _share_or_count(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, float) and 0.0 <= value < 1.0:
            return value
        raise PydanticCustomError(
            "max_quarantined",
            "max_quarantined must be a share below 1 (0.01 = 1%) or a whole number of rows (5)",
        )


def task_engine(workspace: Any) -> DuckDBEngine:
    """A fresh DuckDB engine for one task run (tables registered by earlier tasks must not
    be seen at their old versions), set up for batch work:

    no progress bar on the terminal (the engine itself turns DuckDB 2.0's `type_pushdown`
    off, which breaks TRY_CAST over read_csv text columns).
    """
    from brickyard.engines.duckdb.engine import DuckDBEngine

    engine = DuckDBEngine(workspace.lake, workspace.config.duckdb)
    engine.connection.execute("SET enable_progress_bar = false")
    return engine


def write_quarantine(
    lake: Lake,
    table: str,
    batches: Sequence[pa.RecordBatch],
    schema: pa.Schema,
    *,
    overwrite: bool,
    metadata: dict[str, str],
    transaction: tuple[str, int],
    if_committed: IfCommitted = "skip",
) -> int | None:
    """Write quarantined rows to `<table>__quarantine` in one idempotent commit.

    Appends (or overwrites, mirroring a rebuilt target). Writes nothing when there are no
    rows, unless an overwrite must empty an existing quarantine. `if_committed` is
    `Lake.write`'s. Returns its new version.

    Raises:
        CommitConflictError: the transaction is there already and `if_committed` is
            "conflict".
    """
    import pyarrow as pa

    name = quarantine_name(table)
    rows = sum(batch.num_rows for batch in batches)
    if rows == 0 and not (overwrite and lake.exists(name)):
        return None
    data = pa.Table.from_batches([b.cast(schema) if b.schema != schema else b for b in batches], schema)
    return lake.write(
        name,
        data,
        mode="overwrite" if overwrite else "append",
        evolve_schema=True,
        metadata=metadata,
        transaction=transaction,
        if_committed=if_committed,
    )
