"""What a monitor is, as written under a `monitor` task (the options of the kind).

```yaml
- name: watch_titanic
  kind: monitor
  model: titanic@champion            # NAME@alias, NAME/version, or NAME (its champion)
  target: {table: gold.titanic_scored}   # or {sql: "SELECT ... FROM ..."}: any table with a time column
  time_column: scored_at
  window: day                        # hour | day | week | month | batch (one Delta version each)
  thresholds: {psi: 0.2, js: 0.1}    # defaults for every feature
  per_feature: {Fare: {psi: 0.1}, Cabin: {ignore: true}}
  drift_share: 0.3                   # the dataset drifted when more than this share of features did
  labels: {table: gold.outcomes, key: [PassengerId], label: Survived}
  alerts:
    - when: drift_share > 0.3
      consecutive: 2
      actions: [log, {webhook: {url: "https://hooks.example/x", secret: "${env:HOOK_SECRET}"}}, {run: retrain}]
```
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from brickyard.errors import BrickyardError
from brickyard.lake import TableName
from brickyard.monitoring.alerts import AlertRule
from brickyard.monitoring.drift import FeatureRule, Thresholds
from brickyard.monitoring.windows import WindowBy

RESULTS_ZONE = "gold"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSpec(_Strict):
    """A lake table (`table: zone.name`) or a query (`sql:`, DuckDB's dialect; translated on Spark)."""

    table: str | None = None
    sql: str | None = None

    @model_validator(mode="after")
    def _one(self) -> SourceSpec:
        if (self.table is None) == (self.sql is None):
            raise ValueError("give exactly one of `table:` and `sql:`")
        if self.table is not None:
            _valid(TableName.parse, self.table)
        return self

    def query(self) -> str:
        """The source as a query to select from."""
        return f"SELECT * FROM {self.table}" if self.table is not None else (self.sql or "").strip().rstrip(";")

    def describe(self) -> str:
        return self.table or "sql"


class LabelsSpec(SourceSpec):
    """Where the true outcomes arrive: joined to the predictions on `key` (a request id or
    the entity key); with `time_column`, a label counts only for predictions made at or
    before it (the earliest such label is taken)."""

    key: list[str] = Field(min_length=1)
    label: str
    time_column: str | None = None
    min_rows: int = Field(default=30, ge=1, description="labelled rows a window needs for realised metrics")


class MonitorSpec(BaseModel):
    """Options of a `monitor` task (see the module docstring)."""

    model: str
    target: SourceSpec
    time_column: str | None = None
    window: WindowBy = "day"
    monitor: str | None = Field(default=None, description="the monitor's name (default: the task's)")
    features: list[str] | None = None
    thresholds: Thresholds = Field(default_factory=Thresholds)
    per_feature: dict[str, FeatureRule] = Field(default_factory=dict)
    drift_share: float = Field(default=0.5, ge=0, le=1)
    prediction: str = "prediction"
    probability: str | None = "probability"
    problem: Literal["classification", "regression"] | None = None
    positive_class: str | int | bool | None = None
    max_drop: float = Field(default=0.05, ge=0, description="a metric this much worse than at evaluation is flagged")
    labels: LabelsSpec | None = None
    alerts: list[AlertRule] = Field(default_factory=list)

    @field_validator("model")
    @classmethod
    def _model(cls, text: str) -> str:
        from brickyard.ml.registry import ModelRef

        _valid(ModelRef.parse, text)
        return text

    @field_validator("monitor")
    @classmethod
    def _monitor_name(cls, name: str | None) -> str | None:
        if name is not None:
            _valid(TableName.parse, results_table(name))
        return name

    @model_validator(mode="after")
    def _windows(self) -> MonitorSpec:
        if self.window == "batch":
            if self.target.table is None:
                raise ValueError("`window: batch` needs `target: {table: ...}` (a batch is one Delta version of it)")
        elif self.time_column is None:
            raise ValueError(f"`window: {self.window}` needs `time_column:` (the target's time of each row)")
        names = [rule.name for rule in self.alerts]
        if len(set(names)) != len(names):
            raise ValueError("two alert rules have the same name: give each a `name:`")
        return self


def results_table(monitor: str) -> str:
    """The table a monitor's results append to: `gold.monitor_<name>`."""
    return f"{RESULTS_ZONE}.monitor_{monitor.replace('-', '_')}"


def _valid(parse: Any, text: str) -> None:
    try:
        parse(text)
    except BrickyardError as exc:
        raise ValueError(str(exc)) from None
