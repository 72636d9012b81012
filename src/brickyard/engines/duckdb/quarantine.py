"""The quarantine commit of a batch checked on DuckDB: the bad rows, collected as Arrow
batches by a `Splitter`, written to `<table>__quarantine` in one idempotent commit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from brickyard.core.quality import quarantine_name

if TYPE_CHECKING:
    import pyarrow as pa

    from brickyard.lake import IfCommitted, Lake


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
