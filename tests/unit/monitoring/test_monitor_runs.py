"""Real runs of the `monitor` kind on the Titanic model: a shifted scoring batch drifts on
the shifted features only, the alert fires once per breach, its webhook is signed and its
`run:` action starts a real retraining run with trigger `monitor`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from monitor_helpers import SHIFTED, UNSHIFTED, score_day, trained_workspace, wait_for_run, write_watch
from test_alerts import Receiver

from brickyard.monitoring.actions import SIGNATURE_HEADER, verify_signature
from brickyard.monitoring.state import MonitorStore
from brickyard.runtime.runner import PipelineRunner
from brickyard.runtime.state import StateStore

SECRET = "hook-secret-for-tests"


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def results(ws):
    return ws.lake.read("gold.monitor_watch_titanic").to_pandas()


def drifted_by_day(frame) -> dict[int, set[str]]:
    rows = frame[frame["decisive"].astype(bool) & frame["drifted"].astype(bool)]
    found: dict[int, set[str]] = {int(day.day): set() for day in frame["window_start"]}
    for row in rows.itertuples():
        found[row.window_start.day].add(row.feature)
    return found


def run_watch(ws):
    result = PipelineRunner(ws).run("watch")
    assert result.ok, result.error
    (attempt,) = StateStore(ws.state_url).attempts(result.run_id)
    return attempt.metrics


def cli(ws, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "brickyard.cli", *args, "--workspace", str(ws.root)],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
@pytest.mark.e2e
def test_drift_on_the_shifted_features_one_alert_per_breach_signed_webhook_and_a_retraining_run(
    tmp_path, receiver, monkeypatch
) -> None:
    monkeypatch.setenv("MONITOR_HOOK_SECRET", SECRET)
    ws = trained_workspace(tmp_path / "ws")
    write_watch(ws, receiver.url)
    for day, shifted in ((1, False), (2, False), (3, True), (4, True)):
        score_day(ws, day, shifted=shifted, labels=day <= 2)

    metrics = run_watch(ws)
    assert metrics["windows_computed"] == ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
    frame = results(ws)
    drifted = drifted_by_day(frame)
    outputs = {"prediction", "probability"}
    assert {day: found - outputs for day, found in drifted.items()} == {1: set(), 2: set(), 3: set(SHIFTED), 4: set(SHIFTED)}
    decisive = frame[frame["decisive"].astype(bool)]
    assert set(UNSHIFTED) <= set(decisive["feature"]) and set(SHIFTED) <= set(decisive["feature"])
    share = frame[frame["method"] == "drift_share"].set_index(frame[frame["method"] == "drift_share"]["window_start"].dt.day)
    assert share.loc[3, "statistic"] == pytest.approx(2 / 7) and share.loc[1, "statistic"] == 0

    # a report per window, as MLflow artifacts of the monitor's run
    from brickyard.ml.tracking import connect

    client = connect(ws)
    (run_id,) = {metrics["mlflow_run_id"]}
    assert {a.path for a in client.list_artifacts(run_id, "windows/2026-11-03")} == {
        "windows/2026-11-03/report.html", "windows/2026-11-03/drift.png"}
    report = client.download_artifacts(run_id, "windows/2026-11-03/report.html", str(tmp_path))
    assert "Fare" in Path(report).read_text()

    # performance: realised where labels arrived (days 1-2), estimated from the scores after
    perf = frame[(frame["feature"] == "__performance__") & (frame["method"] == "roc_auc")]
    by_day = {(row.window_start.day, bool(row.estimated)): row.statistic for row in perf.itertuples()}
    assert {day for day, estimated in by_day if not estimated} == {1, 2}
    assert {day for day, estimated in by_day if estimated} == {1, 2, 3, 4}
    for day in (1, 2):  # logistic regression is about calibrated on its own distribution
        assert by_day[(day, True)] == pytest.approx(by_day[(day, False)], abs=0.08)

    # one alert for the breach of days 3-4, its webhook signed, a real run started
    (alert,) = MonitorStore(ws.state_url).alerts(monitor="watch_titanic")
    assert (alert.rule, alert.breach_start.day, alert.window_start.day, alert.status) == ("inputs_drifted", 3, 4, "sent")
    (body, headers), = receiver.bodies
    assert verify_signature(body, headers[SIGNATURE_HEADER], SECRET)
    assert json.loads(body)["alert_id"] == alert.id
    run = StateStore(ws.state_url).get_run(alert.started_run)
    assert (run.pipeline, run.trigger) == ("train_titanic", "monitor")
    assert run.params["alert_id"] == alert.id and "drift_share" in run.params["reason"]
    assert wait_for_run(ws, run.id) == "succeeded"
    promote = [a for a in StateStore(ws.state_url).attempts(run.id) if a.task == "promote"][0]
    assert promote.metrics["decision"] in ("promoted", "rejected")  # the same gate as any version

    # the breach goes on: day 5 is computed alone and alerts no more
    score_day(ws, 5, shifted=True)
    metrics = run_watch(ws)
    assert metrics["windows_computed"] == ["2026-11-05"] and metrics["windows_done_before"] == 4
    assert metrics["alerts"] == []
    assert len(MonitorStore(ws.state_url).alerts()) == 1 and len(receiver.bodies) == 1

    # a recovery, then a new breach: a new alert
    score_day(ws, 6, shifted=False)
    score_day(ws, 7, shifted=True)
    score_day(ws, 8, shifted=True)
    metrics = run_watch(ws)
    assert [a["rule"] for a in metrics["alerts"]] == ["inputs_drifted"]
    alerts = MonitorStore(ws.state_url).alerts(monitor="watch_titanic")
    assert [(a.breach_start.day, a.window_start.day) for a in alerts] == [(7, 8), (3, 4)]
    assert len(receiver.bodies) == 2
    wait_for_run(ws, alerts[0].started_run)

    # what people and scrapers see
    listed = json.loads(cli(ws, "monitors", "--format", "json"))
    assert [(m["name"], m["status"], m["windows"]) for m in listed] == [("watch_titanic", "drift", 8)]
    assert set(listed[0]["drifted_features"]) >= set(SHIFTED)
    shown = cli(ws, "monitor", "show", "watch_titanic", "--last", "3")
    assert "Fare" in shown and "*" in shown and "2026-11-08" in shown
    alerts_csv = cli(ws, "alerts", "--format", "csv").splitlines()
    assert alerts_csv[0].startswith("id,monitor,rule") and len(alerts_csv) == 3

    from brickyard.server.app import create_app

    page = TestClient(create_app(ws, triggers=False)).get("/metrics").text
    assert 'brickyard_monitor_feature_drifted{feature="Fare",monitor="watch_titanic"} 1.0' in page
    assert 'brickyard_monitor_feature_drifted{feature="Sex",monitor="watch_titanic"} 0.0' in page
    assert 'brickyard_monitor_drift_share{monitor="watch_titanic"}' in page
