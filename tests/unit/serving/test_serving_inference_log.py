"""The inference log: rows land in Delta off the request path; a full buffer drops and counts."""

from __future__ import annotations

import json

from serving_helpers import read_log, split_body, with_endpoints
from starlette.testclient import TestClient

from brickyard import Workspace
from brickyard.serving.app import create_app
from brickyard.serving.inference_log import InferenceLog
from brickyard.serving.service import ModelRef, ServingService
from titanic_example import RegisteredExample


def run_requests(ws: Workspace, count: int, **endpoint: object) -> tuple[list[int], str]:
    service = ServingService(with_endpoints(ws, titanic=endpoint), [ModelRef.parse("titanic")], auth=False)
    with TestClient(create_app(service)) as client:
        assert service.wait_ready(120)
        statuses = [client.post("/invocations", json=split_body(), headers={"X-Request-Id": f"r{i}"}).status_code for i in range(count)]
        statuses.append(client.post("/invocations", json={"dataframe_records": [{"Age": "x"}]}).status_code)
        metrics = client.get("/metrics").text
    return statuses, metrics  # leaving the client ran the shutdown: the log is flushed


def test_every_request_lands_in_the_delta_table(serving_ws: Workspace, titanic: RegisteredExample) -> None:
    statuses, _ = run_requests(serving_ws, 30, log_table="gold.log_full", log_flush_seconds=60)
    assert statuses == [200] * 30 + [400]
    rows = read_log(serving_ws, "gold.log_full")
    assert len(rows) == 31
    ok = next(row for row in rows if row["request_id"] == "r0")
    assert ok["endpoint"] == "titanic" and ok["model"] == "titanic" and ok["version"] == titanic.version
    assert ok["status"] == 200 and ok["rows"] == 1 and ok["latency_ms"] > 0 and ok["ts"] is not None
    assert json.loads(ok["input"]) == split_body() and json.loads(ok["output"]) == {"predictions": [0]}
    bad = next(row for row in rows if row["status"] == 400)
    assert "column 'Age'" in json.loads(bad["output"])["message"]


def test_payload_hashes_instead_of_payloads(serving_ws: Workspace, titanic: RegisteredExample) -> None:
    run_requests(serving_ws, 3, log_table="gold.log_hashed", log_payloads="hash")
    rows = read_log(serving_ws, "gold.log_hashed")
    assert len(rows) == 4
    assert all(row["input"].startswith("sha256:") and len(row["output"]) == 71 for row in rows)


def test_a_full_buffer_drops_records_and_requests_still_succeed(serving_ws: Workspace, titanic: RegisteredExample) -> None:
    statuses, metrics = run_requests(serving_ws, 20, log_table="gold.log_tiny", log_queue_size=2, log_flush_seconds=60)
    assert statuses[:20] == [200] * 20
    assert 'brickyard_serving_inference_log_dropped_total{endpoint="titanic"} 19.0' in metrics
    assert len(read_log(serving_ws, "gold.log_tiny")) == 2


class BrokenLake:
    def write(self, *args: object, **kwargs: object) -> int:
        raise OSError("disk full")


def test_a_failing_write_counts_the_records_as_dropped() -> None:
    dropped: list[int] = []
    log = InferenceLog(BrokenLake(), "gold.x", on_drop=lambda endpoint, n: dropped.append(n))
    log.record(("id", 0.0, "e", "m", "1", "champion", 200, 1.0, 1, b"{}", b"{}"))
    assert log.flush() == 0 and log.dropped == 1 and dropped == [1] and log.pending == 0


class KeepingLake:
    def __init__(self) -> None:
        self.tables: list[object] = []

    def write(self, name: str, table: object, **kwargs: object) -> int:
        self.tables.append(table)
        return 0


def test_records_keep_their_microseconds_their_nulls_and_bad_utf8_replaced() -> None:
    lake = KeepingLake()
    written: list[tuple[str, int]] = []
    log = InferenceLog(lake, "gold.x", on_write=lambda endpoint, n: written.append((endpoint, n)))
    stamps = [1765000000.123456, 1.5, 0.0]
    log.record(("a", stamps[0], "e1", "m", "1", "champion", 200, 1.0, 1, b"{}", b"{}", b'[{"t": 1}]'))
    log.record(("b", stamps[1], "e2", "m", "1", "champion", 200, 1.0, 1, b"\xff", b"{}", None))
    log.record(("c", stamps[2], "e1", "m", "1", "shadow", 500, 1.0, 1, b"{}", b"{}", None))
    assert log.flush() == 3
    (table,) = lake.tables
    rows = table.to_pylist()  # type: ignore[attr-defined]
    assert [int(row["ts"].timestamp() * 1_000_000) // 1 for row in rows] == [1765000000123456, 1500000, 0]
    assert [row["features"] for row in rows] == ['[{"t": 1}]', None, None]
    assert rows[1]["input"] == "\ufffd"
    assert sorted(written) == [("e1", 2), ("e2", 1)]


def test_a_batch_larger_than_one_conversion_keeps_every_record_in_order() -> None:
    """A flush converts the batch to Arrow in chunks (CONVERT_ROWS records each, so that
    the request path is not held up): every record lands once, in order, whichever chunk
    holds it, with the bad UTF-8 of one chunk replaced and the others' bodies as sent."""
    from brickyard.serving.inference_log import CONVERT_ROWS

    count = CONVERT_ROWS * 3 + 7
    for payloads in ("full", "hash"):
        lake = KeepingLake()
        log = InferenceLog(lake, "gold.x", payloads=payloads, batch_rows=count)
        records = [
            (f"r{i}", 1765000000.0 + i / 1000, f"e{i % 3}", "m", str(i % 5), "champion", 200 + i % 2, i / 7, i,
             b"\xfe" if i == CONVERT_ROWS + 1 else f'{{"i": {i}}}'.encode(), f"[{i}]".encode(),
             None if i % 4 else f'[{{"k": {i}}}]'.encode())
            for i in range(count)
        ]
        for record in records:
            log.record(record)
        assert log.flush() == count
        (table,) = lake.tables
        rows = table.to_pylist()  # type: ignore[attr-defined]
        assert [row["request_id"] for row in rows] == [f"r{i}" for i in range(count)]
        assert [row["rows"] for row in rows] == list(range(count))
        assert [row["latency_ms"] for row in rows] == [i / 7 for i in range(count)]
        assert [row["features"] for row in rows] == [None if i % 4 else f'[{{"k": {i}}}]' for i in range(count)]
        if payloads == "full":
            assert [row["output"] for row in rows] == [f"[{i}]" for i in range(count)]
            assert rows[CONVERT_ROWS + 1]["input"] == "\ufffd" and rows[CONVERT_ROWS]["input"] == f'{{"i": {CONVERT_ROWS}}}'
        else:
            assert all(row["input"].startswith("sha256:") for row in rows)
