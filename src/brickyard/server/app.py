"""The control plane: start and watch pipeline runs over HTTP; run schedules and
file-arrival triggers in the background.

    POST /api/jobs/{name}/runs   runner   start a run (202); `Idempotency-Key` header,
                                          optional body {"full_refresh": bool}
    GET  /api/jobs/{name}/runs   reader   the pipeline's runs, newest first (?limit=N)
    GET  /api/jobs               reader   the pipelines and their triggers
    GET  /api/runs/{run_id}      reader   one run with its tasks and the rows they quarantined
    GET  /healthz                -        liveness
    GET  /  (and /login, ...)    session  the web console (`brickyard.server.console`): pages
                                          for a browser logged in with a token
    GET  /metrics                -        Prometheus: runs by status, task durations, triggers,
                                          feature freshness; the monitors' latest drift per
                                          feature, drift share, performance, alerts

>>> import tempfile
>>> from brickyard import Workspace
>>> app = create_app(Workspace.init(tempfile.mkdtemp()), triggers=False)
>>> sorted(r.path for r in app.routes if r.path.startswith("/api"))
['/api/jobs', '/api/jobs/{name}/runs', '/api/jobs/{name}/runs', '/api/runs/{run_id}']

Runs execute in their own processes (`brickyard run NAME --run-id ID`), so they survive a
restart of the server; on start-up the server fails runs whose process died.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, which
# name dependencies local to `create_app`.
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from importlib import metadata
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Header, Query, Request, Response
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, StrictBool

from brickyard.core.pipeline import NAME_PATTERN
from brickyard.errors import BrickyardError, suggest
from brickyard.runtime.records import AttemptRecord, RunRecord, RunStatus, TaskStatus
from brickyard.runtime.report import QuarantineSummary, quarantine_summaries
from brickyard.runtime.state import StateStore
from brickyard.runtime.tokens import Role, TokenRecord, TokenStore
from brickyard.runtime.triggers import HTTP, FileTrigger, Launcher, Spawn, TriggerLoop, spawn_run
from brickyard.server.auth import Auth
from brickyard.server.errors import ApiError, install
from brickyard.server.models import ErrorBody, Health, InvalidRequest, JobList, RunDetail, RunList
from brickyard.telemetry import tracing
from brickyard.workspace import Workspace

log = logging.getLogger("brickyard.server")
MAX_KEY_LENGTH = 200
BEARER = "bearer"
CONSOLE = "console"  # the trigger of runs started with the console's Trigger button

# What each error status means, for the OpenAPI document (every error body is `ErrorBody`).
_ERRORS: dict[int, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body could not be read (not UTF-8 JSON)"},
    401: {
        "model": ErrorBody, "description": "No, malformed, unknown or revoked bearer token",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer realm=\"brickyard\"`"}},
    },
    403: {"model": ErrorBody, "description": "The token's role is below the route's"},
    404: {"model": ErrorBody, "description": "No such pipeline or run (the hint names close matches)"},
    409: {"model": ErrorBody, "description": "The pipeline's file does not parse (the error names file and line)"},
    415: {"model": ErrorBody, "description": "A body that is not `application/json`"},
    422: {"model": InvalidRequest, "description": "A field is invalid; `fields` names each"},
    503: {"model": ErrorBody, "description": "The run's process could not be started (the run is marked failed)"},
}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A retry with the same key returns the first run (header `Idempotent-Replayed: true`) instead of "
                   "starting another; reusing a key with a different `full_refresh` is a 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
}
_SECURED: dict[str, Any] = {"security": [{BEARER: []}]}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: _ERRORS[status] for status in statuses}


class RunRequest(BaseModel):
    """The optional body of `POST /api/jobs/{name}/runs`."""

    model_config = ConfigDict(extra="forbid")

    full_refresh: StrictBool = False


class RunAccepted(BaseModel):
    """The answer to a started (or replayed) run."""

    run_id: str
    pipeline: str
    status: str


def create_app(
    workspace: Workspace,
    *,
    spawn: Spawn = spawn_run,
    triggers: bool = True,
    trigger_interval: float = 1.0,
) -> FastAPI:
    """The control-plane app of `workspace`. With `triggers`, the pipelines' schedules and
    file-arrival triggers are read now and fired by a thread while the app runs.

    Raises:
        ConfigError: with `triggers`, a pipeline file is invalid (e.g. a bad cron expression).
    """
    store = StateStore(workspace.state_url)
    launcher = Launcher(workspace, spawn=spawn, store=store)
    auth = Auth(TokenStore(workspace.state_url))
    loop = TriggerLoop(workspace, launcher=launcher) if triggers else None
    if loop is not None:
        loop.load()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        dead = store.mark_dead_runs()
        if dead:
            log.warning("marked %d run(s) whose process died as failed: %s", len(dead), ", ".join(dead))
        if loop is not None:
            loop.start(trigger_interval)
        try:
            yield
        finally:
            if loop is not None:
                loop.stop()

    app = FastAPI(
        title="brickyard control plane",
        version=_version(),
        lifespan=lifespan,
        description="Start and watch pipeline runs. Authenticate with `Authorization: Bearer <token>`.",
    )
    app.state.workspace = workspace
    app.state.launcher = launcher
    app.state.triggers = loop
    install(app)
    reader = Depends(auth.require(Role.READER))
    runner = Depends(auth.require(Role.RUNNER))

    from brickyard.monitoring.gauges import MonitorMetrics
    from brickyard.server.run_metrics import RunCollector

    monitor_metrics = MonitorMetrics(workspace.state_url)
    monitor_metrics.registry.register(RunCollector(workspace, store, loop))

    @app.get("/metrics", tags=["health"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
    def metrics() -> Response:
        """Prometheus metrics read at each scrape: runs by status, task durations and attempts,
        trigger state, feature freshness (`server/run_metrics.py`), and the monitors' latest
        drift per feature, drift share, performance and alerts (`monitoring/gauges.py`)."""
        return Response(monitor_metrics.render(), media_type=monitor_metrics.content_type)

    @app.get("/healthz", tags=["health"], response_model=None, responses={200: {"model": Health}})
    def healthz() -> dict[str, Any]:
        """Liveness: the server answers and its trigger thread runs."""
        return {
            "status": "ok",
            "version": _version(),
            "triggers": "off" if loop is None else ("running" if loop.running else "stopped"),
        }

    @app.post(
        "/api/jobs/{name}/runs", status_code=202, response_model=RunAccepted, tags=["runs"],
        responses={
            202: {"description": "The run was queued (or, for a repeated `Idempotency-Key`, the first run)", "headers": {
                "Location": {"schema": {"type": "string"}, "required": True, "description": "`/api/runs/{run_id}`"},
                "Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]}, "description": "a replayed key"},
            }},
            **_errors(400, 401, 403, 404, 409, 415, 422, 503),
        },
        openapi_extra={**_SECURED, "parameters": [_IDEMPOTENCY_KEY]},
    )
    def start_run(
        name: str,
        response: Response,
        http: Request,
        token: Annotated[TokenRecord, runner],
        body: Annotated[RunRequest | None, Body()] = None,
        # Checked below (for a message that names the header); documented by _IDEMPOTENCY_KEY.
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", include_in_schema=False)] = None,
    ) -> RunAccepted:
        """Queue a run of pipeline `name` and start it. A retry with the same
        `Idempotency-Key` returns the first run instead of starting another."""
        request = body or RunRequest()
        if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_KEY_LENGTH:
            raise ApiError(422, f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
                           hint="a UUID is a good key", extra={"fields": ["Idempotency-Key"]})
        _pipeline(workspace, name)
        tracer = tracing.tracer(workspace.config.tracing, workspace.root)
        parent = tracing.context_from_headers(http.headers) if tracer is not None else None
        with tracing.span(tracer, f"trigger {name}", {"brickyard.pipeline": name, "brickyard.trigger": HTTP},
                          parent=parent, server=True) as span:
            launch = launcher.launch(
                name, HTTP, idempotency_key=idempotency_key, full_refresh=request.full_refresh,
                params={"token": token.id},
            )
            tracing.finish(span, True, None, {"brickyard.run_id": launch.run.id, "brickyard.replayed": not launch.created})
        run = launch.run
        if not launch.created:
            if run.full_refresh != request.full_refresh:
                raise ApiError(
                    422,
                    f"Idempotency-Key {idempotency_key!r} was used for run {run.id} with "
                    f"full_refresh={str(run.full_refresh).lower()}",
                    hint="send a new Idempotency-Key for a different request",
                    extra={"fields": ["Idempotency-Key"]},
                )
            response.headers["Idempotent-Replayed"] = "true"
        response.headers["Location"] = f"/api/runs/{run.id}"
        return RunAccepted(run_id=run.id, pipeline=run.pipeline, status=run.status)

    @app.get(
        "/api/jobs/{name}/runs", tags=["runs"], response_model=None,
        responses={200: {"model": RunList}, **_errors(401, 403, 404, 409, 422)}, openapi_extra=_SECURED,
    )
    def list_runs(
        name: str,
        _token: Annotated[TokenRecord, reader],
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> dict[str, Any]:
        """The runs of pipeline `name`, newest first."""
        runs = store.list_runs(name, limit=limit) if re.fullmatch(NAME_PATTERN, name) else []
        quarantined = store.quarantined_rows([run.id for run in runs])
        if not runs:
            _pipeline(workspace, name)
        return {"pipeline": name, "runs": [_summary(run, quarantined.get(run.id)) for run in runs]}

    @app.get(
        "/api/jobs", tags=["runs"], response_model=None,
        responses={200: {"model": JobList}, **_errors(401, 403)}, openapi_extra=_SECURED,
    )
    def list_jobs(_token: Annotated[TokenRecord, reader]) -> dict[str, Any]:
        """The workspace's pipelines with their schedule and file trigger."""
        jobs: list[dict[str, Any]] = []
        for name in workspace.pipeline_names():
            try:
                spec = workspace.pipeline(name).spec
            except BrickyardError as exc:
                jobs.append({"name": name, "error": exc.message})
                continue
            jobs.append({
                "name": name,
                "description": spec.description,
                "schedule": spec.schedule,
                "file_arrival": spec.trigger.file_arrival if spec.trigger else None,
                "max_active_runs": spec.max_active_runs,
                "tasks": [task.name for task in spec.tasks],
            })
        return {"jobs": jobs, "triggers": _trigger_lines(loop)}

    @app.get(
        "/api/runs/{run_id}", tags=["runs"], response_model=None,
        responses={200: {"model": RunDetail}, **_errors(401, 403, 404)}, openapi_extra=_SECURED,
    )
    def get_run(run_id: str, _token: Annotated[TokenRecord, reader]) -> dict[str, Any]:
        """One run: its status, times, error, rows quarantined, and tasks (each with the rows
        it quarantined: how many, and per quarantine table the versions and top reasons)."""
        run = store.get_run(run_id)
        planned = list(run.tasks) or _task_names(workspace, run.pipeline)
        quarantined = store.quarantined_rows([run.id]).get(run.id)
        return {**_summary(run, quarantined), "params": run.params,
                "tasks": _tasks(run, planned, store.attempts(run.id))}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            _drop_fastapi_422(doc)
            doc.setdefault("components", {})["securitySchemes"] = {
                BEARER: {"type": "http", "scheme": "bearer", "description": "a token from `brickyard tokens create`"},
            }
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    from brickyard.server.console import mount

    def console_launch(name: str, token: TokenRecord) -> RunRecord:
        return launcher.launch(name, CONSOLE, params={"token": token.id}).run

    mount(app, workspace, store, launch=console_launch)
    return app


def _drop_fastapi_422(doc: dict[str, Any]) -> None:
    """Remove the 422 FastAPI documents for any route with parameters: its body shape
    (`HTTPValidationError`) is never what this app answers. Routes that can answer 422
    declare it themselves, with `InvalidRequest`."""
    fastapi_422 = {"$ref": "#/components/schemas/HTTPValidationError"}
    for operations in doc["paths"].values():
        for operation in operations.values():
            answer = operation["responses"].get("422", {})
            if answer.get("content", {}).get("application/json", {}).get("schema") == fastapi_422:
                del operation["responses"]["422"]
    for name in ("HTTPValidationError", "ValidationError"):
        doc.get("components", {}).get("schemas", {}).pop(name, None)


def _pipeline(workspace: Workspace, name: str) -> None:
    """Check that pipeline `name` exists and parses (404 / 409 otherwise)."""
    names = workspace.pipeline_names()
    if not re.fullmatch(NAME_PATTERN, name) or name not in names:
        raise ApiError(
            404, f"no pipeline {name!r}",
            hint=suggest(name, names) or (f"pipelines: {', '.join(names)}" if names else "the workspace has no pipelines"),
        )
    workspace.pipeline(name)


def _summary(run: RunRecord, quarantined_rows: int | None) -> dict[str, Any]:
    """A run as the API shows it; `quarantined_rows` is None when no task checks rows."""
    return {
        "run_id": run.id,
        "pipeline": run.pipeline,
        "status": run.status,
        "trigger": run.trigger,
        "full_refresh": run.full_refresh,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.ended_at),
        "duration_seconds": run.duration_seconds,
        "error": run.error,
        "quarantined_rows": quarantined_rows,
    }


def _task_names(workspace: Workspace, pipeline: str) -> list[str]:
    """The pipeline's tasks as its file says now (a queued run has no plan yet)."""
    try:
        return [task.name for task in workspace.pipeline(pipeline).spec.order()]
    except (BrickyardError, ValueError):
        return []


def _tasks(run: RunRecord, planned: list[str], attempts: list[AttemptRecord]) -> list[dict[str, Any]]:
    """One entry per task (planned order), from its latest attempt; `pending` if none yet."""
    latest: dict[str, AttemptRecord] = {}
    count: dict[str, int] = {}
    quarantined: dict[str, int] = {}
    for tried in attempts:
        latest[tried.task] = tried
        count[tried.task] = count.get(tried.task, 0) + (1 if tried.attempt > 0 else 0)
        if tried.quarantined_rows is not None:
            quarantined[tried.task] = quarantined.get(tried.task, 0) + tried.quarantined_rows
    notes = quarantine_summaries((a.task, a.quarantine) for a in attempts)
    names = planned + [name for name in latest if name not in planned]
    out = []
    for name in names:
        attempt = latest.get(name)
        status = attempt.status if attempt else (
            TaskStatus.PENDING if run.status in (RunStatus.QUEUED, RunStatus.RUNNING) else TaskStatus.SKIPPED
        )
        out.append({
            "name": name,
            "status": str(status),
            "attempts": count.get(name, 0),
            "started_at": _iso(attempt.started_at) if attempt else None,
            "finished_at": _iso(attempt.ended_at) if attempt else None,
            "wall_seconds": attempt.wall_seconds if attempt else None,
            "cpu_seconds": attempt.cpu_seconds if attempt else None,
            "rows_in": attempt.rows_in if attempt else None,
            "rows_out": attempt.rows_out if attempt else None,
            "reads": attempt.reads if attempt else {},
            "writes": attempt.writes if attempt else {},
            "error": attempt.error if attempt else None,
            "quarantined_rows": quarantined.get(name),
            "quarantine": [_note(summary) for summary in notes if summary.task == name],
        })
    return out


def _note(summary: QuarantineSummary) -> dict[str, Any]:
    return {"table": summary.table, "rows": summary.rows, "versions": list(summary.versions),
            "reasons": [[reason, count] for reason, count in summary.reasons]}


def _trigger_lines(loop: TriggerLoop | None) -> list[dict[str, Any]]:
    if loop is None:
        return []
    lines = []
    for trigger in loop.triggers():
        if isinstance(trigger, FileTrigger):
            lines.append({"pipeline": trigger.pipeline, "kind": "file_arrival", "path": trigger.path,
                          "pending_files": len(trigger.pending)})
        else:
            lines.append({"pipeline": trigger.pipeline, "kind": "schedule", "cron": trigger.expression,
                          "next_at": _iso(trigger.next_at)})
    return lines


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _version() -> str:
    try:
        return metadata.version("brickyard")
    except metadata.PackageNotFoundError:
        return "unknown"
