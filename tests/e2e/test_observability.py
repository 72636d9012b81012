"""Observability end to end: traces of runs (through the CLI and through the control plane's
trigger, across the run's process) and of serving requests, received by an in-process OTLP
collector; JSON log lines; Prometheus `/metrics` scraped over HTTP; `brickyard slo`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cli_helpers import brickyard, free_port
from prometheus_client.parser import text_string_to_metric_families

from brickyard import Workspace
from brickyard.runtime.tokens import TokenStore
from feature_store_example import EVENT, feature_rows, write_feature_table
from otlp_collector import Collector, ReceivedSpan, otlp_collector

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

JOBS = """\
import errno
import logging
from pathlib import Path


def greet(context, n):
    context.log.info("greeting %d rows", n)
    context.metrics.rows_out = n


def flaky(context, marker):
    path = Path(marker)
    if not path.exists():  # the first attempt meets a failing disk: transient, retried
        path.write_text("failed once")
        raise OSError(errno.EIO, "Input/output error", "raw/trips.csv")
    context.metrics.rows_in, context.metrics.rows_out = 5, 4


def broken(context):
    raise ValueError("no such thing")
"""

PIPELINE = """\
tasks:
  - {name: greet, kind: python, function: 'jobs:greet', args: {n: 3}}
  - name: flaky
    kind: python
    function: 'jobs:flaky'
    args: {marker: flaky.marker}
    depends_on: [greet]
    retries: {count: 2, backoff_seconds: 0}
  - {name: broken, kind: python, function: 'jobs:broken', retries: {count: 2, backoff_seconds: 0}}
"""


def make_workspace(root: Path, tracing: str | None) -> Path:
    assert brickyard("init", str(root), cwd=root.parent).returncode == 0
    (root / "jobs.py").write_text(JOBS)
    (root / "pipelines" / "hello.yaml").write_text(PIPELINE)
    if tracing is not None:
        with (root / "brickyard.yaml").open("a") as config:
            config.write(tracing)
    return root


def by_name(spans: list[ReceivedSpan]) -> dict[str, list[ReceivedSpan]]:
    found: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        found.setdefault(span.name, []).append(span)
    return found


def run_id_of(output: str) -> str:
    found = re.search(r"run (\d{8}-\d{6}-[0-9a-f]+)", output)
    assert found, output
    return found.group(1)


def test_a_pipeline_run_is_a_trace_with_a_span_per_task_attempt(tmp_path: Path) -> None:
    with otlp_collector() as collector:
        root = make_workspace(tmp_path / "ws", f"tracing: {{exporter: otlp, endpoint: '{collector.url}'}}\n")
        done = brickyard("run", "hello", cwd=root)
        assert done.returncode == 1, done.stdout + done.stderr  # `broken` fails the run
        run_id = run_id_of(done.stdout)
        spans = by_name(collector.wait_for(lambda spans: any(s.name == "run hello" for s in spans)))

    (run,) = spans["run hello"]
    assert run.parent_id is None and run.service == "brickyard"
    assert run.attributes["brickyard.pipeline"] == "hello" and run.attributes["brickyard.run_id"] == run_id
    assert run.attributes["brickyard.status"] == "failed" and run.attributes["brickyard.trigger"] == "manual"
    assert run.status == "ERROR" and "task 'broken' failed" in run.status_message
    attempts = [span for name in ("task greet", "task flaky", "task broken") for span in spans[name]]
    assert all(span.trace_id == run.trace_id and span.parent_id == run.span_id for span in attempts)
    assert all(run.start_ns <= span.start_ns <= span.end_ns <= run.end_ns for span in attempts)
    (greet,) = spans["task greet"]
    assert greet.attributes["brickyard.status"] == "succeeded" and greet.attributes["brickyard.rows_out"] == 3
    assert greet.attributes["brickyard.attempt"] == 1 and greet.attributes["brickyard.task.kind"] == "python"
    assert greet.attributes["brickyard.cpu_seconds"] >= 0 and greet.status == "OK"
    first, second = sorted(spans["task flaky"], key=lambda span: span.attributes["brickyard.attempt"])
    assert (first.attributes["brickyard.attempt"], second.attributes["brickyard.attempt"]) == (1, 2)
    assert first.status == "ERROR" and "Input/output error" in first.status_message and "exception" in first.events
    assert first.attributes["brickyard.transient"] is True
    assert second.status == "OK" and (second.attributes["brickyard.rows_in"], second.attributes["brickyard.rows_out"]) == (5, 4)
    (broken,) = spans["task broken"]  # terminal: not retried
    assert broken.status == "ERROR" and broken.status_message == "ValueError: no such thing"
    assert broken.attributes["brickyard.run_id"] == run_id and broken.attributes["brickyard.task"] == "broken"


def test_json_logs_carry_run_task_and_trace_ids(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws", "tracing: {exporter: file, file: traces.jsonl}\n")
    done = brickyard("--log-format", "json", "run", "hello", cwd=root)
    assert done.returncode == 1
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every line is one JSON object
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    run_id = run_id_of(done.stdout)
    said = [line for line in lines if line["message"] == "greeting 3 rows"]
    assert len(said) == 1 and said[0]["level"] == "INFO"
    assert (said[0]["run_id"], said[0]["task"], said[0]["attempt"]) == (run_id, "greet", 1)
    spans = [json.loads(line) for line in (root / "traces.jsonl").read_text().splitlines()]
    greet = next(span for span in spans if span["name"] == "task greet")
    assert said[0]["trace_id"] == greet["context"]["trace_id"].removeprefix("0x")
    assert said[0]["span_id"] == greet["context"]["span_id"].removeprefix("0x")
    assert any(line["level"] == "ERROR" and line.get("task") == "broken" and "no such thing" in line["message"] for line in lines)
    assert lines[-1]["level"] == "ERROR" and "task 'broken' failed" in lines[-1]["message"]  # the CLI's own error line

    plain = brickyard("run", "hello", cwd=root)  # the default stays text for people
    assert plain.returncode == 1 and plain.stderr.startswith("error: task 'broken' failed")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, Collector]]:
    with otlp_collector() as collector:
        root = make_workspace(tmp_path / "ws", f"tracing: {{exporter: otlp, endpoint: '{collector.url}'}}\n")
        (root / "pipelines" / "nightly.yaml").write_text(
            'schedule: "0 6 * * *"\ntasks:\n  - {name: greet, kind: python, function: "jobs:greet", args: {n: 1}}\n'
        )
        rows = feature_rows(range(10), datetime.now(UTC))  # a feature table online: its freshness is a metric
        write_feature_table(Workspace.open(root), rows)
        assert brickyard("features", "materialize", "customer_stats", cwd=root).returncode == 0
        (root / "newest_event").write_text(max(rows.column(EVENT).to_pylist()).isoformat())
        port = free_port()
        env = {**os.environ, "COLUMNS": "200"}
        env.pop("BRICKYARD_WORKSPACE", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "brickyard.cli", "server", "--port", str(port)],
            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not answer /healthz"
            time.sleep(0.1)
        try:
            yield url, root, collector
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_a_run_started_over_http_continues_the_callers_trace_and_shows_in_metrics(
    server: tuple[str, Path, Collector],
) -> None:
    url, root, collector = server
    _, token = TokenStore(Workspace.open(root).state_url).create("runner", name="e2e")
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    headers = {"Authorization": f"Bearer {token}", "traceparent": f"00-{caller_trace}-{caller_span}-01"}
    with httpx.Client(base_url=url, timeout=30) as client:
        run_id = client.post("/api/jobs/hello/runs", headers=headers).json()["run_id"]
        deadline = time.monotonic() + 120
        while client.get(f"/api/runs/{run_id}", headers=headers).json()["status"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        # the run's process flushes its spans as it ends; the server's trigger span comes with its next batch
        spans = by_name(collector.wait_for(lambda spans: {"run hello", "trigger hello"} <= {s.name for s in spans}))
        scraped = client.get("/metrics")

    (trigger,) = spans["trigger hello"]  # made by the server, a child of the caller's span
    assert (trigger.trace_id, trigger.parent_id) == (caller_trace, caller_span)
    assert trigger.attributes["brickyard.run_id"] == run_id and trigger.kind == 2  # SERVER
    (run,) = spans["run hello"]  # made by the run's own process, a child of the trigger's span
    assert (run.trace_id, run.parent_id) == (caller_trace, trigger.span_id)
    assert run.attributes["brickyard.trigger"] == "http" and run.attributes["brickyard.run_id"] == run_id
    assert {span.parent_id for name in ("task greet", "task flaky", "task broken") for span in spans[name]} == {run.span_id}

    assert scraped.status_code == 200
    families = {family.name: family for family in text_string_to_metric_families(scraped.text)}
    runs = {(s.labels["pipeline"], s.labels["status"]): s.value for s in families["brickyard_runs"].samples}
    assert runs == {("hello", "failed"): 1.0}
    durations = {(s.name, s.labels.get("task"), s.labels.get("le")): s.value for s in families["brickyard_task_duration_seconds"].samples}
    assert durations[("brickyard_task_duration_seconds_count", "flaky", None)] == 2.0  # two attempts
    assert durations[("brickyard_task_duration_seconds_bucket", "greet", "+Inf")] == 1.0
    attempts = {(s.labels["task"], s.labels["status"]): s.value for s in families["brickyard_task_attempts"].samples}
    assert attempts == {("greet", "succeeded"): 1.0, ("flaky", "failed"): 1.0, ("flaky", "succeeded"): 1.0, ("broken", "failed"): 1.0}
    assert [s.value for s in families["brickyard_trigger_loop_running"].samples] == [1.0]
    (next_fire,) = families["brickyard_trigger_next_fire_timestamp_seconds"].samples
    assert next_fire.labels == {"pipeline": "nightly"} and next_fire.value > time.time()
    (freshness,) = families["brickyard_feature_freshness_seconds"].samples
    newest = datetime.fromisoformat((root / "newest_event").read_text())
    assert freshness.labels == {"table": "features.customer_stats"}
    assert freshness.value == pytest.approx((datetime.now(UTC) - newest).total_seconds(), abs=30)
    (materialized,) = families["brickyard_feature_materialized_timestamp_seconds"].samples
    assert time.time() - 300 < materialized.value <= time.time()
    assert "brickyard_monitor_drift_share" in families  # the monitors' gauges are still there


def test_json_logs_hold_other_libraries_lines_too_such_as_an_unreachable_collector(tmp_path: Path) -> None:
    with otlp_collector() as collector:
        closed = collector.url  # the collector stops at the end of this block: nothing listens there after
    root = make_workspace(tmp_path / "ws", f"tracing: {{exporter: otlp, endpoint: '{closed}'}}\n")
    started = time.monotonic()
    done = brickyard("--log-format", "json", "run", "hello", cwd=root)
    assert done.returncode == 1 and time.monotonic() - started < 60  # the run's result is the run's, not the exporter's
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every line is one JSON object
    exporter = [line for line in lines if line["logger"].startswith("opentelemetry")]
    assert exporter and any("export" in line["message"].lower() for line in exporter)  # said, not hidden
