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

Training sets: instead of `table:` or `query:`, a `training_set:` block gives entity rows
(`table:` or `sql:`) with `keys`, a `timestamp` and the `label`, and `features:` lookups
(`{table: features.NAME, columns: [...]}`) joined as of each row's timestamp on the task's
engine (`brickyard.ml.training_set`, rules in docs/features.md); the model records them in
the MLflow artifact `feature_store/training_set.json`.

Segmentation: `estimator: kmeans`, no label, `params: {k: 4}` or `k: {min: 2, max: 8}`,
`profile_table: gold.x_profile`, `assignments_table: gold.x_segments` with `key: [id]`.
See `brickyard.ml.training` for what the MLflow run holds; the version's monitoring
baseline goes to `gold.model_baselines` and `monitoring/baseline.json` (`brickyard.monitoring`). `metrics.extra` gets
`mlflow_run_id`, `model_name`, `model_version` and the held-out metrics.

Engines. On `engine: spark`, `estimator: kmeans` is Spark MLlib's KMeans, fitted by the
executors (`Engine.fit_kmeans`) and logged with `mlflow.spark`; the assignments are written
by the executors (`brickyard.ml.spark_kmeans`). Every other estimator is a single-machine scikit-learn
learner: Spark reads the training rows, they are collected to the driver (a training table
must fit in one machine's memory), and the model is fitted and logged exactly as on DuckDB,
so the same table gives the same model on both engines (`Engine.training_rows`).
"""

from __future__ import annotations

from typing import ClassVar

from brickyard.errors import BrickyardError, suggest
from brickyard.ml.spec import Problem, TrainingSetSpec, TrainSpec
from brickyard.ml.tracking import TAG_PIPELINE, TAG_RUN_ID, TAG_TASK
from brickyard.tasks.base import CheckContext, CheckProblem, TaskContext, TaskKind, TaskOptions

SPARK_KMEANS_TRAINING_SET = "estimator kmeans on Spark (MLlib) does not take a training_set"


def training_set_problems(spec: TrainingSetSpec, context: CheckContext) -> list[str]:
    """A training set's names, checked without running: the entity table, each feature
    table's definition and its materialization (in the lake or by a pipeline task), the
    entity SQL on the task's engine, and the key/timestamp/label columns when known."""
    found: list[str] = []
    lake = context.workspace.lake
    if spec.table is not None:
        if spec.table not in context.produced_tables and not lake.exists(spec.table):
            found.append(CheckProblem(
                f"training_set: table {spec.table!r} does not exist in the lake and no task of the pipeline writes it",
                "training_set", "table"))
        else:
            columns = context.table_columns(spec.table)
            for role, column in [*(("key", k) for k in spec.keys), ("timestamp", spec.timestamp), ("label", spec.label)]:
                if columns is not None and column is not None and column not in columns:
                    found.append(CheckProblem(
                        f"training_set: {role} column {column!r} is not a column of {spec.table} "
                        f"(hint: {suggest(column, columns) or 'its columns are: ' + ', '.join(columns)})",
                        "training_set", "timestamp" if role == "timestamp" else "label" if role == "label" else "keys"))
    elif spec.sql is not None:
        from brickyard.ml.training_set import entity_query

        try:
            _, text = entity_query(context.workspace, spec)
        except BrickyardError as exc:
            found.append(CheckProblem(str(exc), "training_set", "sql"))
        else:
            found += [CheckProblem(m, "training_set", "sql") for m in context.engine.sql_problems(str(text), "training_set.sql")]
    for index, item in enumerate(spec.features):
        at = ("training_set", "features", index, "table")
        try:
            context.workspace.feature_table(item.name)
        except BrickyardError as exc:
            found.append(CheckProblem(str(exc), *at))
            continue
        if item.table not in context.produced_tables and not lake.exists(item.table):
            found.append(CheckProblem(
                f"feature table {item.table} is not materialized and no task of the pipeline writes it "
                f"(hint: add a task `kind: features` with `table: {item.name}`)", *at))
    return found


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
        if options.training_set is not None:
            found += training_set_problems(options.training_set, context)
            if options.estimator == "kmeans" and context.engine.distributed:
                found.append(CheckProblem(SPARK_KMEANS_TRAINING_SET, "training_set"))
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
            if options.training_set is not None:
                raise BrickyardError(SPARK_KMEANS_TRAINING_SET, hint="run this task with engine: duckdb")
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
        # Monitoring: the version's baseline (gold.model_baselines + monitoring/baseline.json)
        from brickyard.monitoring.training import record_training_baseline

        recorded = record_training_baseline(context.workspace, result, log=context.log)
        context.record_write(recorded.table, recorded.table_version)
        context.metrics.extra["baseline"] = recorded.summary()

    def _run_spark_kmeans(self, options: TrainOptions, context: TaskContext, model_name: str, tags: dict[str, str]) -> None:
        from brickyard.ml.spark_kmeans import train_kmeans

        result = train_kmeans(
            context.workspace, options, experiment=context.pipeline.name, model_name=model_name, tags=tags, log=context.log,
            engine=context.engine,
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
        reason = "Spark MLlib kmeans keeps its rows on the executors; no monitoring baseline is recorded for it"
        context.log.warning("%s (model %s version %s)", reason, result.model_name, result.model_version)
        context.metrics.extra["baseline"] = {"skipped": reason}
