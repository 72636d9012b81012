"""Helpers for the ML tests: run one task of a pipeline with a hand-built TaskContext."""

from __future__ import annotations

import logging
from typing import Any

from brickyard import Workspace
from brickyard.core.pipeline import PipelineSpec
from brickyard.tasks import TaskContext, get_kind

TITANIC_FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
RUN_ID = "20260101-000000-aaaaaa"


def run_task(
    ws: Workspace, pipeline: dict[str, Any], task_name: str, run_id: str = RUN_ID, engine: str | None = None
) -> TaskContext:
    """Run one task of a pipeline (given as a dict) with a TaskContext built by hand (on
    `engine`, default the workspace's)."""
    spec = PipelineSpec.model_validate(pipeline)
    task = spec.task(task_name)
    kind = get_kind(task.kind)
    options = kind.Options.model_validate(task.options)
    context = TaskContext(ws, spec, task, run_id, 1, False, logging.getLogger(f"test.{task_name}"), engine=engine)
    kind.run(options, context)
    return context


def titanic_pipeline(*tasks: dict[str, Any], name: str = "titanic") -> dict[str, Any]:
    return {"name": name, "tasks": list(tasks)}


def train_task(**overrides: Any) -> dict[str, Any]:
    task = {
        "name": "train", "kind": "train", "table": "silver.titanic", "label": "Survived",
        "features": TITANIC_FEATURES, "estimator": "logistic_regression",
    }
    task.update(overrides)
    return task
