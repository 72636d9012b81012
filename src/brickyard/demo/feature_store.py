"""The demo's feature-store section: customer churn on the real CDNOW purchase log.

`run_customer_churn` runs the `customer_churn` pipeline (raw text -> bronze -> silver ->
`features.customer_rfm` -> monthly snapshots labelled "no purchase in the next 90 days" ->
train, evaluate, promote `churn`) and prints what was built: the feature table's rows, the
training set's size and label share, the model's held-out metric and gate decision, and one
customer's features read from the online store by `customer_id` alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from brickyard.demo.context import DemoContext
from brickyard.demo.pipelines import run_pipeline

PIPELINE = "customer_churn"
MODEL = "churn"
FEATURE_TABLE = "customer_rfm"
SNAPSHOTS = "gold.churn_snapshots"
EXAMPLE_CUSTOMER = 3  # bought six times, the last in May 1998: a customer with a history
METRIC = "roc_auc"


@dataclass(frozen=True)
class TrainingSetSummary:
    """The training set's size, label share and snapshot range."""

    rows: int
    customers: int
    churned_share: float
    first_snapshot: Any
    last_snapshot: Any


@dataclass(frozen=True)
class GateSummary:
    """The churn model version this run trained, its held-out metric and the gate's verdict."""

    version: str
    metric: float | None
    decision: str
    rules: list[str]


def run_customer_churn(context: DemoContext) -> None:
    """Run `customer_churn` and report the feature store's part of it."""
    run_pipeline(context, PIPELINE)
    report = context.report
    lake = context.workspace.lake
    report.step("Feature store: customer churn on the CDNOW purchase log (69,659 real purchases, 1997-1998)")
    features = lake.describe(f"features.{FEATURE_TABLE}")
    [(customers,)] = context.workspace.sql(
        f"SELECT count(DISTINCT customer_id) FROM features.{FEATURE_TABLE}"
    ).fetchall()
    report.say(
        f"  features.{FEATURE_TABLE}: {features.rows:,} rows (recency, frequency, monetary value, 30/90-day "
        f"amounts as of each purchase day) for {customers:,} customers, version {features.version}"
    )
    training = training_set_summary(context)
    report.say(
        f"  training set: {training.rows:,} monthly snapshots of {training.customers:,} customers "
        f"({training.first_snapshot:%Y-%m-%d} to {training.last_snapshot:%Y-%m-%d}; later month ends have "
        f"no 90-day horizon in the data), {training.churned_share:.1%} labelled churned (no purchase in the next 90 days), "
        f"each with the customer's features as of its month end (a point-in-time join)"
    )
    gate = gate_summary(context)
    if gate is not None:
        shown = "n/a" if gate.metric is None else f"{gate.metric:.3f}"
        report.say(
            f"  model {MODEL} version {gate.version}: held-out {METRIC} {shown}; gate: {gate.decision} "
            f"({'; '.join(gate.rules)})"
        )
    report.say(f"  online store ({context.workspace.config.online_store}): the latest row of each customer, "
               f"looked up by customer_id alone:")
    report.say(f"    brickyard features get {FEATURE_TABLE} {EXAMPLE_CUSTOMER}  ->  {online_lookup(context, EXAMPLE_CUSTOMER)}")
    context.try_next += [
        f"brickyard features get {FEATURE_TABLE} {EXAMPLE_CUSTOMER}   # online: the latest values",
        f"brickyard features get {FEATURE_TABLE} {EXAMPLE_CUSTOMER} --at 1997-06-30   # offline, as of a past day",
        f"brickyard sql \"SELECT * FROM features.{FEATURE_TABLE} WHERE customer_id = {EXAMPLE_CUSTOMER} ORDER BY purchased_at\"",
        f"brickyard sql \"SELECT snapshot_at, count(*) AS customers, round(avg(churned), 3) AS churned "
        f"FROM {SNAPSHOTS} GROUP BY 1 ORDER BY 1\"",
        f"brickyard gate {MODEL} latest",
    ]


def training_set_summary(context: DemoContext) -> TrainingSetSummary:
    """Rows, customers, churned share and snapshot range of the labelled snapshots."""
    [row] = context.workspace.sql(
        f"SELECT count(*), count(DISTINCT customer_id), avg(churned), min(snapshot_at), max(snapshot_at) FROM {SNAPSHOTS}"
    ).fetchall()
    return TrainingSetSummary(int(row[0]), int(row[1]), float(row[2]), row[3], row[4])


def gate_summary(context: DemoContext) -> GateSummary | None:
    """The `churn` version trained by this demo's run of the pipeline, with its metric and
    the gate's decision (None when the run trained none)."""
    from brickyard.errors import BrickyardError
    from brickyard.ml.gate import TAG_DECISION, TAG_RULE
    from brickyard.ml.registry import resolve_version, run_metrics
    from brickyard.ml.tracking import connect

    client = connect(context.workspace)
    try:
        version = resolve_version(client, MODEL, run_id=context.runs[PIPELINE])
    except BrickyardError:
        return None
    metric = run_metrics(client, version).get(METRIC)
    rules = []
    for key, value in sorted(version.tags.items()):
        if key.startswith(TAG_RULE):
            outcome = json.loads(value)
            verdict = "skipped" if outcome.get("skipped") else ("passed" if outcome.get("passed") else "failed")
            rules.append(f"{outcome['rule']}: {verdict}")
    return GateSummary(str(version.version), metric, version.tags.get(TAG_DECISION, "not gated"), rules)


def online_lookup(context: DemoContext, customer_id: int) -> str:
    """One customer's values in the online store, as one line of JSON."""
    from brickyard.features.get import get_online

    [found] = get_online(context.workspace, FEATURE_TABLE, [str(customer_id)])
    return json.dumps({"status": found.status, "event_time": found.event_time, **(found.values or {})}, default=str)
