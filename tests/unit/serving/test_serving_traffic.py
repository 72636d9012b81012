"""Traffic policy: shadow, sticky canary, automatic rollback, rollout steps, hot swaps."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from serving_helpers import PASSENGER, read_log, register_version, set_alias, split_body, with_endpoints
from starlette.testclient import TestClient

from brickyard import Workspace
from brickyard.config.models import EndpointConfig
from brickyard.serving.app import create_app
from brickyard.serving.service import ModelRef, ServingService
from brickyard.serving.traffic import CanaryPolicy, bucket
from titanic_example import RegisteredExample


def started(ws: Workspace, *models: str) -> TestClient:
    service = ServingService(ws, [ModelRef.parse(text) for text in models], auth=False)
    client = TestClient(create_app(service))
    client.__enter__()
    assert service.wait_ready(120)
    return client


def wait_for(condition: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_shadow_scores_off_the_response_path_and_both_are_logged(serving_ws: Workspace, ab_model: str) -> None:
    ws = with_endpoints(serving_ws, titanic_ab={"shadow": True, "log_table": "gold.log_shadow", "log_flush_seconds": 0.2})
    client = started(ws, ab_model)
    try:
        ids = []
        for i in range(10):
            response = client.post("/invocations", json=split_body(), headers={"X-Request-Id": f"shadow-{i}"})
            assert response.status_code == 200
            assert response.headers["x-served-by"] == "champion" and response.headers["x-model-version"] == "1"
            ids.append(response.headers["x-request-id"])
        wait_for(lambda: 'brickyard_serving_shadow_requests_total{endpoint="titanic_ab",model="titanic_ab",status="200",version="2"} 10.0' in client.get("/metrics").text)
    finally:
        client.__exit__(None, None, None)
    rows = read_log(serving_ws, "gold.log_shadow")
    by_variant = Counter((row["variant"], row["version"]) for row in rows if row["request_id"] in ids)
    assert by_variant == {("champion", "1"): 10, ("shadow", "2"): 10}


def test_canary_is_sticky_by_request_key_and_splits_about_n_percent(serving_ws: Workspace, ab_model: str) -> None:
    client = started(with_endpoints(serving_ws, titanic_ab={"canary": 30, "log": False}), ab_model)
    try:
        seen: dict[str, set[str]] = {}
        for i in range(300):
            key = f"customer-{i % 100}"
            response = client.post("/invocations", json=split_body(), headers={"X-Request-Key": key})
            assert response.status_code == 200
            seen.setdefault(key, set()).add(response.headers["x-model-version"])
        assert all(len(versions) == 1 for versions in seen.values()), "a customer saw both versions"
        on_canary = sum(1 for versions in seen.values() if versions == {"2"})
        assert on_canary == sum(1 for key in seen if bucket(key) < 30)
        assert 15 <= on_canary <= 45
        unkeyed = Counter(client.post("/invocations", json=split_body()).headers["x-served-by"] for _ in range(300))
        assert 0.2 <= unkeyed["challenger"] / 300 <= 0.4
    finally:
        client.__exit__(None, None, None)


def test_canary_sticky_by_input_column(serving_ws: Workspace, ab_model: str) -> None:
    client = started(with_endpoints(serving_ws, titanic_ab={"canary": 50, "request_key_column": "Fare", "log": False}), ab_model)
    try:
        for fare in (7.25, 8.05, 71.28, 53.1, 13.0):
            row = [*PASSENGER[:3], fare, *PASSENGER[4:]]
            versions = {client.post("/invocations", json=split_body([row])).headers["x-model-version"] for _ in range(8)}
            assert versions == {"2" if bucket(str(fare)) < 50 else "1"}
    finally:
        client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def failing_model(serving_ws: Workspace, titanic: RegisteredExample) -> str:
    import mlflow
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    class Broken(mlflow.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            raise RuntimeError("the challenger is broken")

    register_version(serving_ws, "titanic_failing", titanic.model_uri, "champion")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(serving_ws.mlflow_tracking_uri)
    try:
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(
                name="broken", python_model=Broken(), signature=infer_signature(titanic.test_frame, titanic.model.predict(titanic.test_frame))
            )
    finally:
        mlflow.set_tracking_uri(previous)
    register_version(serving_ws, "titanic_failing", info.model_uri, "challenger")
    return "titanic_failing"


def test_a_failing_canary_rolls_back_by_itself(serving_ws: Workspace, failing_model: str) -> None:
    ws = with_endpoints(
        serving_ws, titanic_failing={"canary": 50, "min_requests": 5, "max_error_rate": 0.2, "window_seconds": 60, "log": False}
    )
    client = started(ws, failing_model)
    try:
        for i in range(40):  # the champion answers whenever the canary fails: no request fails
            response = client.post("/invocations", json=split_body(), headers={"X-Request-Key": f"c{i}"})
            assert response.status_code == 200 and response.headers["x-model-version"] == "1"
        wait_for(lambda: client.get("/readyz").json()["endpoints"]["titanic_failing"]["rolled_back"])
        metrics = client.get("/metrics").text
        assert 'brickyard_serving_canary_events_total{endpoint="titanic_failing",event="rollback"} 1.0' in metrics
        assert 'brickyard_serving_canary_rolled_back{endpoint="titanic_failing"} 1.0' in metrics
        assert 'brickyard_serving_canary_percent{endpoint="titanic_failing"} 0.0' in metrics
        served = Counter(client.post("/invocations", json=split_body(), headers={"X-Request-Key": f"c{i}"}).headers["x-served-by"] for i in range(40))
        assert served == {"champion": 40}
    finally:
        client.__exit__(None, None, None)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def policy(clock: Clock, **config: Any) -> CanaryPolicy:
    made = CanaryPolicy.from_config(EndpointConfig(**{"min_requests": 5, "rollout_step_seconds": 10, **config}), clock)
    assert made is not None
    return made


def test_rollout_advances_step_by_step_only_while_limits_hold() -> None:
    clock = Clock()
    plan = policy(clock, rollout=[10, 25, 50, 100], max_error_rate=0.1, max_p95_ms=50)
    assert plan.percent == 10
    for _ in range(5):
        plan.record(True, 5.0)
    assert plan.tick() is None  # not held long enough
    clock.now += 10
    event = plan.tick()
    assert event is not None and event.kind == "advance" and plan.percent == 25
    assert plan.tick() is None
    clock.now += 10
    assert plan.tick().kind == "advance" and plan.percent == 50  # type: ignore[union-attr]
    clock.now += 10
    assert plan.tick().kind == "complete" and plan.percent == 100  # type: ignore[union-attr]
    assert plan.tick() is None and plan.chooses_challenger("anyone")


def test_rollout_stops_and_rolls_back_when_p95_breaks_the_limit() -> None:
    clock = Clock()
    plan = policy(clock, rollout=[10, 50], max_p95_ms=20, window_seconds=30)
    for _ in range(10):
        plan.record(True, 80.0)
    clock.now += 10
    event = plan.tick()
    assert event is not None and event.kind == "rollback" and "p95" in event.reason
    assert plan.percent == 0 and not plan.chooses_challenger("x")
    plan.reset()  # a new challenger version starts the plan again
    assert plan.percent == 10


def test_old_outcomes_leave_the_window() -> None:
    clock = Clock()
    plan = policy(clock, canary=20, max_error_rate=0.5, window_seconds=30)
    for _ in range(10):
        plan.record(False, 1.0)
    clock.now += 31
    for _ in range(10):
        plan.record(True, 1.0)
    assert plan.stats()[:2] == (10, 0.0) and plan.tick() is None


def test_alias_move_swaps_versions_without_failing_a_request(serving_ws: Workspace, titanic: RegisteredExample, strong_prior: RegisteredExample) -> None:
    first = register_version(serving_ws, "titanic_swap", titanic.model_uri, "champion")
    second = register_version(serving_ws, "titanic_swap", strong_prior.model_uri)
    client = started(with_endpoints(serving_ws, titanic_swap={"poll_seconds": 0.2, "log": False}), "titanic_swap")
    statuses: Counter[int] = Counter()
    versions: list[str] = []
    stop = threading.Event()

    def fire() -> None:
        while not stop.is_set():
            response = client.post("/invocations", json=split_body())
            statuses[response.status_code] += 1
            versions.append(response.headers.get("x-model-version", "?"))

    thread = threading.Thread(target=fire)
    try:
        thread.start()
        wait_for(lambda: len(versions) > 20)
        set_alias(serving_ws, "titanic_swap", "champion", second)
        wait_for(lambda: versions and versions[-1] == second)
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join(30)
        metrics = client.get("/metrics").text
        client.__exit__(None, None, None)
    assert set(statuses) == {200}, statuses
    assert versions[0] == first and versions[-1] == second
    switch = versions.index(second)
    assert set(versions[switch:]) == {second}, "went back to the old version after the swap"
    assert 'brickyard_serving_model_swaps_total{endpoint="titanic_swap",slot="champion"} 1.0' in metrics
