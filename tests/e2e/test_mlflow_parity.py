"""`brickyard serve` answers MLflow's scoring protocol as `mlflow models serve` does.

The same registered models are served by both (`mlflow models serve -m models:/NAME/1
--env-manager local` and `brickyard serve NAME --no-auth`, real processes), and one corpus
of requests goes to each: good requests in every input format (dataframe_split,
dataframe_records, instances, inputs, CSV), extra columns, missing columns, wrong types,
params (declared by the model, with a good and a bad value), bad JSON, other content types,
and the GET routes /ping, /health and /version.

"Same" means the same status and:
- 200: the same predictions (labels equal; numbers equal to TOLERANCE, relative);
- an error: the same `error_code`. The messages differ on purpose (brickyard's name the
  column, the row and the value, MLflow's print the frame), so they are not compared;
- 415: MLflow answers plain text, so only the status is compared;
- GET routes: the same body.

Deliberate differences are in DIFFERENT, each with both servers' statuses asserted and the
reason: brickyard refuses what MLflow silently changes or drops (1.5 truncated into an
integer column, a number where text is expected, a null in a required column, a boolean
as an integer, params the model does not declare), answers `[]` for a request with no rows
(MLflow: 400), and gives class probabilities for `predict_proba`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from brickyard import Workspace
from titanic_example import register_titanic_example

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOLERANCE = 1e-9
START_SECONDS = 300
COLUMNS = ["Age", "SibSp", "Parch", "Fare", "Pclass", "Sex", "Embarked"]
ROWS = [
    [22.0, 1, 0, 7.25, 3, "male", "S"],
    [38.0, 1, 0, 71.2833, 1, "female", "C"],
    [None, 0, 0, 8.4583, 3, "male", "Q"],
    [54.0, 0, 0, 51.8625, 1, "male", None],
]
RECORDS = [dict(zip(COLUMNS, row, strict=True)) for row in ROWS]
EXTRA = [{"PassengerId": i, **record, "Cabin": "C85"} for i, record in enumerate(RECORDS)]

SCALED_FARE_CODE = '''
import mlflow
import mlflow.pyfunc


class ScaledFare(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        scale = (params or {}).get("scale", 1.0)
        return [float(fare) * scale for fare in model_input["Fare"]]


mlflow.models.set_model(ScaledFare())
'''


@dataclass(frozen=True)
class Request:
    """One request of the corpus: a POST body (JSON-encoded unless bytes/str) or a GET."""

    name: str
    body: Any = None
    content_type: str = "application/json"
    method: str = "POST"
    path: str = "/invocations"

    def send(self, url: str) -> httpx.Response:
        if self.method == "GET":
            return httpx.get(url + self.path, timeout=60)
        content = self.body if isinstance(self.body, bytes | str) else json.dumps(self.body)
        return httpx.post(url + self.path, content=content, headers={"Content-Type": self.content_type}, timeout=60)


def csv_text(rows: list[list[Any]], columns: list[str] = COLUMNS) -> str:
    lines = [",".join(columns)] + [",".join("" if value is None else str(value) for value in row) for row in rows]
    return "\n".join(lines) + "\n"


def with_row(**changes: Any) -> dict[str, Any]:
    return {"dataframe_records": [{**RECORDS[0], **changes}]}


TITANIC_SAME = [
    Request("dataframe_split", {"dataframe_split": {"columns": COLUMNS, "data": ROWS}}),
    Request("dataframe_split with index", {"dataframe_split": {"columns": COLUMNS, "data": ROWS, "index": [7, 8, 9, 10]}}),
    Request("dataframe_records", {"dataframe_records": RECORDS}),
    Request("instances", {"instances": RECORDS}),
    Request("inputs as records", {"inputs": RECORDS}),
    Request("inputs as columns", {"inputs": {name: [row[i] for row in ROWS] for i, name in enumerate(COLUMNS)}}),
    Request("inputs as one row", {"inputs": RECORDS[0]}),
    Request("csv", csv_text(ROWS), "text/csv"),
    Request("csv with charset", csv_text(ROWS), "text/csv; charset=utf-8"),
    Request("json with charset", {"dataframe_records": RECORDS}, "application/json; charset=utf-8"),
    Request("extra columns: records", {"dataframe_records": EXTRA}),
    Request("extra columns: split", {"dataframe_split": {"columns": ["PassengerId", *COLUMNS], "data": [[1, *row] for row in ROWS]}}),
    Request("extra columns: inputs", {"inputs": {name: [record[name] for record in EXTRA] for name in EXTRA[0]}}),
    Request("extra columns: csv", csv_text([[*row, "C85"] for row in ROWS], [*COLUMNS, "Cabin"]), "text/csv"),
    Request("missing column", {"dataframe_records": [{k: v for k, v in record.items() if k != "Sex"} for record in RECORDS]}),
    Request("missing column: csv", csv_text([row[:2] for row in ROWS], COLUMNS[:2]), "text/csv"),
    Request("text in a double column", with_row(Age="old")),
    Request("integer out of range", with_row(SibSp=2**70)),
    Request("csv: text in a double column", csv_text([["old", *ROWS[0][1:]]]), "text/csv"),
    Request("csv: 1.5 in a long column", csv_text([[22.0, 1.5, *ROWS[0][2:]]]), "text/csv"),
    Request("bad json", b"{not json"),
    Request("a list, not an object", RECORDS),
    Request("no format", {"records": RECORDS}),
    Request("two formats", {"dataframe_records": RECORDS, "instances": RECORDS}),
    Request("text/plain", {"dataframe_records": RECORDS}, "text/plain"),
    Request("charset latin-1", {"dataframe_records": RECORDS}, "application/json; charset=latin-1"),
    Request("old protocol's format parameter", {"dataframe_records": RECORDS}, "application/json; format=pandas-records"),
    Request("ping", method="GET", path="/ping"),
    Request("health", method="GET", path="/health"),
    Request("version", method="GET", path="/version"),
]
# (request, brickyard's status, MLflow's status, why they differ)
DIFFERENT = [
    (Request("no rows", {"dataframe_records": []}), 200, 400,
     "brickyard answers no predictions for no rows; MLflow's schema check refuses an empty frame"),
    (Request("1.5 in a long column", with_row(SibSp=1.5)), 400, 200,
     "MLflow truncates 1.5 to 1 without a word; brickyard refuses to change a value"),
    (Request("a number in a string column", with_row(Sex=1)), 400, 200,
     "MLflow passes 1 to the model as a category; brickyard names the column"),
    (Request("null in a required column", with_row(Sex=None)), 400, 200,
     "the signature requires Sex (it never was null in training); MLflow lets the model impute it"),
    (Request("a boolean in a long column", with_row(SibSp=True)), 400, 200,
     "MLflow reads true as 1; brickyard refuses it"),
    (Request("params the model does not declare", {"dataframe_records": RECORDS, "params": {"temperature": 1}}), 400, 200,
     "MLflow drops them with a log line; brickyard names the param (a typo of predict_proba would otherwise go unseen)"),
    (Request("predict_proba", {"dataframe_records": RECORDS, "params": {"predict_proba": True}}), 200, 200,
     "brickyard answers class probabilities (its own param); MLflow ignores it and answers labels"),
]
SCALED_SAME = [
    Request("declared param, default", {"dataframe_records": RECORDS}),
    Request("declared param set", {"dataframe_records": RECORDS, "params": {"scale": 2.5}}),
    Request("declared param set, extra columns", {"dataframe_records": EXTRA, "params": {"scale": 0.5}}),
    Request("declared param set, split", {"dataframe_split": {"columns": COLUMNS, "data": ROWS}, "params": {"scale": 3}}),
    Request("declared param of the wrong type", {"dataframe_records": RECORDS, "params": {"scale": "big"}}),
    Request("declared param, csv (no params)", csv_text(ROWS), "text/csv"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server process in its own session (`mlflow models serve` starts uvicorn as a child)."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str], ready_path: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_path = ready_path
        self.log = cwd / f"server-{self.port}.log"
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port)],
            cwd=cwd, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"server exited: {self.log.read_text()[-3000:]}")
        try:
            return httpx.get(self.url + self.ready_path, timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def mlflow_serve(ws: Workspace, model: str) -> Server:
    env = {**os.environ, "MLFLOW_TRACKING_URI": ws.mlflow_tracking_uri, "MLFLOW_DISABLE_TELEMETRY": "true",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{model}/1", "--env-manager", "local",
               "--host", "127.0.0.1"]
    return Server(command, ws.root, env, "/ping")


def brickyard_serve(ws: Workspace, model: str) -> Server:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("BRICKYARD_WORKSPACE", None)
    return Server([sys.executable, "-m", "brickyard.cli", "serve", model, "--no-auth"], ws.root, env, "/readyz")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """titanic (a logistic regression: brickyard's fast path) and scaled_fare (a pyfunc
    model whose signature declares the param `scale`), each served by both."""
    import mlflow
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    from titanic_example import FEATURES, titanic_frame

    ws = Workspace.init(tmp_path_factory.mktemp("parity") / "ws")
    register_titanic_example(ws)
    code = ws.root / "scaled_fare.py"
    code.write_text(SCALED_FARE_CODE)
    frame = titanic_frame()[FEATURES]
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(ws.mlflow_tracking_uri)
    try:
        with mlflow.start_run():
            mlflow.pyfunc.log_model(
                name="scaled_fare", python_model=str(code), registered_model_name="scaled_fare",
                signature=infer_signature(frame, frame["Fare"].tolist(), params={"scale": 1.0}),
            )
        mlflow.MlflowClient(ws.mlflow_tracking_uri).set_registered_model_alias("scaled_fare", "champion", "1")
    finally:
        mlflow.set_tracking_uri(previous)
    started = {
        "mlflow titanic": mlflow_serve(ws, "titanic"),
        "mlflow scaled_fare": mlflow_serve(ws, "scaled_fare"),
        "brickyard titanic": brickyard_serve(ws, "titanic"),
        "brickyard scaled_fare": brickyard_serve(ws, "scaled_fare"),
    }
    try:
        deadline = time.monotonic() + START_SECONDS
        waiting = dict(started)
        while waiting:
            assert time.monotonic() < deadline, f"not ready in {START_SECONDS} s: {list(waiting)}"
            for name in [name for name, server in waiting.items() if server.ready()]:
                del waiting[name]
            time.sleep(0.5)
        yield started
    finally:
        for server in started.values():
            server.stop()


def answer(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def assert_same(request: Request, brickyard: httpx.Response, mlflow: httpx.Response) -> None:
    where = f"{request.name}: brickyard {brickyard.status_code} {brickyard.text[:300]!r} / mlflow {mlflow.status_code} {mlflow.text[:300]!r}"
    assert brickyard.status_code == mlflow.status_code, where
    if request.method == "GET":
        assert brickyard.text == mlflow.text, where
    elif mlflow.status_code == 200:
        ours, theirs = brickyard.json(), mlflow.json()
        assert set(ours) == set(theirs) == {"predictions"}, where
        expected, got = np.asarray(theirs["predictions"]), np.asarray(ours["predictions"])
        if expected.dtype.kind == "f" or got.dtype.kind == "f":
            assert np.allclose(got, expected, rtol=TOLERANCE, atol=0), where
        else:
            assert got.tolist() == expected.tolist(), where
    elif mlflow.status_code != 415:  # MLflow's 415 is plain text: the status is the answer
        assert answer(brickyard)["error_code"] == answer(mlflow)["error_code"], where


def test_the_corpus_gets_mlflows_answers(servers: dict[str, Server]) -> None:
    compared = 0
    for model, corpus in (("titanic", TITANIC_SAME), ("scaled_fare", SCALED_SAME)):
        for request in corpus:
            ours = request.send(servers[f"brickyard {model}"].url)
            theirs = request.send(servers[f"mlflow {model}"].url)
            assert_same(request, ours, theirs)
            compared += 1
    assert compared == len(TITANIC_SAME) + len(SCALED_SAME)


def test_the_deliberate_differences_are_what_they_say(servers: dict[str, Server]) -> None:
    for request, ours_status, theirs_status, why in DIFFERENT:
        ours = request.send(servers["brickyard titanic"].url)
        theirs = request.send(servers["mlflow titanic"].url)
        assert (ours.status_code, theirs.status_code) == (ours_status, theirs_status), (request.name, why, ours.text, theirs.text)
    proba = DIFFERENT[-1][0].send(servers["brickyard titanic"].url).json()
    assert proba["classes"] == [0, 1] and len(proba["predictions"]) == len(RECORDS)


def test_extra_columns_are_named_in_brickyards_answer(servers: dict[str, Server]) -> None:
    response = Request("extra", {"dataframe_records": EXTRA}).send(servers["brickyard titanic"].url)
    assert response.status_code == 200 and json.loads(response.headers["x-ignored-columns"]) == ["PassengerId", "Cabin"]
