"""The `evaluate` task kind: held-out metrics and plots for a registered model version.

```yaml
- name: evaluate
  kind: evaluate
  depends_on: [train]
  model: titanic        # default: the upstream train task's model_name (or the pipeline's name)
  version: latest       # default: the version this pipeline run trained (tag brickyard.run_id)
  explain: true         # SHAP: {explainer, max_rows, background_rows, budget_seconds, n_jobs, seed, plots}
  sensitive_features: [Sex]           # fairness by group (Fairlearn MetricFrame)
  fairness: {bootstrap: 500, confidence: 0.95, seed: 42}
  robustness: true      # {metric, noise, missing, repeats, seed}
```

The version is found in the registry, not handed over by the runner: by default the newest
version whose `brickyard.run_id` tag is this run's id, so an evaluate task downstream of a
train task evaluates exactly what that train task registered. See `brickyard.ml.evaluation`.
`metrics.extra` gets `model_name`, `model_version`, `mlflow_run_id`, the metrics and the
artifact paths, and `explain` / `fairness` / `robustness` summaries when asked
(docs/explainability.md).
"""

from __future__ import annotations

from typing import ClassVar

from brickyard.errors import ConfigError, suggest
from brickyard.ml.spec import MODEL_KINDS, EvaluateSpec, ModelVersionSpec, train_model_name, upstream_model_name
from brickyard.tasks.base import CheckContext, CheckProblem, TaskContext, TaskKind, TaskOptions


class EvaluateOptions(TaskOptions, EvaluateSpec):
    """Options of an `evaluate` task (see `brickyard.ml.spec.EvaluateSpec`)."""


def model_for(options: ModelVersionSpec, context: TaskContext, task_name: str) -> str:
    """The model the task acts on (see `brickyard.ml.spec.upstream_model_name`).

    Raises:
        ConfigError: several upstream train tasks and no `model:`.
    """
    pipeline = context.pipeline
    try:
        return upstream_model_name(pipeline, pipeline.task(task_name), options.model)
    except ValueError as exc:
        # from None: the ValueError's text is this message (noise)
        raise ConfigError(str(exc), hint="name the registered model with model:") from None


class EvaluateTask(TaskKind):
    """Scores a model version on its held-out rows and logs metrics and plots to its run."""

    name = "evaluate"
    needs: ClassVar[frozenset[str]] = frozenset()  # engine-agnostic: no table scans of its own
    Options = EvaluateOptions

    def check(self, options: EvaluateOptions, context: CheckContext) -> list[str]:
        """`sensitive_features` name columns of the model's training table (when its
        columns are known before running), and the extra measures suit the model."""
        if context.task is None:
            return []
        try:
            model = upstream_model_name(context.pipeline, context.task, options.model)
        except ValueError as exc:
            return [CheckProblem(str(exc), "model")]
        problems: list[str] = []
        for train in (t for t in context.pipeline.tasks if t.kind in MODEL_KINDS):
            if train_model_name(context.pipeline, train) != model:
                continue
            if train.options.get("estimator") == "kmeans":
                problems += [
                    CheckProblem(f"{key}: needs a model that predicts; {model!r} is a kmeans (clustering) model", key)
                    for key in ("explain", "sensitive_features", "robustness") if getattr(options, key)
                ]
                continue
            table = train.options.get("table")
            columns = context.table_columns(str(table)) if isinstance(table, str) else None
            if columns is None:
                continue
            for index, column in enumerate(options.sensitive_features):
                if column not in columns:
                    problems.append(CheckProblem(
                        f"sensitive_features: column {column!r} is not a column of {table}, which {model!r} "
                        f"is trained from (hint: {suggest(column, columns) or 'its columns are: ' + ', '.join(columns)})",
                        "sensitive_features", index,
                    ))
        return problems

    def run(self, options: EvaluateOptions, context: TaskContext) -> None:
        from brickyard.ml.evaluation import evaluate

        name = model_for(options, context, context.task.name)
        result = evaluate(
            context.workspace, name, options.version, run_id=context.run_id, log=context.log, options=options
        )
        for table, version in result.reads.items():
            context.record_read(table, version)
        context.metrics.rows_in = result.rows
        context.metrics.extra.update({
            "model_name": result.model_name,
            "model_version": result.model_version,
            "mlflow_run_id": result.run_id,
            "metrics": result.metrics,
            "artifacts": result.artifacts,
            **result.details,
        })
