"""What the ML task kinds accept in a pipeline file, as pydantic models (no heavy imports).

```yaml
- name: train
  kind: train
  table: silver.titanic            # or  query: "SELECT ... FROM silver.titanic ORDER BY id"
  label: Survived
  features: [Pclass, Sex, Age, SibSp, Parch, Fare, Embarked]
  split: {test_size: 0.2, seed: 42, stratify: true}
  estimator: logistic_regression    # or random_forest, gradient_boosting (HistGradientBoosting), lightgbm, kmeans,
  params: {C: 1.0}                  #    linear_regression, or package.module:Class
  model_name: titanic               # default: the pipeline's name
- name: evaluate
  kind: evaluate
  depends_on: [train]               # model: the upstream train task's model_name
- name: promote
  kind: promote
  depends_on: [evaluate]
  rules: ["roc_auc >= champion.roc_auc + 0.01", "accuracy >= 0.75"]
```

The task kinds in `brickyard.tasks` use these models as their options; the CLI reads them
to find a model's gate rules in the pipelines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from brickyard.core.pipeline import PipelineSpec, TaskSpec

Problem = Literal["classification", "regression", "clustering"]
MODEL_KINDS = ("train", "tune")  # the kinds that register a model version


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitSpec(Strict):
    """The held-out split: seeded, so `evaluate` and `reproduce` rebuild the same one."""

    test_size: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 42
    stratify: bool = True


class KRange(Strict):
    """Try every k from `min` to `max` and keep the one with the best silhouette."""

    min: int = Field(ge=2)
    max: int = Field(ge=2, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> KRange:
        if self.max < self.min:
            raise ValueError(f"k.max ({self.max}) is below k.min ({self.min})")
        return self


class LookupSpec(Strict):
    """Feature columns looked up from one feature table (`features.NAME`): `columns`
    (default: all its feature columns)."""

    table: str
    columns: list[str] | None = None

    @field_validator("table")
    @classmethod
    def _feature_table(cls, value: str) -> str:
        name = value.removeprefix("features.")
        if not name or "." in name:
            raise ValueError(f"{value!r} is not a feature table: write features.NAME (features/NAME.yaml)")
        return f"features.{name}"

    @field_validator("columns")
    @classmethod
    def _some(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("columns: is empty; list columns, or leave it out for all the table's features")
        return value

    @property
    def name(self) -> str:
        """The feature table's name without its zone (its file is features/NAME.yaml)."""
        return self.table.removeprefix("features.")


class TrainingSetSpec(Strict):
    """A training set: entity rows (`table:` or `sql:`, a file under sql/ or a query) with
    `keys` and a `timestamp` column, and feature lookups joined as of that timestamp
    (the latest feature row at or before it and within the table's TTL, else nulls; with
    `as_known_at`, only rows whose created time is at or before it too). No entity row is
    dropped. See docs/features.md."""

    table: str | None = None
    sql: str | None = None
    keys: list[str] = Field(min_length=1)
    timestamp: str
    label: str | None = None
    features: list[LookupSpec] = Field(default_factory=list)
    as_known_at: bool = False

    @field_validator("keys", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_source(self) -> TrainingSetSpec:
        if (self.table is None) == (self.sql is None):
            raise ValueError("a training_set needs exactly one of table: (the entity rows) or sql: (a file or a query)")
        return self


class DataSpec(Strict):
    """Where training rows come from: a lake table (optionally a past version), SQL, or a
    training set (entity rows with features looked up as of their timestamps)."""

    table: str | None = None
    version: int | None = Field(default=None, ge=0)
    query: str | None = None
    training_set: TrainingSetSpec | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        sources = [name for name in ("table", "query", "training_set") if getattr(self, name) is not None]
        if len(sources) != 1:
            raise ValueError("give exactly one of table: (a lake table), query: (SQL) or training_set:")
        if self.version is not None and self.table is None:
            raise ValueError("version: pins a table; a query pins versions with VERSION AS OF")
        if self.training_set is not None and not self.training_set.features:
            raise ValueError("training_set: needs features: [{table: features.NAME}, ...]")
        return self


class TrainSpec(DataSpec):
    """Options of a `train` task (and everything `reproduce` needs to train again)."""

    label: str | None = None
    features: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    split: SplitSpec = Field(default_factory=SplitSpec)
    estimator: str = "logistic_regression"
    params: dict[str, Any] = Field(default_factory=dict)
    problem: Problem | None = None
    model_name: str | None = None
    # kmeans only
    k: int | KRange | None = None
    silhouette_sample: int = Field(default=10_000, ge=100)
    profile_table: str | None = None
    assignments_table: str | None = None
    key: list[str] = Field(default_factory=list)

    @field_validator("features")
    @classmethod
    def _some_features(cls, value: list[str] | None) -> list[str] | None:
        return some_features(value)

    @model_validator(mode="before")
    @classmethod
    def _label_of_training_set(cls, data: Any) -> Any:
        return label_of_training_set(data)

    @model_validator(mode="after")
    def _consistent(self) -> TrainSpec:
        clustering = self.estimator == "kmeans"
        if clustering and self.label is not None:
            raise ValueError("kmeans is unsupervised: drop label:")
        if not clustering and self.label is None:
            raise ValueError(f"estimator {self.estimator!r} needs a label: column")
        if not clustering:
            extras = [name for name in ("k", "profile_table", "assignments_table") if getattr(self, name) is not None]
            if extras:
                raise ValueError(f"{', '.join(extras)} only apply to estimator: kmeans")
        if self.assignments_table and not self.key:
            raise ValueError("assignments_table: needs key: (the columns that identify a row)")
        if self.problem == "clustering" and not clustering:
            raise ValueError("problem: clustering needs estimator: kmeans")
        return self

    def data(self) -> DataSpec:
        return DataSpec(table=self.table, version=self.version, query=self.query, training_set=self.training_set)


class ModelVersionSpec(Strict):
    """The model version an `evaluate` or `promote` task acts on.

    `model` defaults to the `model_name` of the train task upstream (or the pipeline's
    name); `version` (a number, `latest`, or an alias such as `champion`) defaults to the
    newest version that this pipeline run trained (found by its `brickyard.run_id` tag).
    """

    model: str | None = None
    version: int | str | None = None


def _on_off(value: Any) -> Any:
    """`true` is the section with its defaults, `false` leaves it out."""
    if value is True:
        return {}
    if value is False:
        return None
    return value


class ExplainSpec(Strict):
    """SHAP explanations of the held-out rows (see docs/explainability.md).

    `explainer: auto` picks the tree explainer for tree models, the linear one for linear
    models and the permutation explainer otherwise; `max_rows` held-out rows are explained
    (a seeded sample when there are more); the permutation explainer stops after
    `budget_seconds` and keeps the rows it explained; `background_rows` is the reference
    sample of the linear and permutation explainers; `n_jobs` threads (brickyard's numba
    TreeSHAP) or processes (shap's, for the models it does not read) share the tree
    explainer's rows (0: one per CPU).
    """

    explainer: Literal["auto", "tree", "linear", "permutation"] = "auto"
    max_rows: int = Field(default=2000, ge=1)
    background_rows: int = Field(default=100, ge=1)
    budget_seconds: float = Field(default=60.0, gt=0)
    n_jobs: int = Field(default=1, ge=0)
    seed: int = 42
    plots: bool = True


class FairnessSpec(Strict):
    """Bootstrap of the fairness numbers: `bootstrap` resamples of the held-out rows
    (seeded), and the `confidence` of the percentile intervals."""

    bootstrap: int = Field(default=500, ge=0, le=100_000)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    seed: int = 42


class RobustnessSpec(Strict):
    """The metric's drop when the held-out features are perturbed: Gaussian noise of
    `noise` standard deviations (of each numeric column) added to numeric features, and a
    `missing` share of the cells of every feature set to null; each `repeats` times, seeded.
    `metric` defaults to roc_auc (classification with probabilities; else accuracy) or r2."""

    metric: str | None = None
    noise: float = Field(default=0.1, ge=0)
    missing: float = Field(default=0.1, ge=0, le=1)
    repeats: int = Field(default=3, ge=1, le=100)
    seed: int = 42

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str | None) -> str | None:
        from brickyard.errors import suggest

        known = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "rmse", "mae", "r2")
        if value is not None and value not in known:
            close = suggest(value, known)
            raise ValueError(f"unknown metric {value!r}{f' ({close})' if close else ''}; use one of {', '.join(known)}")
        return value


class EvaluateSpec(ModelVersionSpec):
    """Options of an `evaluate` task: the version (see `ModelVersionSpec`) and what to
    measure besides the held-out metrics: `explain` (SHAP), `sensitive_features` (fairness
    by group, bootstrap in `fairness`), `robustness`. `explain: true` / `robustness: true`
    take the defaults. See docs/explainability.md."""

    explain: ExplainSpec | None = None
    sensitive_features: list[str] = Field(default_factory=list)
    fairness: FairnessSpec | None = None
    robustness: RobustnessSpec | None = None

    @field_validator("explain", "robustness", mode="before")
    @classmethod
    def _on_off(cls, value: Any) -> Any:
        return _on_off(value)

    @field_validator("sensitive_features", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _fairness_needs_groups(self) -> EvaluateSpec:
        if self.fairness is not None and not self.sensitive_features:
            raise ValueError("fairness: needs sensitive_features: (the columns whose groups are compared)")
        if len(set(self.sensitive_features)) != len(self.sensitive_features):
            raise ValueError("sensitive_features: names a column twice")
        return self

    @property
    def fairness_settings(self) -> FairnessSpec:
        return self.fairness or FairnessSpec()


class PromoteSpec(ModelVersionSpec):
    """Options of a `promote` task: the gate's rules, and whether a rejection fails the task."""

    rules: list[str] = Field(default_factory=list)
    fail_on_reject: bool = False


def train_model_name(pipeline: PipelineSpec, task: TaskSpec) -> str:
    """The registered model name a train (or tune) task writes: `model_name:` or the pipeline's name."""
    name = task.options.get("model_name")
    return str(name) if name else pipeline.name


def upstream_model_name(pipeline: PipelineSpec, task: TaskSpec, explicit: str | None) -> str:
    """The model an evaluate/promote task acts on: `model:` if given, else the model of the
    train or tune task upstream of it (or, with none upstream, the only one of the pipeline),
    else the pipeline's name.

    Raises:
        ValueError: several train tasks could be meant; the task must say `model:`.
    """
    if explicit:
        return explicit
    trains = [t for t in _upstream(pipeline, task) if t.kind in MODEL_KINDS]
    if not trains:
        trains = [t for t in pipeline.tasks if t.kind in MODEL_KINDS]
    names = sorted({train_model_name(pipeline, t) for t in trains})
    if len(names) > 1:
        raise ValueError(f"task {task.name!r} could mean models {', '.join(names)}; set model:")
    return names[0] if names else pipeline.name


def _upstream(pipeline: PipelineSpec, task: TaskSpec) -> list[TaskSpec]:
    seen: dict[str, TaskSpec] = {}
    stack = list(task.depends_on)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        try:
            found = pipeline.task(name)
        except KeyError:
            continue
        seen[name] = found
        stack.extend(found.depends_on)
    return list(seen.values())


def some_features(value: list[str] | None) -> list[str] | None:
    """`features:` left out, or a non-empty list (for pydantic validators)."""
    if value is not None and not value:
        raise ValueError("features: is empty; list columns, or leave it out to use all columns")
    return value


def label_of_training_set(data: Any) -> Any:
    """A training set's `label:` is the task's label (they must agree when both are set)."""
    if isinstance(data, dict) and isinstance(data.get("training_set"), dict):
        label = data["training_set"].get("label")
        if label is not None and data.get("label") is None:
            data = {**data, "label": label}
        elif label is not None and data.get("label") != label:
            raise ValueError(f"label: {data.get('label')!r} and training_set.label: {label!r} differ; set one")
    return data
