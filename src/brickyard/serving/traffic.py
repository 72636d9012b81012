"""Endpoints and their traffic policy: champion only, shadow, or canary with a rollout plan.

An `Endpoint` holds two slots, champion and challenger, each the `LoadedModel` an alias
points at (or a pinned version). A slot is swapped by assigning a new object, so a request
that already picked a model finishes on it and the next one sees the new version: nothing is
dropped and nothing is locked on the request path.

Canary: a request goes to the challenger when its key's hash falls under the canary percent
(`X-Request-Key` header, or a named input column's value in the first row; a random draw when
there is no key), so one customer always sees the same version while the percent holds (and
stays on the challenger as it rises). `CanaryPolicy.tick` (called about once a second) rolls
the canary back (all traffic to the champion) when the challenger's error rate or p95 latency
over the sliding window breaks the endpoint's limits, and advances the rollout plan one step
when a step has held its limits for `rollout_step_seconds`.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from brickyard.config.models import EndpointConfig
    from brickyard.serving.registry import LoadedModel

log = logging.getLogger("brickyard.serving")

CHAMPION, CHALLENGER, SHADOW = "champion", "challenger", "shadow"


def bucket(key: str) -> float:
    """A stable position in [0, 100) for a request key."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 10_000 / 100.0


@dataclass
class Event:
    """Something the policy did, for logs and metrics."""

    kind: str  # rollback, advance, complete
    percent: float
    reason: str


@dataclass
class CanaryPolicy:
    """The canary's share of traffic, its sliding window of outcomes and its limits."""

    steps: list[float]
    step_seconds: float
    max_error_rate: float
    max_p95_ms: float | None
    window_seconds: float
    min_requests: int
    clock: Any = time.monotonic
    step: int = 0
    rolled_back: bool = False
    step_started: float = 0.0
    window: deque[tuple[float, bool, float]] = field(default_factory=deque)

    @classmethod
    def from_config(cls, config: EndpointConfig, clock: Any = time.monotonic) -> CanaryPolicy | None:
        if config.rollout:
            steps = list(config.rollout)
            if config.canary is not None and config.canary not in steps:
                steps = sorted({config.canary, *steps})
            start = steps.index(config.canary) if config.canary is not None else 0
        elif config.canary is not None:
            steps, start = [config.canary], 0
        else:
            return None
        return cls(
            steps=steps, step_seconds=config.rollout_step_seconds, max_error_rate=config.max_error_rate,
            max_p95_ms=config.max_p95_ms, window_seconds=config.window_seconds, min_requests=config.min_requests,
            clock=clock, step=start, step_started=clock(),
        )

    @property
    def percent(self) -> float:
        return 0.0 if self.rolled_back else self.steps[self.step]

    def chooses_challenger(self, key: str | None) -> bool:
        percent = self.percent
        if percent <= 0:
            return False
        if percent >= 100:
            return True
        return (bucket(key) if key is not None else random.random() * 100) < percent

    def record(self, ok: bool, latency_ms: float) -> None:
        """One challenger outcome (thread-safe: a deque append)."""
        self.window.append((self.clock(), ok, latency_ms))

    def reset(self) -> None:
        """A new challenger version: start the plan again."""
        self.step = 0
        self.rolled_back = False
        self.step_started = self.clock()
        self.window.clear()

    def stats(self) -> tuple[int, float, float]:
        """(requests, error rate, p95 ms) of the challenger over the window."""
        now = self.clock()
        window = self.window
        while window and window[0][0] < now - self.window_seconds:
            window.popleft()
        outcomes = list(window)
        if not outcomes:
            return 0, 0.0, 0.0
        errors = sum(1 for _, ok, _ in outcomes if not ok)
        latencies = np.fromiter((latency for _, _, latency in outcomes), dtype=np.float64, count=len(outcomes))
        return len(outcomes), errors / len(outcomes), float(np.percentile(latencies, 95))

    def tick(self) -> Event | None:
        """Judge the window: roll back, advance a step, or do nothing."""
        if self.rolled_back:
            return None
        count, error_rate, p95 = self.stats()
        if count >= self.min_requests:
            if error_rate > self.max_error_rate:
                return self._rollback(f"challenger error rate {error_rate:.1%} over {count} requests > {self.max_error_rate:.1%}")
            if self.max_p95_ms is not None and p95 > self.max_p95_ms:
                return self._rollback(f"challenger p95 latency {p95:.1f} ms over {count} requests > {self.max_p95_ms:g} ms")
        if self.step + 1 < len(self.steps) and count >= self.min_requests and self.clock() - self.step_started >= self.step_seconds:
            self.step += 1
            self.step_started = self.clock()
            kind = "complete" if self.step + 1 == len(self.steps) and self.steps[-1] >= 100 else "advance"
            return Event(kind, self.percent, f"limits held for {self.step_seconds:g} s over {count} requests")
        return None

    def _rollback(self, reason: str) -> Event:
        self.rolled_back = True
        return Event("rollback", 0.0, reason)


@dataclass
class Endpoint:
    """A served model: its config, its slots, and its traffic policy."""

    name: str
    model: str
    config: EndpointConfig
    champion_alias: str | None  # None when the version is pinned
    champion_version: str | None
    challenger_alias: str | None  # None: champion only
    champion: LoadedModel | None = None
    challenger: LoadedModel | None = None
    canary: CanaryPolicy | None = None
    error: str = ""  # why the champion is not loaded, when it is not

    @property
    def shadow(self) -> bool:
        return self.config.shadow and self.challenger is not None

    def request_key(self, headers: Any, columns: dict[str, Any]) -> str | None:
        """The sticky key: the configured header, else the configured column's first value."""
        header = self.config.request_key
        if header:
            value = headers.get(header)
            if value:
                return str(value)
        column = self.config.request_key_column
        if column:
            values = columns.get(column)
            if values is not None and len(values) and values[0] is not None:
                return str(values[0])
        return None

    def route(self, key: str | None) -> tuple[LoadedModel | None, str]:
        """The model (and variant name) that answers this request."""
        canary = self.canary
        challenger = self.challenger
        if canary is not None and challenger is not None and canary.chooses_challenger(key):
            return challenger, CHALLENGER
        return self.champion, CHAMPION
