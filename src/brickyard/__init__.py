"""brickyard: a lakehouse ML platform on one machine.

>>> import brickyard, tempfile
>>> ws = brickyard.Workspace.init(tempfile.mkdtemp())
>>> ws.sql("SELECT 1 AS one").fetchall()
[(1,)]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from brickyard.errors import (
    BrickyardError,
    ConfigError,
    DataFileNotFoundError,
    LakeError,
    SqlError,
    TableNotFoundError,
    UsageError,
    WorkspaceNotFoundError,
)

if TYPE_CHECKING:
    from brickyard.lake import Lake, TableName
    from brickyard.workspace import Workspace

__version__ = "0.1.0"
__all__ = [
    "BrickyardError",
    "ConfigError",
    "DataFileNotFoundError",
    "Lake",
    "LakeError",
    "SqlError",
    "TableName",
    "TableNotFoundError",
    "UsageError",
    "Workspace",
    "WorkspaceNotFoundError",
]

_LAZY = {"Workspace": "brickyard.workspace", "Lake": "brickyard.lake", "TableName": "brickyard.lake"}


def __getattr__(name: str) -> Any:
    # The facade is imported on first use so `brickyard --help` stays fast.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'brickyard' has no attribute {name!r}")
