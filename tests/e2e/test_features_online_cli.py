"""The online store end to end: `brickyard features materialize/get`, a `materialize` task in a
pipeline, and keys-only requests over real HTTP to `brickyard serve` (SQLite and Redis)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from cli_helpers import brickyard, free_port

from brickyard import Workspace
from feature_store_example import BASE_FEATURES, KEY, as_of, feature_rows, register_feature_model, write_feature_table

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TTL = timedelta(days=30)


def workspace(folder: Path, online_store: str | None = None) -> Workspace:
    ws = Workspace.init(folder)
    if online_store:
        ws.config_path.write_text(ws.config_path.read_text() + f"\nonline_store: {online_store}\nname: e2e-{os.getpid()}-{folder.name}\n")
    return Workspace.open(ws.root)


def test_materialize_get_and_a_rerun_through_the_cli(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws")
    now = datetime.now(UTC)
    rows = feature_rows(range(20), now)
    write_feature_table(ws, rows)
    first = brickyard("features", "materialize", "customer_stats", cwd=ws.root)
    assert first.returncode == 0, first.stderr
    assert "features.customer_stats: version 0, 60 rows read, 20 rows written to sqlite:///" in first.stdout
    again = brickyard("features", "materialize", "customer_stats", cwd=ws.root)
    assert "features.customer_stats is up to date at version 0" in again.stdout and "nothing written" in again.stdout
    live = next(c for c in range(20) if as_of(rows, c, now, TTL, BASE_FEATURES)["segment"] is not None)
    got = brickyard("features", "get", "customer_stats", str(live), "424242", "--format", "json", cwd=ws.root)
    assert got.returncode == 0, got.stderr
    found = json.loads(got.stdout)
    assert found[0]["status"] == "live" and found[0]["values"] == as_of(rows, live, datetime.now(UTC), TTL, BASE_FEATURES)
    assert found[1]["status"] == "missing" and found[1]["values"] is None
    table = brickyard("features", "get", "customer_stats", str(live), cwd=ws.root)
    assert "live" in table.stdout and "segment" in table.stdout
    past = now - timedelta(days=20)
    offline = brickyard("features", "get", "customer_stats", str(live), "--at", past.isoformat(), "--format", "json", cwd=ws.root)
    expected = as_of(rows, live, past, TTL, BASE_FEATURES)
    assert json.loads(offline.stdout)[0]["values"] == (expected if any(v is not None for v in expected.values()) else None)


def test_cli_errors_name_the_problem(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws")
    write_feature_table(ws, feature_rows(range(2), datetime.now(UTC)))
    unknown = brickyard("features", "materialize", "customer_stat", cwd=ws.root)
    assert unknown.returncode == 1 and "no feature table 'customer_stat'" in unknown.stderr and "customer_stats" in unknown.stderr
    never = brickyard("features", "get", "customer_stats", "1", cwd=ws.root)
    assert never.returncode == 1 and "was never materialized" in never.stderr
    bad_time = brickyard("features", "get", "customer_stats", "1", "--at", "yesterday", cwd=ws.root)
    assert bad_time.returncode == 2 and "'yesterday' is not a date or timestamp" in bad_time.stderr
    (ws.root / "pipelines" / "push.yaml").write_text("tasks:\n  - name: push\n    kind: materialize\n    table: customer_stat\n")
    invalid = brickyard("validate", cwd=ws.root)
    assert invalid.returncode == 1 and "push.yaml:4" in invalid.stdout + invalid.stderr
    assert "no feature table 'customer_stat'" in invalid.stdout + invalid.stderr
    (ws.root / "pipelines" / "push.yaml").unlink()
    ws.config_path.write_text(ws.config_path.read_text() + "online_store: redis//localhost:6379\n")
    bad_url = brickyard("features", "materialize", "customer_stats", cwd=ws.root)
    assert bad_url.returncode == 1
    assert f"{ws.config_path}:" in bad_url.stderr and "online_store" in bad_url.stderr and "redis://HOST:PORT/DB" in bad_url.stderr


@pytest.mark.redis
def test_a_materialize_task_in_a_pipeline_writes_to_redis(tmp_path: Path, redis_url: str) -> None:
    ws = workspace(tmp_path / "ws", redis_url)
    write_feature_table(ws, feature_rows(range(15), datetime.now(UTC), days=(0,)))
    (ws.root / "pipelines" / "push.yaml").write_text(
        "tasks:\n  - name: push_stats\n    kind: materialize\n    table: customer_stats\n"
    )
    run = brickyard("run", "push", cwd=ws.root)
    assert run.returncode == 0, run.stdout + run.stderr
    states = brickyard("features", "get", "customer_stats", "3", "--format", "json", cwd=ws.root)
    assert json.loads(states.stdout)[0]["status"] in ("live", "expired")
    first = brickyard("run-show", run.stdout.split()[1], cwd=ws.root).stdout
    assert "read: features.customer_stats@v0" in first and "'rows_written': 15" in first and "'up_to_date': False" in first
    rerun = brickyard("run", "push", cwd=ws.root)
    assert rerun.returncode == 0
    second = brickyard("run-show", rerun.stdout.split()[1], cwd=ws.root).stdout
    assert "'rows_written': 0" in second and "'up_to_date': True" in second


class Served:
    def __init__(self, ws: Workspace, *args: str) -> None:
        self.port = free_port()
        env = {**os.environ, "COLUMNS": "200"}
        env.pop("BRICKYARD_WORKSPACE", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "brickyard.cli", "serve", *args, "--port", str(self.port)],
            cwd=ws.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 180
        while True:
            if self.process.poll() is not None:
                raise AssertionError(self.process.communicate()[0])
            assert time.monotonic() < deadline, "not ready in time"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)

    def stop(self) -> str:
        self.process.send_signal(signal.SIGINT)
        return self.process.communicate(timeout=120)[0]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def test_keys_only_requests_over_http_match_the_offline_training_values(tmp_path: Path, kind: str, request: pytest.FixtureRequest) -> None:
    ws = workspace(tmp_path / "ws", request.getfixturevalue("redis_url") if kind == "redis" else None)
    rows = feature_rows(range(30), datetime.now(UTC))
    write_feature_table(ws, rows)
    model = register_feature_model(ws, rows)
    assert brickyard("features", "materialize", "customer_stats", cwd=ws.root).returncode == 0
    served = Served(ws, "churn", "--no-auth", "--workers", "2")
    try:
        with httpx.Client(base_url=served.url, timeout=30) as client:
            for customer in range(30):
                at = datetime.now(UTC)
                response = client.post("/invocations", json={"dataframe_split": {"columns": [KEY], "data": [[customer]]}})
                assert response.status_code == 200, response.text
                offline = pd.DataFrame([as_of(rows, customer, at, TTL, BASE_FEATURES)], columns=BASE_FEATURES)
                assert response.json()["predictions"] == model.model.predict(offline).tolist()
            missing = client.post("/invocations", json={"dataframe_records": [{"id": 1}]})
            assert missing.status_code == 400 and "customer_id" in missing.json()["message"]
            assert "brickyard_feature_freshness_seconds" in client.get("/metrics").text
    finally:
        out = served.stop()
    assert "keys-only requests look up 4 feature(s) online by customer_id" in out
    logged = [row for row in ws.lake.read("gold.inference_log").to_pylist() if row["status"] == 200]
    assert len(logged) == 30 and all(json.loads(row["features"])[0]["features.customer_stats"]["key"] for row in logged)
