"""The `python` task kind: call a function of the user's code with the task context.

```yaml
- name: score
  kind: python
  function: jobs.scoring:main     # package.module:function, the workspace is on sys.path
  args: {threshold: 0.5}          # keyword arguments
```

The function is called as `main(context, threshold=0.5)`; a returned dict is merged into
the attempt's `metrics.extra`. It may set `context.metrics.rows_in/rows_out` and record
lineage with `context.record_read/record_write`.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from brickyard.errors import BrickyardError, suggest
from brickyard.tasks.base import CheckContext, TaskContext, TaskKind, TaskOptions

REFERENCE = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"


class PythonTaskError(BrickyardError):
    """The function of a python task cannot be found or called."""


class PythonOptions(TaskOptions):
    """Options of a `python` task."""

    function: str = Field(pattern=REFERENCE, description="package.module:function")
    args: dict[str, Any] = Field(default_factory=dict)


def resolve_function(reference: str, root: Path) -> Callable[..., Any]:
    """Import `package.module:function` with the workspace `root` first on sys.path.

    Raises:
        PythonTaskError: the module does not import, or has no such callable.
    """
    module_name, _, attribute = reference.partition(":")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise PythonTaskError(
                f"no module named {module_name!r} (function {reference!r})",
                hint=f"put {module_name.replace('.', '/')}.py in the workspace {root}, or install its package",
            ) from exc
        raise PythonTaskError(
            f"importing {module_name!r} failed: {exc}", hint="install the missing package"
        ) from exc
    except Exception as exc:
        raise PythonTaskError(
            f"importing {module_name!r} failed: {type(exc).__name__}: {exc}",
            hint=f"run `python -c 'import {module_name}'` in the workspace to see the traceback",
        ) from exc
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            names = [name for name in dir(target) if not name.startswith("_")]
            raise PythonTaskError(
                f"module {module_name!r} has no attribute {attribute!r}",
                hint=suggest(part, names) or f"define def {part}(context, ...) in {module_name}",
            )
        target = getattr(target, part)
    if not callable(target):
        raise PythonTaskError(f"{reference!r} is not callable", hint="point `function` at a function")
    return target


def _check_arguments(function: Callable[..., Any], options: PythonOptions) -> str | None:
    try:
        inspect.signature(function).bind(None, **options.args)
    except TypeError as exc:
        return f"{options.function} cannot be called as f(context, **args): {exc}"
    except ValueError:  # no signature (a builtin): cannot tell
        return None
    return None


class PythonTask(TaskKind):
    """Calls `function(context, **args)`."""

    name = "python"
    needs: ClassVar[frozenset[str]] = frozenset()  # any engine: the function sees context.engine (and context.spark)
    Options = PythonOptions

    def check(self, options: PythonOptions, context: CheckContext) -> list[str]:
        try:
            function = resolve_function(options.function, context.workspace.root)
        except PythonTaskError as exc:
            return [str(exc)]
        problem = _check_arguments(function, options)
        return [problem] if problem else []

    def run(self, options: PythonOptions, context: TaskContext) -> None:
        function = resolve_function(options.function, context.workspace.root)
        problem = _check_arguments(function, options)
        if problem:
            raise PythonTaskError(problem, hint="match `args` to the function's keyword parameters")
        context.log.info("calling %s", options.function)
        result = function(context, **options.args)
        if isinstance(result, dict):
            context.metrics.extra.update(result)
