"""The OpenAPI document of `brickyard serve`: every status each route answers, with its body
and headers, and the scoring request body from the loaded model's signature.

All of this is metadata: it is built when `/openapi.json` is asked for, never per request.
tests/unit/serving/test_serving_openapi.py fuzzes the app with schemathesis and checks that
real answers fit the document.
"""

from __future__ import annotations

from typing import Any

from brickyard.serving.errors import (
    ForbiddenError,
    InvalidInputError,
    NotReadyError,
    PayloadTooLargeError,
    RateLimitedError,
    ServingError,
    SignatureMismatchError,
    UnauthenticatedError,
    UnsupportedMediaError,
)

JSON = "application/json"
CSV = "text/csv"
BEARER = "bearer"
ERROR_REF = {"$ref": "#/components/schemas/ServingError"}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "MLflow's scoring-server error body; `column` names the input column at fault, when there is one.",
    "properties": {
        "error_code": {"type": "string", "enum": sorted({
            cls.error_code for cls in (ServingError, InvalidInputError, SignatureMismatchError, PayloadTooLargeError,
                                       UnsupportedMediaError, UnauthenticatedError, ForbiddenError, RateLimitedError, NotReadyError)
        })},
        "message": {"type": "string"},
        "column": {"type": "string"},
    },
    "required": ["error_code", "message"],
    "additionalProperties": False,
}
_TEXT = {"schema": {"type": "string"}}
_REQUEST_ID = {"schema": {"type": "string", "maxLength": 128}, "required": True,
               "description": "the request's X-Request-Id (its first 128 characters), or a new id"}
_MODEL_HEADERS = {
    "X-Model-Name": {"schema": {"type": "string"}, "required": True, "description": "the registered model that answered"},
    "X-Model-Version": {"schema": {"type": "string"}, "required": True},
    "X-Served-By": {"schema": {"type": "string", "enum": ["champion", "challenger"]}, "required": True},
}
_RETRY_AFTER = {"schema": {"type": "string", "pattern": "^[0-9]+$"}, "required": True, "description": "seconds"}
_IGNORED = {
    "schema": {"type": "string"},
    "required": False,
    "description": "the request's columns that the model's signature does not name, ignored: a JSON array "
    "(ASCII, at most 20 names, then \"...\"); absent when there were none",
}
# MLflow's scoring-server routes answer bodies that are not JSON under application/json; no
# schema is given, so nothing claims they parse.
PING_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Every champion is loaded: a newline (MLflow's answer)", "content": {JSON: {}}},
    503: {"description": "A champion is not loaded yet: a newline", "content": {JSON: {}},
          "headers": {"Retry-After": _RETRY_AFTER}},
}
VERSION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The version of MLflow that loads the models, as text (MLflow's answer)",
        "content": {JSON: {}},
        "headers": {"X-Brickyard-Version": {"schema": {"type": "string"}, "required": True}},
    },
}


def _error(description: str, **headers: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"X-Request-Id": _REQUEST_ID, **{name.replace("_", "-"): value for name, value in headers.items()}},
        "content": {JSON: {"schema": ERROR_REF}},
    }


PREDICTIONS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "predictions": {"type": "array", "description": "one per row: a label, or with predict_proba one list of class probabilities"},
        "classes": {"type": "array", "description": "with predict_proba: the classes, in the order of each row's probabilities"},
    },
    "required": ["predictions"],
    "additionalProperties": False,
}


def invocation_responses(*, auth: bool) -> dict[str, Any]:
    """What `POST .../invocations` answers; 401, 403 and 429 only when tokens are checked."""
    responses: dict[str, Any] = {
        "200": {
            "description": "Predictions (class probabilities with predict_proba); `[]` for a request with no rows",
            "headers": {"X-Request-Id": _REQUEST_ID, **_MODEL_HEADERS, "X-Ignored-Columns": _IGNORED},
            "content": {JSON: {"schema": PREDICTIONS}},
        },
        "400": _error(
            "Invalid input: the message names the column, the row and the problem. error_code is "
            "INVALID_PARAMETER_VALUE for a missing column (as MLflow's server), BAD_REQUEST otherwise"
        ),
        "413": _error("Body or row count over the endpoint's limit (max_body_bytes, max_rows)"),
        "415": _error("A Content-Type other than application/json or text/csv, a charset other than UTF-8, or another parameter"),
        "503": _error("The model is still loading", Retry_After=_RETRY_AFTER),
    }
    if auth:
        responses["401"] = _error("No, malformed, unknown or revoked bearer token", WWW_Authenticate={"schema": {"type": "string"}, "required": True})
        responses["403"] = _error("The token's role may not score")
        responses["429"] = _error("Over the token's rate limit", Retry_After=_RETRY_AFTER)
    return dict(sorted(responses.items()))


# Values `?predict_proba=` takes (any case), spelled out because JSON Schema patterns have no flags.
_BOOLEAN_WORDS = "^(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|[Yy][Ee][Ss]|[Nn][Oo]|1|0)$"
INVOCATION_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "predict_proba",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "pattern": _BOOLEAN_WORDS},
        "description": "true/yes/1: answer class probabilities instead of labels (same as params.predict_proba); false/no/0: labels",
    },
    {
        "name": "X-Request-Id",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "echoed in the answer's X-Request-Id and the inference log (first 128 characters); a new id when absent",
    },
]

_CHAMPION = {
    "type": "object",
    "properties": {
        "alias": {"type": "string"},
        "loaded": {"type": "boolean"},
        "version": {"type": "string"},
        "path": {"type": "string", "description": "`fastpath` (compiled) or `pyfunc`"},
    },
    "required": ["alias", "loaded"],
}
STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ready": {"type": "boolean"},
        "auth": {"type": "boolean"},
        "endpoints": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "model": {"type": "string"},
                    "champion": _CHAMPION,
                    "challenger": _CHAMPION,
                    "traffic": {"type": "string", "enum": ["shadow", "canary"]},
                    "canary_percent": {"type": "number"},
                    "rolled_back": {"type": "boolean"},
                    "error": {"type": "string", "description": "why the champion is not loaded"},
                },
                "required": ["model", "champion"],
            },
        },
    },
    "required": ["ready", "auth", "endpoints"],
}
HEALTH_SCHEMA: dict[str, Any] = {
    "type": "object", "properties": {"status": {"type": "string", "enum": ["ok"]}}, "required": ["status"],
}


def json_answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def document_auth(doc: dict[str, Any], *, auth: bool) -> dict[str, Any]:
    """Add the shared parts to a generated document: the error body, and the bearer scheme
    when tokens are checked."""
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {})["ServingError"] = ERROR_SCHEMA
    if auth:
        components["securitySchemes"] = {
            BEARER: {"type": "http", "scheme": "bearer", "description": "a token of role reader or above (`brickyard tokens create`)"},
        }
    return doc


def invocation_operation(
    operation: dict[str, Any], body_schema: dict[str, Any], *, auth: bool, csv_example: str | None = None, strict: bool = False
) -> None:
    """Fill in one scoring operation: its body (JSON or CSV), parameters, answers and security."""
    csv_body: dict[str, Any] = {
        "type": "string",
        "description": "a header row of column names, then one line per row (pandas' to_csv(index=False)); "
        "empty cells and pandas' NA words are null; each cell is typed by the signature"
        + ("" if strict else "; other columns are ignored"),
    }
    if csv_example is not None:
        csv_body["example"] = csv_example
    operation["requestBody"] = {"required": True, "content": {JSON: {"schema": body_schema}, CSV: {"schema": csv_body}}}
    operation["parameters"] = INVOCATION_PARAMETERS
    operation["responses"] = invocation_responses(auth=auth)
    if auth:
        operation["security"] = [{BEARER: []}]
