"""The pipeline reference: docs/pipelines.md and the JSON Schema, made from the kinds' models."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel, ValidationError

from brickyard.core.pipeline import PipelineSpec, TaskSpec
from brickyard.tasks import reference
from brickyard.tasks.reference_text import DESCRIPTIONS, EXAMPLES, KIND_SUMMARIES, SHAPES, SHORTHANDS, SWITCHES
from brickyard.tasks.registry import kind_names

REPO = Path(__file__).resolve().parents[3]
DEMO_PIPELINES = sorted((REPO / "src" / "brickyard" / "demo" / "workspace" / "pipelines").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = reference.pipeline_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(validator: jsonschema.Draft202012Validator, document: Any) -> list[str]:
    return [error.message for error in validator.iter_errors(document)]


def test_docs_pipelines_md_is_up_to_date() -> None:
    committed = (REPO / "docs" / "pipelines.md").read_text()
    assert committed == reference.pipelines_markdown(), (
        f"docs/pipelines.md is out of date with the task kinds' options: run `{reference.UPDATE_DOCS}`"
    )


def test_every_field_is_described_and_no_description_is_stale() -> None:
    keys = [key for key, _, field in reference.documented_fields() if not (DESCRIPTIONS.get(key) or field.description)]
    assert not keys, f"add a description for {keys} to DESCRIPTIONS in src/brickyard/tasks/reference_text.py"
    known = {key for key, _, _ in reference.documented_fields()}
    stale = sorted(set(DESCRIPTIONS) - known)
    assert not stale, f"DESCRIPTIONS names fields that no longer exist: {stale}"
    assert set(KIND_SUMMARIES) == set(EXAMPLES) == set(kind_names())


@pytest.mark.parametrize("kind", kind_names())
def test_each_kind_example_is_valid_for_the_model_and_the_schema(kind: str, validator: jsonschema.Draft202012Validator) -> None:
    tasks = yaml.safe_load(EXAMPLES[kind])
    spec = PipelineSpec.model_validate({"name": "example", "tasks": tasks})
    assert spec.tasks[0].kind == kind
    reference.kind_options()[kind].model_validate(spec.tasks[0].options)
    assert errors(validator, {"tasks": tasks}) == []


@pytest.mark.parametrize("model_name", sorted(SHAPES))
def test_each_nested_shape_is_valid(model_name: str) -> None:
    model = next(m for m in reference.nested_models() if m.__name__ == model_name)
    for line in SHAPES[model_name].splitlines():
        (value,) = yaml.safe_load(line).values()
        for item in value if isinstance(value, list) else [value]:
            model.model_validate(item)


def test_the_demo_pipelines_are_valid(validator: jsonschema.Draft202012Validator) -> None:
    assert DEMO_PIPELINES
    for path in DEMO_PIPELINES:
        assert errors(validator, yaml.safe_load(path.read_text())) == [], path.name


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda task: task.update(bogus=1), "bogus"),
        (lambda task: task.update(mode="upsertt"), "upsertt"),
        (lambda task: task.update(kind="ingset"), "ingset"),
        (lambda task: task.pop("target"), "target"),
        (lambda task: task.update(partition_by=3), "3"),
        (lambda task: task.update(retries={"count": 99}), "99"),
    ],
)
def test_a_bad_option_is_rejected(validator: jsonschema.Draft202012Validator, change: Any, needle: str) -> None:
    pipeline = yaml.safe_load((REPO / "src/brickyard/demo/workspace/pipelines/taxi_trips.yaml").read_text())
    task = next(t for t in pipeline["tasks"] if t["kind"] == "sql")
    change(task)
    found = errors(validator, pipeline)
    assert found, "the schema accepted a bad option"
    best = jsonschema.exceptions.best_match(validator.iter_errors(pipeline))
    assert needle in best.message or any(needle in message for message in found), found


def test_a_bad_pipeline_field_is_rejected(validator: jsonschema.Draft202012Validator) -> None:
    assert errors(validator, {"tasks": []})
    assert errors(validator, {"tasks": [{"name": "a", "kind": "python", "function": "m:f"}], "schedul": "x"})
    assert not errors(validator, {"tasks": [{"name": "a", "kind": "python", "function": "m:f"}]})


@pytest.mark.parametrize("key", sorted(SHORTHANDS))
def test_each_shorthand_is_accepted_by_the_model_and_the_schema(key: str, validator: jsonschema.Draft202012Validator) -> None:
    owner, field = key.split(".")
    kind = "sql" if owner == "task" else owner
    task = yaml.safe_load(EXAMPLES[kind])[0]
    task[field] = "bronze.taxi_trips" if field in ("source", "incremental") else "trip_id"
    if field == "keys":
        task["mode"] = "merge"
    spec = PipelineSpec.model_validate({"name": "example", "tasks": [task]})
    reference.kind_options()[kind].model_validate(spec.tasks[0].options)
    assert errors(validator, {"tasks": [task]}) == []


@pytest.mark.parametrize("key", sorted(SWITCHES))
@pytest.mark.parametrize("value", [True, False])
def test_each_switch_is_accepted_by_the_model_and_the_schema(key: str, value: bool, validator: jsonschema.Draft202012Validator) -> None:
    kind, field = key.split(".")
    task = {**yaml.safe_load(EXAMPLES[kind])[0], field: value}
    spec = PipelineSpec.model_validate({"name": "example", "tasks": [task]})
    options = reference.kind_options()[kind].model_validate(spec.tasks[0].options)
    assert (getattr(options, field) is not None) == value
    assert errors(validator, {"tasks": [task]}) == []
    assert errors(validator, {"tasks": [{**task, field: "yes"}]})  # a string is not a switch


@pytest.mark.parametrize("kind", kind_names())
def test_every_short_form_the_model_takes_the_schema_takes(kind: str, validator: jsonschema.Draft202012Validator) -> None:
    """A field replaced by a plain string: if the model accepts it, the schema must too."""
    example = yaml.safe_load(EXAMPLES[kind])[0]
    model = reference.kind_options()[kind]
    for field in [*model.model_fields, "depends_on"]:
        task = copy.deepcopy(example)
        task[field] = "bronze.taxi_trips"
        try:
            spec = PipelineSpec.model_validate({"name": "example", "tasks": [task]})
            model.model_validate(spec.tasks[0].options)
        except ValidationError:
            continue
        assert errors(validator, {"tasks": [task]}) == [], f"{kind}.{field}: add it to SHORTHANDS"


def test_nested_models_are_the_field_types() -> None:
    names = {model.__name__ for model in reference.nested_models()}
    assert {"RetryPolicy", "FileArrival", "ReaderOptions", "Expectation", "ScoreSource", "ExportSource", "SplitSpec"} <= names
    assert TaskSpec.__name__ not in names
    assert all(issubclass(model, BaseModel) for model in reference.nested_models())


def test_the_init_example_pipeline_is_valid(validator: jsonschema.Draft202012Validator, tmp_path: Path) -> None:
    from brickyard import Workspace

    root = Workspace.init(tmp_path / "ws", example=True).root
    assert errors(validator, yaml.safe_load((root / "pipelines" / "example.yaml").read_text())) == []
