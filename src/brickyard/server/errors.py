"""Errors as HTTP responses: every error body is `{"error": "...", "hint": "..." | null}`.

`ApiError` carries its status; a `BrickyardError` that escapes a route gets the status of
its class (`STATUS`), anything else is a 500 whose details stay in the server log.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from brickyard.errors import BrickyardError, ConfigError
from brickyard.runtime.state import RunNotFoundError
from brickyard.runtime.triggers import LaunchError

log = logging.getLogger("brickyard.server")

# Most specific first. A pipeline file that does not parse conflicts with the request.
STATUS: tuple[tuple[type[BrickyardError], int], ...] = (
    (RunNotFoundError, 404),
    (ConfigError, 409),
    (LaunchError, 503),
    (BrickyardError, 400),
)


_HTTP_HINTS = {
    400: 'send a UTF-8 JSON body, e.g. {"full_refresh": true}',  # FastAPI could not decode the body
    404: "see /docs for the API",
    405: "see /docs for the API",
}


class ApiError(Exception):
    """An error response: status, message, hint and extra headers."""

    def __init__(
        self, status: int, error: str, *, hint: str | None = None, headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.hint = hint
        self.headers = headers or {}
        self.extra = extra or {}

    @classmethod
    def from_brickyard(cls, exc: BrickyardError, status: int | None = None) -> ApiError:
        code = status or next(code for kind, code in STATUS if isinstance(exc, kind))
        return cls(code, exc.message, hint=exc.hint)

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"error": self.error, "hint": self.hint, **self.extra}, status_code=self.status, headers=self.headers
        )


def install(app: FastAPI) -> None:
    """Make every error of `app` a JSON `{"error", "hint"}` body."""

    @app.exception_handler(ApiError)
    async def _api(_request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(BrickyardError)
    async def _brickyard(_request: Request, exc: BrickyardError) -> JSONResponse:
        return ApiError.from_brickyard(exc).response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        content_type = request.headers.get("content-type")
        if content_type and not _is_json(content_type) and await request.body():
            return ApiError(415, f"content type {content_type!r} is not supported", hint="send application/json").response()
        return validation_error(exc.errors()).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        hint = _HTTP_HINTS.get(exc.status_code)
        return ApiError(exc.status_code, str(exc.detail), hint=hint, headers=dict(exc.headers or {})).response()

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return ApiError(500, "internal server error", hint="see the server log").response()


def validation_error(errors: Any) -> ApiError:
    """A 422 naming each bad field (`body.full_refresh: Input should be a valid boolean`)."""
    problems = []
    fields = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        if error.get("type") == "json_invalid":
            loc = ["body"]
        elif loc and loc[0] == "body" and len(loc) > 1:
            loc = loc[1:]
        where = ".".join(loc) or "body"
        fields.append(where)
        message = error.get("msg", "invalid")
        if error.get("type") == "extra_forbidden":
            message = "unknown field"
        elif error.get("type") == "json_invalid":
            message = "the request body is not valid JSON"
        problems.append(f"{where}: {message}")
    return ApiError(
        422, "invalid request: " + "; ".join(problems),
        hint='the body is optional; when sent it is JSON like {"full_refresh": true}',
        extra={"fields": fields},
    )


def _is_json(content_type: str) -> bool:
    """`application/json` or `application/*+json` (parameters ignored), as FastAPI parses bodies."""
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))
