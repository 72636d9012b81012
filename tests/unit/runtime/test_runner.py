"""The pipeline runner against a real SQLite state database in a temporary workspace."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pytest
from kinds_for_tests import register_probe, task_rows, write_pipeline

from brickyard import Workspace
from brickyard.errors import BrickyardError, ConfigError, UsageError
from brickyard.runtime.plan import EngineNotAvailableError
from brickyard.runtime.report import QuarantineSummary, quarantine_lines, run_report
from brickyard.runtime.runner import PipelineRunner, RunEvent
from brickyard.runtime.state import StateStore


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    register_probe(monkeypatch)
    return Workspace.init(tmp_path / "ws")


def test_tasks_run_in_dependency_order_and_downstream_of_a_failure_is_skipped(ws: Workspace) -> None:
    write_pipeline(ws, "etl", """
tasks:
  - {name: report, kind: probe, depends_on: [transform]}
  - {name: transform, kind: probe, depends_on: [extract], fail: true}
  - {name: extract, kind: probe, rows_out: 10}
  - {name: audit, kind: probe, depends_on: [extract]}
  - {name: publish, kind: probe, depends_on: [report]}
""")
    events: list[RunEvent] = []
    result = PipelineRunner(ws).run("etl", on_event=events.append)
    assert result.status == "failed"
    assert result.error == "task 'transform' failed: RuntimeError: probe failure on attempt 1"
    store = StateStore(ws.state_url)
    assert task_rows(store.attempts(result.run_id)) == [
        ("extract", 1, "succeeded"),
        ("transform", 1, "failed"),
        ("audit", 1, "succeeded"),
        ("report", 0, "skipped"),
        ("publish", 0, "skipped"),
    ]
    run = store.get_run(result.run_id)
    assert (run.status, run.error, run.trigger) == ("failed", result.error, "manual")
    assert run.tasks == ["extract", "transform", "audit", "report", "publish"]
    assert run.pid is not None and run.started_at is not None and run.ended_at is not None
    skipped = [a for a in store.attempts(result.run_id) if a.task == "publish"][0]
    assert skipped.error == "upstream task 'report' skipped"
    assert [e.kind for e in events][:2] == ["queued", "started"] and events[-1].kind == "finished"


def test_a_flaky_task_is_retried_with_exponential_backoff(ws: Workspace) -> None:
    write_pipeline(ws, "flaky", """
tasks:
  - name: fetch
    kind: probe
    fail_attempts: 2
    transient: true
    retries: {count: 3, backoff_seconds: 1.5}
""")
    delays: list[float] = []
    result = PipelineRunner(ws, sleep=delays.append).run("flaky")
    assert result.status == "succeeded"
    attempts = StateStore(ws.state_url).attempts(result.run_id)
    assert task_rows(attempts) == [("fetch", 1, "failed"), ("fetch", 2, "failed"), ("fetch", 3, "succeeded")]
    assert [a.transient for a in attempts] == [True, True, False]
    assert delays == [1.5, 3.0]
    log = (ws.root / ".brickyard" / "logs" / result.run_id / "fetch.log").read_text()
    assert "attempt 1 failed with a transient error; retrying in 1.5 s" in log
    assert "attempt 2 failed with a transient error; retrying in 3 s" in log


def test_retries_really_wait(ws: Workspace) -> None:
    write_pipeline(ws, "flaky", """
tasks:
  - {name: fetch, kind: probe, fail_attempts: 1, transient: true, retries: {count: 1, backoff_seconds: 0.3}}
""")
    started = time.perf_counter()
    result = PipelineRunner(ws).run("flaky")
    assert result.status == "succeeded"
    assert time.perf_counter() - started >= 0.3
    first, second = StateStore(ws.state_url).attempts(result.run_id)
    assert second.started_at is not None and first.ended_at is not None
    assert (second.started_at - first.ended_at).total_seconds() >= 0.25


def test_a_terminal_error_is_not_retried(ws: Workspace) -> None:
    write_pipeline(ws, "bad", "tasks:\n  - {name: t, kind: probe, fail: true, retries: {count: 3, backoff_seconds: 0}}\n")
    result = PipelineRunner(ws).run("bad")
    assert result.status == "failed"
    attempts = StateStore(ws.state_url).attempts(result.run_id)
    assert [(a.status, a.transient) for a in attempts] == [("failed", False)]
    log = (ws.root / ".brickyard" / "logs" / result.run_id / "t.log").read_text()
    assert "not retried: the error is terminal" in log and "retrying" not in log


def test_retries_exhausted_fail_the_run(ws: Workspace) -> None:
    write_pipeline(ws, "bad", "tasks:\n  - {name: t, kind: probe, fail: true, transient: true, retries: {count: 2, backoff_seconds: 0}}\n")
    result = PipelineRunner(ws).run("bad")
    assert result.status == "failed"
    assert [a.status for a in StateStore(ws.state_url).attempts(result.run_id)] == ["failed"] * 3


def test_a_task_past_its_timeout_fails_and_its_thread_is_left_behind(ws: Workspace) -> None:
    write_pipeline(ws, "slow", """
tasks:
  - {name: hang, kind: probe, sleep: 3, timeout_seconds: 0.3}
  - {name: after, kind: probe, depends_on: [hang]}
""")
    started = time.perf_counter()
    result = PipelineRunner(ws).run("slow")
    assert time.perf_counter() - started < 2.5
    assert result.status == "failed"
    assert result.error == "task 'hang' failed: timed out after 0.3 s"
    assert result.stray_threads == 1
    attempts = StateStore(ws.state_url).attempts(result.run_id)
    assert task_rows(attempts) == [("hang", 1, "failed"), ("after", 0, "skipped")]
    wall = attempts[0].wall_seconds
    assert wall is not None and 0.25 < wall < 1.5


def test_cpu_seconds_count_the_work_of_a_cpu_bound_task(ws: Workspace) -> None:
    write_pipeline(ws, "burn", "tasks:\n  - {name: burn, kind: probe, burn_cpu: 0.4}\n  - {name: idle, kind: probe, sleep: 0.4}\n")
    result = PipelineRunner(ws).run("burn")
    burn, idle = StateStore(ws.state_url).attempts(result.run_id)
    assert burn.cpu_seconds is not None and burn.cpu_seconds >= 0.3
    assert idle.cpu_seconds is not None and idle.cpu_seconds < 0.2
    assert idle.wall_seconds is not None and idle.wall_seconds >= 0.4


def test_lineage_rows_and_extra_metrics_are_recorded(ws: Workspace) -> None:
    write_pipeline(ws, "lineage", """
tasks:
  - name: build
    kind: probe
    rows_in: 120
    rows_out: 100
    reads: {bronze.trips: 3, bronze.zones: 0}
    writes: {silver.trips: 7}
""")
    result = PipelineRunner(ws).run("lineage", full_refresh=True)
    [attempt] = StateStore(ws.state_url).attempts(result.run_id)
    assert attempt.reads == {"bronze.trips": 3, "bronze.zones": 0}
    assert attempt.writes == {"silver.trips": 7}
    assert (attempt.rows_in, attempt.rows_out) == (120, 100)
    assert attempt.metrics == {"full_refresh": True}
    assert StateStore(ws.state_url).get_run(result.run_id).full_refresh is True
    assert result.tasks[0].rows_out == 100


def test_cost_is_cpu_seconds_priced_per_cpu_hour(ws: Workspace) -> None:
    write_pipeline(ws, "burn", "tasks:\n  - {name: a, kind: probe, burn_cpu: 0.2}\n  - {name: b, kind: probe, burn_cpu: 0.2}\n")
    result = PipelineRunner(ws).run("burn")
    report = run_report(StateStore(ws.state_url), result.run_id, cpu_hour=0.05)
    a, b = report.attempts
    assert report.attempt_cost(a) == pytest.approx((a.cpu_seconds or 0) / 3600 * 0.05)
    assert report.cost == pytest.approx(report.cpu_seconds / 3600 * 0.05)
    assert report.cost == pytest.approx((report.task_cost("a") or 0) + (report.task_cost("b") or 0))
    assert report.cost > 0
    assert run_report(StateStore(ws.state_url), result.run_id).cost is None


def test_each_attempt_logs_to_the_task_log(ws: Workspace) -> None:
    write_pipeline(ws, "logs", "tasks:\n  - {name: t, kind: probe, fail_attempts: 1, connection_reset: true, retries: {count: 1, backoff_seconds: 0}}\n")
    result = PipelineRunner(ws).run("logs")
    log = (ws.root / ".brickyard" / "logs" / result.run_id / "t.log").read_text()
    assert "== attempt 1 of 2" in log and "== attempt 2 of 2" in log
    assert "probe t attempt 2" in log
    assert "Traceback" in log and "ConnectionResetError: probe connection reset on attempt 1" in log


def test_a_queued_run_is_executed_by_id(ws: Workspace) -> None:
    write_pipeline(ws, "p", "tasks:\n  - {name: t, kind: probe}\n")
    store = StateStore(ws.state_url)
    queued = store.create_run("p", trigger="http", idempotency_key="k1", full_refresh=True)
    result = PipelineRunner(ws).run("p", run_id=queued.id)
    assert result.run_id == queued.id and result.status == "succeeded"
    run = store.get_run(queued.id)
    assert (run.status, run.trigger, run.idempotency_key) == ("succeeded", "http", "k1")
    assert store.attempts(queued.id)[0].metrics == {"full_refresh": True}
    assert len(store.list_runs("p")) == 1
    with pytest.raises(BrickyardError, match="is succeeded, not queued"):
        PipelineRunner(ws).run("p", run_id=queued.id)


def test_a_queued_run_of_another_pipeline_or_an_unknown_id_is_refused(ws: Workspace) -> None:
    write_pipeline(ws, "p", "tasks:\n  - {name: t, kind: probe}\n")
    queued = StateStore(ws.state_url).create_run("q", trigger="http")
    with pytest.raises(UsageError, match="belongs to pipeline 'q'"):
        PipelineRunner(ws).run("p", run_id=queued.id)
    with pytest.raises(BrickyardError, match="no run 'nope'"):
        PipelineRunner(ws).run("p", run_id="nope")


def test_a_queued_run_of_an_invalid_pipeline_is_failed_with_the_error(ws: Workspace) -> None:
    write_pipeline(ws, "p", "tasks:\n  - {name: t, kind: probe, colour: red}\n")
    store = StateStore(ws.state_url)
    queued = store.create_run("p", trigger="http")
    with pytest.raises(ConfigError, match="colour"):
        PipelineRunner(ws).run("p", run_id=queued.id)
    run = store.get_run(queued.id)
    assert run.status == "failed" and "colour" in (run.error or "")


def test_invalid_pipelines_and_engines_fail_before_any_run_is_recorded(ws: Workspace) -> None:
    write_pipeline(ws, "cycle", "tasks:\n  - {name: a, kind: probe, depends_on: b}\n  - {name: b, kind: probe, depends_on: a}\n")
    write_pipeline(ws, "typo", "tasks:\n  - {name: a, kind: prob}\n")
    write_pipeline(ws, "ok", "tasks:\n  - {name: a, kind: probe}\n")
    runner = PipelineRunner(ws)
    with pytest.raises(ConfigError, match="cycle"):
        runner.run("cycle")
    with pytest.raises(ConfigError, match=r"typo.yaml:2: unknown task kind 'prob' \(hint: did you mean probe"):
        runner.run("typo")
    with pytest.raises(EngineNotAvailableError, match=r"task 'a' \(kind probe\) cannot run on engine 'spark': it needs streams_locally"):
        runner.run("ok", engine="spark")
    with pytest.raises(EngineNotAvailableError, match="unknown engine 'sparc'"):
        runner.run("ok", engine="sparc")
    with pytest.raises(BrickyardError, match="no pipeline 'oks'"):
        runner.run("oks")
    assert StateStore(ws.state_url).list_runs() == []


def test_quarantined_rows_are_recorded_per_attempt_and_summed_per_run(ws: Workspace) -> None:
    ws.lake.write("bronze.trips", pa.table({"id": [1, 2, 3, 4], "fare": [5.0, -1.0, None, -2.0]}))
    write_pipeline(ws, "clean", """
tasks:
  - name: clean
    kind: sql
    query: SELECT * FROM bronze.trips
    target: silver.trips
    expectations:
      - {sql: "fare IS NULL OR fare >= 0", name: fare_not_negative, action: drop}
      - {not_null: fare, action: warn}
  - {name: copy, kind: sql, query: SELECT * FROM silver.trips, target: gold.trips, depends_on: [clean]}
""")
    result = PipelineRunner(ws).run("clean")
    assert result.ok
    assert [(t.name, t.quarantined_rows) for t in result.tasks] == [("clean", 2), ("copy", None)]
    summary = QuarantineSummary("clean", "silver.trips__quarantine", 2, (0,), (("fare_not_negative", 2),))
    assert result.quarantine == [summary]

    store = StateStore(ws.state_url)
    clean, copy = store.attempts(result.run_id)
    assert (clean.quarantined_rows, copy.quarantined_rows) == (2, None)
    assert clean.quarantine == [
        {"table": "silver.trips__quarantine", "rows": 2, "versions": [0], "reasons": [["fare_not_negative", 2]]}
    ]
    assert store.quarantined_rows([result.run_id]) == {result.run_id: 2}
    report = run_report(store, result.run_id)
    assert report.quarantined_rows == 2 and report.quarantine == [summary]
    assert quarantine_lines(report.quarantine) == [
        "2 rows went to quarantine in this run:",
        "  silver.trips__quarantine (task clean, version 0): 2 rows",
        "    2  fare_not_negative",
    ]
    clean_again = PipelineRunner(ws).run("clean")
    assert clean_again.quarantine[0].versions == (1,)  # this run's commit, this run's rows


def test_an_invalid_task_names_its_file_once(ws: Workspace) -> None:
    write_pipeline(ws, "sc", """
tasks:
  - {name: s, kind: score, model: titanic, source: {table: silver.x}, target: gold.y, keys: [x]}
""")
    with pytest.raises(ConfigError) as caught:
        PipelineRunner(ws).run("sc")
    message = str(caught.value)
    assert message.count("sc.yaml") == 1
    assert message.startswith(f"{ws.root / 'pipelines' / 'sc.yaml'}:3: tasks[0] (s): Value error, 'titanic' is not a model reference")
