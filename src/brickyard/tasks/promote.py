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

from brickyard.ml.errors import GateRuleError, ModelError
from brickyard.ml.spec import PromoteSpec
from brickyard.tasks.base import CheckContext, TaskContext, TaskKind, TaskOptions
from brickyard.tasks.evaluate import model_for


class PromoteOptions(TaskOptions, PromoteSpec):
    """Options of a `promote` task (see `brickyard.ml.spec.PromoteSpec`)."""


class PromoteTask(TaskKind):
    """Checks the gate rules; moves the `champion` / `challenger` aliases."""

    name = "promote"
    engines = ("duckdb", "spark")  # engine-agnostic: no table scans of its own
    Options = PromoteOptions

    def check(self, options: PromoteOptions, context: CheckContext) -> list[str]:
        from brickyard.ml.gate import parse_rule

        problems = []
        for rule in options.rules:
            try:
                parse_rule(rule)
            except GateRuleError as exc:
                problems.append(str(exc))
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

