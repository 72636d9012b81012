"""The quality options and steps only the kinds use: `max_quarantined` (`QuarantineLimit`),
the DuckDB engine a data task runs on, and the quarantine commit of a DuckDB batch. The rules
themselves are in `brickyard.core.quality`, shared with the engines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import field_validator
from pydantic_core import PydanticCustomError

from brickyard.tasks.base import TaskOptions

if TYPE_CHECKING:

    from brickyard.engines.duckdb.engine import DuckDBEngine


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

    return DuckDBEngine(workspace.lake, workspace.config.duckdb).fresh()


