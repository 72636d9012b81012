"""`brickyard serve` works on the default install (`pip install brickyard`, what `make demo` does)."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[3]
SERVING = [*sorted((REPO / "src" / "brickyard" / "serving").glob("*.py")), REPO / "src" / "brickyard" / "cli" / "serve_commands.py"]


def default_dependencies() -> set[str]:
    """Names of the distributions `pip install brickyard` installs, transitively (no extras)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(text) for text in project["dependencies"]]
    found: set[str] = set()
    while wanted:
        requirement = wanted.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        found.add(name)
        try:
            wanted += [Requirement(text) for text in metadata.requires(name) or []]
        except metadata.PackageNotFoundError:
            pass
    return found


def imported_distributions(paths: list[Path]) -> dict[str, str]:
    """Third-party distribution -> the first module of `paths` that imports it (at any level)."""
    owners = metadata.packages_distributions()
    found: dict[str, str] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top == "brickyard" or top in sys.stdlib_module_names:
                    continue
                for distribution in owners.get(top, [top]):
                    found.setdefault(canonicalize_name(distribution), path.name)
    return found


def test_everything_serving_imports_comes_with_the_default_install() -> None:
    installed = default_dependencies()
    missing = {dist: where for dist, where in imported_distributions(SERVING).items() if dist not in installed}
    assert not missing, f"serving imports packages that `pip install brickyard` does not install: {missing}"


def test_the_fast_event_loop_and_http_parser_are_default_dependencies() -> None:
    installed = default_dependencies()
    assert {"uvloop", "httptools", "orjson"} <= installed
