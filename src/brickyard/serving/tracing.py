"""A span per serving request, when tracing is on (`tracing:` in brickyard.yaml).

The span `POST <route>` (kind SERVER) is made after the answer, from the request's measured
start and end, so the request path pays nothing but one `is None` check when tracing is
off. Requests are sampled at `tracing.serving_sample_ratio`; a caller's `traceparent`
header makes the span its child (and its sampled flag decides). Attributes:
`http.request.method`, `http.route`, `http.response.status_code`, `brickyard.endpoint`,
`brickyard.model`, `brickyard.model.version`, `brickyard.variant` (champion or challenger),
`brickyard.rows`, `brickyard.latency_ms`, `brickyard.request_id`; a 5xx answer sets the
span's status to ERROR.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from brickyard.telemetry import tracing

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from brickyard.serving.traffic import Endpoint
    from brickyard.workspace import Workspace


def request_tracer(ws: Workspace) -> Tracer | None:
    """The serving process's tracer, or None when tracing is off."""
    config = ws.config.tracing
    return tracing.tracer(config, ws.root, sample_ratio=config.serving_sample_ratio)


def trace_request(
    tracer: Tracer, request: Any, endpoint: Endpoint, version: str, variant: str, status: int, rows: int,
    seconds: float, request_id: str,
) -> None:
    """Record one answered request as a span that ended now and lasted `seconds`."""
    from opentelemetry.trace import SpanKind, Status, StatusCode

    headers = request.headers
    parent = tracing.context_from_headers(headers) if "traceparent" in headers else None
    route = request.scope.get("path", "")
    end = time.time_ns()
    span = tracer.start_span(
        f"POST {route}", context=parent, kind=SpanKind.SERVER, start_time=end - int(seconds * 1e9),
        attributes={
            "http.request.method": "POST", "http.route": route, "http.response.status_code": status,
            "brickyard.endpoint": endpoint.name, "brickyard.model": endpoint.model, "brickyard.model.version": version,
            "brickyard.variant": variant, "brickyard.rows": rows, "brickyard.latency_ms": seconds * 1000.0,
            "brickyard.request_id": request_id,
        },
    )
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
    span.end(end_time=end)


def flush(tracer: Tracer | None) -> None:
    """Export the spans still buffered (on shutdown)."""
    tracing.flush(tracer)
