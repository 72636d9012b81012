"""What a `tune` task accepts, as pydantic models (no heavy imports).

```yaml
- name: tune
  kind: tune
  table: silver.titanic                # the data options of `train`: table/query/training_set,
  label: Survived                      #   label, features, exclude, split, problem, model_name
  estimators:                          # families; a family with no space gets its default one
    logistic_regression:
    random_forest:
      n_estimators: {int: [50, 300], step: 50}
      max_depth: {int: [2, 12]}
      max_features: {choice: [sqrt, 0.5]}
    lightgbm:
      learning_rate: {float: [0.01, 0.3], log: true}
      subsample_freq: 1                # a fixed value
  metric: roc_auc                      # default roc_auc (classification), rmse (regression)
  trials: 30                           # and/or timeout: 120 (seconds)
  validation: cv                       # cv (folds: 5) on the training split, or holdout (holdout_size: 0.2)
  pruner: median                       # median, hyperband or none
  parallel: 2                          # processes
  ensemble: true                       # also try voting and stacking ensembles of the top trials
```

or, with the families and spaces picked by the problem type:

```yaml
- name: tune
  kind: tune
  table: silver.titanic
  label: Survived
  automl: true                         # no estimators: (an error with it); ensemble: on
  timeout: 60                          # trials and ensembles share it
```
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from brickyard.ml.spec import DataSpec, Problem, SplitSpec, Strict, TrainSpec, label_of_training_set, some_features

DEFAULT_TRIALS = 20
Scalar = str | int | float | bool | None


class Dimension(Strict):
    """One searched parameter: `int: [low, high]`, `float: [low, high]` (with `log: true`
    for a log scale, `step:` for a grid) or `choice: [a, b, ...]`."""

    int_range: tuple[int, int] | None = Field(default=None, alias="int")
    float_range: tuple[float, float] | None = Field(default=None, alias="float")
    choice: list[Scalar] | None = None
    log: bool = False
    step: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_kind(self) -> Dimension:
        kinds = [name for name, value in (("int", self.int_range), ("float", self.float_range), ("choice", self.choice))
                 if value is not None]
        if len(kinds) != 1:
            raise ValueError("a searched parameter is one of {int: [low, high]}, {float: [low, high]} or {choice: [...]}")
        bounds = self.int_range or self.float_range
        if bounds is not None:
            low, high = bounds
            if high < low:
                raise ValueError(f"{kinds[0]}: [{low}, {high}] has its high bound below its low bound")
            if self.log and low <= 0:
                raise ValueError(f"log: true needs a low bound above 0, not {low}")
            if self.log and self.step is not None:
                raise ValueError("log: true and step: cannot be combined")
        else:
            if not self.choice:
                raise ValueError("choice: is empty; list the values to try")
            if self.log or self.step is not None:
                raise ValueError("log: and step: apply to int: and float: ranges, not to choice:")
        if self.int_range is not None and self.step is not None and self.step != int(self.step):
            raise ValueError(f"an int: range takes a whole step, not {self.step}")
        return self

    def sample(self) -> Scalar:
        """A value inside the space (its low bound, or its first choice), for checking
        the parameter without data."""
        if self.int_range is not None:
            return self.int_range[0]
        if self.float_range is not None:
            return self.float_range[0]
        assert self.choice is not None
        return self.choice[0]


def _dimension_or_fixed(value: Any) -> str:
    return "searched" if isinstance(value, dict) else "fixed"


Parameter = Annotated[
    Annotated[Dimension, Tag("searched")] | Annotated[Scalar, Tag("fixed")],
    Discriminator(_dimension_or_fixed),
]
Space = dict[str, Parameter]


class TuneSpec(DataSpec):
    """Options of a `tune` task: the data as `train` takes it, the families and their
    search spaces, the metric, the budget, how trials are validated, and how they run."""

    label: str
    features: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    split: SplitSpec = Field(default_factory=SplitSpec)
    problem: Problem | None = None
    model_name: str | None = None
    estimators: dict[str, Space | None] = Field(default_factory=dict)
    automl: bool = False
    ensemble: bool | None = None
    ensemble_size: int = Field(default=5, ge=2, le=20)
    metric: str | None = None
    trials: int | None = Field(default=None, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    validation: Literal["cv", "holdout"] = "cv"
    folds: int = Field(default=5, ge=2, le=20)
    holdout_size: float = Field(default=0.2, gt=0, lt=1)
    pruner: Literal["median", "hyperband", "none"] = "median"
    parallel: int = Field(default=1, ge=1, le=64)
    seed: int | None = None
    resume: bool = True

    @field_validator("features")
    @classmethod
    def _some_features(cls, value: list[str] | None) -> list[str] | None:
        return some_features(value)

    @model_validator(mode="before")
    @classmethod
    def _label_of_training_set(cls, data: Any) -> Any:
        return label_of_training_set(data)

    @model_validator(mode="after")
    def _supervised(self) -> TuneSpec:
        if self.problem == "clustering" or "kmeans" in self.estimators:
            raise ValueError("tune searches classifiers and regressors; kmeans picks its k with train's k: {min, max}")
        return self

    @model_validator(mode="after")
    def _families_or_automl(self) -> TuneSpec:
        if self.automl and self.estimators:
            raise ValueError(
                "automl: true picks the families and their spaces itself, so it takes no estimators: "
                f"(given: {', '.join(self.estimators)}); drop estimators:, or drop automl: and keep "
                "estimators: with ensemble: true to search your own families and still try ensembles"
            )
        if not self.automl and not self.estimators:
            raise ValueError("estimators: lists the families to search (e.g. {random_forest: , lightgbm: }); "
                             "or set automl: true to have them picked by the problem type")
        ensembles = {"voting", "stacking"} & set(self.estimators)
        if ensembles:
            raise ValueError(f"{', '.join(sorted(ensembles))} is not searched as a family; "
                             "set ensemble: true to build ensembles of the top trials")
        return self

    @property
    def ensembles(self) -> bool:
        """Whether voting and stacking ensembles of the top trials are tried: `ensemble:`,
        default on with automl."""
        return self.automl if self.ensemble is None else self.ensemble

    @property
    def trial_budget(self) -> int | None:
        """Trials to run now: `trials:`, or DEFAULT_TRIALS when neither trials nor timeout is set."""
        if self.trials is None and self.timeout is None:
            return DEFAULT_TRIALS
        return self.trials

    @property
    def sampler_seed(self) -> int:
        return self.split.seed if self.seed is None else self.seed

    def train_spec(self, estimator: str, params: dict[str, Any]) -> TrainSpec:
        """The `train` spec of one configuration: what the best trial is refitted (and
        recorded, so `evaluate` and `reproduce` refit it) with."""
        return TrainSpec(
            table=self.table, version=self.version, query=self.query, training_set=self.training_set,
            label=self.label, features=self.features, exclude=self.exclude, split=self.split,
            estimator=estimator, params=params, problem=self.problem, model_name=self.model_name,
        )

    def data(self) -> DataSpec:
        return DataSpec(table=self.table, version=self.version, query=self.query, training_set=self.training_set)
