"""The task kinds brickyard knows, by name. Kinds are imported only when used, so the
ML kinds (MLflow, scikit-learn) cost nothing to a pipeline of data tasks."""

from __future__ import annotations

import importlib

from brickyard.errors import BrickyardError, suggest
from brickyard.tasks.base import TaskKind

BUILTIN_KINDS: dict[str, str] = {
    "ingest": "brickyard.tasks.ingest:IngestTask",
    "sql": "brickyard.tasks.sql_task:SqlTask",
    "expect": "brickyard.tasks.expect:ExpectTask",
    "python": "brickyard.tasks.python_task:PythonTask",
    "features": "brickyard.tasks.features:FeaturesTask",
    "train": "brickyard.tasks.train:TrainTask",
    "tune": "brickyard.tasks.tune:TuneTask",
    "evaluate": "brickyard.tasks.evaluate:EvaluateTask",
    "promote": "brickyard.tasks.promote:PromoteTask",
    "score": "brickyard.tasks.score:ScoreTask",
    "export": "brickyard.tasks.export:ExportTask",
    "materialize": "brickyard.tasks.materialize:MaterializeTask",
    "monitor": "brickyard.tasks.monitor:MonitorTask",
}


# How alike a name must be to a kind's to be taken for its typo: 'pyton' is python (0.91),
# 'transform' is no train (0.57), it is a kind that does not exist.
TYPO_CUTOFF = 0.75


class UnknownTaskKindError(BrickyardError):
    """A pipeline names a task kind that does not exist."""


def kind_names() -> list[str]:
    """Every known kind, sorted."""
    return sorted(BUILTIN_KINDS)


def get_kind(name: str) -> TaskKind:
    """An instance of the kind called `name`.

    Raises:
        UnknownTaskKindError: no such kind (with the closest names).
    """
    target = BUILTIN_KINDS.get(name)
    if target is None:
        close = suggest(name, BUILTIN_KINDS, cutoff=TYPO_CUTOFF)
        known = f"known kinds: {', '.join(kind_names())}"
        raise UnknownTaskKindError(f"unknown task kind {name!r}", hint=f"{close} {known}" if close else known)
    module_name, class_name = target.split(":")
    kind_class: type[TaskKind] = getattr(importlib.import_module(module_name), class_name)
    return kind_class()
