"""Expectations as SQL (tasks.quality), PII tokens (tasks.pii), the ingest checkpoint's
records, and the Lake additions the data tasks rely on (a hook before the commit of a
streamed write; rows added since a version)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from brickyard.core.contract import Expectation
from brickyard.core.pii import hmac_hex, hmac_sql
from brickyard.core.quality import FLAG, REASON, checked_query, compile_rule, prefetched
from brickyard.core.sources import LineCounter, SourceFile
from brickyard.errors import LakeError
from brickyard.lake import Lake, LakeLocation
from brickyard.tasks.checkpoint import BatchRecord

ROWS = "SELECT * FROM (VALUES (1, 5.0, 'a', 1), (2, -1.0, 'b', 2), (3, NULL, 'c', 2), (4, 2000.0, NULL, 3)) t(id, fare, code, k)"


def evaluate(*expectations: dict[str, Any]) -> list[tuple[Any, ...]]:
    rules = [compile_rule(Expectation.model_validate(e)) for e in expectations]
    flags = ", ".join(FLAG.format(i) for i in range(len(rules)))
    query = f"SELECT id, {flags}, {REASON} FROM ({checked_query(ROWS, rules)}) ORDER BY id"
    return duckdb.connect().sql(query).fetchall()


def test_rules_semantics() -> None:
    assert evaluate({"not_null": "fare"}) == [(1, False, None), (2, False, None), (3, True, None), (4, False, None)]
    found = evaluate({"range": {"column": "fare", "min": 0, "max": 1000}, "action": "drop"})
    assert found == [
        (1, False, None),
        (2, True, "range(fare): '-1.0'"),
        (3, False, None),  # NULL passes a range (use not_null to forbid it)
        (4, True, "range(fare): '2000.0'"),
    ]
    assert [r[1] for r in evaluate({"accepted_values": {"column": "code", "values": ["a", "c"]}})] == [False, True, False, False]
    assert [r[1] for r in evaluate({"accepted_values": {"column": "k", "values": [1, 3]}})] == [False, True, True, False]
    assert [r[1] for r in evaluate({"accepted_values": {"column": "code", "values": [1, 2]}})] == [True, True, True, False]
    assert [r[1] for r in evaluate({"unique": ["k"]})] == [False, True, True, False]
    # A sql predicate passes only where it is TRUE.
    assert [r[1] for r in evaluate({"sql": "fare > 0", "name": "positive"})] == [False, True, True, False]


def test_reasons_join_every_broken_drop_rule() -> None:
    found = evaluate(
        {"range": {"column": "fare", "min": 0}, "action": "drop"},
        {"sql": "k < 2", "name": "small_k", "action": "drop"},
        {"not_null": "code", "action": "warn"},
    )
    assert [(r[0], r[-1]) for r in found] == [
        (1, None),
        (2, "range(fare): '-1.0'; small_k"),
        (3, "small_k"),
        (4, "small_k"),  # the broken warn rule is flagged, not a reason
    ]
    assert found[3][3] is True


@pytest.mark.parametrize("key", [b"k", b"x" * 64, b"y" * 100, "clé".encode()])
def test_pii_sql_is_hmac_sha256(key: bytes) -> None:
    values = ["alice@example.com", "", "ünïcødé", "1234"]
    con = duckdb.connect()
    con.register("vals", pa.table({"v": values + [None]}))
    found = con.sql(f"SELECT {hmac_sql('v', key)} FROM vals").fetchall()
    expected = [hmac.new(key, v.encode(), hashlib.sha256).hexdigest() for v in values] + [None]
    assert [f[0] for f in found] == expected
    assert hmac_hex("a", key) != hmac_hex("a", key + b"!")


def test_line_counter_across_batches_and_files() -> None:
    counter = LineCounter(offset=1)
    counter.observe(pa.array(["a"] * 3))
    assert counter.lines(np.array([0, 2])).tolist() == [2, 4]
    counter.observe(pa.array(["a", "a", "b", "b"]))
    assert counter.lines(np.array([1, 2, 3])).tolist() == [6, 2, 3]
    counter.observe(pa.array(["b", "c"]))
    assert counter.lines(np.array([0, 1])).tolist() == [4, 2]


def test_batch_record_round_trip_and_change_detection() -> None:
    files = (SourceFile("raw/a.csv", 10, "1.5"), SourceFile("raw/b.csv", 3, "2.0", etag="e1"))
    record = BatchRecord("p.t", 4, True, "r", files)
    assert BatchRecord.from_json(record.to_json()) == record
    assert BatchRecord.from_json("{not json") is None
    assert SourceFile("raw/a.csv", 10, "9.9").changed_from(files[0])
    assert not SourceFile("raw/b.csv", 3, "other", etag="e1").changed_from(files[1])


def test_prefetched_keeps_order_and_raises_in_order() -> None:
    assert list(prefetched(iter(range(100)), depth=2)) == list(range(100))

    def broken() -> Any:
        yield 1
        raise ValueError("boom")

    found = []
    with pytest.raises(ValueError, match="boom"):
        for item in prefetched(broken()):
            found.append(item)
    assert found == [1]


# -- Lake additions ----------------------------------------------------------------------


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(LakeLocation(str(tmp_path)))


def stream(rows: int = 10, batches: int = 3) -> pa.RecordBatchReader:
    schema = pa.schema([("id", pa.int64())])
    return pa.RecordBatchReader.from_batches(
        schema, (pa.record_batch([pa.array(range(i * rows, (i + 1) * rows))], schema=schema) for i in range(batches))
    )


def test_before_commit_runs_after_the_stream_and_before_the_commit(lake: Lake) -> None:
    seen = []

    def hook() -> None:
        seen.append(lake.exists("bronze.t"))
        lake.write("bronze.side", pa.table({"x": [1]}))  # a delta-rs call from the hook works

    assert lake.write("bronze.t", stream(), before_commit=hook) == 0
    assert seen == [False]
    assert lake.read("bronze.t").num_rows == 30 and lake.exists("bronze.side")


def test_a_failing_hook_or_stream_commits_nothing(lake: Lake) -> None:
    class Stop(Exception):
        pass

    def hook() -> None:
        raise Stop("no")

    with pytest.raises(Stop):
        lake.write("bronze.t", stream(), before_commit=hook)
    assert not lake.exists("bronze.t")

    def bad() -> Any:
        yield pa.record_batch([pa.array([1])], names=["id"])
        raise LakeError("stream broke")

    reader = pa.RecordBatchReader.from_batches(pa.schema([("id", pa.int64())]), bad())
    with pytest.raises(LakeError):
        lake.write("bronze.t", reader, before_commit=lambda: None)
    assert not lake.exists("bronze.t")


def test_added_since(lake: Lake) -> None:
    lake.write("bronze.t", pa.table({"id": [1, 2], "p": ["a", "b"]}), partition_by=["p"])
    lake.write("bronze.t", pa.table({"id": [3], "p": ["a"]}))
    added, version = lake.added_since("bronze.t", 0)
    assert version == 1 and added.to_table().to_pylist() == [{"id": 3, "p": "a"}]
    everything, _ = lake.added_since("bronze.t", None)
    assert everything.count_rows() == 3
    none, _ = lake.added_since("bronze.t", 1)
    assert none.count_rows() == 0
    lake.write("bronze.t", pa.table({"id": [9], "p": ["z"]}), mode="overwrite")
    with pytest.raises(LakeError, match="rewritten between version 1 and 2"):
        lake.added_since("bronze.t", 1)
    assert lake.transaction_version("bronze.t", "app") is None
    assert lake.transaction_version("bronze.missing", "app") is None
