"""Reading pipeline and contract files, with errors that name the file, line and field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from brickyard.config.loader import parse_model
from brickyard.config.yaml_lines import Location, line_of, load_yaml_with_lines, read_text
from brickyard.core.contract import Contract
from brickyard.core.feature_table import FeatureTableSpec
from brickyard.core.pipeline import PipelineSpec, TaskSpec
from brickyard.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
# The keys every task has (`TaskSpec`), valid beside its kind's own options.
TASK_KEYS: tuple[str, ...] = tuple(TaskSpec.model_fields)


@dataclass(frozen=True)
class PipelineFile:
    """A parsed pipeline with where it came from, to locate later errors."""

    spec: PipelineSpec
    path: Path
    lines: dict[Location, int]

    def task_line(self, task_name: str, key: str | None = None) -> int | None:
        """The line of a task (or of one of its keys) in the file."""
        for index, task in enumerate(self.spec.tasks):
            if task.name == task_name:
                loc: Location = ("tasks", index) if key is None else ("tasks", index, key)
                return line_of(self.lines, loc)
        return None

    def task_lines(self, index: int) -> dict[Location, int]:
        """The line map of task number `index`, its locations relative to the task."""
        prefix: Location = ("tasks", index)
        return {loc[2:]: line for loc, line in self.lines.items() if loc[:2] == prefix}

    def parse_options(self, task: TaskSpec, model: type[M]) -> M:
        """Validate a task's kind-specific fields with the kind's model.

        Raises:
            ConfigError: naming the file, the line and `tasks[i].field`.
        """
        index = self.spec.tasks.index(task)
        shifted = self.task_lines(index)
        try:
            return parse_model(model, task.options, shifted, str(self.path), also_known=TASK_KEYS)
        except ConfigError as exc:
            field = f"tasks[{index}] ({task.name}).{exc.field}" if exc.field else f"tasks[{index}] ({task.name})"
            # from None: the same ConfigError, restated with the task's field (noise)
            raise ConfigError(exc.detail, file=str(self.path), line=exc.line, field=field, hint=exc.hint) from None


def load_pipeline(path: Path) -> PipelineFile:
    """Read `pipelines/NAME.yaml`; the pipeline's name defaults to the file's stem.

    Raises:
        ConfigError: invalid YAML, unknown keys, wrong types, or a name that differs
            from the file name.
    """
    data, lines = load_yaml_with_lines(read_text(path), str(path))
    if isinstance(data, dict):
        data.setdefault("name", path.stem)
        if data["name"] != path.stem:
            raise ConfigError(
                f"pipeline name {data['name']!r} differs from its file name",
                file=str(path),
                line=line_of(lines, ("name",)),
                field="name",
                hint=f"rename the file to {data['name']}.yaml or drop the name key",
            )
    spec = parse_model(PipelineSpec, data, lines, str(path))
    return PipelineFile(spec, path, lines)


def load_feature_table(path: Path) -> FeatureTableSpec:
    """Read `features/NAME.yaml`; the table's name defaults to the file's stem.

    Raises:
        ConfigError: invalid YAML, unknown keys, wrong types, or a name that differs
            from the file name.
    """
    data, lines = load_yaml_with_lines(read_text(path), str(path))
    if isinstance(data, dict):
        data.setdefault("name", path.stem)
        if data["name"] != path.stem:
            raise ConfigError(
                f"feature table name {data['name']!r} differs from its file name",
                file=str(path),
                line=line_of(lines, ("name",)),
                field="name",
                hint=f"rename the file to {data['name']}.yaml or drop the name key",
            )
    return parse_model(FeatureTableSpec, data, lines, str(path))


def load_contract(path: Path) -> Contract:
    """Read a contract file.

    Raises:
        ConfigError: the file is missing or invalid.
    """
    data, lines = load_yaml_with_lines(read_text(path), str(path))
    return parse_model(Contract, data, lines, str(path))


def load_model(path: Path, model: type[M]) -> tuple[M, dict[Location, int]]:
    """Read any YAML file as a pydantic model, keeping the line map."""
    data: Any
    data, lines = load_yaml_with_lines(read_text(path), str(path))
    return parse_model(model, data, lines, str(path)), lines
