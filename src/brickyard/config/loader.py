"""Read `brickyard.yaml` into a `WorkspaceConfig`, with errors that point at a line.

>>> from pathlib import Path; import tempfile
>>> folder = Path(tempfile.mkdtemp()); (folder / "lake").mkdir()
>>> _ = (folder / "brickyard.yaml").write_text("name: demo\\nengine: duckdb\\n")
>>> load_config(folder / "brickyard.yaml").name
'demo'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from brickyard.config.models import WorkspaceConfig
from brickyard.config.secrets import redacted
from brickyard.config.yaml_lines import Location, line_of, load_yaml_with_lines, read_text
from brickyard.errors import ConfigError, suggest

CONFIG_FILE = "brickyard.yaml"
M = TypeVar("M", bound=BaseModel)


def load_config(path: Path, *, engines: Sequence[str] | None = None) -> WorkspaceConfig:
    """Load and validate a workspace config file; `engines` are the engine names `engine:`
    may take (`brickyard.engines.registry.engine_names()`; None: any name).

    Raises:
        ConfigError: the file is missing, not YAML, has an unknown key, a wrong type, names
            an unknown engine, or names a local lake folder that does not exist.
    """
    data, lines = load_yaml_with_lines(read_text(path), str(path))
    context = {"engines": tuple(engines)} if engines is not None else None
    config = parse_model(WorkspaceConfig, data, lines, str(path), context=context)
    _check_references(config, path, lines)
    return config


def parse_model(
    model: type[M],
    data: Any,
    lines: dict[Location, int],
    source: str,
    *,
    also_known: Sequence[str] = (),
    context: dict[str, Any] | None = None,
) -> M:
    """Validate `data` as `model`, turning the first problem into a located ConfigError.

    `also_known`: keys valid beside the model's own fields at the top level (they belong to
    another model, e.g. a task's common keys beside its kind's options), offered by the
    hint for an unknown key. `context` is pydantic's validation context (see `load_config`).
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of keys to values", file=source, line=1)
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        # from None: pydantic's ValidationError is restated whole, with file and line (noise)
        raise _located(exc, model, lines, source, also_known) from None


def _located(
    exc: ValidationError, model: type[BaseModel], lines: dict[Location, int], source: str, also_known: Sequence[str]
) -> ConfigError:
    errors = exc.errors()
    first = errors[0]
    loc: Location = tuple(first["loc"])
    field = ".".join(str(part) for part in loc)
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    hint = None
    if first["type"] == "extra_forbidden":
        known = _known_keys(model, loc[:-1]) + (list(also_known) if len(loc) == 1 else [])
        close = suggest(str(loc[-1]), known)
        hint = close or (f"known keys here: {', '.join(sorted(known))}" if known else None)
        message = f"unknown key{more}"
    else:
        message = f"{first['msg']} (got {redacted(first.get('input'), str(loc[-1]) if loc else '')!r}){more}"
    return ConfigError(
        message, file=source, line=line_of(lines, loc), field=field, hint=hint
    )


def _known_keys(model: type[BaseModel], parent: Location) -> list[str]:
    """The field names allowed at `parent` (a path of field names) in `model`."""
    current: Any = model
    for part in parent:
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return []
        current = fields[part].annotation
    fields = getattr(current, "model_fields", None)
    return list(fields) if fields else []


def _check_references(config: WorkspaceConfig, path: Path, lines: dict[Location, int]) -> None:
    root = config.lake.root
    if "://" in root:
        return
    folder = Path(root) if Path(root).is_absolute() else path.parent / root
    if not folder.is_dir():
        raise ConfigError(
            f"lake folder {str(folder)!r} does not exist",
            file=str(path),
            line=line_of(lines, ("lake", "root")),
            field="lake.root",
            hint="create it, or point lake.root at an existing folder or an abfs:// URL",
        )
