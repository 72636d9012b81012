"""The FastAPI app of `brickyard serve`.

Routes:

- ``POST /serving-endpoints/{name}/invocations`` — score with endpoint ``name``
- ``POST /invocations`` — the same, when the server has a single endpoint (MLflow's path)
- ``GET /serving-endpoints`` — endpoints, loaded versions and traffic state
- ``GET /healthz`` (the process is up), ``GET /readyz`` (every champion loaded and warmed)
- ``GET /ping`` and ``GET /health`` (MLflow's: 200 with a newline once every champion is
  loaded, else 503), ``GET /version`` (MLflow's: the MLflow version, as plain text)
- ``GET /metrics`` (Prometheus), ``GET /docs`` and ``GET /openapi.json``

Scoring takes MLflow's JSON formats or a ``text/csv`` body and answers ``{"predictions": [...]}``
(labels for a classifier; ``[]`` for a request with no rows, in any format). Columns the
model's signature does not name are ignored and named in ``X-Ignored-Columns`` (unless the
server runs with ``--strict-columns``); ``params`` the signature declares go to the model. For class probabilities send ``"params": {"predict_proba": true}``
in the body (or ``"predict_method": "predict_proba"``), or add ``?predict_proba=true`` to the URL; the answer
is then ``{"predictions": [[p_class0, p_class1, ...], ...], "classes": [...]}``. Every answer
carries ``X-Request-Id`` (yours, if you sent one), ``X-Model-Name``, ``X-Model-Version`` and
``X-Served-By`` (champion or challenger). Errors are ``{"error_code", "message", "column"}``.

The request body of each invocation route is described in the OpenAPI document from the
loaded model's signature (rebuilt when a new version is swapped in), with every status each
route answers (`serving/openapi.py`).

The invocation routes are FastAPI routes (documented, and answering if called through
FastAPI), but requests to them take a fast lane: `FastLane` sits in front of the FastAPI app
and hands ``POST`` requests for an invocation path straight to `ServingService.invoke`,
skipping the framework's middleware stack and dependency solving, which cost more per
request than parsing, checking and scoring one row. Everything else goes to FastAPI.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import metadata
from typing import Any

import anyio.to_thread
import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import PlainTextResponse
from starlette.responses import Response

from brickyard.serving.errors import EndpointNotFoundError
from brickyard.serving.openapi import (
    HEALTH_SCHEMA,
    JSON,
    PING_RESPONSES,
    STATUS_SCHEMA,
    VERSION_RESPONSES,
    document_auth,
    invocation_operation,
    json_answer,
)
from brickyard.serving.service import ServingService
from brickyard.serving.traffic import Endpoint

log = logging.getLogger("brickyard.serving")


def _installed_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


STARTUP_WAIT_SECONDS = 300.0
SWITCH_INTERVAL_SECONDS = 0.0005  # the longest the event loop waits for the GIL (CPython's default: 5 ms)
MLFLOW_VERSION = _installed_version("mlflow")
BRICKYARD_VERSION = _installed_version("brickyard")


class FastLane:
    """ASGI app: invocation requests straight to the service, the rest to FastAPI."""

    def __init__(self, app: FastAPI, service: ServingService, routes: dict[str, Endpoint]) -> None:
        self.fastapi = app
        self.service = service
        self.routes = routes

    @property
    def state(self) -> Any:
        return self.fastapi.state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.routes.get(scope["path"])
            if endpoint is not None:
                status, content, headers = await self.service.invoke(endpoint, Request(scope, receive))
                raw = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
                raw += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
                await _send_in_one_write(
                    send, {"type": "http.response.start", "status": status, "headers": raw},
                    {"type": "http.response.body", "body": content},
                )
                return
        await self.fastapi(scope, receive, send)


class _Collected:
    """Stands in for uvicorn's transport while it writes one response: keeps the writes
    (and a close) to send them as one."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.parts: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def close(self) -> None:
        self.closing = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)

    def send(self) -> None:
        if self.parts:
            self.transport.write(b"".join(self.parts))
        if self.closing:
            self.transport.close()


async def _send_in_one_write(send: Any, start: dict[str, Any], body: dict[str, Any]) -> None:
    """Send an answer's head and body. uvicorn writes each ASGI message to the socket as it
    comes: with TCP_NODELAY that is two packets and two wake-ups of the client per answer,
    a good part of a keys-only request's cost. When `send` is uvicorn's (its request cycle
    holds the connection's `transport`), both go out in one write; otherwise as two."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or not callable(getattr(transport, "write", None)):
        await send(start)
        await send(body)
        return
    collected = _Collected(transport)
    cycle.transport = collected  # type: ignore[union-attr]
    try:
        await send(start)
        await send(body)
    finally:
        cycle.transport = transport  # type: ignore[union-attr]
    collected.send()


def create_app(service: ServingService) -> FastLane:
    """The ASGI app over a `ServingService` (started and stopped by the app's lifespan)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.start()
        # Accept connections only once the models were tried: with several workers on one
        # socket, a worker still loading would otherwise answer 503 while others are ready.
        await anyio.to_thread.run_sync(service.first_pass.wait, STARTUP_WAIT_SECONDS)
        # MLflow, scikit-learn and pandas leave millions of long-lived objects; freezing them
        # keeps the collector's full passes (100+ ms each) off the request path.
        gc.collect()
        gc.freeze()
        # The request path runs on one thread; the inference-log writer and the alias poller
        # run Python on others. Each time the event loop releases the GIL (a socket send, a
        # SQLite lookup, epoll) a busy background thread takes it, and by default the loop
        # waits up to 5 ms to get it back: a few such waits per request were the p99.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        try:
            yield
        finally:
            sys.setswitchinterval(switch_interval)
            service.stop()
            gc.unfreeze()

    app = FastAPI(
        title="brickyard serving",
        description="MLflow-compatible scoring endpoints: dataframe_split, dataframe_records, instances, inputs.",
        version="1",
        lifespan=lifespan,
    )
    app.state.service = service

    def respond(status: int, content: bytes, headers: dict[str, str]) -> Response:
        return Response(content, status_code=status, media_type=JSON, headers=headers)

    def invocation(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        async def invoke(request: Request) -> Response:
            return respond(*await service.invoke(endpoint, request))

        invoke.__name__ = f"invoke_{_identifier(endpoint.name)}"
        return invoke

    # The operations' body, parameters and answers are filled in by `openapi` below.
    for endpoint in service.endpoints.values():
        app.add_api_route(
            f"/serving-endpoints/{endpoint.name}/invocations", invocation(endpoint), methods=["POST"],
            summary=f"Score with {endpoint.name}", response_class=Response, tags=["scoring"],
        )
    if len(service.endpoints) == 1:
        (only,) = service.endpoints.values()
        app.add_api_route(
            "/invocations", invocation(only), methods=["POST"], summary=f"Score with {only.name} (MLflow's path)",
            response_class=Response, tags=["scoring"],
        )

    @app.post("/serving-endpoints/{name}/invocations", include_in_schema=False)
    async def unknown_endpoint(name: str) -> Response:
        names = ", ".join(service.endpoints)
        error = EndpointNotFoundError(f"no endpoint {name!r} on this server", hint=f"endpoints: {names}")
        return respond(error.status, error.body(), {})

    @app.get("/serving-endpoints", tags=["status"], responses={200: json_answer("Endpoints and their models", STATUS_SCHEMA)})
    async def endpoints() -> Response:
        """Endpoints, their loaded versions and traffic state."""
        return respond(200, orjson.dumps(service.status()), {})

    @app.get("/healthz", tags=["status"], responses={200: json_answer("The process is up", HEALTH_SCHEMA)})
    async def healthz() -> Response:
        """The process is up."""
        return respond(200, b'{"status":"ok"}', {})

    async def ping() -> Response:
        """MLflow's health check: 200 (a newline) once every champion is loaded, else 503."""
        if service.ready.is_set():
            return Response(b"\n", media_type=JSON)
        return Response(b"\n", status_code=503, media_type=JSON, headers={"Retry-After": "1"})

    for path in ("/ping", "/health"):
        app.add_api_route(path, ping, methods=["GET"], tags=["status"], response_class=Response, responses=PING_RESPONSES,
                          summary="MLflow's health check", name=path.strip("/"))

    @app.get("/version", tags=["status"], response_class=Response, responses=VERSION_RESPONSES)
    async def version() -> Response:
        """MLflow's version route: the version of MLflow that loads the models (not JSON, as MLflow's own)."""
        return Response(MLFLOW_VERSION, media_type=JSON, headers={"X-Brickyard-Version": BRICKYARD_VERSION})

    @app.get("/readyz", tags=["status"], responses={
        200: json_answer("Every champion is loaded", STATUS_SCHEMA),
        503: json_answer("A champion is not loaded yet (see `endpoints.*.error`)", STATUS_SCHEMA),
    })
    async def readyz() -> Response:
        """Every endpoint's champion is loaded and warmed."""
        status = service.status()
        return respond(200 if status["ready"] else 503, orjson.dumps(status), {})

    # response_class only documents the answer (text/plain, Prometheus' text format).
    @app.get("/metrics", tags=["status"], response_class=PlainTextResponse,
             responses={200: {"description": "Prometheus text exposition format"}})
    async def metrics() -> Response:
        """Prometheus metrics: requests by endpoint, model, version and status; latency; canary; log."""
        service.refresh_feature_freshness()
        return Response(service.metrics.render(), media_type=service.metrics.content_type)

    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        key = tuple(
            (endpoint.name, endpoint.champion.version if endpoint.champion else None) for endpoint in service.endpoints.values()
        )
        if cache.get("key") == key:
            return cache["doc"]
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        document_auth(doc, auth=service.auth_enabled)
        for endpoint in service.endpoints.values():
            signature = endpoint.champion.schema if endpoint.champion else None
            schema = signature.json_schema(strict=service.strict_columns) if signature else {"type": "object"}
            csv_example = signature.csv_example() if signature else None
            paths = [f"/serving-endpoints/{endpoint.name}/invocations"]
            if len(service.endpoints) == 1:
                paths.append("/invocations")
            for path in paths:
                invocation_operation(doc["paths"][path]["post"], schema, auth=service.auth_enabled, csv_example=csv_example,
                                     strict=service.strict_columns)
        cache.update(key=key, doc=doc)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
    routes = {f"/serving-endpoints/{endpoint.name}/invocations": endpoint for endpoint in service.endpoints.values()}
    if len(service.endpoints) == 1:
        routes["/invocations"] = next(iter(service.endpoints.values()))
    return FastLane(app, service, routes)


def _identifier(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)
