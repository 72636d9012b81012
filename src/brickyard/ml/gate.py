"""The promotion gate: rules as data, checked with MLflow's own model validation.

A rule compares one metric of the candidate version with a number or with the same
metric of the current `champion`:

    accuracy >= 0.75                     MetricThreshold(threshold=0.75, greater_is_better=True)
    log_loss <= 0.5                      MetricThreshold(threshold=0.5, greater_is_better=False)
    roc_auc >= champion.roc_auc + 0.01   MetricThreshold(min_absolute_change=0.01, greater_is_better=True)
    rmse <= champion.rmse - 0.5          MetricThreshold(min_absolute_change=0.5, greater_is_better=False)
    f1 >= champion.f1 * 1.02             MetricThreshold(min_relative_change=0.02, greater_is_better=True)
    roc_auc >= champion.roc_auc          MetricThreshold(min_relative_change=0.0, greater_is_better=True)
    roc_auc >= champion.roc_auc - 0.02   a tolerance: MetricThreshold(min_relative_change=0.0)
                                         against a baseline of champion.roc_auc - 0.02

`>=` means greater is better, `<=` lower is better (MLflow's thresholds are inclusive, so
`>` and `<` are not offered). Each rule becomes one `mlflow.models.MetricThreshold` and is
checked on its own with `mlflow.validate_evaluation_results` (candidate and baseline as
`EvaluationResult`s holding the metrics logged on each version's run), so every rule gets
its own verdict and a later rule kind (fairness, robustness) plugs into the same gate.

With no champion (the first version) or when the candidate is the champion, rules that
name `champion.*` are skipped and recorded as such; the others decide.

The metrics the evaluate task's options add are compared the same way
(`demographic_parity_difference <= 0.1`, `robustness_drop <= 0.02`; see
docs/explainability.md), except `importance_rank_change`: it is measured at check time
from the `shap_importance.*` metrics of the candidate's and the current champion's runs
(`brickyard.ml.explanations.importance_rank_change`), so it always compares with the
champion the gate sees; with no champion it is skipped like a `champion.*` rule, and a
version without SHAP importances (evaluated without `explain:`) fails it, saying so.

`apply` turns a verdict into registry state: pass (or `force`) makes the candidate
`champion` and the previous champion `previous_champion` (it is kept, never deleted);
fail makes it `challenger`. The decision and each rule's values are tagged on the version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from brickyard.errors import suggest
from brickyard.ml.errors import GateRuleError
from brickyard.ml.registry import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, champion, resolve_version, run_metrics

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from brickyard.workspace import Workspace

Decision = Literal["promoted", "forced", "rejected", "unchanged"]
TAG_DECISION = "brickyard.gate.decision"
TAG_RULE = "brickyard.gate.rule."
RANK_CHANGE = "importance_rank_change"  # measured by the gate itself, against the current champion
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RULE = re.compile(
    rf"^\s*(?P<metric>[A-Za-z_][\w.]*)\s*(?P<op>>=|<=|>|<|==|=)\s*(?:"
    rf"(?P<number>{_NUMBER})"
    rf"|champion\.(?P<ref>[A-Za-z_][\w.]*)\s*(?:(?P<sign>[-+*])\s*(?P<amount>{_NUMBER}))?"
    rf")\s*$"
)


@dataclass(frozen=True)
class Rule:
    """One parsed rule. `kind` absolute: `value` is the threshold; champion: `sign` and
    `value` say how the bound is made from the champion's metric (+, -, or * a factor)."""

    text: str
    metric: str
    greater_is_better: bool
    kind: Literal["absolute", "champion"]
    value: float
    sign: Literal["+", "-", "*"] = "+"

    def bound(self, champion_value: float | None) -> float | None:
        """The value the candidate must reach (at least, or at most)."""
        if self.kind == "absolute":
            return self.value
        if champion_value is None:
            return None
        if self.sign == "*":
            return champion_value * self.value
        return champion_value + (self.value if self.sign == "+" else -self.value)

    def threshold(self, champion_value: float | None = None) -> tuple[Any, float | None]:
        """The MLflow MetricThreshold for this rule, and the baseline value to check it against."""
        from mlflow.models import MetricThreshold

        better = self.greater_is_better
        if self.kind == "absolute":
            return MetricThreshold(threshold=float(self.value), greater_is_better=better), None
        assert champion_value is not None
        if self.sign == "*":
            improvement = (self.value - 1.0) if better else (1.0 - self.value)
            if 0.0 < improvement <= 1.0 and champion_value > 0:
                return MetricThreshold(min_relative_change=float(improvement), greater_is_better=better), champion_value
        else:
            offset = self.value if self.sign == "+" else -self.value
            improvement = offset if better else -offset
            if improvement > 0:
                return MetricThreshold(min_absolute_change=float(improvement), greater_is_better=better), champion_value
        # No change, or a tolerance (the bound is on the worse side of the champion):
        # the candidate must not be worse than the bound itself.
        bound = self.bound(champion_value)
        return MetricThreshold(min_relative_change=0.0, greater_is_better=better), bound


@dataclass
class RuleOutcome:
    """One rule's verdict, with the values it compared (recorded as a version tag)."""

    rule: str
    metric: str
    candidate: float | None
    champion: float | None
    threshold: float | None
    passed: bool | None
    skipped: bool = False
    detail: str = ""


@dataclass
class GateResult:
    """The gate's verdict on one version."""

    model: str
    version: int
    champion_version: int | None
    outcomes: list[RuleOutcome] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(o.passed or o.skipped for o in self.outcomes)


@dataclass
class PromotionResult:
    """What `apply` did."""

    gate: GateResult
    decision: Decision
    aliases: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.gate.model,
            "model_version": self.gate.version,
            "decision": self.decision,
            "passed": self.gate.passed,
            "champion_version_before": self.gate.champion_version,
            "aliases": self.aliases,
            "rules": [asdict(o) for o in self.gate.outcomes],
        }


def parse_rule(text: str) -> Rule:
    """Parse `metric >= number`, `metric >= champion.metric [+|-|* number]` (or `<=`).

    Raises:
        GateRuleError: the rule does not parse, or compares two different metrics.
    """
    match = _RULE.match(text)
    if not match:
        raise GateRuleError(
            f"gate rule {text!r} does not parse",
            hint="write e.g. 'accuracy >= 0.75' or 'roc_auc >= champion.roc_auc + 0.01'",
        )
    op = match["op"]
    if op not in (">=", "<="):
        raise GateRuleError(
            f"gate rule {text!r} uses {op!r}",
            hint="use >= (greater is better) or <= (lower is better); MLflow's thresholds are inclusive",
        )
    metric = match["metric"]
    if match["number"] is not None:
        return Rule(text.strip(), metric, op == ">=", "absolute", float(match["number"]))
    if match["ref"] != metric:
        raise GateRuleError(
            f"gate rule {text!r} compares {metric} with champion.{match['ref']}",
            hint=f"compare a metric with the champion's same metric: champion.{metric}",
        )
    amount = float(match["amount"]) if match["amount"] is not None else 0.0
    sign = match["sign"] or "+"
    if sign == "*" and amount <= 0:
        raise GateRuleError(f"gate rule {text!r}: the factor must be positive")
    return Rule(text.strip(), metric, op == ">=", "champion", amount, sign)  # type: ignore[arg-type]


def unlogged_metrics(
    rules: Sequence[str], problems: Sequence[str], model: str, evaluated_with: Collection[str] = ()
) -> list[tuple[int, str]]:
    """(index, message) for each rule whose metric train and evaluate never log for a
    model that solves one of `problems` (see `brickyard.ml.metrics.LOGGED_METRICS`), given
    the evaluate options the model's evaluate tasks set (`evaluated_with`:
    `explain`, `sensitive_features`, `robustness`; see `metrics.evaluate_option_for`); rules that do
    not parse are left to `parse_rule`."""
    from brickyard.ml.metrics import LOGGED_METRICS, evaluate_option_for

    logged = sorted({metric for problem in problems for metric in LOGGED_METRICS[problem]})
    found = []
    for index, text in enumerate(rules):
        try:
            metric = parse_rule(text).metric
        except GateRuleError:
            continue
        option = evaluate_option_for(metric)
        if option is not None:
            if option not in evaluated_with:
                found.append((index, (
                    f"gate rule {text!r}: {metric} is measured by an evaluate task with {option}: "
                    f"and no evaluate task of model {model!r} in this pipeline sets it "
                    f"(hint: add {option}: to the evaluate task; see docs/explainability.md)"
                )))
            continue
        if metric not in logged:
            # scikit-learn's function names (f1_score, accuracy_score) are a common slip
            bare = metric.removesuffix("_score")
            close = f"did you mean {bare}?" if bare in logged else suggest(metric, logged)
            listed = f"a {' or '.join(problems)} model's metrics: {', '.join(logged)}"
            hint = f"{close} {listed}" if close else listed
            found.append((index, f"gate rule {text!r}: model {model!r} gets no metric {metric!r} from train and evaluate (hint: {hint})"))
    return found


def check(client: MlflowClient, name: str, version: int | str, rules: list[str]) -> GateResult:
    """Check a version against the rules and the current champion, without changing anything.

    Raises:
        ModelNotFoundError: no such model or version. GateRuleError: a bad rule, or one
            naming a metric the version's run never logged.
    """
    parsed = [parse_rule(text) for text in rules]
    candidate = resolve_version(client, name, version)
    current = champion(client, name)
    candidate_metrics = run_metrics(client, candidate)
    same = current is not None and current.version == candidate.version
    champion_metrics = run_metrics(client, current) if current is not None and not same else {}
    result = GateResult(name, int(candidate.version), int(current.version) if current else None)
    for rule in parsed:
        if rule.metric == RANK_CHANGE:
            result.outcomes.append(_rank_change_outcome(rule, candidate, current, same, candidate_metrics, champion_metrics))
            continue
        if rule.metric not in candidate_metrics:
            known = sorted(candidate_metrics)
            raise GateRuleError(
                f"gate rule {rule.text!r}: version {candidate.version} of {name!r} has no metric {rule.metric!r}",
                hint=suggest(rule.metric, known) or f"its metrics: {', '.join(known) or 'none (run evaluate first)'}",
            )
        value = candidate_metrics[rule.metric]
        if rule.kind == "champion" and (current is None or same):
            why = "no champion yet" if current is None else "the candidate is the champion"
            result.outcomes.append(RuleOutcome(rule.text, rule.metric, value, None, None, None, True, f"skipped: {why}"))
            continue
        base_value = champion_metrics.get(rule.metric) if rule.kind == "champion" else None
        if rule.kind == "champion" and base_value is None:
            result.outcomes.append(RuleOutcome(
                rule.text, rule.metric, value, None, None, False, False,
                f"the champion (version {current.version}) has no metric {rule.metric}",  # type: ignore[union-attr]
            ))
            continue
        passed, detail = _judge(rule, value, base_value)
        result.outcomes.append(RuleOutcome(
            rule.text, rule.metric, value, base_value, rule.bound(base_value), passed, False, detail
        ))
    return result


def _judge(rule: Rule, value: float, base_value: float | None) -> tuple[bool, str]:
    """One rule checked by MLflow's validation: (passed, detail)."""
    from mlflow.exceptions import MlflowException
    from mlflow.models import EvaluationResult

    threshold, baseline = rule.threshold(base_value)
    candidate_result = EvaluationResult(metrics={rule.metric: float(value)}, artifacts={})
    baseline_result = (
        EvaluationResult(metrics={rule.metric: float(baseline)}, artifacts={}) if baseline is not None else None
    )
    try:
        _validate({rule.metric: threshold}, candidate_result, baseline_result)
    except MlflowException as exc:
        return False, " ".join(str(exc.message).split())
    return True, "passed"


def _rank_change_outcome(
    rule: Rule, candidate: Any, current: Any, same: bool, candidate_metrics: dict[str, float],
    champion_metrics: dict[str, float],
) -> RuleOutcome:
    """`importance_rank_change` measured now, between the candidate's and the champion's
    SHAP importances (see the module's docstring)."""
    from brickyard.ml.explanations import importance_from_metrics, importance_rank_change

    logged = candidate_metrics.get(RANK_CHANGE)
    if current is None or same:
        why = "no champion yet" if current is None else "the candidate is the champion"
        return RuleOutcome(rule.text, rule.metric, logged, None, None, None, True, f"skipped: {why}")
    if rule.kind == "champion":
        raise GateRuleError(
            f"gate rule {rule.text!r}: {RANK_CHANGE} is already a comparison with the champion",
            hint=f"bound it by a number: '{RANK_CHANGE} <= 0.3'",
        )
    ours, theirs = importance_from_metrics(candidate_metrics), importance_from_metrics(champion_metrics)
    missing = [
        who for who, found in ((f"version {candidate.version}", ours), (f"the champion (version {current.version})", theirs))
        if not found
    ]
    if missing:
        return RuleOutcome(
            rule.text, rule.metric, None, None, rule.value, False, False,
            f"{' and '.join(missing)} has no SHAP importances: evaluate with explain: to measure it",
        )
    value = importance_rank_change(ours, theirs)
    passed, detail = _judge(rule, value, None)
    return RuleOutcome(
        rule.text, rule.metric, value, None, rule.value, passed, False,
        f"{detail} (against the champion, version {current.version})",
    )


def _validate(thresholds: dict[str, Any], candidate: Any, baseline: Any) -> None:
    import logging

    import mlflow

    # MLflow logs every validation at INFO; brickyard reports each rule itself.
    logging.getLogger("mlflow.models.evaluation.validation").setLevel(logging.WARNING)

    mlflow.validate_evaluation_results(
        validation_thresholds=thresholds, candidate_result=candidate, baseline_result=baseline
    )


def apply(
    client: MlflowClient, result: GateResult, *, force: bool = False, extra_tags: dict[str, str] | None = None
) -> PromotionResult:
    """Move the aliases as the verdict says and tag the version with the decision and rules."""
    name, version = result.model, str(result.version)
    previous = result.champion_version
    aliases: dict[str, int] = {}
    if previous is not None and previous == result.version:
        decision: Decision = "unchanged"
        aliases[CHAMPION] = result.version
    elif result.passed or force:
        decision = "promoted" if result.passed else "forced"
        client.set_registered_model_alias(name, CHAMPION, version)
        aliases[CHAMPION] = result.version
        if previous is not None:
            client.set_registered_model_alias(name, PREVIOUS_CHAMPION, str(previous))
            aliases[PREVIOUS_CHAMPION] = previous
        model = client.get_registered_model(name)
        if str(model.aliases.get(CHALLENGER, "")) == version:
            client.delete_registered_model_alias(name, CHALLENGER)
    else:
        decision = "rejected"
        client.set_registered_model_alias(name, CHALLENGER, version)
        aliases[CHALLENGER] = result.version
    tags = {
        TAG_DECISION: decision,
        "brickyard.gate.passed": str(result.passed).lower(),
        "brickyard.gate.forced": str(force and not result.passed).lower(),
        "brickyard.gate.champion_before": "" if previous is None else str(previous),
        "brickyard.gate.at": datetime.now(UTC).isoformat(timespec="seconds"),
        "brickyard.gate.rules": str(len(result.outcomes)),
        **(extra_tags or {}),
    }
    for index, outcome in enumerate(result.outcomes):
        tags[f"{TAG_RULE}{index}"] = json.dumps(asdict(outcome), sort_keys=True)[:4900]
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    return PromotionResult(result, decision, aliases)


def recorded(client: MlflowClient, name: str, version: int | str) -> tuple[str | None, list[RuleOutcome]]:
    """The gate decision tagged on a version (None if never gated) and each rule's outcome
    as `apply` recorded it."""
    tags = client.get_model_version(name, str(version)).tags
    count = int(tags.get("brickyard.gate.rules", "0") or 0)
    outcomes = [RuleOutcome(**json.loads(tags[f"{TAG_RULE}{i}"])) for i in range(count) if f"{TAG_RULE}{i}" in tags]
    return tags.get(TAG_DECISION), outcomes


def promote(
    client: MlflowClient,
    name: str,
    version: int | str,
    rules: list[str],
    *,
    force: bool = False,
    extra_tags: dict[str, str] | None = None,
) -> PromotionResult:
    """`check` then `apply`: the gate as the promote task and `brickyard models promote` run it."""
    return apply(client, check(client, name, version, rules), force=force, extra_tags=extra_tags)


def rules_for_model(ws: Workspace, name: str) -> tuple[list[str], str | None]:
    """The rules of the promote task that acts on model `name` in the workspace's pipelines,
    and where they were found (`pipelines/X.yaml: task`). ([], None) when none does."""
    from brickyard.ml.spec import PromoteSpec, upstream_model_name

    for pipeline_name in ws.pipeline_names():
        pipeline = ws.pipeline(pipeline_name)
        for task in pipeline.spec.tasks:
            if task.kind != "promote":
                continue
            options = pipeline.parse_options(task, PromoteSpec)
            try:
                target = upstream_model_name(pipeline.spec, task, options.model)
            except ValueError:
                continue
            if target == name:
                return list(options.rules), f"pipelines/{pipeline_name}.yaml: {task.name}"
    return [], None

