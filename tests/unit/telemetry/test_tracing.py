"""brickyard.telemetry: tracing off unless configured, sampling of serving requests, the
JSON-lines span file, JSON log lines, and the config that drives them."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from starlette.requests import Request

from brickyard import Workspace
from brickyard.config import load_config
from brickyard.config.models import EndpointConfig, TracingConfig
from brickyard.errors import ConfigError, UsageError
from brickyard.ml.registry import ModelRef
from brickyard.runtime.slo import parse_window
from brickyard.serving.service import ServingService
from brickyard.serving.tracing import trace_request
from brickyard.serving.traffic import Endpoint
from brickyard.telemetry import tracing
from brickyard.telemetry.logs import FieldsFilter, JsonFormatter

SAMPLED_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def request(traceparent: str | None = None) -> Request:
    headers = [(b"traceparent", traceparent.encode())] if traceparent else []
    return Request({"type": "http", "method": "POST", "path": "/invocations", "headers": headers, "query_string": b""})


def spans_in(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_tracing_is_off_unless_configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert tracing.tracer(TracingConfig(), tmp_path) is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert tracing.exporter_kind(TracingConfig()) == "otlp"  # the standard variable turns it on
    assert tracing.exporter_kind(TracingConfig(exporter="none")) == "none"  # unless the config says none
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert tracing.exporter_kind(TracingConfig(exporter="file")) == "none"
    assert tracing.traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert tracing.traces_url("http://collector:4318/v1/traces") == "http://collector:4318/v1/traces"


def test_a_serving_process_without_tracing_holds_no_tracer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    ws = Workspace.init(tmp_path / "ws")
    service = ServingService(ws, [ModelRef.parse("titanic")], auth=False)
    assert service.tracer is None  # the request path checks this and does nothing else


@pytest.mark.parametrize(("ratio", "expected"), [(0.0, 0), (1.0, 20)])
def test_serving_requests_are_sampled_at_the_configured_ratio(tmp_path: Path, ratio: float, expected: int) -> None:
    config = TracingConfig(exporter="file", file=f"spans-{ratio}.jsonl", serving_sample_ratio=ratio)
    tracer = tracing.tracer(config, tmp_path, sample_ratio=ratio)
    assert tracer is not None
    endpoint = Endpoint("titanic", "titanic", EndpointConfig(), "champion", None, None)
    for number in range(20):
        trace_request(tracer, request(), endpoint, "3", "champion", 200, 1, 0.002, f"r{number}")
    trace_request(tracer, request(SAMPLED_PARENT), endpoint, "3", "champion", 503, 1, 0.004, "followed")
    tracing.flush(tracer)
    spans = spans_in(tmp_path / f"spans-{ratio}.jsonl")
    assert len(spans) == expected + 1  # a caller's sampled traceparent is always followed
    followed = next(span for span in spans if span["attributes"]["brickyard.request_id"] == "followed")
    assert followed["parent_id"] == "0xb7ad6b7169203331" and followed["status"]["status_code"] == "ERROR"
    assert followed["attributes"]["http.response.status_code"] == 503 and followed["attributes"]["brickyard.model.version"] == "3"


def test_json_log_lines_hold_the_fields_and_the_current_span(tmp_path: Path) -> None:
    tracer = tracing.tracer(TracingConfig(exporter="file", file="logs.jsonl"), tmp_path)
    record = logging.LogRecord("brickyard.run", logging.WARNING, __file__, 1, "rows %d", (3,), None)
    FieldsFilter(run_id="r1", task="load", attempt=2).filter(record)
    with tracing.span(tracer, "task load", {}) as span:
        assert span is not None
        line = json.loads(JsonFormatter().format(record))
        context = span.get_span_context()
    assert line["level"] == "WARNING" and line["logger"] == "brickyard.run" and line["message"] == "rows 3"
    assert (line["run_id"], line["task"], line["attempt"]) == ("r1", "load", 2)
    assert line["trace_id"] == f"{context.trace_id:032x}" and line["span_id"] == f"{context.span_id:016x}"
    assert line["time"].endswith("Z")
    assert "trace_id" not in json.loads(JsonFormatter().format(record))  # no span now


def test_tracing_and_slo_config_errors_name_the_field(tmp_path: Path) -> None:
    (tmp_path / "lake").mkdir()
    path = tmp_path / "brickyard.yaml"
    path.write_text("tracing:\n  endpoint: 127.0.0.1:4318\n")
    with pytest.raises(ConfigError, match="is not an http"):
        load_config(path)
    path.write_text("slos:\n  window: 7 days\n")
    with pytest.raises(ConfigError, match="is not a duration"):
        load_config(path)
    path.write_text("slos: {serving_p95_ms: 50, availability: null}\ntracing: {exporter: otlp, endpoint: 'http://c:4318'}\n")
    config = load_config(path)
    assert config.slos.serving_p95_ms == 50 and config.slos.availability is None and config.slos.window == "7d"


def test_windows_are_a_number_and_a_unit() -> None:
    assert parse_window("90s").total_seconds() == 90
    assert parse_window("24h").total_seconds() == 86_400
    assert parse_window("7d").total_seconds() == 7 * 86_400
    assert parse_window("2w").total_seconds() == 14 * 86_400
    with pytest.raises(UsageError, match="not a duration"):
        parse_window("0d")
