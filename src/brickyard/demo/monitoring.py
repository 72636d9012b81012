"""The demo's monitoring section: the churn model watched month by month on real drift.

A replay of the CDNOW log in production: `churn_replay_first` trains `churn_replay` as it
could have been trained on 1997-06-30 (snapshots January to March 1997); `churn_monitoring`
scores every customer at each month end from July 1997 (features as of that day) and
compares each month with the model's training baseline. As the 1997 customer base ages,
tenure, frequency and the amounts grow past what the model was trained on, the drift share
rises, an alert fires, and its `run:` action starts `churn_retrain` through the run system
(trigger `monitor`); the demo waits for that run and prints the gate's decision.

The replay's one shortcut: the retraining run trains on every labelled snapshot of the log,
not only those known at the alert's month.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from brickyard.demo.context import DemoContext
from brickyard.demo.pipelines import run_pipeline
from brickyard.errors import BrickyardError

FIRST_MODEL = "churn_replay_first"
PIPELINE = "churn_monitoring"
RETRAIN = "churn_retrain"
MODEL = "churn_replay"
MONITOR = "watch_churn"
RESULTS = f"gold.monitor_{MONITOR}"
OUTPUTS = ("prediction", "probability")
RETRAIN_WAIT_SECONDS = 600.0


@dataclass(frozen=True)
class MonthDrift:
    """One month's window: its rows, drift share and the features that drifted."""

    month: datetime
    rows: int
    share: float | None
    drifted: list[str]


def run_churn_monitoring(context: DemoContext) -> None:
    """Train the replay's first model, watch it month by month, and tell what happened."""
    report = context.report
    run_pipeline(context, FIRST_MODEL)
    run_pipeline(context, PIPELINE)
    report.step("Monitoring: the churn model watched month by month as the 1997 customers age (real drift)")
    report.say(f"  model {MODEL}: trained as of 1997-06-30 (snapshots January-March 1997); from July 1997 every "
               f"customer is scored at each month end and the month compared with the training baseline:")
    months = month_drift(context)
    if not months:
        report.say(f"  {RESULTS} has no windows: nothing to show (see brickyard logs {context.runs[PIPELINE]})")
        return
    seen: set[str] = set()
    for month in months:
        new = [name for name in month.drifted if name not in seen]
        seen.update(month.drifted)
        share = "n/a" if month.share is None else f"{month.share:.2f}"
        report.say(f"    {month.month:%Y-%m}  {month.rows:,} customers  drift share {share}  drifted: "
                   f"{', '.join(month.drifted) or 'none'}" + (f"  (new: {', '.join(new)})" if new and month is not months[0] else ""))
    shares = [m.share for m in months if m.share is not None]
    if shares and shares[-1] <= shares[0]:
        report.say(f"  the drift share did not rise over the replay ({shares[0]:.2f} -> {shares[-1]:.2f}): "
                   "the data shows no ageing drift worth an alert")
    alert_lines(context)
    context.try_next += [
        "brickyard monitors",
        f"brickyard monitor show {MONITOR}",
        f"brickyard alerts --monitor {MONITOR}",
        f"brickyard sql \"SELECT window_start, feature, method, round(statistic, 3) AS statistic, drifted "
        f"FROM {RESULTS} WHERE decisive ORDER BY window_start, feature\"",
        f"brickyard run {PIPELINE}   # again: windows already computed are not, the alert is not sent twice",
    ]
    report.say(f"  look further: brickyard monitors; brickyard monitor show {MONITOR}; brickyard alerts")


def month_drift(context: DemoContext) -> list[MonthDrift]:
    """Each month of the results table, oldest first, with the input features that drifted."""
    if not context.workspace.lake.exists(RESULTS):
        return []
    shares = context.workspace.sql(
        f"SELECT window_start, rows, statistic FROM {RESULTS} "
        "WHERE feature = '__dataset__' AND method = 'drift_share' ORDER BY window_start"
    ).fetchall()
    drifted: dict[Any, list[str]] = {}
    outputs = ", ".join(f"'{name}'" for name in OUTPUTS)
    for start, feature in context.workspace.sql(
        f"SELECT window_start, feature FROM {RESULTS} WHERE decisive AND drifted "
        f"AND feature NOT IN ('__dataset__', '__performance__', {outputs}) ORDER BY window_start, statistic DESC"
    ).fetchall():
        drifted.setdefault(start, []).append(str(feature))
    return [MonthDrift(start, int(rows), None if share is None else float(share), drifted.get(start, []))
            for start, rows, share in shares]


def alert_lines(context: DemoContext) -> None:
    """The monitor's alert, the retraining run it started (waited for) and the gate's decision."""
    from brickyard.monitoring.state import MonitorStore

    report = context.report
    alerts = MonitorStore(context.workspace.state_url).alerts(monitor=MONITOR)
    if not alerts:
        report.say("  no alert: the drift share never stayed above the rule's threshold")
        return
    alert = alerts[0]
    earlier = alert.run_id != context.runs.get(PIPELINE)
    report.say(f"  alert {alert.id} ({alert.status}): {alert.message}"
               + (f"  [raised by an earlier run, {alert.run_id}: a breach alerts once]" if earlier else ""))
    if alert.started_run is None:
        report.say(f"  the alert started no run: {json.dumps(alert.actions, default=str)}")
        return
    record = wait_for_run(context, alert.started_run)
    report.say(f"  retraining run {record.id} of {record.pipeline}: trigger {record.trigger}, "
               f"reason: {record.params.get('reason', '?')}; {record.status}")
    if record.status != "succeeded":
        raise BrickyardError(f"the retraining run {record.id} {record.status}: {record.error}",
                             hint=f"see `brickyard run-show {record.id}` and `brickyard logs {record.id}`")
    context.runs[RETRAIN] = record.id
    report.say(f"  gate: {gate_line(context, record.id)}")


def wait_for_run(context: DemoContext, run_id: str) -> Any:
    """The run's record once it has finished (it runs in its own process)."""
    from brickyard.runtime.records import FINAL
    from brickyard.runtime.state import StateStore

    store = StateStore(context.workspace.state_url)
    deadline = time.monotonic() + RETRAIN_WAIT_SECONDS
    record = store.get_run(run_id)
    while record.status not in FINAL and time.monotonic() < deadline:
        time.sleep(0.5)
        record = store.get_run(run_id)
    if record.status not in FINAL:
        raise BrickyardError(f"the retraining run {run_id} did not finish in {RETRAIN_WAIT_SECONDS:.0f} s",
                             hint=f"see `brickyard run-show {run_id}`")
    return record


def gate_line(context: DemoContext, run_id: str) -> str:
    """The decision of the gate on the version the run trained, with its rules."""
    from brickyard.ml.gate import TAG_DECISION, TAG_RULE
    from brickyard.ml.registry import resolve_version, run_metrics
    from brickyard.ml.tracking import connect

    client = connect(context.workspace)
    version = resolve_version(client, MODEL, run_id=run_id)
    rules = []
    for key, value in sorted(version.tags.items()):
        if key.startswith(TAG_RULE):
            outcome = json.loads(value)
            verdict = "skipped" if outcome.get("skipped") else ("passed" if outcome.get("passed") else "failed")
            champion = outcome.get("champion")
            rules.append(f"{outcome['rule']}: {verdict}" + (f" (champion {champion:.3f})" if champion is not None else ""))
    auc = run_metrics(client, version).get("roc_auc")
    shown = "n/a" if auc is None else f"{auc:.3f}"
    return (f"{MODEL} version {version.version} (held-out roc_auc {shown}): "
            f"{version.tags.get(TAG_DECISION, 'not gated')} ({'; '.join(rules)})")
