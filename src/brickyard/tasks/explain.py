"""`check` helpers for the SQL-running kinds: find a query's problems with DuckDB's EXPLAIN
(`brickyard.engines.duckdb.explain`), without running it and before upstream tasks have
produced their tables.

Tables the query names that are not in the lake yet but that some pipeline task writes are
stood in for by empty views with the columns their contract declares (an ingest target also
gets `_source_file` and `_loaded_at`); when no contract says, the query is only parsed.
"""

from __future__ import annotations

from collections.abc import Sequence

from brickyard.core.contract import Contract
from brickyard.core.quality import Rule
from brickyard.engines.duckdb.explain import explain_select
from brickyard.errors import BrickyardError
from brickyard.tasks.base import CheckContext

INGEST_COLUMNS = (("_source_file", "VARCHAR"), ("_loaded_at", "TIMESTAMP"))


def declared_columns(context: CheckContext, table: str) -> list[tuple[str, str]] | None:
    """The columns a not-yet-written table will have, from the contract of the task that
    writes it (or `contracts/<table>.yaml`); None when unknown."""
    contract: Contract | None = None
    ingest = False
    for task in context.pipeline.tasks:
        options = task.options
        if options.get("target") == table and isinstance(options.get("contract"), str):
            try:
                contract = context.workspace.contract(options["contract"])
            except BrickyardError:
                return None
            ingest = task.kind == "ingest"
            break
    if contract is None:
        try:
            contract = context.workspace.contract(table)
        except BrickyardError:
            return None
    if not contract.columns:
        return None
    columns = [
        (c.name, "VARCHAR" if c.pii else c.duckdb_type) for c in contract.columns
    ]
    return columns + list(INGEST_COLUMNS) if ingest else columns


def explain_problems(
    context: CheckContext,
    text: str,
    where: str,
    rules: Sequence[Rule] = (),
    *,
    required: Sequence[str] = (),
) -> list[str]:
    """Problems of a SELECT: unknown tables, SQL errors (with position), expectations that
    do not compile against its columns, `required` columns it lacks (explained by DuckDB:
    `brickyard.engines.duckdb.explain.explain_select`)."""
    return explain_select(
        context.workspace.engine,
        text,
        where,
        rules,
        required=required,
        produced=context.produced_tables,
        declared=lambda table: declared_columns(context, table),
    )
