"""A task kind for runtime tests, with knobs for failures, sleeps, CPU burn and lineage.

Registered by the `probe_kind` helper as kind `probe` (module path `kinds_for_tests`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from brickyard import Workspace
from brickyard.errors import BrickyardError
from brickyard.tasks import registry
from brickyard.tasks.base import CheckContext, TaskContext, TaskKind, TaskOptions

HERE = Path(__file__).resolve().parent


class FlakyError(BrickyardError):
    """A failure worth retrying."""

    transient = True


class ProbeOptions(TaskOptions):
    sleep: float = 0.0
    fail: bool = False
    fail_attempts: int = 0
    transient: bool = False
    connection_reset: bool = False  # fail with a foreign transient error (ConnectionResetError)
    burn_cpu: float = 0.0
    rows_in: int = 0
    rows_out: int = 0
    reads: dict[str, int] = {}
    writes: dict[str, int] = {}
    problems: list[str] = []
    needs_table: str | None = None


class ProbeTask(TaskKind):
    """Does what its options say; records what it saw in `metrics.extra`."""

    name = "probe"
    Options = ProbeOptions

    def check(self, options: ProbeOptions, context: CheckContext) -> list[str]:
        found = list(options.problems)
        if options.needs_table and options.needs_table not in context.produced_tables:
            found.append(f"table {options.needs_table!r} does not exist and no task writes it")
        return found

    def writes(self, options: ProbeOptions) -> list[str]:
        return list(options.writes)

    def run(self, options: ProbeOptions, context: TaskContext) -> None:
        context.log.info("probe %s attempt %d", context.task.name, context.attempt)
        context.metrics.extra["full_refresh"] = context.full_refresh
        if options.sleep:
            time.sleep(options.sleep)
        deadline = time.process_time() + options.burn_cpu
        total = 0
        while time.process_time() < deadline:
            total += sum(i * i for i in range(1000))
        if options.fail or context.attempt <= options.fail_attempts:
            if options.connection_reset:
                raise ConnectionResetError(f"probe connection reset on attempt {context.attempt}")
            if options.transient:
                raise FlakyError(f"flaky failure on attempt {context.attempt}")
            raise RuntimeError(f"probe failure on attempt {context.attempt}")
        for table, version in options.reads.items():
            context.record_read(table, version)
        for table, version in options.writes.items():
            context.record_write(table, version)
        context.metrics.rows_in, context.metrics.rows_out = options.rows_in, options.rows_out


def register_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make kind `probe` known for this test."""
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setitem(registry.BUILTIN_KINDS, "probe", "kinds_for_tests:ProbeTask")


def write_pipeline(ws: Workspace, name: str, text: str) -> Path:
    """Write `pipelines/NAME.yaml`."""
    path = ws.root / "pipelines" / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def write_module(ws: Workspace, name: str, text: str) -> Path:
    """Write a Python module into the workspace (importable by python tasks)."""
    path = ws.root / f"{name}.py"
    path.write_text(text, encoding="utf-8")
    return path


def task_rows(rows: Any) -> list[tuple[str, int, str]]:
    """(task, attempt, status) of attempt records."""
    return [(row.task, row.attempt, row.status) for row in rows]
