"""Service-level objectives over a window: `brickyard slo`.

The objectives and their targets are `slos:` in brickyard.yaml (`config.models.SloConfig`);
each is measured from what brickyard already records:

- `serving_p95_ms` (per endpoint): the 95th percentile (linear interpolation, as numpy's
  default) of `latency_ms` of the requests answered 200 in the window, from the inference
  log (`gold.inference_log`, or an endpoint's `log_table`; shadow records left out). Error
  budget: 5% of requests may be slower than the target; budget left = 1 - (share slower) / 5%.
- `availability` (per endpoint): the share of requests in the window not answered 5xx
  (shadow records and 499, a client that left, left out). Budget left =
  1 - (share failed) / (1 - target).
- `feature_freshness_seconds` (per feature table in the online store): seconds since the
  newest event time materialized online, now (as `brickyard_feature_freshness_seconds`).
  Budget left = 1 - age / target.
- `training_seconds`: the longest wall time of the attempts of `train` and `tune` tasks
  (kinds as the pipeline files say now) started in the window, from the run records.
  Budget left = 1 - longest / target.

An objective with nothing to measure in the window is `no data`: shown, never a pass or a
failure. A negative budget left means it is overspent.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from brickyard.errors import UsageError
from brickyard.runtime.records import ATTEMPTS, RUNS, to_db

if TYPE_CHECKING:
    from brickyard.workspace import Workspace

WINDOW_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
TRAINING_KINDS = ("train", "tune")
DEFAULT_LOG_TABLE = "gold.inference_log"
PASS, FAIL, NO_DATA = "pass", "fail", "no data"
LATENCY_BUDGET = 0.05  # a p95 objective lets 5% of requests be slower


def parse_window(text: str) -> timedelta:
    """`90s`, `30m`, `24h`, `7d`, `2w` as a timedelta.

    Raises:
        UsageError: anything else.
    """
    found = WINDOW_PATTERN.match(text)
    if found is None or float(found.group(1)) <= 0:
        raise UsageError(f"window {text!r} is not a duration", hint="write a number and s, m, h, d or w: 24h, 7d, 2w")
    return timedelta(seconds=float(found.group(1)) * UNITS[found.group(2)])


@dataclass(frozen=True)
class SloResult:
    """One objective over one scope (an endpoint, a feature table, or the workspace)."""

    slo: str
    scope: str
    target: float
    actual: float | None
    unit: str
    samples: int
    error_budget_left: float | None
    status: str  # pass, fail, no data

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SloReport:
    """Every objective over a window; `ok` unless one failed."""

    window: str
    since: datetime
    until: datetime
    results: list[SloResult]

    @property
    def ok(self) -> bool:
        return all(result.status != FAIL for result in self.results)

    def as_dict(self) -> dict[str, Any]:
        return {"window": self.window, "since": self.since, "until": self.until, "ok": self.ok,
                "slos": [result.as_dict() for result in self.results]}


def slo_report(ws: Workspace, window: str | None = None, *, now: datetime | None = None) -> SloReport:
    """Measure the workspace's configured objectives over `window` (default: `slos.window`)."""
    config = ws.config.slos
    text = window or config.window
    until = now or datetime.now(UTC)
    since = until - parse_window(text)
    results: list[SloResult] = []
    if config.serving_p95_ms is not None or config.availability is not None:
        for endpoint, rows in _requests(ws, since, until).items():
            if config.serving_p95_ms is not None:
                results.append(_latency(endpoint, rows, config.serving_p95_ms))
            if config.availability is not None:
                results.append(_availability(endpoint, rows, config.availability))
        if not any(result.slo in ("serving_p95_ms", "availability") for result in results):
            if config.serving_p95_ms is not None:
                results.append(SloResult("serving_p95_ms", "(no endpoint)", config.serving_p95_ms, None, "ms", 0, None, NO_DATA))
            if config.availability is not None:
                results.append(SloResult("availability", "(no endpoint)", config.availability, None, "ratio", 0, None, NO_DATA))
    if config.feature_freshness_seconds is not None:
        results += _freshness(ws, config.feature_freshness_seconds, until)
    if config.training_seconds is not None:
        results.append(_training(ws, config.training_seconds, since, until))
    return SloReport(text, since, until, results)


def _log_tables(ws: Workspace) -> list[str]:
    tables = {DEFAULT_LOG_TABLE} | {endpoint.log_table for endpoint in ws.config.endpoints.values() if endpoint.log}
    return sorted(tables)


def _requests(ws: Workspace, since: datetime, until: datetime) -> dict[str, dict[str, list[Any]]]:
    """Per endpoint, the status and latency_ms of the requests logged in [since, until)."""
    import pyarrow.compute as pc

    found: dict[str, dict[str, list[Any]]] = {}
    for table in _log_tables(ws):
        if not ws.lake.exists(table):
            continue
        in_window = (pc.field("ts") >= since) & (pc.field("ts") < until) & (pc.field("variant") != "shadow")
        rows = ws.lake.dataset(table).to_table(columns=["endpoint", "status", "latency_ms"], filter=in_window)
        for endpoint, status, latency in zip(*(rows.column(name).to_pylist() for name in ("endpoint", "status", "latency_ms"))):
            entry = found.setdefault(endpoint, {"status": [], "latency_ms": []})
            entry["status"].append(status)
            entry["latency_ms"].append(latency)
    return dict(sorted(found.items()))


def _latency(endpoint: str, rows: dict[str, list[Any]], target: float) -> SloResult:
    import pyarrow as pa
    import pyarrow.compute as pc

    latencies = [ms for ms, status in zip(rows["latency_ms"], rows["status"]) if status == 200]
    if not latencies:
        return SloResult("serving_p95_ms", endpoint, target, None, "ms", 0, None, NO_DATA)
    p95 = float(pc.quantile(pa.array(latencies, pa.float64()), q=0.95, interpolation="linear")[0].as_py())
    slower = sum(1 for ms in latencies if ms > target) / len(latencies)
    left = 1.0 - slower / LATENCY_BUDGET
    return SloResult("serving_p95_ms", endpoint, target, p95, "ms", len(latencies), left, PASS if p95 <= target else FAIL)


def _availability(endpoint: str, rows: dict[str, list[Any]], target: float) -> SloResult:
    statuses = [status for status in rows["status"] if status != 499]
    if not statuses:
        return SloResult("availability", endpoint, target, None, "ratio", 0, None, NO_DATA)
    failed = sum(1 for status in statuses if status >= 500) / len(statuses)
    actual = 1.0 - failed
    left = 1.0 - failed / (1.0 - target)
    return SloResult("availability", endpoint, target, actual, "ratio", len(statuses), left, PASS if actual >= target else FAIL)


def _freshness(ws: Workspace, target: float, until: datetime) -> list[SloResult]:
    from brickyard.features.online import OnlineStoreError, workspace_store

    try:
        store = workspace_store(ws)
        states = store.states()
        store.close()
    except OnlineStoreError as exc:
        raise UsageError(f"feature freshness: the online store cannot be read: {exc}",
                         hint="check online_store in brickyard.yaml, or set slos.feature_freshness_seconds: null") from exc
    if not states:
        return [SloResult("feature_freshness_seconds", "(no feature table online)", target, None, "s", 0, None, NO_DATA)]
    results = []
    at_us = int(until.timestamp() * 1_000_000)
    for state in sorted(states, key=lambda state: state.table):
        age = state.freshness_seconds(at_us)
        if age is None:
            results.append(SloResult("feature_freshness_seconds", state.table, target, None, "s", 0, None, NO_DATA))
            continue
        results.append(SloResult("feature_freshness_seconds", state.table, target, age, "s", 1, 1.0 - age / target,
                                 PASS if age <= target else FAIL))
    return results


def _training(ws: Workspace, target: float, since: datetime, until: datetime) -> SloResult:
    from brickyard.runtime.state import StateStore

    tasks = _training_tasks(ws)
    durations: list[float] = []
    if tasks:
        store = StateStore(ws.state_url)
        query = (
            sa.select(RUNS.c.pipeline, ATTEMPTS.c.task, ATTEMPTS.c.wall_seconds)
            .join(RUNS, RUNS.c.id == ATTEMPTS.c.run_id)
            .where(ATTEMPTS.c.started_at >= to_db(since), ATTEMPTS.c.started_at < to_db(until),
                   ATTEMPTS.c.wall_seconds.is_not(None), ATTEMPTS.c.attempt > 0)
        )
        with store.engine.connect() as conn:
            durations = [row.wall_seconds for row in conn.execute(query) if (row.pipeline, row.task) in tasks]
    scope = "train/tune tasks"
    if not durations:
        return SloResult("training_seconds", scope, target, None, "s", 0, None, NO_DATA)
    longest = max(durations)
    return SloResult("training_seconds", scope, target, longest, "s", len(durations), 1.0 - longest / target,
                     PASS if longest <= target else FAIL)


def _training_tasks(ws: Workspace) -> set[tuple[str, str]]:
    """(pipeline, task) of every train or tune task in the pipeline files (invalid files skipped)."""
    from brickyard.errors import BrickyardError

    found: set[tuple[str, str]] = set()
    for name in ws.pipeline_names():
        try:
            spec = ws.pipeline(name).spec
        except (BrickyardError, ValueError):
            continue
        found |= {(name, task.name) for task in spec.tasks if task.kind in TRAINING_KINDS}
    return found


def format_value(value: float | None, unit: str) -> str:
    """A measured value for the table (`-` for none)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "ratio":
        return f"{value * 100:.3f}%"
    if unit == "ms":
        return f"{value:.2f} ms"
    return f"{value:,.1f} s"
