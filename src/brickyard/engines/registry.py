"""The engines brickyard has, by name: the one list that config validation, planning,
`brickyard validate` and the CLI's `--engine` choices read.

Engine classes are imported only when used, so naming the engines costs no DuckDB or
PySpark import.

>>> engine_names()
('duckdb', 'spark')
>>> engine_class("spark").distributed
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from brickyard.errors import ConfigError

if TYPE_CHECKING:
    from brickyard.engines.base import Engine

# name -> "module:Class"; the name is also the engine's section in brickyard.yaml
ENGINES: dict[str, str] = {
    "duckdb": "brickyard.engines.duckdb.engine:DuckDBEngine",
    "spark": "brickyard.engines.spark.engine:SparkEngine",
}
DEFAULT_ENGINE = "duckdb"


class UnknownEngineError(ConfigError):
    """A name that is no engine's."""


def engine_names() -> tuple[str, ...]:
    """Every engine's name, the default first."""
    return tuple(ENGINES)


def engine_class(name: str) -> type[Engine]:
    """The class of the engine called `name`.

    Raises:
        UnknownEngineError: no engine has that name.
    """
    target = ENGINES.get(name)
    if target is None:
        raise UnknownEngineError(f"unknown engine {name!r}", hint=f"engines: {', '.join(ENGINES)}")
    module_name, class_name = target.split(":")
    engine: type[Engine] = getattr(importlib.import_module(module_name), class_name)
    return engine
