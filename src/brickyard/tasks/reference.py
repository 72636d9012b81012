"""The pipeline reference, made from the task kinds' `Options` models: a JSON Schema of
pipeline files (for editors) and `docs/pipelines.md` (for people).

    brickyard schema > brickyard.schema.json
    brickyard schema --format markdown > docs/pipelines.md

>>> schema = pipeline_schema()
>>> sorted(schema["properties"])[:3], len(schema["$defs"]["task"]["allOf"]) == len(kind_names())
(['description', 'engine', 'max_active_runs'], True)

The schema checks names, types, enums and bounds; rules that tie fields together (exactly
one of `query` and `sql`, `keys` with `mode: merge`) are left to `brickyard validate`.
Types, defaults and required fields come from the models; descriptions and examples from
`brickyard.tasks.reference_text`.
"""

from __future__ import annotations

import copy
import json
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic.json_schema import models_json_schema

from brickyard.core.pipeline import PipelineSpec, RetryPolicy, TaskSpec
from brickyard.ml.estimators import INSTALL_HINTS, SHORT_NAMES
from brickyard.ml.metrics import GREATER_IS_BETTER
from brickyard.tasks.reference_text import (
    DESCRIPTIONS,
    EXAMPLES,
    KIND_SUMMARIES,
    METRIC_PROBLEMS,
    MODEL_SUMMARIES,
    OTHER_METRICS,
    PIPELINE_INTRO,
    SHAPES,
    SHORTHANDS,
    SWITCHES,
)
from brickyard.tasks.registry import BUILTIN_KINDS, get_kind

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
COMMON_TASK_FIELDS = ("name", "kind", "depends_on", "retries", "timeout_seconds", "engine")
DEFAULT_TEXT = {"pipeline.name": "the file's name"}  # defaults the loader, not the model, gives
UPDATE_DOCS = "brickyard schema --format markdown > docs/pipelines.md"
PROBLEMS = ("classification", "regression", "clustering")


def kind_options() -> dict[str, type[BaseModel]]:
    """Each task kind's options model, by kind name, in the order a pipeline uses them."""
    return {name: get_kind(name).Options for name in BUILTIN_KINDS}


def documented_fields() -> Iterator[tuple[str, str, FieldInfo]]:
    """(key, field name, field) of every field the reference documents: the pipeline's,
    every task's common ones, each kind's options, and every nested model's, once each.
    Keys are those of `reference_text.DESCRIPTIONS`."""
    for name, field in PipelineSpec.model_fields.items():
        yield f"pipeline.{name}", name, field
    for name in COMMON_TASK_FIELDS:
        yield f"task.{name}", name, TaskSpec.model_fields[name]
    for kind, model in kind_options().items():
        for name, field in model.model_fields.items():
            yield f"{kind}.{name}", name, field
    for model in nested_models():
        for name, field in model.model_fields.items():
            yield f"{model.__name__}.{name}", name, field


def nested_models() -> list[type[BaseModel]]:
    """The models used as field types (retries, trigger, reader options, sources...)."""
    found: dict[str, type[BaseModel]] = {}
    roots = [PipelineSpec, *(TaskSpec.model_fields[name].annotation for name in COMMON_TASK_FIELDS)]
    for model in [*roots, *kind_options().values()]:
        for field in getattr(model, "model_fields", {}).values():
            for inner in _models_in(field.annotation):
                found.setdefault(inner.__name__, inner)
                for deeper in inner.model_fields.values():
                    for innermost in _models_in(deeper.annotation):
                        found.setdefault(innermost.__name__, innermost)
    found.pop(TaskSpec.__name__, None)
    return list(found.values())


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


# --- the JSON Schema ---------------------------------------------------------------------


def pipeline_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a pipeline file: its fields, and each task as one of the
    kinds (`if kind is X then X's task`) with the fields every task has and its kind's options."""
    options = kind_options()
    models: list[type[BaseModel]] = [PipelineSpec, TaskSpec, *options.values()]
    _, generated = models_json_schema(
        [(model, "validation") for model in models],
        ref_template="#/$defs/{model}",
    )
    defs: dict[str, Any] = generated["$defs"]
    pipeline = defs.pop(PipelineSpec.__name__)
    task = defs.pop(TaskSpec.__name__)
    common = {name: task["properties"][name] for name in COMMON_TASK_FIELDS}
    _describe(common, "task")
    for model in nested_models():
        if model.__name__ in defs:
            _describe(defs[model.__name__]["properties"], model.__name__)
    for kind, model in options.items():
        generated_options = defs.pop(model.__name__)
        properties = copy.deepcopy(generated_options["properties"])
        _describe(properties, kind)
        defs[f"{kind}_task"] = {
            "type": "object",
            "title": f"{kind} task",
            "description": KIND_SUMMARIES.get(kind, ""),
            "properties": {**copy.deepcopy(common), "kind": {"const": kind, "description": f"`{kind}`"}, **properties},
            "required": ["name", "kind", *generated_options.get("required", [])],
            "additionalProperties": False,
        }
    defs["task"] = {  # told apart by `kind`: an error names the field of that kind, not "no match"
        "type": "object",
        "required": ["name", "kind"],
        "properties": {"kind": {"enum": list(options), "description": DESCRIPTIONS["task.kind"]}},
        "allOf": [
            {"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]}, "then": {"$ref": f"#/$defs/{kind}_task"}}
            for kind in options
        ],
    }
    properties = {name: value for name, value in pipeline["properties"].items() if name != "tasks"}
    properties["tasks"] = {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/task"}}
    _describe(properties, "pipeline")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": "brickyard pipeline",
        "description": "A pipeline file, pipelines/NAME.yaml (see docs/pipelines.md).",
        "type": "object",
        "properties": properties,
        "required": ["tasks"],
        "additionalProperties": False,
        "$defs": dict(sorted(defs.items())),
    }


def _describe(properties: dict[str, Any], owner: str) -> None:
    """Give each property its description and shorthand, and drop pydantic's titles."""
    for name, node in properties.items():
        node.pop("title", None)
        key = f"{owner}.{name}"
        if key in SHORTHANDS:
            _widen(node)
        if key in SWITCHES:
            _widen(node, "boolean")
        if key in DESCRIPTIONS:
            node["description"] = DESCRIPTIONS[key]


def _widen(node: dict[str, Any], short: str = "string") -> None:
    """Also accept a single string, or a boolean (the short forms the model's before-validator takes)."""
    if "anyOf" in node:
        node["anyOf"] = [{"type": short}, *node["anyOf"]]
        return
    kept: dict[str, Any] = {key: node.pop(key) for key in ("default", "description") if key in node}
    inner = dict(node)
    node.clear()
    node.update({"anyOf": [{"type": short}, inner], **kept})


def schema_json() -> str:
    """`pipeline_schema()` as the text `brickyard schema` prints."""
    return json.dumps(pipeline_schema(), indent=2) + "\n"


# --- docs/pipelines.md -------------------------------------------------------------------


def pipelines_markdown() -> str:
    """The text of docs/pipelines.md."""
    schema = pipeline_schema()
    defs = schema["$defs"]
    options = kind_options()
    lines = [
        "# Pipeline reference",
        "",
        f"<!-- Generated from the task kinds' options models: do not edit; run `{UPDATE_DOCS}`. -->",
        "",
        PIPELINE_INTRO,
        "",
        "Editors: `brickyard schema > brickyard.schema.json` writes a JSON Schema of pipeline files.",
        "With VS Code's YAML extension, add to `.vscode/settings.json`",
        '`{"yaml.schemas": {"brickyard.schema.json": "pipelines/*.yaml"}}` (or put',
        "`# yaml-language-server: $schema=../brickyard.schema.json` on a pipeline's first line)",
        "for completion and checks as you type. The schema checks names, types and defaults;",
        "rules that tie fields together (exactly one of `query` and `sql`, `keys` with",
        "`mode: merge`) are checked by `brickyard validate`.",
        "",
        "- [The pipeline file](#the-pipeline-file)",
        "- [Fields of every task](#fields-of-every-task)",
        *(f"- [`{kind}`](#{kind})" for kind in options),
        "- [Estimators](#estimators)",
        "- [Metrics and gate rules](#metrics-and-gate-rules)",
        "",
        "## The pipeline file",
        "",
        *_field_table("pipeline", PipelineSpec, schema["properties"]),
        "",
        "```yaml",
        'description: Taxi trips, raw to gold.',
        'schedule: "0 6 * * *"',
        "tasks:",
        *(f"  {line}" for line in EXAMPLES["ingest"].splitlines()),
        "```",
        "",
    ]
    documented: set[str] = set()
    lines += _nested_sections(PipelineSpec, defs, documented)
    lines += [
        "## Fields of every task",
        "",
        "Every task has these fields, beside its kind's own.",
        "",
        *_field_table("task", TaskSpec, _common_properties(defs), COMMON_TASK_FIELDS),
        "",
    ]
    lines += _nested_model_section(RetryPolicy, defs, documented)
    lines += ["## Task kinds", "", "| kind | what it does | engines |", "|---|---|---|"]
    lines += [f"| [`{kind}`](#{kind}) | {_cell(KIND_SUMMARIES.get(kind, ''))} | {', '.join(get_kind(kind).engines)} |" for kind in options]
    lines.append("")
    for kind, model in options.items():
        properties = defs[f"{kind}_task"]["properties"]
        lines += [
            f"### `{kind}`",
            "",
            KIND_SUMMARIES.get(kind, ""),
            "",
            *_field_table(kind, model, properties),
            "",
            "```yaml",
            EXAMPLES.get(kind, "").rstrip("\n"),
            "```",
            "",
        ]
        lines += _nested_sections(model, defs, documented)
    lines += _estimators() + _metrics()
    return "\n".join(lines).rstrip("\n") + "\n"


def _field_table(owner: str, model: type[BaseModel], properties: dict[str, Any], names: tuple[str, ...] | None = None) -> list[str]:
    rows = ["| field | type | default | description |", "|---|---|---|---|"]
    for name in names or tuple(model.model_fields):
        key = f"{owner}.{name}"
        field = model.model_fields[name]
        node = properties.get(name, {})
        description = DESCRIPTIONS.get(key) or field.description or ""
        if key in SHORTHANDS or key in SWITCHES:  # the schema's first choice is the short form: say it in words
            type_text = f"{_type_text({'anyOf': node['anyOf'][1:]})} (or {SHORTHANDS.get(key) or SWITCHES[key]})"
        else:
            type_text = _type_text(node)
        rows.append(f"| `{name}` | {_cell(type_text)} | {_cell(DEFAULT_TEXT.get(key) or _default_text(field))} | {_cell(description)} |")
    return rows


def _common_properties(defs: dict[str, Any]) -> dict[str, Any]:
    """The fields every task has, as in the schema, with `kind` as the list of kinds."""
    first = next(name for name in defs if name.endswith("_task"))
    return {**defs[first]["properties"], "kind": defs["task"]["properties"]["kind"]}


def _nested_sections(model: type[BaseModel], defs: dict[str, Any], documented: set[str]) -> list[str]:
    lines: list[str] = []
    for field in model.model_fields.values():
        for inner in _models_in(field.annotation):
            lines += _nested_model_section(inner, defs, documented)
    return lines


def _nested_model_section(model: type[BaseModel], defs: dict[str, Any], documented: set[str]) -> list[str]:
    """A model's field table, under an anchor its type links use; once per page."""
    name = model.__name__
    if name in documented or name not in defs:
        return []
    documented.add(name)
    lines = [
        f'<a id="{_anchor(name)}"></a>',
        f"#### `{name}`",
        "",
        " ".join((model.__doc__ or MODEL_SUMMARIES.get(name, "")).split()),
        "",
        *_field_table(name, model, defs[name]["properties"]),
        "",
    ]
    if name in SHAPES:
        lines += ["```yaml", SHAPES[name].rstrip("\n"), "```", ""]
    return lines + _nested_sections(model, defs, documented)


def _type_text(node: dict[str, Any]) -> str:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return "task (of a kind below)" if name == "task" else f"[{name}](#{_anchor(name)})"
    if "anyOf" in node:
        parts = [_type_text(part) for part in node["anyOf"] if part.get("type") != "null"]
        return " or ".join(dict.fromkeys(parts))
    if "const" in node:
        return f"`{node['const']}`"
    if "enum" in node:
        return " or ".join(f"`{value}`" for value in node["enum"])
    kind = node.get("type")
    if kind == "array":
        items = node.get("items") or {}
        text = f"list of {_type_text(items) if items else 'values'}"
        return text + (f" (at least {node['minItems']})" if node.get("minItems") else "")
    if kind == "object":
        return "mapping"
    if kind in ("string", "integer", "number", "boolean"):
        return kind + _bounds(node)
    return "any"


def _bounds(node: dict[str, Any]) -> str:
    signs = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}
    found = [f"{sign} {node[key]:g}" for key, sign in signs.items() if key in node]
    if "pattern" in node:
        found.append(f"matching `{node['pattern']}`")
    if "maxLength" in node and node["maxLength"] <= 4:
        found.append(f"at most {node['maxLength']} character{'s' if node['maxLength'] > 1 else ''}")
    return f", {' and '.join(found)}" if found else ""


def _default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "-"
    if value == "":
        return '`""`'
    if isinstance(value, BaseModel):
        return "its defaults"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple | list | dict):
        return f"`{json.dumps(list(value) if isinstance(value, tuple) else value)}`"
    return f"`{value}`"


def _estimators() -> list[str]:
    lines = [
        "## Estimators",
        "",
        "`estimator:` of a `train` task: a short name, or any scikit-learn style class by import",
        "path, `package.module:Class` (such as `sklearn.svm:SVC`). An estimator that takes",
        "`random_state` gets the split's seed unless `params` sets it.",
        "",
        "| estimator | " + " | ".join(PROBLEMS) + " |",
        "|---|" + "---|" * len(PROBLEMS),
    ]
    for name, paths in SHORT_NAMES.items():
        cells = [f"`{paths[problem].replace(':', '.')}`" if problem in paths else "-" for problem in PROBLEMS]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"`{package}` is an extra: {hint}." for package, hint in INSTALL_HINTS.items()]
    lines += [
        "On the Spark engine `kmeans` is Spark MLlib's KMeans; the others are fitted on the driver.",
        "Both engines start `kmeans` from the same centres (k-means++, seeded with `split.seed`, on a",
        "hashed sample of the distinct feature rows, which does not depend on row order) and run",
        "Lloyd's iterations with scikit-learn's stopping rule (`max_iter`, `tol` relative to the",
        "features' mean variance), so they find the same clusters with the same numbers. Naming",
        "another initialisation (`init`, or on Spark one of MLlib's own params such as `initMode`,",
        "`initSteps`, `distanceMeasure`) gives that library's own algorithm instead, without that",
        "guarantee.",
        "",
    ]
    return lines


def _metrics() -> list[str]:
    lines = [
        "## Metrics and gate rules",
        "",
        "A `train` task logs held-out metrics on the version's MLflow run; a `promote` task's",
        "`rules` (and `brickyard gate`) compare them. Any metric logged on the run can be named:",
        f"those below, {OTHER_METRICS}.",
        "",
        "| metric | problem | better |",
        "|---|---|---|",
    ]
    for problem in PROBLEMS:
        for metric, owner in METRIC_PROBLEMS.items():
            if owner == problem:
                lines.append(f"| `{metric}` | {problem} | {'higher' if GREATER_IS_BETTER[metric] else 'lower'} |")
    lines += [
        "",
        "| rule | passes when the candidate's metric is |",
        "|---|---|",
        "| `accuracy >= 0.75` | at least 0.75 |",
        "| `log_loss <= 0.5` | at most 0.5 |",
        "| `roc_auc >= champion.roc_auc` | at least the champion's |",
        "| `roc_auc >= champion.roc_auc + 0.01` | at least the champion's plus 0.01 |",
        "| `roc_auc >= champion.roc_auc - 0.02` | at least the champion's minus 0.02 (a tolerance) |",
        "| `rmse <= champion.rmse - 0.5` | at most the champion's minus 0.5 |",
        "| `f1 >= champion.f1 * 1.02` | at least 1.02 times the champion's |",
        "",
        "Use `>=` for metrics where higher is better and `<=` where lower is; a rule compares a",
        "metric with the champion's same metric. Rules that name `champion.` are skipped (and",
        "reported as skipped) when there is no champion yet or the candidate is the champion.",
        "",
    ]
    return lines


def _anchor(model_name: str) -> str:
    return f"model-{model_name.lower()}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


__all__ = [
    "documented_fields",
    "kind_options",
    "nested_models",
    "pipeline_schema",
    "pipelines_markdown",
    "schema_json",
]
