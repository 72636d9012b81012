"""The `evaluate` task kind: held-out metrics and plots for a registered model version.

```yaml
- name: evaluate
  kind: evaluate
  depends_on: [train]
  model: titanic        # default: the upstream train task's model_name (or the pipeline's name)
  version: latest       # default: the version this pipeline run trained (tag brickyard.run_id)
```

The version is found in the registry, not handed over by the runner: by default the newest
version whose `brickyard.run_id` tag is this run's id, so an evaluate task downstream of a
train task evaluates exactly what that train task registered. See `brickyard.ml.evaluation`.
`metrics.extra` gets `model_name`, `model_version`, `mlflow_run_id`, the metrics and the
artifact paths.
"""

from __future__ import annotations

from typing import ClassVar

from brickyard.errors import ConfigError
from brickyard.ml.spec import EvaluateSpec, upstream_model_name
from brickyard.tasks.base import TaskContext, TaskKind, TaskOptions


class EvaluateOptions(TaskOptions, EvaluateSpec):
    """Options of an `evaluate` task (see `brickyard.ml.spec.EvaluateSpec`)."""


def model_for(options: EvaluateSpec, context: TaskContext, task_name: str) -> str:
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

    def run(self, options: EvaluateOptions, context: TaskContext) -> None:
        from brickyard.ml.evaluation import evaluate

        name = model_for(options, context, context.task.name)
        result = evaluate(context.workspace, name, options.version, run_id=context.run_id, log=context.log)
        for table, version in result.reads.items():
            context.record_read(table, version)
        context.metrics.rows_in = result.rows
        context.metrics.extra.update({
            "model_name": result.model_name,
            "model_version": result.model_version,
            "mlflow_run_id": result.run_id,
            "metrics": result.metrics,
            "artifacts": result.artifacts,
        })
