"""What a keys-only request hears when the model's signature refuses a looked-up feature
that came back null: the entity has no live row online, or its live row holds a null."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from brickyard.features.online_lookup import TableLookup
from brickyard.serving.errors import InvalidInputError
from brickyard.serving.schema import Payload
from brickyard.serving.service import _without_live_features

LOOKUP = TableLookup("features.customer_rfm", ("customer_id",), ("tenure_days", "frequency"), None, 3)
MODEL: Any = SimpleNamespace(lookup=SimpleNamespace(info=SimpleNamespace(lookups=(LOOKUP,))))


def refused(column: str, sent: dict[str, list[Any]], looked_up: dict[str, list[Any]]) -> InvalidInputError:
    rows = len(next(iter(sent.values())))
    error = InvalidInputError(f"column {column!r}: null in row ?, but the model's signature requires a value", column=column)
    return _without_live_features(
        MODEL, Payload(sent, rows, {}, "dataframe_records"), Payload({**sent, **looked_up}, rows, {}, "dataframe_records"), error
    )


def test_an_entity_with_no_live_row_is_named_with_its_table() -> None:
    error = refused("tenure_days", {"customer_id": [3, 7]}, {"tenure_days": [12, None], "frequency": [2, None]})
    assert str(error).startswith("row 1: customer_id 7 has no live features in features.customer_rfm")
    assert error.column == "customer_id" and "brickyard features materialize customer_rfm" in str(error)


def test_a_live_row_holding_a_null_is_said_as_such() -> None:
    error = refused("tenure_days", {"customer_id": [3]}, {"tenure_days": [None], "frequency": [4]})
    assert str(error).startswith("row 0: the live row of customer_id 3 in features.customer_rfm holds null for tenure_days")
    assert error.column == "tenure_days"


def test_csv_text_counts_an_empty_value_as_null() -> None:
    error = refused("frequency", {"customer_id": ["3"]}, {"tenure_days": [""], "frequency": [""]})
    assert str(error).startswith("row 0: customer_id '3' has no live features")


def test_an_error_no_row_explains_is_left_as_it_is() -> None:
    error = refused("tenure_days", {"customer_id": [3]}, {"tenure_days": [5], "frequency": [4]})
    assert str(error).startswith("column 'tenure_days': null in row ?")
