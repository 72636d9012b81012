"""The console's routes: login and logout, then one page per concept (see `__init__`)."""

from __future__ import annotations

import functools
import logging
import mimetypes
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from brickyard.errors import BrickyardError, TableNotFoundError
from brickyard.ml.errors import ModelNotFoundError
from brickyard.runtime.state import RunNotFoundError, StateStore
from brickyard.runtime.tokens import Role, TokenNotFoundError, TokenRecord, TokenStore
from brickyard.server.console import reads
from brickyard.server.console.session import COOKIE, Sessions
from brickyard.workspace import Workspace

log = logging.getLogger("brickyard.server")

Launch = Callable[[str, TokenRecord], Any]  # start a run of a pipeline for a token; returns the run
NOT_FOUND = (RunNotFoundError, TableNotFoundError, ModelNotFoundError, reads.NotFoundError)
SQL_ROW_LIMIT = 1000
SQL_TIMEOUT_SECONDS = 30.0
NAV = [("/", "Overview"), ("/tables", "Tables"), ("/pipelines", "Pipelines"), ("/runs", "Runs"),
       ("/models", "Models"), ("/endpoints", "Endpoints"), ("/monitors", "Monitors"), ("/features", "Features"),
       ("/sql", "SQL"), ("/lineage", "Lineage")]


class LoginRequired(Exception):
    """No valid session: the browser goes to the login page."""


class PageError(Exception):
    """An error page with an HTTP status."""

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint


def mount(app: FastAPI, workspace: Workspace, store: StateStore, *, launch: Launch,
          sessions: Sessions | None = None) -> None:
    """Add the console's routes to `app`."""
    tokens = TokenStore(workspace.state_url)
    sessions = sessions or Sessions()
    templates = _environment()

    def session(request: Request) -> TokenRecord:
        token_id = sessions.token_id(request.cookies.get(COOKIE))
        if token_id is None:
            raise LoginRequired()
        try:
            record = tokens.get(token_id)
        except TokenNotFoundError:
            raise LoginRequired() from None
        if not record.active:
            raise LoginRequired()
        return record

    def page(request: Request, template: str, http_status: int = 200, **values: Any) -> HTMLResponse:
        token: TokenRecord | None = getattr(request.state, "console_token", None)
        cookie = request.cookies.get(COOKIE, "")
        html = templates.get_template(template).render(
            request=request, nav=NAV, token=token, csrf=sessions.csrf(cookie) if cookie else "",
            can_run=token is not None and token.allows(Role.RUNNER), workspace=workspace.config.name, **values,
        )
        return HTMLResponse(html, status_code=http_status, headers={"Cache-Control": "no-store"})

    def user(request: Request) -> TokenRecord:
        record = session(request)
        request.state.console_token = record
        return record

    async def form(request: Request) -> dict[str, str]:
        body = (await request.body()).decode("utf-8", errors="replace")
        return {key: values[-1] for key, values in parse_qs(body, keep_blank_values=True).items()}

    def checked(request: Request, fields: dict[str, str]) -> None:
        if not sessions.check_csrf(request.cookies.get(COOKIE, ""), fields.get("csrf")):
            raise PageError(403, "the form has expired or came from another page", "reload the page and try again")

    app.add_middleware(ServerTiming)

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, _exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(PageError)
    async def error_page(request: Request, exc: PageError) -> Response:
        return page(request, "error.html", http_status=exc.status, message=exc.message, hint=exc.hint)

    def guarded(function: Callable[..., Response]) -> Callable[..., Response]:
        """Brickyard errors of a page become an error page (404 for what is missing)."""

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Response:
            try:
                return function(*args, **kwargs)
            except (LoginRequired, PageError):
                raise
            except NOT_FOUND as exc:
                raise PageError(404, exc.message, exc.hint) from exc
            except BrickyardError as exc:
                raise PageError(400, exc.message, exc.hint) from exc

        return wrapper

    # -- login ---------------------------------------------------------------------------

    @app.get("/login", include_in_schema=False)
    def login_form(request: Request, next: str = "/") -> HTMLResponse:
        return page(request, "login.html", next=_local(next), error=None)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        fields = await form(request)
        target = _local(fields.get("next", "/"))
        record = tokens.verify(fields.get("token", "").strip())
        if record is None:
            log.info("console login refused (unknown, malformed or revoked token)")
            return page(request, "login.html", http_status=401, next=target,
                        error="That token is not valid (unknown, mistyped or revoked).")
        log.info("console login with token %s (%s)", record.id, record.role.value)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, sessions.sign(record.id), max_age=sessions.ttl_seconds, httponly=True,
                            samesite="strict", secure=request.url.scheme == "https", path="/")
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        folder = resources.files("brickyard.server.console") / "static"
        if "/" in name or name.startswith("."):
            return Response(status_code=404)
        item = folder / name
        if not item.is_file():
            return Response(status_code=404)
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Response(item.read_bytes(), media_type=kind, headers={"Cache-Control": "max-age=3600"})

    # -- pages ---------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    @guarded
    def overview(request: Request) -> Response:
        user(request)
        from brickyard.monitoring.state import MonitorStore

        return page(request, "overview.html", counts={
            "tables": len(workspace.lake.tables()), "pipelines": len(workspace.pipeline_names()),
            "runs": store.count_runs(), "monitors": len(MonitorStore(workspace.state_url).monitors()),
            "features": len(workspace.feature_table_names()), "endpoints": len(workspace.config.endpoints),
        }, runs=store.list_runs(limit=10))

    @app.get("/tables", include_in_schema=False)
    @guarded
    def tables_page(request: Request) -> Response:
        user(request)
        found = reads.tables(workspace)
        zones: dict[str, list[dict[str, Any]]] = {}
        for item in found:
            zones.setdefault(item["zone"], []).append(item)
        return page(request, "tables.html", zones=zones)

    @app.get("/tables/{name}", include_in_schema=False)
    @guarded
    def table_page(request: Request, name: str, version: int | None = None) -> Response:
        user(request)
        return page(request, "table.html", name=name, **reads.table(workspace, name, version))

    @app.get("/pipelines", include_in_schema=False)
    @guarded
    def pipelines_page(request: Request) -> Response:
        user(request)
        return page(request, "pipelines.html", pipelines=reads.pipelines(workspace, store))

    @app.get("/pipelines/{name}", include_in_schema=False)
    @guarded
    def pipeline_page(request: Request, name: str, offset: int = 0) -> Response:
        user(request)
        if name not in workspace.pipeline_names():
            raise PageError(404, f"no pipeline {name!r}", "see the Pipelines page")
        runs, paging = reads.runs_page(store, name, max(offset, 0))
        return page(request, "pipeline.html", name=name, dag=reads.dag(workspace, name), runs=runs, paging=paging)

    @app.post("/pipelines/{name}/run", include_in_schema=False)
    async def trigger(request: Request, name: str) -> Response:
        token = user(request)
        checked(request, await form(request))
        if not token.allows(Role.RUNNER):
            raise PageError(403, f"token {token.id} has role {token.role.value}; starting a run needs runner or above",
                            "log in with a token made with `brickyard tokens create --role runner`")
        if name not in workspace.pipeline_names():
            raise PageError(404, f"no pipeline {name!r}")
        try:
            run = launch(name, token)
        except BrickyardError as exc:
            raise PageError(409, exc.message, exc.hint) from exc
        return RedirectResponse(f"/runs/{run.id}", status_code=303)

    @app.get("/runs", include_in_schema=False)
    @guarded
    def runs_list(request: Request, offset: int = 0) -> Response:
        user(request)
        runs, paging = reads.runs_page(store, None, max(offset, 0))
        return page(request, "runs.html", runs=runs, paging=paging)

    @app.get("/runs/{run_id}", include_in_schema=False)
    @guarded
    def run_page(request: Request, run_id: str) -> Response:
        user(request)
        return page(request, "run.html", **reads.run_detail(workspace, store, run_id))

    @app.get("/runs/{run_id}/attempts/{attempt_id}/log", include_in_schema=False)
    @guarded
    def attempt_log(request: Request, run_id: str, attempt_id: int) -> Response:
        user(request)
        attempt, text = reads.attempt_log(store, run_id, attempt_id)
        return page(request, "log.html", attempt=attempt, text=text)

    @app.get("/models", include_in_schema=False)
    @guarded
    def models_page(request: Request) -> Response:
        user(request)
        return page(request, "models.html", models=reads.models(workspace))

    @app.get("/models/{name}", include_in_schema=False)
    @guarded
    def model_page(request: Request, name: str, page_token: str | None = None) -> Response:
        user(request)
        return page(request, "model.html", page_token=page_token, **reads.model_versions(workspace, name, page_token))

    @app.get("/models/{name}/versions/{version}", include_in_schema=False)
    @guarded
    def version_page(request: Request, name: str, version: str) -> Response:
        user(request)
        return page(request, "version.html", mv=reads.model_version(workspace, name, version))

    @app.get("/models/{name}/compare", include_in_schema=False)
    @guarded
    def compare_page(request: Request, name: str) -> Response:
        user(request)
        chosen = [v for v in request.query_params.getlist("v") if v.strip()]
        if len(chosen) < 2:
            raise PageError(400, "pick at least two versions to compare", "tick versions on the model's page")
        return page(request, "compare.html", **reads.compare(workspace, name, chosen[:8]))

    @app.get("/artifacts/{run_id}/{path:path}", include_in_schema=False)
    @guarded
    def artifact(request: Request, run_id: str, path: str) -> Response:
        user(request)
        data = reads.artifact_bytes(workspace, run_id, path)
        kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if not kind.startswith("image/"):
            kind = "text/plain; charset=utf-8"  # shown, never run, in the browser
        return Response(data, media_type=kind, headers={"X-Content-Type-Options": "nosniff"})

    @app.get("/endpoints", include_in_schema=False)
    @guarded
    def endpoints_page(request: Request) -> Response:
        user(request)
        return page(request, "endpoints.html", endpoints=reads.endpoints(workspace),
                    priced=workspace.config.pricing.cpu_hour is not None)

    @app.get("/monitors", include_in_schema=False)
    @guarded
    def monitors_page(request: Request) -> Response:
        user(request)
        return page(request, "monitors.html", monitors=reads.monitors(workspace))

    @app.get("/monitors/{name}", include_in_schema=False)
    @guarded
    def monitor_page(request: Request, name: str) -> Response:
        user(request)
        return page(request, "monitor.html", name=name, **reads.monitor(workspace, name))

    @app.get("/features", include_in_schema=False)
    @guarded
    def features_page(request: Request) -> Response:
        user(request)
        return page(request, "features.html", features=reads.features(workspace))

    @app.get("/sql", include_in_schema=False)
    @guarded
    def sql_form(request: Request) -> Response:
        user(request)
        return page(request, "sql.html", query="", result=None, error=None, limit=SQL_ROW_LIMIT,
                    timeout=SQL_TIMEOUT_SECONDS)

    @app.post("/sql", include_in_schema=False)
    async def sql_run(request: Request) -> Response:
        user(request)
        fields = await form(request)
        checked(request, fields)
        query = fields.get("query", "")
        result, error = None, None
        try:
            from starlette.concurrency import run_in_threadpool

            result = await run_in_threadpool(reads.run_sql, workspace, query, SQL_ROW_LIMIT, SQL_TIMEOUT_SECONDS)
        except BrickyardError as exc:
            error = (exc.message, exc.hint)
        return page(request, "sql.html", query=query, result=result, error=error, limit=SQL_ROW_LIMIT,
                    timeout=SQL_TIMEOUT_SECONDS, http_status=200 if error is None else 400)

    @app.get("/lineage", include_in_schema=False)
    @guarded
    def lineage_page(request: Request, node: str | None = None) -> Response:
        user(request)
        edges = reads.lineage(workspace, store)["edges"]
        traced = reads.trace(edges, node) if node else None
        shown = [e for e in edges if traced is None or (e["source"] in traced and e["target"] in traced)]
        return page(request, "lineage.html", edges=shown, stages=reads.grouped(edges), node=node, traced=traced)


class ServerTiming:
    """ASGI middleware: a console page's answer carries `Server-Timing: app;dur=<ms>`, the
    time the server spent on it (what bench/console.py reports). The API's paths pass by."""

    API_PREFIXES = ("/api", "/metrics", "/healthz", "/docs", "/redoc", "/openapi")

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.API_PREFIXES):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed(message: Any) -> None:
            if message["type"] == "http.response.start":
                spent = (time.perf_counter() - start) * 1000
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"server-timing", f"app;dur={spent:.1f}".encode())]}
            await send(message)

        await self.app(scope, receive, timed)


def _local(target: str) -> str:
    """A redirect target inside this site (never another host)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("brickyard.server.console", "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["num"] = _num
    env.filters["secs"] = _secs
    return env


def _when(moment: Any) -> str:
    if moment is None:
        return "-"
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, tz=UTC)
    if isinstance(moment, datetime):
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return str(moment)


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"
