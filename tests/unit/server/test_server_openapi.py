"""The control plane's OpenAPI document is true: schemathesis sends generated requests (valid
and invalid) to every operation, with a token, without one and with one of too low a role,
and every answer must be documented (status, content type, headers, body); see
tests/openapi_fuzz.py."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from schemathesis.python import asgi

from brickyard import Workspace
from brickyard.runtime.records import RunRecord
from brickyard.runtime.state import StateStore
from brickyard.server.app import MAX_KEY_LENGTH, create_app
from openapi_fuzz import NEGATIVE, POSITIVE, Outcome, fuzz, load, operations

EXAMPLES = 40


def bearer(header: str) -> str:
    return header.removeprefix("Bearer ")


@pytest.fixture
def app(job_workspace: Workspace) -> Any:
    """The app over the `hello` workspace, plus `nightly` (a schedule and a file trigger) and,
    written once the app has read its triggers, `broken` (a file that does not parse, so 409s).
    Runs are recorded, not executed."""
    pipelines = job_workspace.root / "pipelines"
    (pipelines / "nightly.yaml").write_text(
        'schedule: "0 6 * * *"\ntrigger: {file_arrival: raw/in/}\ntasks: [{name: t, kind: python, function: "mymodule:fn"}]\n'
    )
    spawned: list[RunRecord] = []
    app = create_app(job_workspace, spawn=lambda _ws, run: spawned.append(run))
    (pipelines / "broken.yaml").write_text("tasks: [{name: t\n")
    return app


@pytest.fixture
def run_id(job_workspace: Workspace) -> str:
    return StateStore(job_workspace.state_url).create_run("hello", "http").id


def key_reused_for_another_request(case: Any, response: Any, failure: Any) -> bool:
    """A valid request may still be refused for the server's state: an `Idempotency-Key`
    sent before with another `full_refresh` is a documented 422 (as the IETF
    Idempotency-Key draft says), which schemathesis's positive check would call a refusal."""
    return failure.title == "Schema-valid request rejected" and response.status_code == 422 and "was used for run" in response.text


def test_every_answer_matches_the_openapi_document(app: Any, tokens: dict[str, str], run_id: str) -> None:
    schema = load(app, bearer=bearer(tokens["admin"]))
    # Besides generated names and ids, the pipelines and the run that exist (for real 200s,
    # 202s and 409s).
    real = {"/api/jobs/{name}/runs": [{"name": "hello"}, {"name": "broken"}], "/api/runs/{run_id}": [{"run_id": run_id}]}
    outcome = Outcome()
    try:
        for operation in operations(schema):
            for mode in (POSITIVE, NEGATIVE):
                outcome.add(fuzz(operation, mode, examples=EXAMPLES, tolerate=key_reused_for_another_request))
                for pinned in real.get(operation.path, []):
                    outcome.add(fuzz(operation, mode, examples=EXAMPLES // 2, tolerate=key_reused_for_another_request, path_parameters=pinned))
    finally:
        asgi.shutdown_lifespans()
    assert not outcome.findings, outcome.report()
    assert {200, 202, 404, 409, 422} <= set(outcome.statuses), outcome.statuses
    assert outcome.calls > 500


def test_requests_without_a_token_or_with_too_low_a_role_get_documented_401s_and_403s(app: Any, tokens: dict[str, str]) -> None:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    answer_checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance, response_schema_conformance]
    outcome = Outcome()
    try:
        for operation in operations(load(app)):
            if operation.definition.raw.get("security"):
                anonymous = fuzz(operation, POSITIVE, examples=10, checks=answer_checks)
                assert set(anonymous.statuses) == {401}, (operation.label, anonymous.statuses)
                outcome.add(anonymous)
        start = next(op for op in operations(load(app, bearer=bearer(tokens["reader"]))) if op.label == "POST /api/jobs/{name}/runs")
        reader = fuzz(start, POSITIVE, examples=10, checks=answer_checks)
        assert set(reader.statuses) == {403}, reader.statuses
        outcome.add(reader)
    finally:
        asgi.shutdown_lifespans()
    assert not outcome.findings, outcome.report()


def test_the_document_states_the_idempotency_key_limit_the_app_enforces(serve: Any, app: Any, tokens: dict[str, str]) -> None:
    client: httpx.Client = serve(app)
    (key,) = [p for p in client.get("/openapi.json").json()["paths"]["/api/jobs/{name}/runs"]["post"]["parameters"] if p["in"] == "header"]
    assert key["name"] == "Idempotency-Key" and key["schema"] == {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH}
    auth = {"Authorization": tokens["runner"]}
    assert client.post("/api/jobs/hello/runs", headers={**auth, "Idempotency-Key": "k" * MAX_KEY_LENGTH}).status_code == 202
    too_long = client.post("/api/jobs/hello/runs", headers={**auth, "Idempotency-Key": "k" * (MAX_KEY_LENGTH + 1)})
    assert too_long.status_code == 422 and too_long.json()["fields"] == ["Idempotency-Key"]


def test_a_body_that_is_not_json_is_415(serve: Any, app: Any, tokens: dict[str, str]) -> None:
    """It was a 422 saying the body should be an object, which hid that the type was wrong."""
    client: httpx.Client = serve(app)
    auth = {"Authorization": tokens["runner"]}
    response = client.post("/api/jobs/hello/runs", content=b"full_refresh=true",
                           headers={**auth, "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert response.json() == {"error": "content type 'application/x-www-form-urlencoded' is not supported", "hint": "send application/json"}
    json_suffix = client.post("/api/jobs/hello/runs", content=b'{"full_refresh": true}',
                              headers={**auth, "Content-Type": "application/merge-patch+json"})
    assert json_suffix.status_code == 202
