"""Serving traces and `brickyard slo` on a real workspace: a model trained by a pipeline run,
served by `brickyard serve` with tracing on, real requests (answered and refused), then the
spans the collector received, the inference log, and `brickyard slo` over the CLI, with the
p95 checked against numpy's percentile over the same logged latencies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from cli_helpers import brickyard, free_port

from brickyard import Workspace
from brickyard.runtime.tokens import TokenStore
from feature_store_example import EVENT, feature_rows, write_feature_table
from otlp_collector import ReceivedSpan, otlp_collector

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DATA = Path(__file__).resolve().parents[2] / "src" / "brickyard" / "demo" / "data"
PIPELINE = """\
tasks:
  - {name: fit, kind: train, table: silver.titanic, label: Survived, features: [Fare, Sex, Pclass],
     estimator: logistic_regression}
"""
ROUTE = "/serving-endpoints/survival/invocations"
GOOD = {"dataframe_split": {"columns": ["Fare", "Sex", "Pclass"], "data": [[7.25, "male", 3]]}}
BAD = {"dataframe_split": {"columns": ["Fare", "Sex", "Pclass"], "data": [["lots", "male", 3]]}}


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Train, serve with tracing, send requests, stop; what came back."""
    ws = Workspace.init(tmp_path_factory.mktemp("slo") / "ws")
    ws.lake.write("silver.titanic", pd.read_csv(DATA / "titanic.csv"))
    (ws.root / "pipelines" / "survival.yaml").write_text(PIPELINE)
    trained = brickyard("run", "survival", cwd=ws.root)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    _, token = TokenStore(ws.state_url).create("reader", name="e2e")
    headers = {"Authorization": f"Bearer {token}"}
    with otlp_collector() as collector:
        with (ws.root / "brickyard.yaml").open("a") as config:
            config.write(f"tracing: {{exporter: otlp, endpoint: '{collector.url}', serving_sample_ratio: 1.0}}\n"
                         "slos: {serving_p95_ms: 5000, availability: 0.99, training_seconds: 600}\n")
        port = free_port()
        env = {**os.environ, "COLUMNS": "200"}
        env.pop("BRICKYARD_WORKSPACE", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "brickyard.cli", "--log-format", "json", "serve", "survival/1", "--port", str(port)],
            cwd=ws.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                assert process.poll() is None, process.communicate()
                try:
                    if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "not ready in time"
                time.sleep(0.2)
            statuses: dict[str, int] = {}
            with httpx.Client(base_url=url, timeout=30) as client:
                for number in range(40):
                    answer = client.post(ROUTE, json=GOOD, headers={**headers, "X-Request-Id": f"good-{number}"})
                    statuses[f"good-{number}"] = answer.status_code
                for number in range(3):
                    answer = client.post(ROUTE, json=BAD, headers={**headers, "X-Request-Id": f"bad-{number}"})
                    statuses[f"bad-{number}"] = answer.status_code
                answer = client.post(ROUTE, json=GOOD, headers={"X-Request-Id": "anonymous"})
                statuses["anonymous"] = answer.status_code
                traced = {**headers, "X-Request-Id": "traced",
                          "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
                statuses["traced"] = client.post(ROUTE, json=GOOD, headers=traced).status_code
        finally:
            process.send_signal(signal.SIGINT)  # flushes the inference log and the spans
            _, logged = process.communicate(timeout=120)
        spans = collector.wait_for(lambda spans: len([s for s in spans if s.name == f"POST {ROUTE}"]) >= len(statuses))
    return {"ws": ws, "statuses": statuses, "spans": spans, "log": logged}


def test_every_serving_request_is_a_span_with_its_model_route_status_and_latency(observed: dict[str, object]) -> None:
    ws, statuses = observed["ws"], observed["statuses"]
    assert isinstance(ws, Workspace) and isinstance(statuses, dict)
    assert set(statuses.values()) == {200, 400, 401} and statuses["anonymous"] == 401
    spans = [span for span in observed["spans"] if span.name == f"POST {ROUTE}"]  # type: ignore[attr-defined]
    by_request: dict[str, ReceivedSpan] = {span.attributes["brickyard.request_id"]: span for span in spans}
    assert len(spans) == len(by_request) == len(statuses)  # one span per request
    logged = {row["request_id"]: row for row in ws.lake.read("gold.inference_log").to_pylist()}
    for request_id, status in statuses.items():
        span = by_request[request_id]
        assert span.attributes["http.response.status_code"] == status and span.attributes["http.route"] == ROUTE
        assert span.attributes["brickyard.endpoint"] == "survival" and span.attributes["brickyard.model"] == "survival"
        assert span.kind == 2 and span.status != "ERROR"  # SERVER; no 5xx here
        assert span.attributes["brickyard.latency_ms"] == pytest.approx(logged[request_id]["latency_ms"])
        assert span.end_ns - span.start_ns == pytest.approx(logged[request_id]["latency_ms"] * 1e6, abs=1e3)
    assert by_request["good-0"].attributes["brickyard.model.version"] == "1"
    assert by_request["good-0"].attributes["brickyard.variant"] == "champion"
    assert by_request["good-0"].parent_id is None
    traced = by_request["traced"]  # a caller's traceparent makes the span its child
    assert (traced.trace_id, traced.parent_id) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")


def test_serve_with_json_logs_writes_only_json_lines(observed: dict[str, object]) -> None:
    lines = [json.loads(line) for line in str(observed["log"]).splitlines()]  # every line is one JSON object
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert any(line["logger"] == "uvicorn.error" and "Application startup complete" in line["message"] for line in lines)
    assert any(line["logger"] == "brickyard.serving" for line in lines)
    assert any(line["logger"] == "brickyard.serve" and line["message"].startswith("serving survival/1 at") for line in lines)


def test_slo_reports_p95_availability_and_training_time_from_the_log_and_the_runs(observed: dict[str, object]) -> None:
    ws = observed["ws"]
    assert isinstance(ws, Workspace)
    done = brickyard("slo", "--window", "1d", "--format", "json", cwd=ws.root)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    results = {(row["slo"], row["scope"]): row for row in report["slos"]}
    rows = ws.lake.read("gold.inference_log").to_pylist()
    answered = [row["latency_ms"] for row in rows if row["status"] == 200]
    latency = results[("serving_p95_ms", "survival")]
    assert latency["samples"] == len(answered) == 41 and latency["status"] == "pass"
    assert latency["actual"] == pytest.approx(float(np.percentile(answered, 95)), rel=1e-12)  # independent reference
    slower = sum(1 for ms in answered if ms > 5000) / len(answered)
    assert latency["error_budget_left"] == pytest.approx(1 - slower / 0.05)
    available = results[("availability", "survival")]  # 400s and 401s are not the service failing
    assert (available["actual"], available["samples"], available["status"]) == (1.0, len(rows), "pass")
    training = results[("training_seconds", "train/tune tasks")]
    attempts = brickyard("runs", "--format", "json", cwd=ws.root)
    assert training["samples"] == 1 and training["status"] == "pass" and 0 < training["actual"] < 600, attempts.stdout
    assert results[("feature_freshness_seconds", "(no feature table online)")]["status"] == "no data"
    assert report["ok"] is True and report["window"] == "1d"

    table = brickyard("slo", cwd=ws.root)  # the table for people: same figures
    assert table.returncode == 0 and "serving_p95_ms" in table.stdout and "no data" in table.stdout
    assert f"{latency['actual']:.2f} ms" in table.stdout

    config = (ws.root / "brickyard.yaml").read_text().replace("serving_p95_ms: 5000", "serving_p95_ms: 0.001")
    (ws.root / "brickyard.yaml").write_text(config)
    strict = brickyard("slo", "--window", "1d", cwd=ws.root)  # an objective missed: exit 1
    assert strict.returncode == 1 and "fail" in strict.stdout and "1 of 3 SLO(s) with data failed" in strict.stdout
    past = brickyard("slo", "--window", "1s", "--format", "json", cwd=ws.root)  # nothing in the last second
    assert past.returncode == 0 and {row["status"] for row in json.loads(past.stdout)["slos"]} == {"no data"}
    wrong = brickyard("slo", "--window", "soon", cwd=ws.root)
    assert wrong.returncode == 2 and "window 'soon' is not a duration" in wrong.stderr


def test_slo_feature_freshness_is_the_age_of_the_newest_row_online(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    rows = feature_rows(range(20), datetime.now(UTC))
    write_feature_table(ws, rows)
    materialized = brickyard("features", "materialize", "customer_stats", cwd=ws.root)
    assert materialized.returncode == 0, materialized.stderr
    newest = max(rows.column(EVENT).to_pylist())
    config = (ws.root / "brickyard.yaml").read_text()
    (ws.root / "brickyard.yaml").write_text(config + "slos: {feature_freshness_seconds: 3456000}\n")  # 40 days
    done = brickyard("slo", "--format", "json", cwd=ws.root)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    (fresh,) = [row for row in report["slos"] if row["slo"] == "feature_freshness_seconds"]
    expected = (datetime.fromisoformat(report["until"]) - newest).total_seconds()
    assert fresh["scope"] == "features.customer_stats" and fresh["actual"] == pytest.approx(expected, abs=1e-3)
    assert fresh["status"] == "pass" and fresh["error_budget_left"] == pytest.approx(1 - expected / 3_456_000, abs=1e-6)
    assert {row["status"] for row in report["slos"] if row["slo"] != "feature_freshness_seconds"} == {"no data"}

    (ws.root / "brickyard.yaml").write_text(config + "slos: {feature_freshness_seconds: 60}\n")
    stale = brickyard("slo", cwd=ws.root)
    assert stale.returncode == 1 and "customer_stats" in stale.stdout and "1 of 1 SLO(s) with data failed" in stale.stdout
