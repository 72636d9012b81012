"""Helpers for the data task kinds' tests: a workspace, and a way to run one task of a
pipeline the way the runner does (a TaskContext built by hand)."""

from __future__ import annotations

import itertools
import logging
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from brickyard import Workspace
from brickyard.core.pipeline import PipelineSpec
from brickyard.tasks import get_kind
from brickyard.tasks.base import CheckContext, TaskContext

DATA = Path(__file__).resolve().parents[3] / "src" / "brickyard" / "demo" / "data"
TAXI_SAMPLE = DATA / "nyc_taxi_2017_sample.csv"
TITANIC = DATA / "titanic.csv"
_run_ids = itertools.count(1)


class Lakehouse:
    """A workspace plus the calls the data-task tests make on it."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.lake = ws.lake

    def raw(self, relative: str, content: str | bytes | Path) -> Path:
        """Put a file under lake/ (e.g. `raw/taxi/a.csv`)."""
        path = Path(self.lake.location.uri(relative))
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def file(self, relative: str, text: str) -> Path:
        """Put a file in the workspace (contracts/..., sql/...)."""
        path = self.ws.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def spec(self, tasks: list[dict[str, Any]], pipeline: str = "p") -> PipelineSpec:
        return PipelineSpec.model_validate({"name": pipeline, "tasks": tasks})

    def run(
        self,
        tasks: list[dict[str, Any]] | dict[str, Any],
        name: str | None = None,
        *,
        run_id: str | None = None,
        full_refresh: bool = False,
        pipeline: str = "p",
    ) -> TaskContext:
        """Run one task (the only one, or `name`) of a pipeline made of `tasks`."""
        tasks = [tasks] if isinstance(tasks, dict) else tasks
        spec = self.spec(tasks, pipeline)
        task = spec.task(name) if name else spec.tasks[0]
        kind = get_kind(task.kind)
        options = kind.Options.model_validate(task.options)
        context = TaskContext(
            workspace=self.ws,
            pipeline=spec,
            task=task,
            run_id=run_id or f"run-{next(_run_ids)}",
            attempt=1,
            full_refresh=full_refresh,
            log=logging.getLogger(f"test.{task.name}"),
        )
        kind.run(options, context)
        return context

    def check(self, tasks: list[dict[str, Any]] | dict[str, Any], name: str | None = None) -> list[str]:
        """`check` of one task, with every table the pipeline's tasks write as produced."""
        tasks = [tasks] if isinstance(tasks, dict) else tasks
        spec = self.spec(tasks)
        produced: set[str] = set()
        for spec_task in spec.tasks:
            kind = get_kind(spec_task.kind)
            produced |= set(kind.writes(kind.Options.model_validate(spec_task.options)))
        task = spec.task(name) if name else spec.tasks[0]
        kind = get_kind(task.kind)
        options = kind.Options.model_validate(task.options)
        return kind.check(options, CheckContext(self.ws, spec, frozenset(produced)))

    def table(self, name: str, *, sort: str | None = None, version: int | None = None) -> pa.Table:
        table = self.lake.read(name, version=version)
        return table.sort_by(sort) if sort else table

    def rows(self, name: str, sort: str) -> list[dict[str, Any]]:
        return self.table(name, sort=sort).to_pylist()

    def count(self, name: str) -> int:
        return self.lake.read(name).num_rows


@pytest.fixture
def house(tmp_path: Path) -> Lakehouse:
    return Lakehouse(Workspace.init(tmp_path / "ws"))
