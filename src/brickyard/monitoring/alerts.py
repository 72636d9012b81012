"""Alert rules on a monitor's window summaries, and the breaches they find.

A rule is a condition on one value of a window's summary (`drift_share > 0.3`,
`roc_auc_drop > 0.05`, `rows < 100`), held for `consecutive` windows in a row before it
alerts, and the actions to take (`log`, a signed `webhook`, `run: PIPELINE`).

A breach is a run of windows where the condition holds; it alerts once, at its
`consecutive`-th window, and never again while it lasts. A window where the condition
fails (or the value is missing: no labels yet, no probabilities) ends the breach; the next
breach alerts again. A breach is known by its rule and its first window, which is how the
state database keeps an alert from being sent twice.

>>> rule = AlertRule(name="drift", when="drift_share > 0.3", consecutive=2)
>>> from datetime import datetime
>>> days = [datetime(2026, 1, d) for d in range(1, 7)]
>>> shares = [0.1, 0.5, 0.6, 0.7, 0.1, 0.4]
>>> [(b.start.day, b.fired.day) for b in breaches(rule, [(d, {"drift_share": s}) for d, s in zip(days, shares)])]
[(2, 3)]
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from brickyard.config.secrets import is_reference

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
}
_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(>=|<=|==|!=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
# Short names people write for the metrics brickyard logs (`auc_drop` is `roc_auc_drop`).
ALIASES = {"auc": "roc_auc"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookSpec(_Strict):
    """POST the alert as JSON to `url`, signed with HMAC-SHA256 of the body under `secret`
    (a `${env:NAME}` reference) in the header `X-Brickyard-Signature: sha256=<hex>`."""

    url: str = Field(description="An `http://` or `https://` URL.")
    secret: str | None = Field(
        default=None, description="A `${env:NAME}` reference to the HMAC-SHA256 key; none: unsigned."
    )
    timeout_seconds: float = Field(default=10.0, gt=0, description="Seconds to wait for an answer.")
    attempts: int = Field(default=3, ge=1, le=10, description="Tries before the delivery is recorded as failed.")

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url {url!r} must start with http:// or https://")
        return url

    @field_validator("secret")
    @classmethod
    def _reference(cls, secret: str | None) -> str | None:
        if secret is not None and not is_reference(secret):
            raise ValueError(
                "a webhook secret is a reference such as ${env:MONITOR_WEBHOOK_SECRET}, never the secret itself "
                "(pipeline files live in git)"
            )
        return secret


class WebhookAction(_Strict):
    webhook: WebhookSpec


class RunAction(_Strict):
    """Start a run of pipeline `run` (trigger `monitor`, the alert as its reason)."""

    run: str


class LogAction(_Strict):
    log: Literal["warning", "error", "info"] = "warning"


Action = Literal["log"] | LogAction | WebhookAction | RunAction


class AlertRule(_Strict):
    """`when` a summary value crosses a threshold for `consecutive` windows, do `actions`."""

    name: str | None = None
    when: str
    consecutive: int = Field(default=1, ge=1)
    actions: list[Action] = Field(default_factory=lambda: _default_actions())

    @field_validator("when")
    @classmethod
    def _condition(cls, text: str) -> str:
        parse_condition(text)
        return text

    @model_validator(mode="after")
    def _named(self) -> AlertRule:
        if self.name is None:
            metric, op, value = parse_condition(self.when)
            object.__setattr__(self, "name", f"{metric} {op} {value:g}")
        return self

    @property
    def key(self) -> str:
        """The rule's name (given, or its condition)."""
        return self.name or self.when

    @property
    def metric(self) -> str:
        return parse_condition(self.when)[0]

    def holds(self, values: Mapping[str, Any]) -> bool:
        """Whether the condition holds for a window's summary values (False when missing)."""
        metric, op, threshold = parse_condition(self.when)
        value = values.get(metric)
        if value is None or (isinstance(value, float) and value != value):  # missing or NaN
            return False
        return OPERATORS[op](float(value), threshold)


def _default_actions() -> list[Action]:
    return ["log"]


def parse_condition(text: str) -> tuple[str, str, float]:
    """`metric op number` as its parts, the metric with its alias resolved.

    Raises:
        ValueError: not of that form.
    """
    match = _CONDITION.match(text)
    if match is None:
        raise ValueError(
            f"alert condition {text!r} is not `metric op number` (e.g. `drift_share > 0.3`, `auc_drop > 0.05`)"
        )
    metric, op, number = match.groups()
    head, _, tail = metric.partition("_")
    if head in ALIASES:
        metric = ALIASES[head] + (f"_{tail}" if tail else "")
    return metric, op, float(number)


@dataclass(frozen=True)
class Breach:
    """Windows in a row where a rule's condition held: the first (`start`), the one where it
    alerted (`fired`, the `consecutive`-th) with its value, and whether it still lasts."""

    rule: AlertRule
    start: datetime
    fired: datetime
    fired_end: datetime | None
    value: float
    ongoing: bool


def breaches(
    rule: AlertRule, windows: Sequence[tuple[datetime, Mapping[str, Any]]], ends: Mapping[datetime, datetime] | None = None
) -> list[Breach]:
    """The breaches of `rule` over window summaries (window start and values), in time order.
    A run of breaching windows shorter than `consecutive` is no breach."""
    found: list[Breach] = []
    run: list[datetime] = []
    ordered = sorted(windows, key=lambda item: item[0])
    for index, (start, values) in enumerate(ordered):
        if not rule.holds(values):
            run = []
            continue
        run.append(start)
        if len(run) == rule.consecutive:
            value = float(values[rule.metric])
            ongoing = all(rule.holds(later) for _, later in ordered[index + 1:])
            found.append(Breach(rule, run[0], start, (ends or {}).get(start), value, ongoing))
    return found


def describe(breach: Breach, monitor: str, *, estimated: bool = False) -> str:
    """One line for people: what crossed what, where and since when."""
    rule = breach.rule
    times = "" if rule.consecutive == 1 else f" for {rule.consecutive} windows in a row"
    note = " (estimated: no labels yet)" if estimated else ""
    return (
        f"monitor {monitor}: {rule.metric} = {breach.value:.4g}{note} breaches `{rule.when}`{times}, "
        f"window starting {breach.fired:%Y-%m-%d %H:%M} (breach since {breach.start:%Y-%m-%d %H:%M})"
    )
