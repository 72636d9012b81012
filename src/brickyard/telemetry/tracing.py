"""OpenTelemetry traces: off unless configured (`tracing:` in brickyard.yaml, or
`OTEL_EXPORTER_OTLP_ENDPOINT`), exported over OTLP/HTTP or to a JSON-lines file.

- a pipeline run is a span `run <pipeline>`; each task attempt a child span `task <task>`
  (the runner, `brickyard.runtime.runner`);
- a serving request is a span `POST <route>` (`brickyard.serving.tracing`), sampled at
  `tracing.serving_sample_ratio`;
- `POST /api/jobs/{name}/runs` on the control plane is a span `trigger <pipeline>` whose
  context travels to the run's process in the `TRACEPARENT` environment variable (W3C
  trace context), so the run span is its child. `brickyard run` started by anything that
  sets `TRACEPARENT` (a CI job) joins that trace the same way.

A caller's `traceparent` header makes the server's span its child.

The file exporter writes one span per line: the SDK's `ReadableSpan.to_json()` on one line
(name, context.trace_id/span_id as 0x-hex, parent_id, kind, start_time/end_time in ISO 8601,
status, attributes, events, resource).

>>> from pathlib import Path
>>> from brickyard.config.models import TracingConfig
>>> tracer(TracingConfig(), Path(".")) is None  # off by default
True
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer

    from brickyard.config.models import TracingConfig

TRACEPARENT_ENV = "TRACEPARENT"
OTLP_ENDPOINT_ENVS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
TRACES_PATH = "/v1/traces"
EXPORT_TIMEOUT_SECONDS = 5.0
_TRACERS: dict[tuple[Any, ...], Tracer] = {}
_PROVIDERS: dict[int, Any] = {}  # id(tracer) -> its TracerProvider
_LOCK = threading.Lock()


def exporter_kind(config: TracingConfig) -> str:
    """`otlp`, `file` or `none`: the config's `exporter`, else `otlp` when an OTLP endpoint
    is set in the environment; `none` whenever `OTEL_SDK_DISABLED=true`."""
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return "none"
    if config.exporter is not None:
        return config.exporter
    return "otlp" if any(os.environ.get(name) for name in OTLP_ENDPOINT_ENVS) else "none"


def tracer(config: TracingConfig, root: Path, *, sample_ratio: float = 1.0) -> Tracer | None:
    """The tracer for this configuration (made once per process), or None when tracing is off."""
    kind = exporter_kind(config)
    if kind == "none":
        return None
    file = (root / config.file).resolve() if kind == "file" else None
    key = (kind, config.endpoint, file, config.service_name, sample_ratio)
    with _LOCK:
        found = _TRACERS.get(key)
        if found is None:
            found = _TRACERS[key] = _make_tracer(kind, config, file, sample_ratio)
        return found


def _make_tracer(kind: str, config: TracingConfig, file: Path | None, sample_ratio: float) -> Tracer:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    exporter: SpanExporter
    if kind == "file":
        from brickyard.telemetry.file_export import JsonLinesSpanExporter

        assert file is not None
        exporter = JsonLinesSpanExporter(file)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=traces_url(config.endpoint), timeout=EXPORT_TIMEOUT_SECONDS)
    version = _version()
    resource = Resource.create({"service.name": config.service_name, "service.version": version})
    provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(sample_ratio)))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
    made = provider.get_tracer("brickyard", version)
    _PROVIDERS[id(made)] = provider
    return made


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("brickyard")
    except metadata.PackageNotFoundError:
        return "unknown"


def traces_url(endpoint: str | None) -> str | None:
    """The OTLP/HTTP traces URL of a collector base URL (None: the exporter reads the environment)."""
    if endpoint is None:
        return None
    base = endpoint.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def flush(tracer: Tracer | None) -> None:
    """Export the spans ended so far (a short-lived process calls it before it exits)."""
    provider = _PROVIDERS.get(id(tracer)) if tracer is not None else None
    if provider is not None:
        provider.force_flush(int(EXPORT_TIMEOUT_SECONDS * 1000))


def context_from_env() -> Context | None:
    """The trace context a parent process passed in `TRACEPARENT`, or None."""
    value = os.environ.get(TRACEPARENT_ENV)
    return context_from_headers({"traceparent": value}) if value else None


def context_from_headers(headers: Mapping[str, str]) -> Context | None:
    """The W3C trace context of request headers (`traceparent`, `tracestate`), or None."""
    if not headers.get("traceparent"):
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {name: headers[name] for name in ("traceparent", "tracestate") if headers.get(name)}
    return TraceContextTextMapPropagator().extract(carrier)


def child_env() -> dict[str, str]:
    """`{"TRACEPARENT": ...}` for a child process to continue the current span's trace
    (empty when no span is recording)."""
    import sys

    if "opentelemetry.trace" not in sys.modules:
        return {}
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return {TRACEPARENT_ENV: carrier["traceparent"]} if "traceparent" in carrier else {}


@contextmanager
def span(
    tracer: Tracer | None, name: str, attributes: Mapping[str, Any], *, parent: Context | None = None, server: bool = False
) -> Iterator[Span | None]:
    """A current span named `name` (None, and no cost, when `tracer` is None)."""
    if tracer is None:
        yield None
        return
    from opentelemetry.trace import SpanKind

    kind = SpanKind.SERVER if server else SpanKind.INTERNAL
    with tracer.start_as_current_span(name, context=parent, kind=kind, attributes=_clean(attributes)) as current:
        yield current


def finish(span: Span | None, ok: bool, error: str | None, attributes: Mapping[str, Any]) -> None:
    """Set a span's closing attributes and status; a failure's text becomes the status
    description and an `exception` event."""
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span.set_attributes(_clean(attributes))
    if ok:
        span.set_status(Status(StatusCode.OK))
    else:
        span.set_status(Status(StatusCode.ERROR, error or "failed"))
        span.add_event("exception", {"exception.message": error or "failed"})


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes OpenTelemetry accepts: None dropped, other objects as text."""
    return {
        key: value if isinstance(value, str | bool | int | float) else str(value)
        for key, value in attributes.items()
        if value is not None
    }
