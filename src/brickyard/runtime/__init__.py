"""Running pipelines: the runner, the state store of runs and attempts, validation.

>>> import tempfile
>>> from brickyard.runtime import StateStore
>>> store = StateStore(f"sqlite:///{tempfile.mkdtemp()}/state.db")
>>> store.list_runs()
[]

Names are imported on first use, so `brickyard.runtime.db` stays light for the server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brickyard.runtime.records import AttemptRecord, RunRecord, RunStatus, TaskStatus
    from brickyard.runtime.runner import PipelineRunner, RunEvent, RunResult, TaskState
    from brickyard.runtime.state import StateStore, mark_dead_runs
    from brickyard.runtime.validate import Problem, validate_workspace

__all__ = [
    "AttemptRecord",
    "PipelineRunner",
    "Problem",
    "RunEvent",
    "RunRecord",
    "RunResult",
    "RunStatus",
    "StateStore",
    "TaskState",
    "TaskStatus",
    "mark_dead_runs",
    "validate_workspace",
]

_LAZY = {
    "AttemptRecord": "records", "RunRecord": "records", "RunStatus": "records", "TaskStatus": "records",
    "PipelineRunner": "runner", "RunEvent": "runner", "RunResult": "runner", "TaskState": "runner",
    "StateStore": "state", "mark_dead_runs": "state",
    "Problem": "validate", "validate_workspace": "validate",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"brickyard.runtime.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'brickyard.runtime' has no attribute {name!r}")
