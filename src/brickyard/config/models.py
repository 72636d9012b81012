"""The workspace configuration, `brickyard.yaml`, as pydantic models.

Unknown keys are errors (`extra="forbid"`) so a typo never passes silently.
Credentials in storage options must be `${env:NAME}` references.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from brickyard.config.secrets import is_reference, looks_secret

EngineName = Literal["duckdb", "spark"]


class Strict(BaseModel):
    """Base for config models: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LakeConfig(Strict):
    """Where the lake lives: a folder (relative to the workspace) or an `abfs://` URL."""

    root: str = "lake"
    storage_options: dict[str, str] = Field(default_factory=dict)

    @field_validator("storage_options")
    @classmethod
    def _credentials_are_references(cls, options: dict[str, str]) -> dict[str, str]:
        for key, value in options.items():
            if looks_secret(key) and not is_reference(value):
                raise ValueError(
                    f"storage option {key!r} holds a literal credential; "
                    f"write it as ${{env:NAME}} and export NAME instead"
                )
        return options


class DuckDBConfig(Strict):
    """Settings of the embedded DuckDB engine."""

    threads: int | None = Field(default=None, ge=1)
    memory_limit: str | None = None


class SparkConfig(Strict):
    """Settings of the Spark engine."""

    master: str = "local[*]"
    conf: dict[str, str] = Field(default_factory=dict)


class MlflowConfig(Strict):
    """MLflow tracking: by default a SQLite file and an artifact folder in the workspace."""

    tracking_uri: str = "sqlite:///mlflow.db"
    artifact_location: str = "mlartifacts"


class StateConfig(Strict):
    """The database of runs, tokens and checkpoints (SQLAlchemy URL)."""

    url: str = "sqlite:///.brickyard/state.db"


class DatabaseConfig(Strict):
    """A named SQL database (SQLAlchemy URL; passwords as `${env:NAME}`)."""

    url: str


def _default_databases() -> dict[str, DatabaseConfig]:
    return {"default": DatabaseConfig(url="sqlite:///warehouse.db")}


class WorkspaceConfig(Strict):
    """Everything `brickyard.yaml` may say."""

    name: str = "brickyard"
    lake: LakeConfig = Field(default_factory=LakeConfig)
    engine: EngineName = "duckdb"
    duckdb: DuckDBConfig = Field(default_factory=DuckDBConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    databases: dict[str, DatabaseConfig] = Field(default_factory=_default_databases)
