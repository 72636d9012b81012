"""The `promote` task kind: the gate between a new model version and the `champion` alias.

```yaml
- name: promote
  kind: promote
  depends_on: [evaluate]
  rules:
    - "roc_auc >= champion.roc_auc + 0.01"
    - "accuracy >= 0.75"
  fail_on_reject: false   # true: a rejected version fails the task (and the run)
```

`model` and `version` default as for `evaluate`. Pass: the version becomes `champion` and
the old champion `previous_champion`; fail: it becomes `challenger`. The rules, their
values and the decision are tagged on the version and put in `metrics.extra`. The same gate
runs from the CLI (`brickyard gate`, `brickyard models promote`); see `brickyard.ml.gate`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from brickyard.ml.errors import GateRuleError, ModelError
from brickyard.ml.spec import PromoteSpec, TrainSpec, train_model_name, upstream_model_name
from brickyard.tasks.base import CheckContext, CheckProblem, TaskContext, TaskKind, TaskOptions
from brickyard.tasks.evaluate import model_for

if TYPE_CHECKING:
    from brickyard.core.pipeline import PipelineSpec


class PromoteOptions(TaskOptions, PromoteSpec):
    """Options of a `promote` task (see `brickyard.ml.spec.PromoteSpec`)."""


def _problems_solved(pipeline: PipelineSpec, model: str) -> list[str]:
    """The problems (classification, ...) the pipeline's train tasks of `model` may solve;
    empty when the pipeline does not train it (its metrics are then not known here)."""
    solved: set[str] = set()
    for task in pipeline.tasks:
        if task.kind != "train" or train_model_name(pipeline, task) != model:
            continue
        try:
            # keys a train task does not take are reported on that task; the rest still says
            spec = TrainSpec.model_validate({k: v for k, v in task.options.items() if k in TrainSpec.model_fields})
        except ValueError:
            return []
        if spec.estimator == "kmeans":
            solved.add("clustering")
        else:
            solved.update([spec.problem] if spec.problem else ["classification", "regression"])
    return sorted(solved)


def _evaluated_with(pipeline: PipelineSpec, model: str) -> set[str]:
    """The evaluate options (`explain`, `sensitive_features`, `robustness`) that some
    evaluate task of `model` in the pipeline sets."""
    found: set[str] = set()
    for task in pipeline.tasks:
        if task.kind != "evaluate":
            continue
        try:
            target = upstream_model_name(pipeline, task, task.options.get("model"))
        except ValueError:
            continue
        if target == model:
            found.update(key for key in ("explain", "sensitive_features", "robustness") if task.options.get(key))
    return found


class PromoteTask(TaskKind):
    """Checks the gate rules; moves the `champion` / `challenger` aliases."""

    name = "promote"
    needs: ClassVar[frozenset[str]] = frozenset()  # engine-agnostic: no table scans of its own
    Options = PromoteOptions

    def check(self, options: PromoteOptions, context: CheckContext) -> list[str]:
        """Each rule parses and compares a metric that the model's train task logs."""
        from brickyard.ml.gate import parse_rule, unlogged_metrics

        problems: list[str] = []
        for index, rule in enumerate(options.rules):
            try:
                parse_rule(rule)
            except GateRuleError as exc:
                problems.append(CheckProblem(str(exc), "rules", index))
        if context.task is None:
            return problems
        try:
            model = upstream_model_name(context.pipeline, context.task, options.model)
        except ValueError as exc:
            return [*problems, CheckProblem(f"{exc}", "model")]
        solved = _problems_solved(context.pipeline, model)
        if solved:
            evaluated = _evaluated_with(context.pipeline, model)
            problems += [
                CheckProblem(message, "rules", index)
                for index, message in unlogged_metrics(options.rules, solved, model, evaluated)
            ]
        return problems

    def run(self, options: PromoteOptions, context: TaskContext) -> None:
        from brickyard.ml import gate, registry, tracking

        name = model_for(options, context, context.task.name)
        client = tracking.connect(context.workspace)
        version = registry.resolve_version(client, name, options.version, run_id=context.run_id)
        if not options.rules:
            context.log.warning("promote task %s has no rules: the version is promoted unchecked", context.task.name)
        result = gate.promote(
            client, name, version.version, list(options.rules),
            extra_tags={
                "brickyard.gate.task": context.task.name,
                "brickyard.gate.run_id": context.run_id,
                "brickyard.gate.pipeline": context.pipeline.name,
            },
        )
        for outcome in result.gate.outcomes:
            context.log.info(
                "%s: %s (candidate %s, champion %s, threshold %s)", outcome.rule,
                "skipped" if outcome.skipped else "pass" if outcome.passed else "FAIL",
                outcome.candidate, outcome.champion, outcome.threshold,
            )
        context.log.info("%s version %s: %s", name, version.version, result.decision)
        context.metrics.extra.update(result.as_dict())
        if result.decision == "rejected" and options.fail_on_reject:
            raise ModelError(
                f"{name} version {version.version} failed the gate and became {registry.CHALLENGER}",
                hint="see each rule's values in the task log or the version's brickyard.gate.rule.* tags",
            )

