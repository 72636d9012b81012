"""The `train` task kind: fit a model on a lake table or SQL, track it in MLflow, register it.

```yaml
- name: train
  kind: train
  table: silver.titanic              # or query: "SELECT ... ORDER BY id"; version: pins a table
  label: Survived
  features: [Pclass, Sex, Age, SibSp, Parch, Fare, Embarked]   # default: all but label/exclude
  split: {test_size: 0.2, seed: 42, stratify: true}
  estimator: logistic_regression     # random_forest, gradient_boosting (HistGradientBoosting), lightgbm, kmeans, a:B
  params: {C: 1.0}
  model_name: titanic                # default: the pipeline's name
```

Segmentation: `estimator: kmeans`, no label, `params: {k: 4}` or `k: {min: 2, max: 8}`,
`profile_table: gold.x_profile`, `assignments_table: gold.x_segments` with `key: [id]`.
See `brickyard.ml.training` for what the MLflow run holds. `metrics.extra` gets
`mlflow_run_id`, `model_name`, `model_version` and the held-out metrics.

Engines. On `engine: spark`, `estimator: kmeans` is Spark MLlib's KMeans, fitted by the
executors and logged with `mlflow.spark`; the assignments are written by the executors
(`brickyard.ml.spark_kmeans`). Every other estimator is a single-machine scikit-learn
learner: Spark reads the training rows, they are collected to the driver (a training table
must fit in one machine's memory), and the model is fitted and logged exactly as on DuckDB,
so the same table gives the same model on both engines (`Engine.training_rows`).
"""

from __future__ import annotations

from typing import ClassVar

from brickyard.errors import BrickyardError
from brickyard.ml.spec import Problem, TrainSpec
from brickyard.ml.tracking import TAG_PIPELINE, TAG_RUN_ID, TAG_TASK
from brickyard.tasks.base import CheckContext, CheckProblem, TaskContext, TaskKind, TaskOptions


class TrainOptions(TaskOptions, TrainSpec):
    """Options of a `train` task (see `brickyard.ml.spec.TrainSpec`)."""


class TrainTask(TaskKind):
    """Trains, logs an MLflow run, registers a model version."""

    name = "train"
    Options = TrainOptions
    needs: ClassVar[frozenset[str]] = frozenset()  # runs on every engine

    def check(self, options: TrainOptions, context: CheckContext) -> list[str]:
        """The table, the estimator and its params, and the columns the task names."""
        from brickyard.ml.data import column_problems
        from brickyard.ml.estimators import estimator_problems
        from brickyard.ml.training import kmeans_k

        found: list[str] = []
        if options.query:
            found += [CheckProblem(message, "query") for message in context.engine.sql_problems(options.query, "query")]
        table = options.table
        if table and table not in context.produced_tables and not context.workspace.lake.exists(table):
            found.append(CheckProblem(
                f"table {table!r} does not exist in the lake and no task of the pipeline writes it", "table"
            ))
            table = None
        columns = context.table_columns(table) if table else None
        if columns is not None:
            found += [CheckProblem(message, *at) for at, message in column_problems(options, columns, f"table {table}")]
        if options.estimator == "kmeans":
            try:
                _, params = kmeans_k(options)
            except BrickyardError as exc:
                return [*found, CheckProblem(str(exc), "params")]
            if context.engine.distributed:
                return found  # the engine's own KMeans (MLlib), with its parameter names
            problem: Problem | None = "clustering"
        else:
            params, problem = dict(options.params), options.problem
        found += [CheckProblem(message, *at) for at, message in estimator_problems(options.estimator, problem, params)]
        return found

    def writes(self, options: TrainOptions) -> list[str]:
        return [name for name in (options.profile_table, options.assignments_table) if name]

    def run(self, options: TrainOptions, context: TaskContext) -> None:
        model_name = options.model_name or context.pipeline.name
        tags = {TAG_RUN_ID: context.run_id, TAG_PIPELINE: context.pipeline.name, TAG_TASK: context.task.name}
        if context.engine.distributed and options.estimator == "kmeans":
            self._run_spark_kmeans(options, context, model_name, tags)
            return
        from brickyard.ml.training import train

        result = train(
            context.workspace,
            options,
            experiment=context.pipeline.name,
            model_name=model_name,
            tags=tags,
            log=context.log,
            engine=context.engine,
        )
        for table, version in result.fitted.data.reads.items():
            context.record_read(table, version)
        for table, version in result.writes.items():
            context.record_write(table, version)
        context.metrics.rows_in = len(result.fitted.data.frame)
        context.metrics.rows_out = len(result.fitted.data.frame) if options.assignments_table else 0
        context.metrics.extra.update({
            "mlflow_run_id": result.run_id,
            "model_name": result.model_name,
            "model_version": result.model_version,
            "problem": result.fitted.data.problem,
            "metrics": dict(result.fitted.metrics),
        })

    def _run_spark_kmeans(self, options: TrainOptions, context: TaskContext, model_name: str, tags: dict[str, str]) -> None:
        from brickyard.ml.spark_kmeans import train_kmeans

        result = train_kmeans(
            context.workspace, options, experiment=context.pipeline.name, model_name=model_name, tags=tags, log=context.log
        )
        for table, version in result.reads.items():
            context.record_read(table, version)
        for table, version in result.writes.items():
            context.record_write(table, version)
        context.metrics.rows_in = result.rows
        context.metrics.rows_out = result.rows if options.assignments_table else 0
        context.metrics.extra.update({
            "mlflow_run_id": result.run_id,
            "model_name": result.model_name,
            "model_version": result.model_version,
            "problem": result.problem,
            "metrics": dict(result.metrics),
            "engine": "spark",
        })
