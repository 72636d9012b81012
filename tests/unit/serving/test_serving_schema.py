"""Request bodies in MLflow's formats, checked against a signature: every problem is a 4xx
that names the column and the problem."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from brickyard.serving.errors import InvalidInputError, PayloadTooLargeError
from brickyard.serving.schema import ColumnSpec, InputSchema, parse_body

SCHEMA = InputSchema(
    (
        ColumnSpec("Age", "double", False),
        ColumnSpec("SibSp", "long", True),
        ColumnSpec("Fare", "double", True),
        ColumnSpec("Sex", "string", True),
        ColumnSpec("Embarked", "string", False),
    )
)
ROW = {"Age": 22.5, "SibSp": 1, "Fare": 7.25, "Sex": "male", "Embarked": "S"}


def check(doc: Any, schema: InputSchema = SCHEMA, **kwargs: Any):  # type: ignore[no-untyped-def]
    return schema.batch(parse_body(orjson.dumps(doc)), **kwargs)


def problem(doc: Any, **kwargs: Any) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        check(doc, **kwargs)
    return caught.value


@pytest.mark.parametrize(
    "doc",
    [
        {"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values())] * 2}},
        {"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values())] * 2, "index": [0, 1]}},
        {"dataframe_records": [ROW, ROW]},
        {"instances": [ROW, ROW]},
        {"inputs": [ROW, ROW]},
        {"inputs": {name: [value, value] for name, value in ROW.items()}},
        {"instances": {name: [value, value] for name, value in ROW.items()}},
    ],
    ids=["split", "split-index", "records", "instances", "inputs", "inputs-columns", "instances-columns"],
)
def test_every_format_gives_the_same_typed_columns(doc: dict[str, Any]) -> None:
    batch = check(doc)
    assert batch.rows == 2
    assert batch.columns["Age"].dtype == np.float64 and batch.columns["Age"].tolist() == [22.5, 22.5]
    assert batch.columns["SibSp"].dtype == np.int64
    assert batch.columns["Sex"] == ("male", "male")


def test_one_row_as_an_object_of_values() -> None:
    assert check({"inputs": ROW}).rows == 1


def test_optional_columns_may_be_null_or_absent() -> None:
    batch = check({"dataframe_records": [{**ROW, "Age": None, "Embarked": None}, {"SibSp": 0, "Fare": 1.0, "Sex": "female"}]})
    assert np.isnan(batch.columns["Age"]).all()
    assert batch.columns["Embarked"] == (None, None)


def test_integral_floats_are_integers_and_ints_are_doubles() -> None:
    batch = check({"dataframe_records": [{**ROW, "SibSp": 2.0, "Fare": 7}]})
    assert batch.columns["SibSp"].tolist() == [2] and batch.columns["SibSp"].dtype == np.int64
    assert batch.columns["Fare"].tolist() == [7.0]


@pytest.mark.parametrize(
    ("change", "column", "words"),
    [
        ({"Fare": None}, "Fare", "null in row 0"),
        ({"Age": "old"}, "Age", 'expected a number (double), got a string "old" in row 0'),
        ({"Age": True}, "Age", "got a boolean true"),
        ({"SibSp": 1.5}, "SibSp", "expected an integer (long), got 1.5"),
        ({"SibSp": "1"}, "SibSp", "expected an integer"),
        ({"SibSp": 2**63}, "SibSp", "out of range"),
        ({"Sex": 1}, "Sex", "expected a string (string), got an integer 1"),
        ({"Sex": ["male"]}, "Sex", "got an array"),
        ({"Embarked": {"a": 1}}, "Embarked", "got an object"),
    ],
)
def test_wrong_values_name_the_column_row_and_problem(change: dict[str, Any], column: str, words: str) -> None:
    error = problem({"dataframe_records": [ROW, {**ROW, **change}][1:]})
    assert error.column == column and f"column {column!r}" in str(error)
    assert words in str(error)
    assert error.status == 400


def test_missing_and_unknown_columns() -> None:
    missing = problem({"dataframe_records": [{k: v for k, v in ROW.items() if k != "Fare"}]})
    assert missing.column == "Fare" and "missing column 'Fare'" in str(missing)
    unknown = problem({"dataframe_records": [{**ROW, "fare": 1.0}]})
    assert unknown.column == "fare" and "unknown column 'fare'" in str(unknown) and "'Fare'" in str(unknown)


def test_the_row_of_the_first_bad_value_is_named() -> None:
    rows = [list(ROW.values()) for _ in range(5)]
    rows[3][2] = "cheap"
    assert "row 3" in str(problem({"dataframe_split": {"columns": list(ROW), "data": rows}}))


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object, not an array"),
        (b"{}", "holds none of dataframe_split"),
        (b'{"dataframe_records": [], "inputs": []}', "both"),
        (b'{"dataframe_recs": []}', "did you mean 'dataframe_records'"),
        (b'{"dataframe_split": [1]}', "must be an object with 'columns' and 'data'"),
        (b'{"dataframe_split": {"columns": ["Age"]}}', "must be a list of rows"),
        (b'{"dataframe_split": {"columns": ["Age", "Age"], "data": [[1, 2]]}}', "appears twice"),
        (b'{"dataframe_split": {"columns": ["Age"], "data": [[1, 2]]}}', "row 0 has 2 values for 1 columns"),
        (b'{"dataframe_split": {"columns": ["Age"], "data": [1]}}', "row 0 is an integer"),
        (b'{"dataframe_records": [1]}', "record 0 is an integer"),
        (b'{"inputs": {"Age": [1], "Fare": 2}}', "mixes lists and single values"),
        (b'{"inputs": {"Age": [1], "Fare": [1, 2]}}', "different lengths"),
        (b'{"dataframe_records": [{"Age": 1}], "params": [1]}', "'params' must be an object"),
        (b'{"dataframe_split": {"columns": ["Cabin"], "data": []}}', "unknown column 'Cabin'"),
    ],
)
def test_malformed_bodies_are_400s(body: bytes, words: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        SCHEMA.batch(parse_body(body))
    assert words in str(caught.value)


@pytest.mark.parametrize(
    "doc",
    [
        {"dataframe_split": {"columns": list(ROW), "data": []}},
        {"dataframe_split": {"columns": [], "data": []}},
        {"dataframe_records": []},
        {"instances": []},
        {"inputs": []},
        {"inputs": {name: [] for name in ROW}},
        {"inputs": {}},
    ],
    ids=["split", "split-no-columns", "records", "instances", "inputs", "inputs-columns", "inputs-empty-object"],
)
def test_a_request_with_no_rows_is_an_empty_batch(doc: dict[str, Any]) -> None:
    """Zero rows in any format is valid (no values can be wrong); the service answers no predictions."""
    assert check(doc).rows == 0


def test_long_columns_keep_exact_values_next_to_integral_floats() -> None:
    """An integral float in a long column used to send the whole column through float64:
    2**63 - 1 was refused as out of range and 2**53 + 1 silently became 2**53."""
    schema = InputSchema((ColumnSpec("n", "long", True),))
    values = [1.0, 2**63 - 1, 2**53 + 1, -(2**63)]
    batch = check({"inputs": {"n": values}}, schema)
    assert batch.columns["n"].dtype == np.int64 and batch.columns["n"].tolist() == [1, 2**63 - 1, 2**53 + 1, -(2**63)]
    for bad in (2.0**63, -(2.0**63) * 2, 1.5):
        with pytest.raises(InvalidInputError, match="expected an integer"):
            check({"inputs": {"n": [1.0, bad]}}, schema)
    nulls = check({"inputs": {"n": [None, 2**63 - 1]}}, InputSchema((ColumnSpec("n", "long", False),)))
    assert np.isnan(nulls.columns["n"][0]) and nulls.columns["n"][1] == 2.0**63  # with nulls a long column is float64


def test_too_many_rows_is_413() -> None:
    with pytest.raises(PayloadTooLargeError, match="at most 2 per request"):
        check({"dataframe_records": [ROW] * 3}, max_rows=2)


def test_datetime_and_boolean_columns() -> None:
    schema = InputSchema((ColumnSpec("when", "datetime", True), ColumnSpec("flag", "boolean", True)))
    batch = check({"inputs": {"when": ["2026-01-02T03:04:05"], "flag": [True]}}, schema)
    assert batch.columns["when"].dtype.kind == "M" and batch.columns["flag"].tolist() == [True]
    with pytest.raises(InvalidInputError, match="'when'.*not an ISO 8601"):
        check({"inputs": {"when": ["yesterday"], "flag": [True]}}, schema)
    with pytest.raises(InvalidInputError, match="'flag'.*expected true or false"):
        check({"inputs": {"when": ["2026-01-02"], "flag": [1]}}, schema)


def test_json_schema_describes_each_format() -> None:
    doc = SCHEMA.json_schema()
    assert {next(iter(option["required"])) for option in doc["oneOf"]} == {"dataframe_split", "dataframe_records", "instances", "inputs"}
    record = doc["oneOf"][1]["properties"]["dataframe_records"]["items"]
    assert record["properties"]["Age"] == {"type": ["number", "null"]} and "Fare" in record["required"]
