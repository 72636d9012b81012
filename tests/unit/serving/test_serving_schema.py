"""Request bodies in MLflow's formats, checked against a signature: every problem is a 4xx
that names the column and the problem."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from brickyard.serving.errors import InvalidInputError, PayloadTooLargeError
from brickyard.serving.schema import ColumnSpec, InputSchema, parse_body, parse_csv

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
    assert missing.error_code == "INVALID_PARAMETER_VALUE"  # MLflow's server answers this code
    unknown = problem({"dataframe_records": [{**ROW, "fare": 1.0}]}, strict=True)
    assert unknown.column == "fare" and "unknown column 'fare'" in str(unknown) and "'Fare'" in str(unknown)
    typo = problem({"dataframe_records": [{**{k: v for k, v in ROW.items() if k != "Fare"}, "fare": 1.0}]})
    assert typo.column == "Fare" and "did you mean 'Fare'" in str(typo)


def test_columns_the_signature_does_not_name_are_ignored_and_listed() -> None:
    """As MLflow's server does: a client may send whole rows (ids, labels) to the model."""
    plain = check({"dataframe_records": [ROW]})
    extra = check({"dataframe_records": [{"PassengerId": 7, **ROW, "Cabin": None}]})
    assert extra.ignored == ("PassengerId", "Cabin") and plain.ignored == ()
    assert list(extra.columns) == list(plain.columns) and extra.columns["Age"].tolist() == [22.5]
    # as many columns as the signature, one optional one absent: the other is still named
    swapped = check({"dataframe_records": [{**{k: v for k, v in ROW.items() if k != "Embarked"}, "Cabin": "C85"}]})
    assert swapped.ignored == ("Cabin",) and swapped.columns["Embarked"] == (None,)
    assert check({"dataframe_split": {"columns": ["Cabin"], "data": []}}).ignored == ("Cabin",)
    assert problem({"dataframe_split": {"columns": ["Cabin"], "data": []}}, strict=True).column == "Cabin"


def test_numbers_take_the_signatures_width() -> None:
    """An `integer` column is int32 and a `float` one float32: MLflow refuses int64 and
    float64 for them ("Can not safely convert int64 to int32")."""
    schema = InputSchema((ColumnSpec("n", "integer", True), ColumnSpec("x", "float", True), ColumnSpec("m", "long", True)))
    batch = check({"inputs": {"n": [1, 2.0, 2**31 - 1], "x": [1.5, 2, 0.1], "m": [1, 2, 3]}}, schema)
    assert batch.columns["n"].dtype == np.int32 and batch.columns["n"].tolist() == [1, 2, 2**31 - 1]
    assert batch.columns["x"].dtype == np.float32 and batch.columns["m"].dtype == np.int64
    too_big = problem({"inputs": {"n": [2**31], "x": [1.0], "m": [1]}}, schema=schema)
    assert too_big.column == "n" and "out of range for integer" in str(too_big)
    too_wide = problem({"inputs": {"n": [1], "x": [1e39], "m": [1]}}, schema=schema)
    assert too_wide.column == "x" and "out of range for float" in str(too_wide)


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
    ],
)
def test_malformed_bodies_are_400s(body: bytes, words: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        SCHEMA.batch(parse_body(body))
    assert words in str(caught.value)


def test_csv_bodies_are_typed_by_the_signature() -> None:
    """`text/csv` as pandas' to_csv(index=False) writes it; empty cells and pandas' NA words
    are null, as `pd.read_csv` (MLflow's server) reads them."""
    body = "\ufeffAge,SibSp,Fare,Sex,Embarked,Cabin\n22.5,1,7.25,male,S,C85\n\n,0,8.05,female,NA,\n"
    payload = parse_csv(body.encode())
    batch = SCHEMA.batch(payload)
    assert batch.rows == 2 and batch.ignored == ("Cabin",)
    assert batch.columns["Age"].tolist()[0] == 22.5 and np.isnan(batch.columns["Age"][1])
    assert batch.columns["SibSp"].dtype == np.int64 and batch.columns["SibSp"].tolist() == [1, 0]
    assert batch.columns["Sex"] == ("male", "female") and batch.columns["Embarked"] == ("S", None)
    assert SCHEMA.one_row(parse_csv(b"Age,SibSp,Fare,Sex,Embarked\n1,1,1,a,b\n")) is None  # text goes the checked way
    as_index = SCHEMA.batch(parse_csv(b",Age,SibSp,Fare,Sex,Embarked\n0,1,1,1,a,b\n"))  # to_csv() with its index
    assert as_index.ignored == ("",) and as_index.rows == 1


@pytest.mark.parametrize(
    ("body", "words", "column"),
    [
        (b"", "the CSV body is empty", None),
        (b"Age,Age\n1,2\n", "appears twice", "Age"),
        (b"Age,SibSp,Fare,Sex\n1,2\n", "CSV line 2 has 2 fields for 4 columns", None),
        (b"Age,SibSp,Fare,Sex\nold,1,1,a\n", "column 'Age': \"old\" in row 0 is not a number", "Age"),
        (b"Age,SibSp,Fare,Sex\n1,1.5,1,a\n", "column 'SibSp': \"1.5\" in row 0 is not an integer", "SibSp"),
        (b"Age,SibSp,Fare,Sex\n1,1,,a\n", "column 'Fare': null in row 0", "Fare"),
        (b"Age,SibSp,Fare\n1,1,1\n", "missing column 'Sex'", "Sex"),
        (b"\xff\xfe", "not UTF-8", None),
        (b'Age,Sex\n"1,2\n', "malformed", None),
    ],
)
def test_bad_csv_bodies_are_400s_naming_the_line_or_column(body: bytes, words: str, column: str | None) -> None:
    with pytest.raises(InvalidInputError) as caught:
        SCHEMA.batch(parse_csv(body))
    assert words in str(caught.value) and caught.value.column == column


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
