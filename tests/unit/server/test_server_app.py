"""The control-plane API over a real uvicorn server and httpx: auth, errors, idempotency,
and real runs executed by `brickyard run` processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from brickyard import Workspace
from brickyard.errors import ConfigError
from brickyard.runtime.records import RUNS, RunRecord
from brickyard.runtime.state import StateStore
from brickyard.runtime.tokens import TokenStore
from brickyard.server.app import create_app

Serve = Callable[[Any], httpx.Client]


class Spawned(list[RunRecord]):
    def __call__(self, _ws: Workspace, run: RunRecord) -> None:
        self.append(run)


@pytest.fixture
def spawned() -> Spawned:
    return Spawned()


@pytest.fixture
def client(serve: Serve, job_workspace: Workspace, spawned: Spawned) -> httpx.Client:
    """A server whose runs are recorded, not executed."""
    return serve(create_app(job_workspace, spawn=spawned))


def wait_for(client: httpx.Client, run_id: str, auth: str, final: tuple[str, ...] = ("succeeded", "failed")) -> tuple[dict[str, Any], list[str]]:
    seen: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = client.get(f"/api/runs/{run_id}", headers={"Authorization": auth}).json()
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        if body["status"] in final:
            return body, seen
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish: {seen}")


def test_healthz_needs_no_token(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["triggers"] == "running"


@pytest.mark.parametrize(
    ("header", "needle"),
    [(None, "missing bearer token"), ("Basic dXNlcjpwYXNz", "must be `Bearer <token>`"),
     ("Bearer bky_not-a-real-token-at-all-xxxxxxxxxx", "invalid or revoked"), ("Bearer", "must be")],
)
def test_401_without_a_valid_token(client: httpx.Client, spawned: Spawned, header: str | None, needle: str) -> None:
    response = client.post("/api/jobs/hello/runs", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert needle in response.json()["error"]
    assert "brickyard tokens" in response.json()["hint"]
    assert client.get("/api/jobs/hello/runs").status_code == 401
    assert spawned == []


def test_revoked_token_is_401_at_once(client: httpx.Client, job_workspace: Workspace) -> None:
    store = TokenStore(job_workspace.state_url)
    record, token = store.create("admin")
    assert client.get("/api/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    store.revoke(record.id)
    assert client.get("/api/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_reader_may_read_but_not_start_runs(client: httpx.Client, tokens: dict[str, str], spawned: Spawned) -> None:
    response = client.post("/api/jobs/hello/runs", headers={"Authorization": tokens["reader"]})
    assert response.status_code == 403
    assert response.json()["error"].endswith("has role reader; this needs runner or above")
    assert client.get("/api/jobs/hello/runs", headers={"Authorization": tokens["reader"]}).status_code == 200
    assert client.post("/api/jobs/hello/runs", headers={"Authorization": tokens["admin"]}).status_code == 202
    assert len(spawned) == 1


@pytest.mark.parametrize("name", ["helo", "Hello", "..", "..%2Fbrickyard", "hello.yaml"])
def test_unknown_pipeline_is_404_with_close_names(client: httpx.Client, tokens: dict[str, str], name: str) -> None:
    response = client.post(f"/api/jobs/{name}/runs", headers={"Authorization": tokens["runner"]})
    assert response.status_code == 404
    body = response.json()
    assert "no pipeline" in body["error"] or body["error"] == "Not Found"
    if name == "helo":
        assert body["hint"] == "did you mean hello?"


@pytest.mark.parametrize(
    ("content", "field", "needle"),
    [
        (b'{"full_refresh": "yes please"}', "full_refresh", "valid boolean"),
        (b'{"full_refresh": 1}', "full_refresh", "valid boolean"),
        (b'{"full_refersh": true}', "full_refersh", "unknown field"),
        (b"[true]", "body", "dictionary"),
        (b"{not json", "body", "not valid JSON"),
    ],
)
def test_bad_body_is_422_naming_the_field(
    client: httpx.Client, tokens: dict[str, str], spawned: Spawned, content: bytes, field: str, needle: str
) -> None:
    response = client.post(
        "/api/jobs/hello/runs", content=content,
        headers={"Authorization": tokens["runner"], "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    body = response.json()
    assert body["fields"] == [field] and f"{field}: " in body["error"] and needle in body["error"]
    assert body["hint"]
    assert spawned == []


def test_202_queues_a_run_and_spawns_it(client: httpx.Client, tokens: dict[str, str], spawned: Spawned, job_workspace: Workspace) -> None:
    response = client.post("/api/jobs/hello/runs", headers={"Authorization": tokens["runner"]}, json={"full_refresh": True})
    assert response.status_code == 202
    body = response.json()
    assert body == {"run_id": body["run_id"], "pipeline": "hello", "status": "queued"}
    assert response.headers["Location"] == f"/api/runs/{body['run_id']}"
    assert [r.id for r in spawned] == [body["run_id"]]
    record = StateStore(job_workspace.state_url).get_run(body["run_id"])
    assert record.status == "queued" and record.trigger == "http" and record.full_refresh
    detail = client.get(response.headers["Location"], headers={"Authorization": tokens["reader"]}).json()
    assert detail["tasks"] == [
        {"name": "greet", "status": "pending", "attempts": 0, "started_at": None, "finished_at": None,
         "wall_seconds": None, "cpu_seconds": None, "rows_in": None, "rows_out": None, "reads": {},
         "writes": {}, "error": None, "quarantined_rows": None, "quarantine": []}
    ]
    assert client.post("/api/jobs/hello/runs", headers={"Authorization": tokens["runner"]}).status_code == 202
    assert len(spawned) == 2


def test_idempotency_key_returns_the_same_run(client: httpx.Client, tokens: dict[str, str], spawned: Spawned) -> None:
    headers = {"Authorization": tokens["runner"], "Idempotency-Key": "order-42"}
    first = client.post("/api/jobs/hello/runs", headers=headers)
    retry = client.post("/api/jobs/hello/runs", headers=headers)
    assert first.status_code == retry.status_code == 202
    assert first.json()["run_id"] == retry.json()["run_id"]
    assert retry.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    other = client.post("/api/jobs/hello/runs", headers={**headers, "Idempotency-Key": "order-43"})
    assert other.json()["run_id"] != first.json()["run_id"]
    assert len(spawned) == 2
    conflict = client.post("/api/jobs/hello/runs", headers=headers, json={"full_refresh": True})
    assert conflict.status_code == 422 and "order-42" in conflict.json()["error"]
    too_long = client.post("/api/jobs/hello/runs", headers={**headers, "Idempotency-Key": "k" * 201})
    assert too_long.status_code == 422 and too_long.json()["fields"] == ["Idempotency-Key"]


def test_concurrent_retries_with_one_key_start_one_run(client: httpx.Client, tokens: dict[str, str], spawned: Spawned) -> None:
    headers = {"Authorization": tokens["runner"], "Idempotency-Key": "burst"}
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: client.post("/api/jobs/hello/runs", headers=headers), range(16)))
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["run_id"] for r in responses}) == 1
    assert len(spawned) == 1


def test_run_lists_and_unknown_run(client: httpx.Client, tokens: dict[str, str]) -> None:
    auth = {"Authorization": tokens["reader"]}
    ids = [client.post("/api/jobs/hello/runs", headers={"Authorization": tokens["runner"]}).json()["run_id"] for _ in range(3)]
    listed = client.get("/api/jobs/hello/runs", headers=auth, params={"limit": 2}).json()
    assert [r["run_id"] for r in listed["runs"]] == ids[::-1][:2]
    assert set(listed["runs"][0]) >= {"run_id", "pipeline", "status", "trigger", "created_at", "started_at", "finished_at", "error"}
    assert client.get("/api/jobs/nope/runs", headers=auth).status_code == 404
    assert client.get("/api/jobs/hello/runs", headers=auth, params={"limit": 0}).status_code == 422
    missing = client.get("/api/runs/20260101-000000-abcdef", headers=auth)
    assert missing.status_code == 404 and missing.json()["hint"]
    jobs = client.get("/api/jobs", headers=auth).json()["jobs"]
    assert jobs == [{"name": "hello", "description": "says hello", "schedule": None, "file_arrival": None,
                     "max_active_runs": 1, "tasks": ["greet"]}]
    assert client.get("/no/such/route").json() == {"error": "Not Found", "hint": "see /docs for the API"}


def test_a_real_run_goes_queued_running_succeeded(serve: Serve, job_workspace: Workspace, tokens: dict[str, str]) -> None:
    client = serve(create_app(job_workspace))
    response = client.post("/api/jobs/hello/runs", headers={"Authorization": tokens["runner"]}, json={"full_refresh": True})
    assert response.status_code == 202 and response.json()["status"] == "queued"
    run_id = response.json()["run_id"]
    body, seen = wait_for(client, run_id, tokens["reader"])
    assert body["status"] == "succeeded", body
    assert seen[-2:] == ["running", "succeeded"]
    assert body["trigger"] == "http" and body["error"] is None
    assert body["started_at"] and body["finished_at"] and body["finished_at"] >= body["started_at"]
    (task,) = body["tasks"]
    assert task["name"] == "greet" and task["status"] == "succeeded" and task["rows_out"] == 7 and task["attempts"] == 1
    assert (job_workspace.root / f"ran-{run_id}.txt").read_text() == "True"


def test_a_run_shows_the_rows_its_tasks_quarantined(client: httpx.Client, job_workspace: Workspace, tokens: dict[str, str]) -> None:
    import pyarrow as pa

    from brickyard.runtime.runner import PipelineRunner

    job_workspace.lake.write("bronze.trips", pa.table({"id": [1, 2, 3], "fare": [1.0, -1.0, -2.0]}))
    (job_workspace.root / "pipelines" / "clean.yaml").write_text(
        "tasks:\n"
        "  - name: clean\n"
        "    kind: sql\n"
        "    query: SELECT * FROM bronze.trips\n"
        "    target: silver.trips\n"
        "    expectations: [{sql: 'fare >= 0', name: fare_not_negative, action: drop}]\n"
        "  - {name: greet, kind: python, function: 'mymodule:fn', depends_on: [clean]}\n"
    )
    run_id = PipelineRunner(job_workspace).run("clean").run_id
    auth = {"Authorization": tokens["reader"]}
    body = client.get(f"/api/runs/{run_id}", headers=auth).json()
    assert body["status"] == "succeeded" and body["quarantined_rows"] == 2
    clean, greet = body["tasks"]
    assert clean["quarantined_rows"] == 2 and greet["quarantined_rows"] is None
    assert clean["quarantine"] == [
        {"table": "silver.trips__quarantine", "rows": 2, "versions": [0], "reasons": [["fare_not_negative", 2]]}
    ]
    assert greet["quarantine"] == []
    [listed] = client.get("/api/jobs/clean/runs", headers=auth).json()["runs"]
    assert listed["quarantined_rows"] == 2
    hello = client.post("/api/jobs/hello/runs", headers={"Authorization": tokens["runner"]}).json()["run_id"]
    assert client.get(f"/api/runs/{hello}", headers=auth).json()["quarantined_rows"] is None


def test_extra_triggers_queue_behind_the_active_run(serve: Serve, job_workspace: Workspace, tokens: dict[str, str]) -> None:
    client = serve(create_app(job_workspace))
    headers = {"Authorization": tokens["runner"]}
    first, second = (client.post("/api/jobs/hello/runs", headers=headers).json()["run_id"] for _ in range(2))
    one, _ = wait_for(client, first, tokens["reader"])
    two, _ = wait_for(client, second, tokens["reader"])
    assert one["status"] == two["status"] == "succeeded"
    # max_active_runs: 1, so the runs do not overlap (either may go first: the one whose
    # process claims its run first; times are taken a moment before each commit)
    earlier, later = sorted((one, two), key=lambda run: run["started_at"])
    gap = datetime.fromisoformat(later["started_at"]) - datetime.fromisoformat(earlier["finished_at"])
    assert gap > timedelta(seconds=-0.05), (earlier, later)


def test_start_up_fails_runs_whose_process_died(serve: Serve, job_workspace: Workspace, tokens: dict[str, str]) -> None:
    store = StateStore(job_workspace.state_url)
    run = store.create_run("hello", "http", status="running")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with store.engine.begin() as conn:
        conn.execute(sa.update(RUNS).where(RUNS.c.id == run.id).values(pid=dead.pid, pid_token=None))
    client = serve(create_app(job_workspace, spawn=Spawned()))
    body = client.get(f"/api/runs/{run.id}", headers={"Authorization": tokens["reader"]}).json()
    assert body["status"] == "failed" and "died" in body["error"]


def test_bad_cron_stops_the_app_from_starting(job_workspace: Workspace) -> None:
    (job_workspace.root / "pipelines" / "nightly.yaml").write_text(
        'schedule: "0 25 * * *"\ntasks: [{name: t, kind: python, function: "mymodule:fn"}]\n'
    )
    with pytest.raises(ConfigError, match=r"nightly.yaml:1: schedule: invalid cron expression"):
        create_app(job_workspace)
    assert create_app(job_workspace, triggers=False) is not None


def test_the_cli_does_not_import_fastapi() -> None:
    probe = "import sys, brickyard.cli.app; print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr
