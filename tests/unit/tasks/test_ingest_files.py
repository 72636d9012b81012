"""The `ingest` kind and files that are not plain good data: empty files (skipped, recorded,
reported) and malformed CSV lines (the error names the lake file and the line, and the next
thing to try). Real files in a real workspace, real DuckDB and Delta tables."""

from __future__ import annotations

import gzip
import json
import logging
import os
from typing import TYPE_CHECKING

import pytest

from brickyard.tasks.checkpoint import INGEST_KEY
from brickyard.tasks.ingest import IngestError

if TYPE_CHECKING:
    from conftest import Lakehouse

TASK = {"name": "load", "kind": "ingest", "source": "raw/x/*.csv", "target": "bronze.x"}
GOOD = "a,b,c\n1,2,3\n4,5,6\n"
FAIL_CONTRACT = (
    "evolution: fail\ncolumns:\n  - {name: a, type: int}\n  - {name: b, type: int}\n  - {name: c, type: int}\n"
)


def recorded_files(house: Lakehouse, table: str = "bronze.x") -> list[list[str]]:
    """The file lists of the table's ingest commits, newest first."""
    return [
        [f["path"] for f in json.loads(entry[INGEST_KEY])["files"]]
        for entry in house.lake.history(table)
        if INGEST_KEY in entry
    ]


# -- empty files ---------------------------------------------------------------------------


@pytest.mark.parametrize("contract", [None, FAIL_CONTRACT], ids=["no-contract", "evolution-fail"])
def test_an_empty_file_beside_good_ones_is_skipped_recorded_and_reported(
    house: Lakehouse, contract: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    house.raw("raw/x/a.csv", GOOD)
    house.raw("raw/x/empty.csv", "")
    task = dict(TASK)
    if contract:
        house.file("contracts/bronze.x.yaml", contract)
        task["contract"] = "bronze.x"

    with caplog.at_level(logging.INFO):
        context = house.run(task)

    table = house.table("bronze.x", sort="a")
    assert table.column("a").to_pylist() in (["1", "4"], [1, 4])
    assert "column0" not in table.schema.names  # no phantom column from the empty file
    assert context.metrics.extra["files_loaded"] == 1
    assert context.metrics.extra["skipped_files"] == [{"path": "raw/x/empty.csv", "reason": "empty file"}]
    assert "skipped 1 empty file: raw/x/empty.csv" in caplog.text
    # Recorded in the checkpoint with the batch: the next run neither reads nor reports it.
    assert recorded_files(house) == [["raw/x/a.csv", "raw/x/empty.csv"]]
    again = house.run(task)
    assert again.metrics.rows_in == 0 and again.metrics.extra.get("skipped_files", []) == []


def test_empty_files_alone_are_reported_and_recorded_once_the_table_exists(
    house: Lakehouse, caplog: pytest.LogCaptureFixture
) -> None:
    # No table yet: nothing to record them in; the run succeeds and says what it skipped.
    house.raw("raw/x/0.csv", "")
    first = house.run(TASK)
    assert first.metrics.extra["skipped_files"] == [{"path": "raw/x/0.csv", "reason": "empty file"}]
    assert not house.lake.exists("bronze.x")

    house.raw("raw/x/a.csv", GOOD)
    house.run(TASK)
    assert house.count("bronze.x") == 2
    assert recorded_files(house) == [["raw/x/0.csv", "raw/x/a.csv"]]

    # An empty file arriving alone later is recorded in a commit of no rows.
    house.raw("raw/x/b.csv", "")
    third = house.run(TASK)
    assert third.metrics.extra["skipped_files"] == [{"path": "raw/x/b.csv", "reason": "empty file"}]
    assert house.count("bronze.x") == 2
    assert recorded_files(house)[0] == ["raw/x/b.csv"]
    assert house.run(TASK).metrics.extra.get("skipped_files", []) == []

    # It gets content under the same name: a changed file, as Auto Loader sees it (processed
    # once): skipped with a warning that says so, unless changed_files: reload.
    path = house.raw("raw/x/b.csv", "a,b,c\n7,8,9\n")
    os.utime(path, (1_900_000_000, 1_900_000_000))
    with caplog.at_level(logging.WARNING):
        ignored = house.run(TASK)
    assert house.count("bronze.x") == 2
    assert ignored.metrics.extra["skipped_files"] == [
        {"path": "raw/x/b.csv", "reason": "changed since it was loaded (changed_files: ignore)"}
    ]
    assert "raw/x/b.csv was empty when first seen" in caplog.text
    assert "changed_files: reload" in caplog.text
    reloaded = house.run({**TASK, "changed_files": "reload"})
    assert reloaded.metrics.rows_out == 1 and house.count("bronze.x") == 3


def test_a_gzipped_empty_file_and_a_blank_file_are_empty_files_too(house: Lakehouse) -> None:
    house.raw("raw/x/a.csv", GOOD)
    house.raw("raw/x/blank.csv", "\r\n")
    house.raw("raw/x/nothing.csv.gz", gzip.compress(b""))
    context = house.run({**TASK, "source": "raw/x/*", "format": "csv"})
    assert context.metrics.extra["skipped_files"] == [
        {"path": "raw/x/blank.csv", "reason": "empty file"},
        {"path": "raw/x/nothing.csv.gz", "reason": "empty file"},
    ]
    assert house.table("bronze.x").schema.names == ["a", "b", "c", "_source_file", "_loaded_at"]


# -- malformed CSV lines -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("a,b,c\n1,2,3\n4,5,6,7\n8,9,10\n", "raw/x/b.csv:3: 4 fields where 3 were expected: '4,5,6,7'"),
        ("a,b,c\n1,2,3\n4,5\n8,9,10\n", "raw/x/b.csv:3: 2 fields where 3 were expected: '4,5'"),
        ('a,b,c\n1,"2,3\n4,5,6\n', "raw/x/b.csv:2: a quoted value is never closed"),
    ],
    ids=["too-many-fields", "too-few-fields", "unclosed-quote"],
)
def test_a_malformed_line_among_the_first_names_the_file_and_line(
    house: Lakehouse, content: str, expected: str
) -> None:
    # Within DuckDB's sniffer sample, where DuckDB itself only says it could not detect the
    # dialect; the good file beside it is not loaded either: nothing is written.
    house.raw("raw/x/a.csv", GOOD)
    house.raw("raw/x/b.csv", content)
    with pytest.raises(IngestError) as caught:
        house.run(TASK)
    assert caught.value.message == f"task load: {expected}; nothing was loaded"
    assert caught.value.hint
    assert "sniff" not in str(caught.value) and "OSError" not in str(caught.value)
    assert not house.lake.exists("bronze.x")


def test_an_over_long_line_names_its_line_and_the_option_that_raises_the_limit(house: Lakehouse) -> None:
    house.raw("raw/x/b.csv", "a,b,c\n" + "1,2,3\n" * 500 + "1,2," + "x" * 3_000_000 + "\n" + "7,8,9\n")
    with pytest.raises(IngestError) as caught:
        house.run(TASK)
    assert caught.value.message.startswith(
        "task load: raw/x/b.csv:502: the line is 3000004 bytes, over the limit of 2000000"
    )
    assert "max_line_size: 4000000" in str(caught.value.hint)  # the size rounded up

    house.run({**TASK, "options": {"max_line_size": 4_000_000}})
    assert house.count("bronze.x") == 502


def test_a_malformed_line_far_beyond_the_sample_is_named_without_an_oserror(house: Lakehouse) -> None:
    house.raw("raw/x/a.csv", GOOD)
    house.raw("raw/x/b.csv", "a,b,c\n" + "1,2,3\n" * 30000 + "4,5,6,7\n")
    with pytest.raises(IngestError) as caught:
        house.run(TASK)
    assert caught.value.message == "task load: raw/x/b.csv:30002: 4 fields where 3 were expected: '4,5,6,7'; nothing was loaded"
    assert "OSError" not in str(caught.value) and "\n" not in str(caught.value)
    assert not house.lake.exists("bronze.x")


def test_text_that_is_not_utf8_names_the_line_and_the_encoding_option(house: Lakehouse) -> None:
    house.raw("raw/x/b.csv", b"a,b,c\n1,2,3\n1,\xff\xfe,3\n")
    with pytest.raises(IngestError) as caught:
        house.run(TASK)
    assert caught.value.message == "task load: raw/x/b.csv:3: the text is not valid UTF-8; nothing was loaded"
    assert "encoding: latin-1" in str(caught.value.hint)
    house.run({**TASK, "options": {"encoding": "latin-1"}})
    assert house.count("bronze.x") == 2


def test_an_unreadable_file_names_the_file(house: Lakehouse) -> None:
    house.raw("raw/x/a.csv.gz", b"this is not gzip")
    with pytest.raises(IngestError) as caught:
        house.run({**TASK, "source": "raw/x/*.csv.gz"})
    assert caught.value.message.startswith("task load: raw/x/a.csv.gz: cannot read the file as csv: ")
    assert "GZIP" in caught.value.message and "OSError" not in caught.value.message
