"""Every schema problem of a YAML document at once (the loader stops at the first)."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from brickyard.config.yaml_lines import Location, line_of
from brickyard.errors import suggest

MAX_INPUT = 60


def schema_problems(model: type[BaseModel], data: Any, lines: dict[Location, int]) -> list[tuple[int | None, str]]:
    """(line, message) for each way `data` fails `model`; empty when it is valid."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        locs = [tuple(error["loc"]) for error in errors]
        # a container's complaint that follows from an item's error (e.g. "too short") is noise
        kept = [e for e, loc in zip(errors, locs, strict=True)
                if not any(len(other) > len(loc) and other[: len(loc)] == loc for other in locs)]
        return [_problem(model, error, lines) for error in kept]
    return []


def _problem(model: type[BaseModel], error: Any, lines: dict[Location, int]) -> tuple[int | None, str]:
    loc: Location = tuple(error["loc"])
    field = ".".join(str(part) for part in loc)
    prefix = f"{field}: " if field else ""
    if error["type"] == "extra_forbidden":
        known = known_keys(model, loc[:-1])
        close = suggest(str(loc[-1]), known)
        hint = close or (f"known keys here: {', '.join(sorted(known))}" if known else None)
        return line_of(lines, loc), f"{prefix}unknown key" + (f" (hint: {hint})" if hint else "")
    shown = repr(error.get("input"))
    shown = shown if len(shown) <= MAX_INPUT else shown[: MAX_INPUT - 3] + "..."
    return line_of(lines, loc), f"{prefix}{error['msg']} (got {shown})"


def known_keys(model: type[BaseModel], parent: Location) -> list[str]:
    """The field names allowed at `parent` (a path of field names and list indexes)."""
    current: Any = model
    for part in parent:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        current = _inner_model(fields[part].annotation)
    fields = getattr(current, "model_fields", None)
    return list(fields) if fields else []


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as `tuple[ColumnSpec, ...] | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _inner_model(argument)
        if found is not None:
            return found
    return None
