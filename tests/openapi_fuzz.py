"""schemathesis against an app's own OpenAPI document, for the server and serving tests.

`fuzz` sends bounded numbers of generated requests for one operation (valid ones, or ones
that break the document) straight to the ASGI app, and runs every schemathesis check on each
answer: no 5xx; every status, content type, header and body as documented; invalid input
refused; valid input accepted; declared auth enforced. Findings are collected rather than
raised at the first, so one run reports each distinct problem with a curl command to replay it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.generation import GenerationMode

POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
# Decides whether one finding is an answer the app is documented to give (see each use).
Tolerate = Callable[[Any, Any, Failure], bool]


@dataclass
class Outcome:
    """What a fuzz run saw: answers by status, and the findings (one line each, deduplicated)."""

    statuses: Counter[int] = field(default_factory=Counter)
    findings: dict[str, str] = field(default_factory=dict)

    def add(self, other: Outcome) -> None:
        self.statuses.update(other.statuses)
        for key, text in other.findings.items():
            self.findings.setdefault(key, text)

    @property
    def calls(self) -> int:
        return sum(self.statuses.values())

    def report(self) -> str:
        return "\n\n".join(list(self.findings.values())[:10])


def load(app: Any, *, bearer: str | None = None) -> Any:
    """The app's OpenAPI document as a schemathesis schema; with `bearer`, every operation that
    declares the `bearer` scheme is called with that token (and `ignored_auth` probes without)."""
    config = schemathesis.Config.from_dict({"auth": {"openapi": {"bearer": {"bearer": bearer}}}}) if bearer else None
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


def operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def fuzz(
    operation: Any,
    mode: GenerationMode,
    *,
    examples: int,
    tolerate: Tolerate | None = None,
    checks: list[Any] | None = None,
    **strategy: Any,
) -> Outcome:
    """Send up to `examples` generated requests of `mode` to `operation` and check each answer
    (`checks`, or every check schemathesis has). `strategy` pins parts of the request
    (`path_parameters={"name": "hello"}`). A NEGATIVE run of an operation with nothing to
    break (no parameters, body or auth) sends nothing."""
    outcome = Outcome()
    raw = operation.definition.raw
    if mode is NEGATIVE and not (raw.get("parameters") or raw.get("requestBody") or raw.get("security")):
        return outcome

    @given(case=operation.as_strategy(generation_mode=mode, **strategy))
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        response = case.call()
        outcome.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=checks)
        except FailureGroup as group:
            for failure in group.exceptions:
                if tolerate is not None and tolerate(case, response, failure):
                    continue
                key = f"{operation.label} {mode.name}: {failure.title}"
                outcome.findings.setdefault(key, f"{key}\n{group}")

    run()
    return outcome
