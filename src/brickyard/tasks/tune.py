"""The `tune` task kind: an Optuna study over estimator families, the best refitted and registered.

```yaml
- name: tune
  kind: tune
  table: silver.titanic              # or query: / training_set:, as train takes them
  label: Survived
  features: [Pclass, Sex, Age, SibSp, Parch, Fare, Embarked]
  estimators:                        # a family without a space gets its default one
    logistic_regression:
    random_forest: {max_depth: {int: [2, 12]}, n_estimators: {int: [50, 300], step: 50}}
    lightgbm:
  metric: roc_auc                    # default: roc_auc (classification), rmse (regression)
  trials: 30                         # and/or timeout: 120 (seconds)
  validation: cv                     # folds: 5; or validation: holdout (holdout_size: 0.2)
  parallel: 2                        # processes running trials
  ensemble: true                     # also try voting/stacking ensembles of the top trials
  model_name: titanic                # default: the pipeline's name
```

`automl: true` (instead of `estimators:`) picks the families and spaces by problem type
and turns `ensemble:` on; see docs/tuning.md.

The study lives in the workspace (`.brickyard/tuning.db`, named `<pipeline>.<task>`): a
second run adds trials to it and refits the best of all of them. The registered version is
logged like a `train` version (see `brickyard.ml.tuning`), so `evaluate`, `promote`,
`score` and `serve` take it unchanged; `brickyard tune show RUN` prints the leaderboard.
`metrics.extra` gets the MLflow run, the model version, the best trial, the trial counts,
the CPU-seconds of the trials and the task, and their cost (`pricing: cpu_hour:`).
"""

from __future__ import annotations

from typing import ClassVar

from brickyard.ml.tracking import TAG_PIPELINE, TAG_RUN_ID, TAG_TASK
from brickyard.ml.tune_spec import TuneSpec
from brickyard.tasks.base import CheckContext, CheckProblem, TaskContext, TaskKind, TaskOptions
from brickyard.tasks.train import training_set_problems


class TuneOptions(TaskOptions, TuneSpec):
    """Options of a `tune` task (see `brickyard.ml.tune_spec.TuneSpec`)."""


class TuneTask(TaskKind):
    """Searches estimators and their parameters; registers the best, refitted."""

    name = "tune"
    Options = TuneOptions
    needs: ClassVar[frozenset[str]] = frozenset()  # rows come through Engine.training_rows

    def check(self, options: TuneOptions, context: CheckContext) -> list[str]:
        """The data as `train` checks it, each family and its search space, and the metric."""
        from brickyard.ml.data import column_problems

        found: list[str] = []
        if options.training_set is not None:
            found += training_set_problems(options.training_set, context)
        if options.query:
            found += [CheckProblem(message, "query") for message in context.engine.sql_problems(options.query, "query")]
        table = options.table
        if table and table not in context.produced_tables and not context.workspace.lake.exists(table):
            found.append(CheckProblem(
                f"table {table!r} does not exist in the lake and no task of the pipeline writes it", "table"))
            table = None
        columns = context.table_columns(table) if table else None
        if columns is not None:
            spec = options.train_spec(next(iter(options.estimators), "random_forest"), {})
            found += [CheckProblem(message, *at) for at, message in column_problems(spec, columns, f"table {table}")]
        found += _space_problems(options)
        found += _metric_problems(options)
        return found

    def run(self, options: TuneOptions, context: TaskContext) -> None:
        from brickyard.ml.tuning import tune

        model_name = options.model_name or context.pipeline.name
        tags = {TAG_RUN_ID: context.run_id, TAG_PIPELINE: context.pipeline.name, TAG_TASK: context.task.name}
        result = tune(
            context.workspace, options, experiment=context.pipeline.name, model_name=model_name,
            study_name=f"{context.pipeline.name}.{context.task.name}", tags=tags, log=context.log,
            engine=context.engine,
        )
        for table, version in result.fitted.data.reads.items():
            context.record_read(table, version)
        context.metrics.rows_in = len(result.fitted.data.frame)
        context.metrics.extra.update({
            "mlflow_run_id": result.run_id,
            "model_name": result.model_name,
            "model_version": result.model_version,
            "problem": result.fitted.data.problem,
            "metrics": dict(result.fitted.metrics),
            "study": result.study_name,
            "trials": result.counts,
            "best_trial": {key: result.best[key] for key in ("trial", "family", "params", "value", "members")},
            "metric": result.metric,
            "cpu_seconds_tuning": round(result.cpu_seconds, 3),
            "cost": result.cost,
        })
        from brickyard.ml.training import TrainResult
        from brickyard.monitoring.training import record_training_baseline

        trained = TrainResult(result.fitted, result.run_id, result.model_name, result.model_version)
        recorded = record_training_baseline(context.workspace, trained, log=context.log)
        context.record_write(recorded.table, recorded.table_version)
        context.metrics.extra["baseline"] = recorded.summary()


def _space_problems(options: TuneOptions) -> list[str]:
    """Each family checked as `train` checks an estimator, with a value of each searched
    parameter's space, located at the family or at the parameter."""
    from brickyard.ml.estimators import estimator_problems
    from brickyard.ml.search_space import space_of
    from brickyard.ml.tune_spec import Dimension

    found: list[str] = []
    for family, declared in options.estimators.items():
        space = space_of(family, declared)
        unknown = [] if space is not None else estimator_problems(family, options.problem, {})
        if unknown:
            found += [CheckProblem(message, "estimators", family) for _, message in unknown]
            continue
        if space is None:
            found.append(CheckProblem(
                f"estimator {family!r} has no default search space; declare one "
                f"(e.g. {family}: {{param: {{int: [1, 10]}}}})", "estimators", family))
            continue
        sample = {name: value.sample() if isinstance(value, Dimension) else value for name, value in space.items()}
        for at, message in estimator_problems(family, options.problem, sample):
            where = ("estimators", family, *at[1:]) if at[:1] == ("params",) else ("estimators", family)
            found.append(CheckProblem(message, *where))
    return found


def _metric_problems(options: TuneOptions) -> list[str]:
    from brickyard.ml.tuning import TUNABLE_METRICS

    if options.metric is None:
        return []
    problems = [options.problem] if options.problem else list(TUNABLE_METRICS)
    known = [name for problem in problems for name in TUNABLE_METRICS[problem]]
    if options.metric in known:
        return []
    from brickyard.errors import suggest

    return [CheckProblem(f"metric {options.metric!r} is not a metric tune can optimize "
                         f"(hint: {suggest(options.metric, known) or 'use one of ' + ', '.join(known)})", "metric")]
