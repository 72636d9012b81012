"""The columns an ingest target will have, known before the ingest runs (for `check`s of
the tasks that read it, such as a train task's label and features).

They are what the ingest plans (see `IngestTask` and `_IngestJob.plan`): the columns the
target already has, the contract's columns (by their target names), the source files'
other columns unless the contract says `evolution: fail`, and `_source_file`, `_loaded_at`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from brickyard.core.quality import LOADED_AT_COLUMN, SOURCE_FILE_COLUMN
from brickyard.engines.duckdb.sources import describe
from brickyard.errors import BrickyardError
from brickyard.tasks.checkpoint import list_files
from brickyard.tasks.quality import task_engine

if TYPE_CHECKING:
    from brickyard.core.contract import Contract
    from brickyard.tasks.base import CheckContext
    from brickyard.tasks.ingest import IngestOptions


def target_columns(options: IngestOptions, context: CheckContext) -> list[str] | None:
    """The target's columns after the ingest, or None when they cannot be told (the
    contract or the files cannot be read, or no file matches yet)."""
    ws = context.workspace
    contract: Contract | None = None
    if options.contract:
        try:
            contract = ws.contract(options.contract)
        except BrickyardError:
            return None
    lake = ws.lake
    existing = [field.name for field in lake.delta(options.target).schema().fields] if lake.exists(options.target) else []
    declared = [column.name for column in contract.columns] if contract else []
    found = [*existing, *declared]
    if contract is None or contract.evolution == "add" or not (declared or existing):
        sources = _file_columns(options, context)
        if sources is None:
            return None
        renamed = {column.source_name for column in contract.columns} if contract else set()
        found += [name for name in sources if name not in renamed]
    found += [SOURCE_FILE_COLUMN, LOADED_AT_COLUMN]
    return list(dict.fromkeys(found))


def _file_columns(options: IngestOptions, context: CheckContext) -> list[str] | None:
    """The source files' columns, as the ingest reads them (DuckDB's look at each file)."""
    lake = context.workspace.lake
    try:
        files = list_files(lake, options.source)
    except Exception:  # noqa: BLE001 - the ingest's own check reports a listing problem
        return None
    if not files:
        return None
    engine = task_engine(context.workspace)
    try:
        uris = [lake.location.uri(file.path) for file in files]
        return [name for name, _ in describe(engine.connection, options.file_format, uris, options.reader, typed=False)]
    except Exception:  # noqa: BLE001 - an unreadable file fails the ingest, which says where
        return None
    finally:
        engine.close()
