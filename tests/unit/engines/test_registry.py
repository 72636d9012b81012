"""The engine seam: one registry of engines, capability flags, and kinds that run on the
engines whose capabilities they need."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from brickyard import Workspace
from brickyard.engines.base import CAPABILITIES, Engine
from brickyard.engines.registry import (
    DEFAULT_ENGINE,
    UnknownEngineError,
    engine_class,
    engine_names,
)
from brickyard.tasks.base import CheckContext, TaskContext
from brickyard.tasks.registry import get_kind, kind_names


def test_the_registry_names_every_engine_and_each_states_its_capabilities() -> None:
    assert engine_names() == ("duckdb", "spark") and DEFAULT_ENGINE == "duckdb"
    duckdb, spark = engine_class("duckdb"), engine_class("spark")
    assert issubclass(duckdb, Engine) and issubclass(spark, Engine)
    assert (duckdb.name, spark.name) == ("duckdb", "spark")
    assert duckdb.capabilities() == {"streams_locally"}
    assert spark.capabilities() == {"distributed", "translates_sql"}
    assert set(duckdb.capabilities() | spark.capabilities()) <= set(CAPABILITIES)


def test_an_unknown_engine_is_a_config_error_naming_the_engines() -> None:
    with pytest.raises(UnknownEngineError) as caught:
        engine_class("sparc")
    assert "unknown engine 'sparc'" in str(caught.value) and "duckdb, spark" in str(caught.value)


def test_naming_the_engines_imports_neither_duckdb_nor_pyspark() -> None:
    import subprocess
    import sys

    probe = (
        "import sys; from brickyard.engines.registry import engine_names; engine_names(); "
        "print(sorted(m for m in ('duckdb', 'pyspark') if m in sys.modules))"
    )
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "[]"


def test_every_builtin_kind_runs_on_every_engine() -> None:
    for name in kind_names():
        assert get_kind(name).engines == engine_names(), name


def test_a_task_context_holds_the_engine_instance_of_its_workspace(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws", example=True)
    pipeline = ws.pipeline("example").spec
    log = logging.getLogger("test.seam")
    default = TaskContext(ws, pipeline, pipeline.tasks[0], "r", 1, False, log)
    assert default.engine is ws.engine and default.engine_name == "duckdb" and not default.on_spark
    spark = TaskContext(ws, pipeline, pipeline.tasks[0], "r", 1, False, log, engine=ws.engine_named("spark"))
    assert spark.engine is ws.spark and spark.engine.distributed and spark.on_spark
    by_name = CheckContext(ws, pipeline, frozenset(), engine="spark")
    assert by_name.engine is ws.spark


def test_sql_problems_come_from_the_engine_the_task_runs_on() -> None:
    text = "SELECT list_zip([1], [2]) AS pairs"
    assert engine_class("duckdb").sql_problems(text, "q") == []
    problems = engine_class("spark").sql_problems(text, "q")
    assert len(problems) == 1 and "list_zip" in problems[0]
