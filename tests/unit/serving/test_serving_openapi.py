"""Serving's OpenAPI document is true: schemathesis sends generated requests (valid and
invalid) to every operation, with a token and without, and every answer must be documented
(status, content type, headers, body); see tests/openapi_fuzz.py. Also: `/metrics` is text,
and a request with no rows is answered with no predictions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from schemathesis.python import asgi
from serving_helpers import COLUMNS, with_endpoints
from starlette.testclient import TestClient

from brickyard import Workspace
from brickyard.runtime.tokens import TokenStore
from brickyard.serving.app import create_app
from brickyard.serving.service import ModelRef, ServingService
from openapi_fuzz import NEGATIVE, POSITIVE, Outcome, fuzz, load, operations
from titanic_example import RegisteredExample

Serve = Callable[..., TestClient]
# What JSON Schema cannot state about a scoring body, so a body that fits the document may
# still be a 400 (the message says which): rows of `dataframe_split` are positional (a value's
# type depends on its column), columns given as lists must be equally long, and the
# signature's required columns must be there once there are rows.
BEYOND_JSON_SCHEMA = ("have different lengths", "values for", "missing column")


def refused_for_what_json_schema_cannot_state(case: Any, response: Any, failure: Any) -> bool:
    if case.media_type == "text/csv" and response.status_code in (200, 400) and failure.title in (
        "Schema-valid request rejected", "Schema-violating request accepted"
    ):
        # A CSV body is any text: JSON Schema states nothing about its rows, and whatever the
        # generator meant to break is text on the wire, which the server reads as CSV.
        return True
    if failure.title != "Schema-valid request rejected" or response.status_code != 400:
        return False
    positional = isinstance(case.body, dict) and "dataframe_split" in case.body
    return positional or any(words in response.text for words in BEYOND_JSON_SCHEMA)


def scoring_app(ws: Workspace, *, auth: bool) -> Any:
    ws = with_endpoints(ws, titanic={"max_body_bytes": 65536, "log": False})
    return create_app(ServingService(ws, [ModelRef.parse("titanic")], auth=auth))


@pytest.fixture
def app(serving_ws: Workspace, titanic: RegisteredExample) -> Iterator[Any]:
    yield scoring_app(serving_ws, auth=True)
    asgi.shutdown_lifespans()


@pytest.fixture
def token(serving_ws: Workspace) -> str:
    return TokenStore(serving_ws.state_url).create("reader", name="openapi fuzz")[1]


def test_every_answer_matches_the_openapi_document(app: Any, token: str) -> None:
    outcome = Outcome()
    for operation in operations(load(app, bearer=token)):
        scoring = operation.method.upper() == "POST"
        for mode in (POSITIVE, NEGATIVE):
            outcome.add(fuzz(operation, mode, examples=60 if scoring else 10, tolerate=refused_for_what_json_schema_cannot_state))
    assert not outcome.findings, outcome.report()
    assert {200, 400} <= set(outcome.statuses), outcome.statuses
    assert outcome.calls > 200


def test_without_tokens_the_document_has_no_auth_and_still_matches(serving_ws: Workspace, titanic: RegisteredExample) -> None:
    """`brickyard serve --no-auth`: no bearer scheme, no 401/403/429, and answers still fit."""
    outcome = Outcome()
    try:
        schema = load(scoring_app(serving_ws, auth=False))
        assert "securitySchemes" not in schema.raw_schema["components"]
        for operation in operations(schema):
            assert not {"401", "403", "429"} & set(operation.definition.raw["responses"]), operation.label
            for mode in (POSITIVE, NEGATIVE):
                outcome.add(fuzz(operation, mode, examples=20, tolerate=refused_for_what_json_schema_cannot_state))
    finally:
        asgi.shutdown_lifespans()
    assert not outcome.findings, outcome.report()
    assert 200 in outcome.statuses and outcome.calls > 80


def test_requests_without_a_token_get_documented_401s(app: Any) -> None:
    outcome = Outcome()
    for operation in operations(load(app)):
        if operation.definition.raw.get("security"):
            anonymous = fuzz(operation, POSITIVE, examples=10)
            assert set(anonymous.statuses) == {401}, (operation.label, anonymous.statuses)
            outcome.add(anonymous)
    assert outcome.calls >= 20 and not outcome.findings, outcome.report()


def test_metrics_are_documented_as_prometheus_text(serve: Serve, serving_ws: Workspace) -> None:
    client = serve(serving_ws, "titanic")
    answer = client.get("/openapi.json").json()["paths"]["/metrics"]["get"]["responses"]["200"]
    assert list(answer["content"]) == ["text/plain"]
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain") and "brickyard_serving_requests" in response.text


EMPTY = {
    "dataframe_split": {"dataframe_split": {"columns": COLUMNS, "data": []}},
    "dataframe_records": {"dataframe_records": []},
    "instances": {"instances": []},
    "inputs": {"inputs": []},
    "inputs-columns": {"inputs": {name: [] for name in COLUMNS}},
}


@pytest.mark.parametrize("fast", [True, False], ids=["fastpath", "pyfunc"])
def test_a_request_with_no_rows_gets_no_predictions(serve: Serve, serving_ws: Workspace, titanic: RegisteredExample, fast: bool) -> None:
    """Zero rows in every MLflow format is a 200 with `[]` (MLflow's own server answers 400
    for these; a client batching whatever arrived should not have to special-case none)."""
    client = serve(serving_ws, "titanic")
    if not fast:  # score through the MLflow pyfunc model, which (like scikit-learn) refuses empty input
        import mlflow.pyfunc

        from brickyard.serving.registry import PyfuncPredictor

        endpoint = client.app.service.endpoints["titanic"]  # type: ignore[attr-defined]
        pyfunc = mlflow.pyfunc.load_model(titanic.model_uri)
        endpoint.champion = type(endpoint.champion)(**{**vars(endpoint.champion), "predictor": PyfuncPredictor(pyfunc)})
    for name, body in EMPTY.items():
        response = client.post("/invocations", json=body)
        assert (response.status_code, response.json()) == (200, {"predictions": []}), name
        proba = client.post("/invocations?predict_proba=true", json=body)
        assert (proba.status_code, proba.json()) == (200, {"predictions": [], "classes": [0, 1]}), name
    header_only = client.post("/invocations", content=",".join(COLUMNS) + "\n", headers={"Content-Type": "text/csv"})
    assert (header_only.status_code, header_only.json()) == (200, {"predictions": []})
    unknown = client.post("/invocations", json={"dataframe_split": {"columns": ["Cabin"], "data": []}})
    assert (unknown.status_code, unknown.json(), unknown.headers["x-ignored-columns"]) == (200, {"predictions": []}, '["Cabin"]')
