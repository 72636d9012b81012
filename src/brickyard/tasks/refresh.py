"""`--full-refresh` when several tasks write one table: each table is rebuilt once per run.

The first full-refresh write of a run to a table replaces it; later full-refresh writes of
the same run (another task writing the same table, or a retried attempt) append. The run
is recorded durably in the commit that replaces the table (custom metadata
`brickyard.refresh` = the run id), so every writer, on either engine and in any attempt,
decides from the table's history: when its newest replacing commit (an overwrite, or the
table's creation) carries this run's id, the table was already replaced in this run.

>>> import tempfile, pyarrow as pa
>>> from brickyard.lake import Lake, LakeLocation
>>> lake = Lake(LakeLocation(tempfile.mkdtemp()))
>>> lake.write("bronze.t", pa.table({"id": [1]}), mode=refresh_mode(lake, "bronze.t", "run-1"),
...            metadata=refresh_metadata("run-1"))
0
>>> refresh_mode(lake, "bronze.t", "run-1"), refresh_mode(lake, "bronze.t", "run-2")
('append', 'overwrite')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brickyard.lake import Lake, WriteMode

REFRESH_KEY = "brickyard.refresh"


def refresh_metadata(run_id: str) -> dict[str, str]:
    """The commit metadata that marks a write as part of run `run_id`'s full refresh."""
    return {REFRESH_KEY: run_id}


def replaced_in_run(lake: Lake, table: str, run_id: str) -> bool:
    """Whether a full refresh of run `run_id` already replaced `table`: its newest overwrite
    (or, if it was never overwritten, its creation) is marked with that run."""
    if not lake.exists(table):
        return False
    for entry in lake.history(table):
        if replaces(entry) or entry.get("version") == 0:
            return entry.get(REFRESH_KEY) == run_id
    return False


def refresh_mode(lake: Lake, table: str, run_id: str) -> WriteMode:
    """How a full-refresh write of run `run_id` writes `table`: `overwrite` the first time in
    the run, `append` after that."""
    return "append" if replaced_in_run(lake, table, run_id) else "overwrite"


def replaces(entry: dict[str, Any]) -> bool:
    """Whether a history entry replaced the table's rows (an overwrite or a REPLACE)."""
    operation = str(entry.get("operation", "")).upper()
    mode = str((entry.get("operationParameters") or {}).get("mode", "")).lower()
    return mode == "overwrite" or "REPLACE" in operation
