"""Keys-only serving: a model trained from a training set, served with only entity keys;
the features come from the online store (SQLite, or a real Redis), the same values as the
offline training set's as-of join for the same entity and time (parity)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from starlette.testclient import TestClient

from brickyard import Workspace
from brickyard.features.materialize import materialize
from brickyard.serving.app import create_app
from brickyard.serving.service import ModelRef, ServingService
from feature_store_example import (
    BASE_FEATURES,
    KEY,
    FeatureModel,
    as_of,
    feature_rows,
    register_feature_model,
    write_feature_table,
)

TTL = timedelta(days=30)
CUSTOMERS = range(60)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, pa.Table, FeatureModel]:
    ws = Workspace.init(tmp_path_factory.mktemp("keys_only") / "ws")
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        ws.config_path.write_text(ws.config_path.read_text() + f"\nonline_store: {url}\n")
        ws = Workspace.open(ws.root)
        ws = Workspace(ws.root, ws.config.model_copy(update={"name": f"keys-{uuid.uuid4().hex[:8]}"}))
    rows = feature_rows(CUSTOMERS, datetime.now(UTC))
    write_feature_table(ws, rows)
    model = register_feature_model(ws, rows)
    materialize(ws, "customer_stats")
    return ws, rows, model


@pytest.fixture
def client(trained: tuple[Workspace, pa.Table, FeatureModel]) -> Iterator[tuple[TestClient, ServingService]]:
    ws = trained[0]
    service = ServingService(ws, [ModelRef.parse("churn")], auth=False)
    app_client = TestClient(create_app(service))  # type: ignore[arg-type]
    app_client.__enter__()
    assert service.wait_ready(120), service.status()
    yield app_client, service
    app_client.__exit__(None, None, None)


def records(*customers: int) -> dict[str, Any]:
    return {"dataframe_records": [{KEY: customer} for customer in customers]}


def test_a_request_with_only_keys_gets_the_online_features(client: tuple[TestClient, ServingService], trained: Any) -> None:
    """Parity: the served prediction for an entity now is the model's prediction on the
    offline as-of values for that entity and time; expired values are null, as in training."""
    app, _ = client
    ws, rows, model = trained
    now = datetime.now(UTC)
    customers = list(CUSTOMERS)[:25]
    for customer in customers:
        response = app.post("/invocations", json=records(customer))
        assert response.status_code == 200, response.text
        assert "X-Ignored-Columns" not in response.headers  # the key is not reported as an ignored column
        offline = pd.DataFrame([as_of(rows, customer, now, TTL, BASE_FEATURES)], columns=BASE_FEATURES)
        assert response.json()["predictions"] == model.model.predict(offline).tolist()
    batch = app.post("/invocations", json=records(*customers))
    offline = pd.DataFrame([as_of(rows, c, now, TTL, BASE_FEATURES) for c in customers], columns=BASE_FEATURES)
    assert batch.json()["predictions"] == model.model.predict(offline).tolist()


def test_the_inference_log_holds_the_feature_values_used(trained: Any) -> None:
    ws, rows, _ = trained
    service = ServingService(ws, [ModelRef.parse("churn")], auth=False)
    with TestClient(create_app(service)) as app:  # type: ignore[arg-type]
        assert service.wait_ready(120)
        expired = next(c for c in CUSTOMERS if all(v is None for v in as_of(rows, c, datetime.now(UTC), TTL, BASE_FEATURES).values()))
        live = next(c for c in CUSTOMERS if as_of(rows, c, datetime.now(UTC), TTL, BASE_FEATURES)["orders"] is not None)
        request_id = uuid.uuid4().hex
        assert app.post("/invocations", json=records(live, expired), headers={"X-Request-Id": request_id}).status_code == 200
    logged = [row for row in ws.lake.read("gold.inference_log").to_pylist() if row["request_id"] == request_id]
    assert len(logged) == 1
    used = json.loads(logged[0]["features"])
    now = datetime.now(UTC)
    assert used[0]["features.customer_stats"]["key"] == str(live)
    assert used[0]["features.customer_stats"]["values"] == as_of(rows, live, now, TTL, BASE_FEATURES)
    assert used[1]["features.customer_stats"] == {"key": str(expired), "event_us": None, "values": None}


def test_features_the_request_carries_are_used_as_sent(client: tuple[TestClient, ServingService], trained: Any) -> None:
    app, _ = client
    _, _, model = trained
    full = {"recency_days": 1.0, "orders": 3, "amount_90d": 99.0, "segment": "loyal"}
    response = app.post("/invocations", json={"dataframe_records": [full]})
    assert response.status_code == 200
    assert response.json()["predictions"] == model.model.predict(pd.DataFrame([full])).tolist()


def test_a_request_without_the_key_is_a_400_that_names_it(client: tuple[TestClient, ServingService]) -> None:
    app, _ = client
    response = app.post("/invocations", json={"dataframe_records": [{"cust_id": 1}]})
    assert response.status_code == 400
    body = response.json()
    assert "no column 'customer_id'" in body["message"] and "features.customer_stats" in body["message"]


def test_an_unknown_key_gets_null_features_like_an_expired_one(client: tuple[TestClient, ServingService], trained: Any) -> None:
    app, _ = client
    _, _, model = trained
    response = app.post("/invocations", json=records(10_000_000))
    nulls = pd.DataFrame([dict.fromkeys(BASE_FEATURES)], columns=BASE_FEATURES)
    assert response.status_code == 200 and response.json()["predictions"] == model.model.predict(nulls).tolist()


def test_a_request_with_no_rows_and_only_keys_answers_no_predictions(client: tuple[TestClient, ServingService]) -> None:
    app, _ = client
    for body in ({"dataframe_split": {"columns": [KEY], "data": []}}, {"dataframe_records": []}):
        response = app.post("/invocations", json=body)
        assert response.status_code == 200 and response.json() == {"predictions": []}, response.text


def test_metrics_show_the_freshness_of_each_looked_up_table(client: tuple[TestClient, ServingService]) -> None:
    app, _ = client
    text = app.get("/metrics").text
    line = next(line for line in text.splitlines() if line.startswith('brickyard_feature_freshness_seconds{table="features.customer_stats"}'))
    assert 0 <= float(line.split()[-1]) < 3600 * 24 * 45
    assert 'brickyard_feature_materialized_timestamp_seconds{table="features.customer_stats"}' in text


def test_csv_requests_with_only_keys_work_too(client: tuple[TestClient, ServingService], trained: Any) -> None:
    app, _ = client
    _, rows, model = trained
    response = app.post("/invocations", content=f"{KEY}\n3\n", headers={"Content-Type": "text/csv"})
    offline = pd.DataFrame([as_of(rows, 3, datetime.now(UTC), TTL, BASE_FEATURES)], columns=BASE_FEATURES)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == model.model.predict(offline).tolist()


def test_a_model_without_a_training_set_is_served_as_before(tmp_path: Path) -> None:
    from titanic_example import register_titanic_example

    ws = Workspace.init(tmp_path / "ws")
    register_titanic_example(ws)
    service = ServingService(ws, [ModelRef.parse("titanic")], auth=False)
    with TestClient(create_app(service)) as app:  # type: ignore[arg-type]
        assert service.wait_ready(120)
        assert service.endpoints["titanic"].champion.lookup is None  # type: ignore[union-attr]
        response = app.post("/invocations", json={"dataframe_records": [{"Pclass": 3}]})
        assert response.status_code == 400 and "missing column" in response.json()["message"]


def test_a_shadow_challenger_looks_the_features_up_too(trained: Any) -> None:
    import mlflow
    from mlflow import MlflowClient

    from brickyard.config.models import EndpointConfig

    ws, rows, model = trained
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(ws.mlflow_tracking_uri)
    try:
        version = str(mlflow.register_model(f"runs:/{model.run_id}/model", "churn").version)
        MlflowClient(tracking_uri=ws.mlflow_tracking_uri).set_registered_model_alias("churn", "challenger", version)
    finally:
        mlflow.set_tracking_uri(previous)
    shadowed = Workspace(ws.root, ws.config.model_copy(update={"endpoints": {"churn": EndpointConfig(shadow=True)}}))
    service = ServingService(shadowed, [ModelRef.parse("churn")], auth=False)
    request_id = uuid.uuid4().hex
    with TestClient(create_app(service)) as app:  # type: ignore[arg-type]
        assert service.wait_ready(120)
        deadline = time.monotonic() + 60
        while service.endpoints["churn"].challenger is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert app.post("/invocations", json=records(5), headers={"X-Request-Id": request_id}).status_code == 200
    logged = {row["variant"]: row for row in ws.lake.read("gold.inference_log").to_pylist() if row["request_id"] == request_id}
    assert set(logged) == {"champion", "shadow"}
    assert logged["shadow"]["status"] == 200 and logged["shadow"]["output"] == logged["champion"]["output"]
    assert json.loads(logged["shadow"]["features"]) == json.loads(logged["champion"]["features"])
    expected = as_of(rows, 5, datetime.now(UTC), TTL, BASE_FEATURES)
    used = json.loads(logged["shadow"]["features"])[0]["features.customer_stats"]["values"]
    assert used == (expected if any(v is not None for v in expected.values()) else None)
