"""Every schema problem of a YAML document at once (the loader stops at the first)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from brickyard.config.yaml_lines import Location, line_of
from brickyard.errors import suggest

MAX_INPUT = 60


def schema_problems(
    model: type[BaseModel], data: Any, lines: dict[Location, int], *, also_known: Sequence[str] = ()
) -> list[tuple[int | None, str]]:
    """(line, message) for each way `data` fails `model`; empty when it is valid.

    `also_known`: top-level keys valid beside the model's fields (see `config.loader.parse_model`).
    """
    return [
        (line, f"{field}: {message}" if field else message)
        for line, field, message in located_errors(model, data, lines, also_known=also_known)
    ]


def located_errors(
    model: type[BaseModel], data: Any, lines: dict[Location, int], *, also_known: Sequence[str] = ()
) -> list[tuple[int | None, str, str]]:
    """(line, field, message) for each way `data` fails `model` (field "" for the whole)."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        locs = [tuple(error["loc"]) for error in errors]
        # a container's complaint that follows from an item's error (e.g. "too short") is noise
        kept = [e for e, loc in zip(errors, locs, strict=True)
                if not any(len(other) > len(loc) and other[: len(loc)] == loc for other in locs)]
        return [_problem(model, error, lines, also_known) for error in kept]
    return []


def _problem(
    model: type[BaseModel], error: Any, lines: dict[Location, int], also_known: Sequence[str]
) -> tuple[int | None, str, str]:
    loc: Location = tuple(error["loc"])
    field = ".".join(str(part) for part in loc)
    if error["type"] == "extra_forbidden":
        known = known_keys(model, loc[:-1]) + (list(also_known) if len(loc) == 1 else [])
        close = suggest(str(loc[-1]), known)
        hint = close or (f"known keys here: {', '.join(sorted(known))}" if known else None)
        return line_of(lines, loc), field, "unknown key" + (f" (hint: {hint})" if hint else "")
    shown = repr(error.get("input"))
    shown = shown if len(shown) <= MAX_INPUT else shown[: MAX_INPUT - 3] + "..."
    return line_of(lines, loc), field, f"{error['msg']} (got {shown})"


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
