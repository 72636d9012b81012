"""The HTTP API: MLflow's request formats, probabilities, 4xx for bad input, status routes.
(The schemathesis fuzz of the OpenAPI document is in test_serving_openapi.py.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from serving_helpers import COLUMNS, PASSENGER, register_scaled_fare, split_body, with_endpoints
from starlette.testclient import TestClient

from brickyard import Workspace
from titanic_example import RegisteredExample

Serve = Callable[..., TestClient]


@pytest.fixture
def client(serve: Serve, serving_ws: Workspace) -> TestClient:
    return serve(serving_ws, "titanic")


def records(frame: Any) -> list[dict[str, Any]]:
    return orjson.loads(frame.to_json(orient="records"))  # type: ignore[no-any-return]


def test_each_format_answers_the_models_predictions(client: TestClient, titanic: RegisteredExample) -> None:
    frame = titanic.test_frame.head(25)
    expected = titanic.model.predict(frame).tolist()
    rows = records(frame)
    bodies = {
        "dataframe_split": {"dataframe_split": {"columns": list(frame.columns), "data": orjson.loads(frame.to_json(orient="values"))}},
        "dataframe_records": {"dataframe_records": rows},
        "instances": {"instances": rows},
        "inputs": {"inputs": {name: [row[name] for row in rows] for name in frame.columns}},
    }
    for name, body in bodies.items():
        for path in ("/invocations", "/serving-endpoints/titanic/invocations"):
            response = client.post(path, json=body)
            assert response.status_code == 200, (name, response.text)
            assert response.json() == {"predictions": expected}, name
            assert response.headers["x-model-version"] == titanic.version


def test_probabilities_by_params_or_query(client: TestClient, titanic: RegisteredExample) -> None:
    frame = titanic.test_frame.head(5)
    expected = titanic.model.predict_proba(frame)
    body = {"dataframe_records": records(frame)}
    by_params = client.post("/invocations", json={**body, "params": {"predict_proba": True}}).json()
    by_query = client.post("/invocations?predict_proba=true", json=body).json()
    assert by_params == by_query and by_params["classes"] == [0, 1]
    assert np.abs(np.array(by_params["predictions"]) - expected).max() < 1e-9
    assert client.post("/invocations?predict_proba=no", json=body).json() == {"predictions": titanic.model.predict(frame).tolist()}


@pytest.mark.parametrize(
    ("body", "status", "column", "words"),
    [
        (split_body([[22.0, 1, 0, None, 3, "male", "S"]]), 400, "Fare", "null in row 0"),
        (split_body([["old", 1, 0, 7.25, 3, "male", "S"]]), 400, "Age", "expected a number"),
        (split_body(params={"predict_proba": "yes"}), 400, None, "predict_proba must be true or false"),
        (split_body(params={"temperature": 1}), 400, None, "unknown param 'temperature'"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_column(client: TestClient, body: Any, status: int, column: str | None, words: str) -> None:
    response = client.post("/serving-endpoints/titanic/invocations", json=body)
    assert response.status_code == status
    error = response.json()
    assert error["error_code"] == "BAD_REQUEST" and words in error["message"]
    assert error.get("column") == column


def test_a_missing_column_is_mlflows_invalid_parameter_value(client: TestClient) -> None:
    response = client.post("/invocations", json={"dataframe_records": [dict(zip(COLUMNS[:-2], PASSENGER))]})
    assert response.status_code == 400
    error = response.json()
    assert error["error_code"] == "INVALID_PARAMETER_VALUE" and "missing column 'Sex'" in error["message"] and error["column"] == "Sex"


def test_columns_the_model_does_not_take_are_ignored_and_named(serve: Serve, serving_ws: Workspace, titanic: RegisteredExample) -> None:
    """Like `mlflow models serve`: extra columns are ignored, and the answer names them;
    `--strict-columns` keeps them a 400."""
    client = serve(serving_ws, "titanic")
    frame = titanic.test_frame.head(3)
    rows = [{"PassengerId": i, **row, "Cabin": "C85", "Naïve": 1} for i, row in enumerate(records(frame))]
    for body in ({"dataframe_records": rows}, {"dataframe_records": rows[:1]}, {"inputs": {k: [v] for k, v in rows[0].items()}}):
        response = client.post("/invocations", json=body)
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": titanic.model.predict(frame.head(len(body.get("dataframe_records", [0])))).tolist()}
        assert orjson.loads(response.headers["x-ignored-columns"]) == ["PassengerId", "Cabin", "Naïve"]
    assert "x-ignored-columns" not in client.post("/invocations", json={"dataframe_records": records(frame)}).headers
    strict = serve(serving_ws, "titanic", strict_columns=True).post("/invocations", json={"dataframe_records": rows})
    assert strict.status_code == 400 and strict.json()["column"] == "PassengerId" and "unknown column" in strict.json()["message"]


def test_csv_bodies_score_like_json(client: TestClient, titanic: RegisteredExample) -> None:
    frame = titanic.test_frame.head(25)
    assert frame.isna().any().any()
    for content_type in ("text/csv", "text/csv; charset=utf-8"):
        response = client.post("/invocations", content=frame.to_csv(index=False), headers={"Content-Type": content_type})
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": titanic.model.predict(frame).tolist()}
    with_index = client.post("/invocations?predict_proba=true", content=frame.to_csv(), headers={"Content-Type": "text/csv"})
    assert with_index.status_code == 200 and with_index.headers["x-ignored-columns"] == '[""]'
    assert np.abs(np.array(with_index.json()["predictions"]) - titanic.model.predict_proba(frame)).max() < 1e-9
    bad = client.post("/invocations", content=b"Age,SibSp,Parch,Fare,Pclass,Sex,Embarked\nold,1,0,7.25,3,male,S\n",
                      headers={"Content-Type": "text/csv"})
    assert bad.status_code == 400 and bad.json()["column"] == "Age" and bad.json()["error_code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/json; charset=latin-1", "application/json; format=pandas-split", "application/x-parquet"]
)
def test_other_content_types_are_415(client: TestClient, content_type: str) -> None:
    response = client.post("/invocations", content=orjson.dumps(split_body()), headers={"Content-Type": content_type})
    assert response.status_code == 415 and response.json()["error_code"] == "BAD_REQUEST"


def test_mlflow_status_routes(client: TestClient) -> None:
    from importlib import metadata

    for path in ("/ping", "/health"):
        response = client.get(path)
        assert (response.status_code, response.text) == (200, "\n")
    version = client.get("/version")
    assert version.status_code == 200 and version.text == metadata.version("mlflow")


def test_malformed_oversized_and_non_json_bodies(serve: Serve, serving_ws: Workspace) -> None:
    client = serve(with_endpoints(serving_ws, titanic={"max_body_bytes": 2048, "max_rows": 3}), "titanic")
    assert client.post("/invocations", content=b"{oops").status_code == 400
    big = client.post("/invocations", json=split_body([PASSENGER] * 100))
    assert big.status_code == 413 and "at most 2048" in big.json()["message"]
    rows = client.post("/invocations", json=split_body([PASSENGER] * 4))
    assert rows.status_code == 413 and "at most 3 per request" in rows.json()["message"]
    chunked = client.post("/invocations", content=iter([b'{"inputs": [', b" " * 4096, b"]}"]))
    assert chunked.status_code == 413
    csv = client.post("/invocations", content=b"Age\n1", headers={"Content-Type": "text/csv"})
    assert csv.status_code == 400 and csv.json()["column"] == "SibSp"


def test_status_routes(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["endpoints"]["titanic"]["champion"]["path"] == "fastpath"
    unknown = client.post("/serving-endpoints/titanc/invocations", json=split_body())
    assert unknown.status_code == 404 and "titanic" in unknown.json()["message"]
    client.post("/invocations", json=split_body())
    metrics = client.get("/metrics").text
    assert 'brickyard_serving_requests_total{endpoint="titanic",model="titanic",status="200",version="1"}' in metrics
    assert "brickyard_serving_request_seconds_bucket" in metrics
    assert "brickyard_serving_inference_log_dropped_total" in metrics or "brickyard_serving_inference_log_dropped" in metrics
    doc = client.get("/openapi.json").json()
    body = doc["paths"]["/serving-endpoints/titanic/invocations"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert len(body["oneOf"]) == 4
    assert client.get("/docs").status_code == 200


def test_pinned_version_and_alias(serve: Serve, serving_ws: Workspace, titanic: RegisteredExample) -> None:
    client = serve(serving_ws, f"titanic/{titanic.version}")
    response = client.post("/serving-endpoints/titanic/invocations", json=split_body())
    assert response.status_code == 200 and response.headers["x-model-version"] == titanic.version
    assert client.get("/readyz").json()["endpoints"]["titanic"]["champion"]["alias"] == f"version {titanic.version}"


def test_params_the_model_declares_reach_it(
    serve: Serve, serving_ws: Workspace, titanic: RegisteredExample, tmp_path_factory: pytest.TempPathFactory
) -> None:
    register_scaled_fare(serving_ws, "scaled_fare", titanic.test_frame, tmp_path_factory.mktemp("code"))
    client = serve(serving_ws, "scaled_fare")
    body = {"dataframe_records": records(titanic.test_frame.head(3))}
    fares = titanic.test_frame.head(3)["Fare"].tolist()
    assert client.post("/invocations", json=body).json() == {"predictions": fares}
    assert client.post("/invocations", json={**body, "params": {"scale": 2.0}}).json() == {"predictions": [2 * f for f in fares]}
    wrong = client.post("/invocations", json={**body, "params": {"scale": "big"}})
    assert wrong.status_code == 400 and wrong.json()["error_code"] == "INVALID_PARAMETER_VALUE" and "scale" in wrong.json()["message"]
    unknown = client.post("/invocations", json={**body, "params": {"temperature": 1}})
    assert unknown.status_code == 400 and "scale" in unknown.json()["message"] + str(unknown.json())
    assert client.get("/readyz").json()["endpoints"]["scaled_fare"]["champion"]["path"] == "pyfunc"
    doc = client.get("/openapi.json").json()
    body_schema = doc["paths"]["/invocations"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema["oneOf"][0]["properties"]["params"]["properties"]["scale"]["default"] == 1.0


def test_while_serving_the_event_loop_waits_at_most_half_a_millisecond_for_the_gil(serving_ws: Workspace, titanic: RegisteredExample) -> None:
    """The inference-log writer and the alias poller run Python on their own threads; with
    CPython's default switch interval (5 ms) every GIL release of the request path (a send, a
    SQLite lookup) could cost a request up to 5 ms while they work: the p99 of
    bench/online_lookup.py. The server shortens it while it runs, and puts it back after."""
    import sys

    from brickyard.serving.app import SWITCH_INTERVAL_SECONDS, create_app
    from brickyard.serving.service import ModelRef, ServingService

    before = sys.getswitchinterval()
    service = ServingService(serving_ws, [ModelRef.parse("titanic")], auth=False)
    with TestClient(create_app(service)) as client:  # type: ignore[arg-type]
        assert client.post("/invocations", json=split_body()).status_code == 200
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_SECONDS) and SWITCH_INTERVAL_SECONDS <= 0.0005
    assert sys.getswitchinterval() == pytest.approx(before)


class RecordingTransport:
    """A connection's transport that keeps what the server writes, for uvicorn's own protocols."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_an_answer_goes_out_in_one_write(serve: Serve, serving_ws: Workspace, http: str) -> None:
    """Head and body of an invocation's answer leave in one write to the socket (one packet,
    one wake-up of the client), through uvicorn's own HTTP protocols, keep-alive or not."""
    import asyncio

    import uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    app = serve(serving_ws, "titanic").app
    body = orjson.dumps(split_body())
    head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % len(body)

    async def answer(connection: bytes) -> RecordingTransport:
        config = uvicorn.Config(app, http=http, lifespan="off", log_level="warning")
        config.load()
        protocol_class = HttpToolsProtocol if http == "httptools" else H11Protocol
        protocol = protocol_class(config, ServerState(), app_state={})  # type: ignore[arg-type]
        transport = RecordingTransport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        protocol.data_received(head + connection + b"\r\n" + body)
        for _ in range(500):
            await asyncio.sleep(0.01)
            if transport.writes:
                break
        await asyncio.sleep(0.05)
        return transport

    kept = asyncio.run(answer(b""))
    assert len(kept.writes) == 1 and not kept.closed
    assert kept.writes[0].startswith(b"HTTP/1.1 200") and kept.writes[0].endswith(b'{"predictions":[0]}')
    closing = asyncio.run(answer(b"Connection: close\r\n"))
    assert len(closing.writes) == 1 and closing.closed
