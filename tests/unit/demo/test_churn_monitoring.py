"""The demo's monitoring section on the real CDNOW log, as a user sees it.

The section runs once, as the demo runs it, in a fresh workspace where `customer_churn`
ran; then the monitoring pipeline runs again, as a user would, to show that nothing is
computed or alerted twice.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from brickyard import Workspace
from brickyard.demo.context import DemoContext
from brickyard.demo.feature_store import run_customer_churn
from brickyard.demo.monitoring import MODEL, MONITOR, PIPELINE, RESULTS, RETRAIN, month_drift, run_churn_monitoring
from brickyard.demo.pipelines import install_workspace_files
from brickyard.demo.runner import CDNOW

pytestmark = pytest.mark.slow

MONTHS = 12  # July 1997 to June 1998
CUSTOMERS = 23_570


class Recorder:
    """A demo reporter that keeps what it was told."""

    def __init__(self) -> None:
        self.said: list[str] = []

    def step(self, title: str) -> None:
        self.said.append(title)

    def say(self, text: str) -> None:
        self.said.append(text)

    def table(self, columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.said.append(" | ".join(map(str, columns)))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Recorder, DemoContext]:
    """A workspace where `customer_churn` and then the monitoring section ran."""
    workspace = Workspace.init(tmp_path_factory.mktemp("monitoring") / "ws")
    target = Path(workspace.lake.location.uri(CDNOW))
    target.parent.mkdir(parents=True)
    with resources.as_file(resources.files("brickyard.demo") / "data" / "cdnow_transactions.txt") as source:
        shutil.copyfile(source, target)
    recorder = Recorder()
    context = DemoContext(workspace, rows=0, seed=0, report=recorder)
    install_workspace_files(context)
    run_customer_churn(context)
    run_churn_monitoring(context)
    return workspace, recorder, context


def test_each_month_has_its_window_and_the_drift_share_rises(demo: tuple[Workspace, Recorder, DemoContext]) -> None:
    workspace, recorder, _ = demo
    months = month_drift(demo[2])
    assert [m.month for m in months] == [datetime(1997 + (6 + i) // 12, (6 + i) % 12 + 1, 1) for i in range(MONTHS)]
    assert all(m.rows == CUSTOMERS for m in months)
    shares = [m.share for m in months]
    assert all(s is not None for s in shares)
    assert shares == sorted(shares)  # never falls as the base ages
    assert shares[-1] > shares[0] and shares[-1] > 0.5 >= shares[0]
    [(windows,)] = workspace.sql(f"SELECT count(DISTINCT window_start) FROM {RESULTS}").fetchall()
    assert windows == MONTHS
    said = "\n".join(recorder.said)
    for month in months:
        assert f"{month.month:%Y-%m}  {CUSTOMERS:,} customers  drift share {month.share:.2f}  drifted: " in said, said


def test_one_alert_for_the_breach_started_one_retraining_run(demo: tuple[Workspace, Recorder, DemoContext]) -> None:
    from brickyard.monitoring.state import MonitorStore
    from brickyard.runtime.state import StateStore

    workspace, recorder, context = demo
    [alert] = MonitorStore(workspace.state_url).alerts(monitor=MONITOR)
    assert alert.status == "sent" and alert.started_run is not None
    assert alert.breach_start == datetime(1997, 12, 1) and alert.window_start == datetime(1998, 1, 1)
    [run] = StateStore(workspace.state_url).list_runs(RETRAIN)
    assert run.id == alert.started_run == context.runs[RETRAIN]
    assert run.trigger == "monitor" and run.status == "succeeded"
    assert run.params["alert_id"] == alert.id and run.params["reason"] == alert.message
    said = "\n".join(recorder.said)
    assert f"alert {alert.id} (sent): {alert.message}" in said, said
    assert f"retraining run {run.id} of {RETRAIN}: trigger monitor" in said, said


def test_the_gate_decided_on_the_retrained_version(demo: tuple[Workspace, Recorder, DemoContext]) -> None:
    from brickyard.ml.gate import TAG_DECISION
    from brickyard.ml.registry import champion, resolve_version
    from brickyard.ml.tracking import connect

    workspace, recorder, context = demo
    client = connect(workspace)
    version = resolve_version(client, MODEL, run_id=context.runs[RETRAIN])
    decision = version.tags[TAG_DECISION]
    said = "\n".join(recorder.said)
    assert f"gate: {MODEL} version {version.version} (held-out roc_auc 0." in said, said
    assert f"): {decision} (roc_auc >= 0.7: " in said, said
    current = champion(client, MODEL)
    assert current is not None
    assert (current.version == version.version) == (decision == "promoted")


def test_running_the_monitoring_again_alerts_and_retrains_no_more(demo: tuple[Workspace, Recorder, DemoContext]) -> None:
    from brickyard.monitoring.state import MonitorStore
    from brickyard.runtime import PipelineRunner
    from brickyard.runtime.state import StateStore

    workspace, _, _ = demo
    rows_before = workspace.lake.describe(RESULTS).rows
    result = PipelineRunner(workspace).run(PIPELINE, trigger="manual")
    assert result.ok, result.error
    assert workspace.lake.describe(RESULTS).rows == rows_before
    assert len(MonitorStore(workspace.state_url).alerts(monitor=MONITOR)) == 1
    assert len(StateStore(workspace.state_url).list_runs(RETRAIN)) == 1
