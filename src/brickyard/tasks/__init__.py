"""Task kinds: one module per kind, registered by name in `registry.BUILTIN_KINDS`."""

from brickyard.tasks.base import CheckContext, TaskContext, TaskKind, TaskMetrics, TaskOptions
from brickyard.tasks.registry import get_kind, kind_names

__all__ = ["CheckContext", "TaskContext", "TaskKind", "TaskMetrics", "TaskOptions", "get_kind", "kind_names"]
