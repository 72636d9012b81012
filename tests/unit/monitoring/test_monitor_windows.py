"""Windows by batch, labels by time, alerts acted on after a crash, and what `validate`
finds in a monitor task; each test on a copy of one trained workspace."""

from __future__ import annotations

import logging
import shutil
from datetime import datetime, timedelta

import pandas as pd
import pyarrow as pa
import pytest
from monitor_helpers import FIRST_DAY, SHIFTED, score_day, trained_workspace

from brickyard import Workspace
from brickyard.monitoring.monitor import Monitor
from brickyard.monitoring.spec import MonitorSpec
from brickyard.monitoring.state import MonitorStore
from brickyard.runtime.state import StateStore
from brickyard.runtime.validate import validate_workspace


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return trained_workspace(tmp_path_factory.mktemp("trained") / "ws").root


@pytest.fixture
def ws(trained, tmp_path) -> Workspace:
    """A copy of the trained workspace (MLflow's artifact paths follow it)."""
    shutil.copytree(trained, tmp_path / "ws")
    return Workspace.open(tmp_path / "ws")


def monitor(ws: Workspace, name: str = "watch", **options) -> Monitor:
    spec = MonitorSpec.model_validate({"model": "titanic@champion", **options})
    return Monitor(ws, ws.engine_named("duckdb"), spec, name, pipeline="p", task="t", run_id="run-1",
                   log=logging.getLogger("test"))


def test_batch_windows_are_the_delta_versions_of_the_target_each_computed_once(ws) -> None:
    score_day(ws, 1, shifted=False)
    score_day(ws, 2, shifted=True)
    outcome = monitor(ws, target={"table": "gold.titanic_scored"}, window="batch").run()
    assert [str(w.window) for w in outcome.computed] == ["batch 0", "batch 1"]
    assert [set(w.drifted_features) - {"prediction", "probability"} for w in outcome.computed] == [set(), set(SHIFTED)]
    assert [int(w.values["rows"]) for w in outcome.computed] == [300, 300]  # the rows each commit added

    score_day(ws, 3, shifted=False)
    again = monitor(ws, target={"table": "gold.titanic_scored"}, window="batch").run()
    assert [str(w.window) for w in again.computed] == ["batch 2"] and again.plan.done == 2
    versions = ws.lake.read("gold.monitor_watch", columns=["batch_version"]).column(0).to_pylist()
    assert sorted(set(versions)) == [0, 1, 2]


def test_a_label_counts_only_for_predictions_made_before_it_was_observed(ws) -> None:
    scored = score_day(ws, 1, shifted=False)
    observed = [
        (stamp - timedelta(hours=1)) if n % 2 else (stamp + timedelta(hours=1))  # every other one: too early
        for n, stamp in enumerate(scored["scored_at"])
    ]
    labels = pd.DataFrame({"request_id": scored["request_id"], "Survived": 1, "observed_at": observed})
    ws.lake.write("gold.outcomes", pa.Table.from_pandas(labels, preserve_index=False))
    outcome = monitor(ws, target={"table": "gold.titanic_scored"}, time_column="scored_at",
                      labels={"table": "gold.outcomes", "key": ["request_id"], "label": "Survived",
                              "time_column": "observed_at"}).run()
    (window,) = outcome.computed
    assert window.values["labelled_rows"] == 150


def test_the_open_window_waits_and_a_window_is_never_computed_twice(ws) -> None:
    score_day(ws, 1, shifted=False)
    early = monitor(ws, target={"table": "gold.titanic_scored"}, time_column="scored_at")
    early.now = FIRST_DAY + timedelta(hours=23)
    outcome = early.run()
    assert outcome.computed == [] and str(outcome.plan.open) == "2026-11-01"
    assert not ws.lake.exists("gold.monitor_watch")
    first = monitor(ws, target={"table": "gold.titanic_scored"}, time_column="scored_at").run()
    second = monitor(ws, target={"table": "gold.titanic_scored"}, time_column="scored_at").run()
    assert [str(w.window) for w in first.computed] == ["2026-11-01"] and second.computed == []
    starts = ws.lake.read("gold.monitor_watch", columns=["window_start", "feature", "method"]).to_pandas()
    assert not starts.duplicated().any()


def test_an_alert_recorded_by_a_run_that_stopped_before_acting_is_acted_on_next_time(ws) -> None:
    store = MonitorStore(ws.state_url)
    store.add_alert({"monitor": "watch", "rule": "drifted", "condition": "drift_share > 0.1", "metric": "drift_share",
                     "value": 0.3, "estimated": False, "breach_start": datetime(2026, 10, 1),
                     "window_start": datetime(2026, 10, 1), "window_end": datetime(2026, 10, 2),
                     "message": "left pending", "run_id": "crashed"})
    score_day(ws, 1, shifted=False)
    outcome = monitor(ws, target={"table": "gold.titanic_scored"}, time_column="scored_at",
                      alerts=[{"name": "drifted", "when": "drift_share > 0.1", "actions": ["log"]}]).run()
    assert [(a["message"], a["status"]) for a in outcome.alerts] == [("left pending", "sent")]


def test_validate_finds_a_missing_target_and_an_unknown_pipeline_to_run(ws) -> None:
    (ws.root / "pipelines" / "watch.yaml").write_text("""
tasks:
  - name: watch
    kind: monitor
    model: titanic@champion
    target: {table: gold.nowhere}
    time_column: scored_at
    alerts:
      - {when: drift_share > 0.3, actions: [{run: retrian}]}
""")
    found = [(p.line, p.message) for p in validate_workspace(ws) if p.file.endswith("watch.yaml")]
    assert any("'gold.nowhere' does not exist" in message and line == 6 for line, message in found), found
    assert any("'retrian' is no pipeline" in message and line == 9 for line, message in found), found


def test_a_window_option_without_its_column_is_refused_at_parse_time(ws) -> None:
    with pytest.raises(ValueError, match="needs `time_column:`"):
        MonitorSpec.model_validate({"model": "titanic@champion", "target": {"table": "gold.x"}, "window": "day"})
    with pytest.raises(ValueError, match="needs `target: {table"):
        MonitorSpec.model_validate({"model": "titanic@champion", "target": {"sql": "SELECT 1"}, "window": "batch"})


def test_a_monitor_outside_a_run_records_the_run_action_as_failed(ws) -> None:
    score_day(ws, 1, shifted=True)
    score_day(ws, 2, shifted=True)
    outcome = monitor(ws, target={"table": "gold.titanic_scored"}, time_column="scored_at",
                      alerts=[{"when": "drift_share > 0.2", "actions": [{"run": "train_titanic"}]}]).run()
    (alert,) = outcome.alerts
    assert alert["status"] == "failed" and alert["started_run"] is None
    (stored,) = MonitorStore(ws.state_url).alerts()
    assert "no run system" in stored.actions[0]["error"]
    assert [run.trigger for run in StateStore(ws.state_url).list_runs("train_titanic")] == ["manual"]  # its training


def test_a_full_refresh_recomputes_every_window_and_replaces_the_table(ws) -> None:
    score_day(ws, 1, shifted=False)
    score_day(ws, 2, shifted=True)
    monitor(ws, target={"table": "gold.titanic_scored"}, time_column="scored_at").run()
    before = ws.lake.read("gold.monitor_watch").num_rows
    again = monitor(ws, target={"table": "gold.titanic_scored"}, time_column="scored_at")
    again.full_refresh = True
    outcome = again.run()
    assert [str(w.window) for w in outcome.computed] == ["2026-11-01", "2026-11-02"]
    assert ws.lake.read("gold.monitor_watch").num_rows == before


@pytest.mark.e2e
def test_monitor_baseline_computes_a_versions_baseline_from_its_recorded_training_data(ws) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "brickyard.cli", "monitor", "baseline", "titanic/1",
                           "--workspace", str(ws.root)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "baseline of titanic version 1: 7 features from 891 rows" in " ".join(done.stdout.split())


def test_a_window_another_run_committed_meanwhile_is_not_written_twice(ws) -> None:
    score_day(ws, 1, shifted=False)
    score_day(ws, 2, shifted=True)
    options = {"target": {"table": "gold.titanic_scored"}, "time_column": "scored_at"}
    other = monitor(ws, **options)

    class Raced(Monitor):
        def _append(self, computed):
            other.run()  # a second run of the same monitor commits the same windows first
            return super()._append(computed)

    spec = MonitorSpec.model_validate({"model": "titanic@champion", **options})
    raced = Raced(ws, ws.engine_named("duckdb"), spec, "watch", pipeline="p", task="t", run_id="run-2",
                  log=logging.getLogger("test"))
    outcome = raced.run()
    assert outcome.computed == [] and outcome.table_version is None
    frame = ws.lake.read("gold.monitor_watch", columns=["window_start", "feature", "method", "estimated"]).to_pandas()
    assert sorted(frame["window_start"].dt.day.unique()) == [1, 2] and not frame.duplicated().any()


def test_rows_that_arrive_late_or_without_a_time_are_reported_not_silently_dropped(ws) -> None:
    scored = score_day(ws, 1, shifted=False)
    options = {"target": {"table": "gold.titanic_scored"}, "time_column": "scored_at"}
    monitor(ws, **options).run()
    late = scored.head(6).copy()
    late["scored_at"] = [FIRST_DAY + timedelta(hours=5)] * 5 + [None]
    ws.lake.write("gold.titanic_scored", pa.Table.from_pandas(late, preserve_index=False))
    outcome = monitor(ws, **options).run()
    assert outcome.computed == []
    assert outcome.as_dict()["late_rows"] == 5 and outcome.as_dict()["rows_without_time"] == 1
    assert "5 row(s) arrived after their window was computed (2026-11-01 +5): not compared" in " ".join(outcome.notes)
    assert "1 row(s) of the target have no scored_at" in " ".join(outcome.notes)


def test_an_alert_on_a_window_without_labels_says_its_value_is_an_estimate(ws) -> None:
    score_day(ws, 1, shifted=False)
    outcome = monitor(ws, target={"table": "gold.titanic_scored"}, time_column="scored_at",
                      alerts=[{"when": "accuracy_drop > -1"}, {"when": "drift_share >= 0"}]).run()
    assert [a["status"] for a in outcome.alerts] == ["sent", "sent"]
    by_rule = {a.rule: a for a in MonitorStore(ws.state_url).alerts()}
    assert by_rule["accuracy_drop > -1"].estimated and "(estimated: no labels yet)" in by_rule["accuracy_drop > -1"].message
    assert not by_rule["drift_share >= 0"].estimated
