"""The workspace configuration, `brickyard.yaml`, as pydantic models.

Unknown keys are errors (`extra="forbid"`) so a typo never passes silently.
Credentials in storage options must be `${env:NAME}` references.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from brickyard.config.secrets import is_reference, looks_secret


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
    remote: str | None = Field(
        default=None,
        description="a Spark Connect server (`sc://host:15002`) to run on instead of starting Spark here",
    )

    @field_validator("remote")
    @classmethod
    def _remote_is_connect_url(cls, remote: str | None) -> str | None:
        if remote is not None and not remote.startswith("sc://"):
            raise ValueError(f"remote {remote!r} is not a Spark Connect URL; write it as sc://host:15002")
        return remote

    @model_validator(mode="after")
    def _master_or_remote(self) -> SparkConfig:
        if self.remote is not None and "master" in self.model_fields_set:
            raise ValueError(
                "set either master (Spark started by brickyard) or remote (a Spark Connect server), not both"
            )
        return self


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


class PricingConfig(Strict):
    """Rates that turn recorded usage into cost (currency of your choice)."""

    cpu_hour: float | None = Field(default=None, ge=0, description="cost of one CPU-hour")


class EndpointConfig(Strict):
    """A model endpoint of `brickyard serve` (`endpoints: {NAME: ...}` in brickyard.yaml).

    Traffic: the `champion` alias answers; with `shadow: true` the `challenger` alias also
    scores every request off the response path (both logged); with `canary: N` the
    challenger answers N percent of requests, sticky by the `request_key` header or the
    `request_key_column` input column. A `rollout` plan such as [10, 25, 50, 100] moves one
    step each `rollout_step_seconds` while the limits hold; the canary rolls back by itself
    when the challenger's error rate or p95 latency over `window_seconds` breaks them.
    """

    model: str | None = Field(default=None, description="registered model (default: the endpoint name)")
    champion: str = Field(default="champion", description="alias that answers requests")
    challenger: str = Field(default="challenger", description="alias for shadow or canary")
    shadow: bool = False
    canary: float | None = Field(default=None, gt=0, le=100, description="percent of traffic to the challenger")
    rollout: list[float] = Field(default_factory=list, description="canary percents, one step at a time")
    rollout_step_seconds: float = Field(default=300.0, gt=0)
    request_key: str | None = Field(default="X-Request-Key", description="header that makes the canary sticky")
    request_key_column: str | None = Field(default=None, description="input column that makes the canary sticky")
    max_error_rate: float = Field(default=0.05, ge=0, le=1)
    max_p95_ms: float | None = Field(default=None, gt=0)
    window_seconds: float = Field(default=60.0, gt=0)
    min_requests: int = Field(default=20, ge=1)
    poll_seconds: float = Field(default=5.0, gt=0, description="how often aliases are re-read from the registry")
    log: bool = Field(default=True, description="append every request to the inference log")
    log_table: str = "gold.inference_log"
    log_payloads: Literal["full", "hash"] = "full"
    log_queue_size: int = Field(default=100_000, ge=1)
    log_batch_rows: int = Field(default=20_000, ge=1)
    log_flush_seconds: float = Field(default=2.0, gt=0)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_rows: int = Field(default=10_000, ge=1)

    @field_validator("canary")
    @classmethod
    def _canary_or_shadow(cls, canary: float | None, info: ValidationInfo) -> float | None:
        if canary is not None and info.data.get("shadow"):
            raise ValueError("an endpoint has either shadow: true or a canary, not both")
        return canary

    @field_validator("rollout")
    @classmethod
    def _rollout_steps(cls, steps: list[float], info: ValidationInfo) -> list[float]:
        if steps and info.data.get("shadow"):
            raise ValueError("a rollout plan is for a canary, not a shadow")
        if any(not 0 < step <= 100 for step in steps) or steps != sorted(set(steps)):
            raise ValueError("rollout steps are rising percents in (0, 100], e.g. [10, 25, 50, 100]")
        return steps


class TracingConfig(Strict):
    """OpenTelemetry traces of pipeline runs and serving requests (`tracing:` in brickyard.yaml).

    Off unless configured: `exporter: otlp` sends spans over OTLP/HTTP (protobuf) to `endpoint`
    (or to `OTEL_EXPORTER_OTLP_ENDPOINT`, with `/v1/traces` appended, or to
    `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as is); `exporter: file` appends one JSON object per
    span to `file`. With no `exporter` key, setting `OTEL_EXPORTER_OTLP_ENDPOINT` turns OTLP on.
    """

    exporter: Literal["none", "otlp", "file"] | None = Field(
        default=None, description="none, otlp or file (default: otlp when OTEL_EXPORTER_OTLP_ENDPOINT is set, else none)"
    )
    endpoint: str | None = Field(
        default=None, description="OTLP/HTTP collector base URL, e.g. http://127.0.0.1:4318 (/v1/traces is appended)"
    )
    file: str = Field(default=".brickyard/traces.jsonl", description="JSON-lines file of spans (relative to the workspace)")
    service_name: str = Field(default="brickyard", description="the resource's service.name")
    serving_sample_ratio: float = Field(
        default=1.0, ge=0, le=1, description="share of serving requests traced (a caller's sampled traceparent is always followed)"
    )

    @field_validator("endpoint")
    @classmethod
    def _http_endpoint(cls, endpoint: str | None) -> str | None:
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"endpoint {endpoint!r} is not an http(s) URL; write it as http://HOST:4318")
        return endpoint


class SloConfig(Strict):
    """Service-level objectives that `brickyard slo` reports (`slos:` in brickyard.yaml).
    Set one to null to leave it out."""

    window: str = Field(default="7d", description="default window: a number and s, m, h, d or w (e.g. 24h, 7d)")
    serving_p95_ms: float | None = Field(default=100.0, gt=0, description="p95 latency of served requests, ms")
    availability: float | None = Field(default=0.999, gt=0, lt=1, description="share of served requests not answered 5xx")
    feature_freshness_seconds: float | None = Field(
        default=86_400.0, gt=0, description="age of the newest online feature row, per feature table"
    )
    training_seconds: float | None = Field(default=3_600.0, gt=0, description="wall time of each train/tune task attempt")

    @field_validator("window")
    @classmethod
    def _duration(cls, window: str) -> str:
        import re

        if not re.fullmatch(r"\s*\d+(\.\d+)?\s*[smhdw]\s*", window):
            raise ValueError(f"window {window!r} is not a duration; write a number and s, m, h, d or w: 24h, 7d, 2w")
        return window


ONLINE_STORE_DEFAULT = "sqlite:///.brickyard/online.db"


def check_online_store(url: str) -> str:
    """An online store URL: `sqlite:///PATH` (relative to the workspace) or
    `redis://[:${env:NAME}@]HOST[:PORT][/DB]` (also `rediss://`, `unix://`).

    Raises:
        ValueError: anything else, or a literal password (pydantic locates it in the file).
    """
    from urllib.parse import urlsplit

    hint = "write sqlite:///PATH (a file, relative to the workspace) or redis://HOST:PORT/DB"
    if url.startswith("sqlite:///"):
        if url == "sqlite:///":
            raise ValueError(f"online_store {url!r} names no file; {hint}")
        return url
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"online_store {url!r} is not an online store URL; {hint}")
    if parts.scheme != "unix":
        try:
            port = parts.port
        except ValueError:
            port = -1
        if not parts.hostname or port == -1:
            raise ValueError(f"online_store {url!r} needs a host and a numeric port; {hint}")
        database = parts.path.strip("/")
        if database and not database.isdigit():
            raise ValueError(f"online_store {url!r}: the database {database!r} is not a number; {hint}")
    if parts.password and not is_reference(parts.password):
        raise ValueError(
            "online_store holds a literal password; write it as redis://:${env:NAME}@HOST:PORT/DB and export NAME"
        )
    return url


def _default_databases() -> dict[str, DatabaseConfig]:
    return {"default": DatabaseConfig(url="sqlite:///warehouse.db")}


class WorkspaceConfig(Strict):
    """Everything `brickyard.yaml` may say."""

    name: str = "brickyard"
    lake: LakeConfig = Field(default_factory=LakeConfig)
    engine: str = "duckdb"  # a name in brickyard.engines.registry (checked by load_config)
    duckdb: DuckDBConfig = Field(default_factory=DuckDBConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    databases: dict[str, DatabaseConfig] = Field(default_factory=_default_databases)
    pricing: PricingConfig = Field(default_factory=PricingConfig)
    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    tracing: TracingConfig = Field(default_factory=TracingConfig)
    slos: SloConfig = Field(default_factory=SloConfig)
    online_store: str = Field(
        default=ONLINE_STORE_DEFAULT,
        description="where `brickyard features materialize` writes the latest feature rows: "
        "sqlite:///PATH (default, in the workspace) or redis://HOST:PORT/DB",
    )

    @field_validator("online_store")
    @classmethod
    def _online_store_url(cls, url: str) -> str:
        return check_online_store(url)

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, name: str, info: ValidationInfo) -> str:
        known = (info.context or {}).get("engines")
        if known is not None and name not in known:
            raise ValueError(f"unknown engine {name!r}; engines: {', '.join(known)}")
        return name
