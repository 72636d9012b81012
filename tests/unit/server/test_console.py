"""The web console over a real uvicorn server and httpx (no browser): sessions, roles,
CSRF, and that the JSON API is unchanged. The browser tests are tests/e2e/test_console_browser.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from brickyard import Workspace
from brickyard.runtime.records import RunRecord
from brickyard.runtime.state import StateStore
from brickyard.runtime.tokens import TokenStore
from brickyard.server.app import create_app
from brickyard.server.console.session import COOKIE, Sessions

Serve = Callable[[Any], httpx.Client]
PAGES = ["/", "/tables", "/pipelines", "/pipelines/hello", "/runs", "/models", "/endpoints", "/monitors",
         "/features", "/sql", "/lineage"]


class Spawned(list[RunRecord]):
    def __call__(self, _ws: Workspace, run: RunRecord) -> None:
        self.append(run)


@pytest.fixture
def spawned() -> Spawned:
    return Spawned()


@pytest.fixture
def client(serve: Serve, job_workspace: Workspace, spawned: Spawned) -> httpx.Client:
    return serve(create_app(job_workspace, spawn=spawned, triggers=False))


def raw_tokens(ws: Workspace) -> dict[str, str]:
    store = TokenStore(ws.state_url)
    return {role: store.create(role, name=role)[1] for role in ("reader", "runner")}


def log_in(client: httpx.Client, token: str) -> httpx.Response:
    client.cookies.clear()
    return client.post("/login", data={"token": token, "next": "/runs"}, follow_redirects=False)


def csrf(client: httpx.Client) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/sql").text)
    assert found, "no CSRF field on the SQL page"
    return found.group(1)


def test_without_a_session_every_page_redirects_to_the_login_page(client: httpx.Client) -> None:
    for path in PAGES:
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next="), path
    login = client.get("/login")
    assert login.status_code == 200 and 'name="token"' in login.text and "<nav>" not in login.text
    forged = f"{'ab12cd34'}.9999999999.{'0' * 64}"
    client.cookies.set(COOKIE, forged)
    assert client.get("/runs", follow_redirects=False).status_code == 303


def test_logging_in_sets_a_signed_httponly_strict_cookie_that_is_not_the_token(
    client: httpx.Client, job_workspace: Workspace,
) -> None:
    token = raw_tokens(job_workspace)["reader"]
    answer = log_in(client, token)
    assert answer.status_code == 303 and answer.headers["location"] == "/runs"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert token not in cookie and "bky_" not in cookie
    assert client.get("/runs").status_code == 200
    refused = client.post("/login", data={"token": "bky_wrong", "next": "/"})
    assert refused.status_code == 401 and "not valid" in refused.text
    offsite = client.post("/login", data={"token": token, "next": "//evil.example/x"}, follow_redirects=False)
    assert offsite.headers["location"] == "/"


def test_a_reader_cannot_trigger_and_a_runner_can(
    client: httpx.Client, job_workspace: Workspace, spawned: Spawned,
) -> None:
    tokens = raw_tokens(job_workspace)
    log_in(client, tokens["reader"])
    page = client.get("/pipelines/hello").text
    assert 'id="trigger"' not in page and "needs a runner token" in page
    refused = client.post("/pipelines/hello/run", data={"csrf": csrf(client)}, follow_redirects=False)
    assert refused.status_code == 403 and "needs runner or above" in refused.text
    assert spawned == []

    log_in(client, tokens["runner"])
    assert 'id="trigger"' in client.get("/pipelines/hello").text
    forged = client.post("/pipelines/hello/run", data={"csrf": "0" * 64}, follow_redirects=False)
    assert forged.status_code == 403 and spawned == []
    started = client.post("/pipelines/hello/run", data={"csrf": csrf(client)}, follow_redirects=False)
    assert started.status_code == 303
    [run] = spawned
    assert started.headers["location"] == f"/runs/{run.id}"
    assert (run.pipeline, run.trigger) == ("hello", "console")
    shown = client.get(f"/runs/{run.id}").text
    assert f"Run {run.id}" in shown and "trigger console" in shown
    assert run.id in client.get("/pipelines/hello").text


def test_the_json_api_still_wants_a_bearer_token(client: httpx.Client, job_workspace: Workspace) -> None:
    tokens = raw_tokens(job_workspace)
    log_in(client, tokens["runner"])
    assert client.get("/api/jobs").status_code == 401  # the session cookie does not open the API
    answer = client.get("/api/jobs", headers={"Authorization": f"Bearer {tokens['reader']}"})
    assert answer.status_code == 200 and [job["name"] for job in answer.json()["jobs"]] == ["hello"]
    assert "server-timing" not in answer.headers


def test_revoking_a_token_ends_its_sessions(client: httpx.Client, job_workspace: Workspace) -> None:
    store = TokenStore(job_workspace.state_url)
    record, token = store.create("reader", name="leaving")
    log_in(client, token)
    assert client.get("/runs").status_code == 200
    store.revoke(record.id)
    assert client.get("/runs", follow_redirects=False).status_code == 303


def test_runs_are_paged(client: httpx.Client, job_workspace: Workspace) -> None:
    store = StateStore(job_workspace.state_url)
    made = [store.create_run("hello", trigger="manual") for _ in range(30)]
    log_in(client, raw_tokens(job_workspace)["reader"])
    first = client.get("/runs").text
    assert made[-1].id in first and made[4].id not in first and "1–25 of 30" in first
    second = client.get("/runs?offset=25").text
    assert made[0].id in second and made[-1].id not in second and "26–30 of 30" in second


def test_a_session_expires() -> None:
    sessions = Sessions(ttl_seconds=10)
    value = sessions.sign("ab12cd34", now=100.0)
    assert sessions.token_id(value, now=105.0) == "ab12cd34"
    assert sessions.token_id(value, now=111.0) is None
    assert Sessions().token_id(value, now=105.0) is None  # another server's key


def test_what_does_not_exist_is_a_404_page(client: httpx.Client, job_workspace: Workspace) -> None:
    log_in(client, raw_tokens(job_workspace)["reader"])
    for path, says in [("/runs/20250101-000000-000000", "20250101-000000-000000"), ("/tables/bronze.nope", "bronze.nope"),
                       ("/monitors/nope", "no monitor &#39;nope&#39;"), ("/pipelines/nope", "no pipeline &#39;nope&#39;")]:
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert says in answer.text and "<nav>" in answer.text, path
