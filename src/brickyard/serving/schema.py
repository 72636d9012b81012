"""Scoring requests in MLflow's formats, checked against a model signature and turned into
typed numpy columns without going through pandas.

The four body formats of MLflow's scoring server are accepted:

- ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}`` (``index`` is ignored)
- ``{"dataframe_records": [{"col": value, ...}, ...]}``
- ``{"instances": ...}`` and ``{"inputs": ...}``: a list of records, or an object of columns
  (``{"col": [v1, v2]}``, or ``{"col": v}`` for one row)

plus an optional ``"params"`` object, and ``text/csv`` bodies (a header row, then rows:
`parse_csv`). Columns the signature does not name are ignored and listed in `Batch.ignored`
(``strict=True``: a 400), as MLflow's server ignores them. Numbers are converted to the
signature's own width (an ``integer`` column is int32, a ``float`` one float32), as MLflow
refuses int64 for int32. Parsing is two steps, because a request may be scored by two models
(a champion and its shadow) whose signatures differ:

>>> payload = parse_body(b'{"dataframe_records": [{"Age": 22, "Sex": "male"}]}')
>>> schema = InputSchema((ColumnSpec("Age", "double", False), ColumnSpec("Sex", "string", True)))
>>> batch = schema.batch(payload)
>>> batch.rows, batch.columns["Age"].dtype.name, batch.columns["Sex"]
(1, 'float64', ('male',))
>>> schema.batch(parse_body(b'{"inputs": {"Age": [1], "Sex": ["f"], "Cabin": ["C85"]}}')).ignored
('Cabin',)

Every problem is an `InvalidInputError` (400) that names the column, the row and the value,
or a `PayloadTooLargeError` (413); nothing here raises anything else for any input.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from brickyard.serving.errors import InvalidInputError, PayloadTooLargeError, SignatureMismatchError

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
FLOAT, INT, BOOL, STR, DATETIME, ANY = "float", "int", "bool", "str", "datetime", "any"
_KINDS = {
    "double": FLOAT,
    "float": FLOAT,
    "long": INT,
    "integer": INT,
    "boolean": BOOL,
    "string": STR,
    "datetime": DATETIME,
}
_INT_RANGE = {"long": (-(2**63), 2**63 - 1), "integer": (-(2**31), 2**31 - 1)}
_NONE = type(None)
_NAN = float("nan")
_ALLOWED: dict[str, frozenset[type]] = {
    FLOAT: frozenset({float, int}),
    INT: frozenset({int, float}),  # floats only when integral
    BOOL: frozenset({bool}),
    STR: frozenset({str}),
    DATETIME: frozenset({str}),
}
_DESCRIBE = {
    FLOAT: "a number",
    INT: "an integer",
    BOOL: "true or false",
    STR: "a string",
    DATETIME: "an ISO 8601 date-time string",
}
_JSON_NAMES = {float: "number", int: "integer", bool: "boolean", str: "string", list: "array", dict: "object", _NONE: "null"}


@dataclass(frozen=True)
class ColumnSpec:
    """One input column of a model signature: its name, MLflow type name and whether a value
    is required (MLflow infers ``required: false`` for columns that held nulls in training)."""

    name: str
    type: str
    required: bool = True

    @property
    def kind(self) -> str:
        return _KINDS.get(self.type, ANY)


@dataclass(frozen=True)
class Payload:
    """A parsed body: raw columns (name -> values, all the same length) and params."""

    columns: dict[str, Any]
    rows: int
    params: dict[str, Any]
    format: str
    text: bool = False  # values are CSV text, typed by each model's signature in `batch`


@dataclass
class Batch:
    """Checked input: one typed array (numbers, booleans, datetimes) or tuple (strings, None
    for null) per signature column, in signature order."""

    columns: dict[str, Any]
    rows: int
    ignored: tuple[str, ...] = ()  # the payload's columns the signature does not name

    def frame(self) -> Any:
        """The batch as a pandas DataFrame (for models without a fast path)."""
        import pandas as pd

        return pd.DataFrame({name: list(values) if isinstance(values, tuple) else values for name, values in self.columns.items()})


@dataclass(frozen=True)
class ParamSpec:
    """A param the model's signature declares (MLflow's ParamSchema): the request's
    ``params`` may set it, and the MLflow model receives it."""

    name: str
    type: str
    default: Any = None
    shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class InputSchema:
    """The input columns a model takes, and the params it declares, from its MLflow signature."""

    columns: tuple[ColumnSpec, ...]
    params: tuple[ParamSpec, ...] = ()
    _index: dict[str, ColumnSpec] = field(init=False, repr=False, compare=False)
    param_names: frozenset[str] = field(init=False, repr=False, compare=False)
    # per column, what `one_row` checks: (name, kind, required, (lowest, highest) integer)
    _one_row: tuple[tuple[str, str, bool, tuple[int, int]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {spec.name: spec for spec in self.columns})
        object.__setattr__(self, "param_names", frozenset(param.name for param in self.params))
        object.__setattr__(self, "_one_row", tuple(
            (spec.name, spec.kind, spec.required, _INT_RANGE.get(spec.type, _INT_RANGE["long"])) for spec in self.columns
        ))

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.columns]

    def batch(self, payload: Payload, *, max_rows: int | None = None, strict: bool = False) -> Batch:
        """Check a payload against the signature and convert it to typed columns.

        Columns the signature does not name are left out and listed in `Batch.ignored`, as
        MLflow's scoring server ignores them; with `strict` the first one is a 400. A
        payload with no rows (``"data": []``, ``[]``) gives an empty batch, scored as no
        predictions; only its column names are checked, as there are no values.

        Raises:
            InvalidInputError: a missing column (`SignatureMismatchError`), an unknown one
                with `strict`, a wrong type, a null where the signature requires a value.
            PayloadTooLargeError: more rows than `max_rows`.
        """
        rows = payload.rows
        if max_rows is not None and rows > max_rows:
            raise PayloadTooLargeError(
                f"the request holds {rows} rows; this endpoint takes at most {max_rows} per request",
                hint="split the rows over several requests",
            )
        columns = payload.columns
        # Columns the model does not take exist only when the counts differ or one of the
        # signature's columns is absent: the common request pays for no set difference.
        ignored = self._unknown(columns, strict) if len(columns) != len(self.columns) else ()
        if rows == 0:
            return Batch({}, 0, self._unknown(columns, strict))
        out: dict[str, Any] = {}
        text = payload.text
        for spec in self.columns:
            values = columns.get(spec.name)
            if values is None:
                if not ignored and len(columns) == len(self.columns):
                    ignored = self._unknown(columns, strict)
                if spec.required:
                    raise SignatureMismatchError(
                        f"missing column {spec.name!r} ({spec.type}), which the model's signature requires",
                        hint=_missing_hint(spec.name, ignored, self.names),
                        column=spec.name,
                    )
                values = (None,) * rows
            elif text:
                values = from_text(spec, values)
            out[spec.name] = convert_column(spec, values)
        return Batch(out, rows, ignored)

    def _unknown(self, columns: dict[str, Any], strict: bool) -> tuple[str, ...]:
        """The payload's columns that the signature does not name (a 400 with `strict`)."""
        index = self._index
        unknown = tuple(name for name in columns if name not in index)
        if unknown and strict:
            name = unknown[0]
            raise InvalidInputError(
                f"unknown column {name!r}: the model does not take it",
                hint=_close(name, self.names) or f"the model takes: {', '.join(self.names)}",
                column=name,
            )
        return unknown

    def one_row(self, payload: Payload) -> dict[str, Any] | None:
        """A one-row payload's values as plain Python scalars (numbers as float, NaN for a
        null number, strings, None for a null string) when every value is plainly valid;
        None otherwise, and `batch` then checks the row and names any problem.

        The common request, one row of numbers and strings, skips numpy entirely here.
        """
        if payload.rows != 1 or len(payload.columns) != len(self.columns) or payload.text:
            return None
        row: dict[str, Any] = {}
        columns = payload.columns
        for name, kind, required, (lowest, highest) in self._one_row:
            values = columns.get(name)
            if values is None:
                return None
            value = values[0]
            if value is None:
                if required or kind not in (FLOAT, STR):
                    return None
                row[name] = _NAN if kind == FLOAT else None
            elif (kind == FLOAT and (type(value) is float or type(value) is int) and math.isfinite(value)) or (
                kind == INT and type(value) is int and lowest <= value <= highest
            ):
                row[name] = float(value)
            elif kind == STR and type(value) is str:
                row[name] = value
            else:
                return None
        return row

    def json_schema(self, *, strict: bool = False) -> dict[str, Any]:
        """A JSON Schema (OpenAPI 3.1) of the request body for this signature.

        It admits every body `parse_body` and `batch` accept: other columns are allowed (and
        ignored) unless `strict`. What JSON Schema cannot say (a `dataframe_split` row as
        long as its `columns`, columns of equal length, the signature's columns present when
        there are rows) is checked by `batch` with a 400.
        """
        properties = {spec.name: _value_schema(spec) for spec in self.columns}
        required = [spec.name for spec in self.columns if spec.required]
        # Another column: any value in a record; in columnar form a list, or one value.
        other: dict[str, Any] | bool = False if strict else {"description": "not in the signature: ignored"}
        other_list: dict[str, Any] | bool = False if strict else {"type": "array", "description": "not in the signature: ignored"}
        other_value: dict[str, Any] | bool = False if strict else {"not": {"type": "array"}, "description": "not in the signature: ignored"}
        record = {"type": "object", "properties": properties, "required": required, "additionalProperties": other}
        names: dict[str, Any] = {"type": "string", "enum": self.names} if strict else {"type": "string"}
        split = {
            "type": "object",
            "properties": {
                "columns": {"type": "array", "items": names, "uniqueItems": True},
                "data": {"type": "array", "items": {"type": "array"}, "description": "rows, each as long as columns; [] for none"},
                "index": {"description": "ignored"},
            },
            "required": ["columns", "data"],
            "additionalProperties": False,
        }
        columns = {
            "anyOf": [
                {
                    "type": "object",
                    "description": "columns of values, all the same length",
                    "properties": {name: {"type": "array", "items": schema} for name, schema in properties.items()},
                    "additionalProperties": other_list,
                },
                {"type": "object", "description": "one row: a value per column", "properties": properties,
                 "required": required, "minProperties": 1, "additionalProperties": other_value},
            ],
        }
        params = {
            "type": ["object", "null"],
            "properties": {
                "predict_proba": {"type": "boolean", "description": "answer class probabilities"},
                "predict_method": {"type": "string", "enum": ["predict", "predict_proba"]},
                **{param.name: _param_schema(param) for param in self.params},
            },
            "additionalProperties": False,
        }
        records = {"type": "array", "items": record, "description": "one object per row; [] for none"}
        return {
            "oneOf": [
                {"type": "object", "properties": {"dataframe_split": split, "params": params}, "required": ["dataframe_split"], "additionalProperties": False},
                {"type": "object", "properties": {"dataframe_records": records, "params": params}, "required": ["dataframe_records"], "additionalProperties": False},
                {"type": "object", "properties": {"instances": {"oneOf": [records, columns]}, "params": params}, "required": ["instances"], "additionalProperties": False},
                {"type": "object", "properties": {"inputs": {"oneOf": [records, columns]}, "params": params}, "required": ["inputs"], "additionalProperties": False},
            ],
            "example": {"dataframe_records": [{spec.name: _example_value(spec) for spec in self.columns}]},
        }

    def csv_example(self) -> str:
        """A CSV body for this signature (header and one row)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.names)
        writer.writerow([_csv_text(_example_value(spec)) for spec in self.columns])
        return buffer.getvalue()


# -- the body ----------------------------------------------------------------------------


def parse_body(body: bytes) -> Payload:
    """Parse a request body in one of MLflow's scoring formats into raw columns.

    Raises:
        InvalidInputError: not JSON, not an object, no or several formats, a malformed format.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # from None: a request body's parse error, restated for an HTTP 400 (noise; never a traceback)
        raise InvalidInputError(f"the body is not valid JSON: {exc}", hint=_FORMAT_HINT) from None
    if type(doc) is not dict:
        raise InvalidInputError(f"the body must be a JSON object, not {_json_name(doc)}", hint=_FORMAT_HINT)
    found = None
    params: Any = {}
    for key in doc:
        if key in FORMATS:
            if found is not None:
                raise InvalidInputError(f"the body holds both {found!r} and {key!r}; send one format", hint=_FORMAT_HINT)
            found = key
        elif key == "params":
            params = doc[key]
        else:
            raise InvalidInputError(f"unknown key {key!r} in the body", hint=_close(key, [*FORMATS, "params"]) or _FORMAT_HINT)
    if found is None:
        raise InvalidInputError("the body holds none of " + ", ".join(FORMATS), hint=_FORMAT_HINT)
    if params is None:
        params = {}
    if type(params) is not dict:
        raise InvalidInputError(f"'params' must be an object, not {_json_name(params)}")
    data = doc[found]
    if found == "dataframe_split":
        columns, rows = _split(data)
    elif found == "dataframe_records":
        columns, rows = _records(data, found)
    else:
        columns, rows = _records(data, found) if type(data) is list else _columnar(data, found)
    return Payload(columns, rows, params, found)


_FORMAT_HINT = (
    'send {"dataframe_split": {"columns": [...], "data": [[...]]}}, {"dataframe_records": [{...}]}, '
    '{"instances": [...]} or {"inputs": ...}'
)


# pandas' default NA words (`pd.read_csv`, which MLflow's server uses): these cells are null.
CSV_NULLS = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})
_CSV_HINT = "send a header row of column names, then one line per row (what pandas' DataFrame.to_csv(index=False) writes)"


def parse_csv(body: bytes) -> Payload:
    """Parse a ``text/csv`` body: a header row, then rows. The cells stay text until `batch`
    types them by the model's signature (`from_text`).

    Raises:
        InvalidInputError: not UTF-8, no header, a row of another width, a repeated name.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # from None: a request body's parse error, restated for an HTTP 400 (noise; never a traceback)
        raise InvalidInputError(f"the CSV body is not UTF-8: {exc}", hint=_CSV_HINT) from None
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")), strict=True)
    names: list[str] | None = None
    rows: list[list[str]] = []
    try:
        for row in reader:
            if not row:
                continue  # a blank line, skipped as pandas does
            if names is None:
                names = row
                _no_duplicates(names)
            elif len(row) != len(names):
                raise InvalidInputError(f"CSV line {reader.line_num} has {len(row)} fields for {len(names)} columns", hint=_CSV_HINT)
            else:
                rows.append(row)
    except csv.Error as exc:
        # from None: a request body's parse error, restated for an HTTP 400 (noise; never a traceback)
        raise InvalidInputError(f"the CSV body is malformed at line {reader.line_num}: {exc}", hint=_CSV_HINT) from None
    if names is None:
        raise InvalidInputError("the CSV body is empty: it needs a header row of column names", hint=_CSV_HINT)
    columns = dict(zip(names, zip(*rows))) if rows else {name: () for name in names}
    return Payload(columns, len(rows), {}, "csv", text=True)


def from_text(spec: ColumnSpec, values: Any) -> list[Any]:
    """CSV cells typed by the signature: numbers, integers, true/false, text; `CSV_NULLS` are null.

    Raises:
        InvalidInputError: a cell that is not of the column's type (names the column and row).
    """
    kind = spec.kind
    if kind not in (FLOAT, INT, BOOL):
        return [None if value in CSV_NULLS else value for value in values]
    parse = _TEXT_PARSERS[kind]
    out: list[Any] = []
    for row, value in enumerate(values):
        if value in CSV_NULLS:
            out.append(None)
            continue
        try:
            out.append(parse(value))
        except ValueError:
            # from None: a request body's parse error, restated for an HTTP 400 (noise; never a traceback)
            raise InvalidInputError(
                f"column {spec.name!r}: {_show(value)} in row {row} is not {_DESCRIBE[kind]} ({spec.type})", column=spec.name
            ) from None
    return out


def _boolean(text: str) -> bool:
    word = text.strip().lower()
    if word not in ("true", "false"):
        raise ValueError(text)
    return word == "true"


_TEXT_PARSERS: dict[str, Any] = {FLOAT: float, INT: int, BOOL: _boolean}


def _csv_text(value: Any) -> str:
    return "true" if value is True else "" if value is None else str(value)


def _split(data: Any) -> tuple[dict[str, Any], int]:
    if type(data) is not dict:
        raise InvalidInputError(f"'dataframe_split' must be an object with 'columns' and 'data', not {_json_name(data)}")
    for key in data:
        if key not in ("columns", "data", "index"):
            raise InvalidInputError(f"unknown key {key!r} in 'dataframe_split'", hint="it takes 'columns', 'data' and 'index'")
    names = data.get("columns")
    rows = data.get("data")
    if type(names) is not list or not all(type(name) is str for name in names):
        raise InvalidInputError("'dataframe_split.columns' must be a list of column names")
    _no_duplicates(names)
    if type(rows) is not list:
        raise InvalidInputError(f"'dataframe_split.data' must be a list of rows, not {_json_name(rows)}")
    if not rows:
        return {name: () for name in names}, 0
    if set(map(type, rows)) != {list}:
        bad = next(i for i, row in enumerate(rows) if type(row) is not list)
        raise InvalidInputError(f"'dataframe_split.data' row {bad} is {_json_name(rows[bad])}, not a list of values")
    width = len(names)
    if set(map(len, rows)) != {width}:
        bad = next(i for i, row in enumerate(rows) if len(row) != width)
        raise InvalidInputError(f"'dataframe_split.data' row {bad} has {len(rows[bad])} values for {width} columns")
    return dict(zip(names, zip(*rows))), len(rows)


def _records(data: Any, where: str) -> tuple[dict[str, Any], int]:
    if type(data) is not list:
        raise InvalidInputError(f"{where!r} must be a list of records (objects), not {_json_name(data)}")
    if not data:
        return {}, 0
    if set(map(type, data)) != {dict}:
        bad = next(i for i, row in enumerate(data) if type(row) is not dict)
        raise InvalidInputError(
            f"{where!r} record {bad} is {_json_name(data[bad])}, not an object of column values",
            hint="send one object per row, e.g. [{\"Age\": 22, \"Sex\": \"male\"}]",
        )
    first = data[0].keys()
    if all(row.keys() == first for row in data):
        names = list(first)
        if not names:
            return {}, len(data)
        if len(names) == 1:
            return {names[0]: [row[names[0]] for row in data]}, len(data)
        return dict(zip(names, zip(*map(itemgetter(*names), data)))), len(data)
    names = list(dict.fromkeys(name for row in data for name in row))
    return {name: [row.get(name) for row in data] for name in names}, len(data)


def _columnar(data: Any, where: str) -> tuple[dict[str, Any], int]:
    if type(data) is not dict:
        raise InvalidInputError(f"{where!r} must be a list of records or an object of columns, not {_json_name(data)}")
    if not data:
        return {}, 0
    kinds = {type(values) is list for values in data.values()}
    if kinds == {False}:  # one row, given as {"col": value}
        return {name: (value,) for name, value in data.items()}, 1
    if kinds != {True}:
        raise InvalidInputError(f"{where!r} mixes lists and single values; give every column as a list of values")
    lengths = {len(values) for values in data.values()}
    if len(lengths) != 1:
        raise InvalidInputError(f"the columns in {where!r} have different lengths: {sorted(lengths)}")
    return dict(data), lengths.pop()


def _no_duplicates(names: list[str]) -> None:
    if len(set(names)) != len(names):
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise InvalidInputError(f"column {name!r} appears twice", column=name)
            seen.add(name)


# -- columns -----------------------------------------------------------------------------


def convert_column(spec: ColumnSpec, values: Any) -> Any:
    kind = spec.kind
    if kind == ANY:
        return values
    types = set(map(type, values))
    allowed = _ALLOWED[kind]
    has_null = _NONE in types
    if has_null:
        if spec.required:
            row = next((i for i, value in enumerate(values) if value is None), 0)
            raise InvalidInputError(
                f"column {spec.name!r}: null in row {row}, but the model's signature requires a value",
                column=spec.name,
            )
        types.discard(_NONE)
    if not types <= allowed:
        row = next((i for i, value in enumerate(values) if value is not None and type(value) not in allowed), 0)
        raise InvalidInputError(
            f"column {spec.name!r}: expected {_DESCRIBE[kind]} ({spec.type}), got {_json_name(values[row])} "
            f"{_show(values[row])} in row {row}",
            column=spec.name,
        )
    if kind == FLOAT:
        try:
            array = np.array(values, dtype=np.float64)
        except OverflowError:
            # from None: a request body's parse error, restated for an HTTP 400 (noise; never a traceback)
            raise InvalidInputError(f"column {spec.name!r}: a number is out of range ({spec.type})", column=spec.name) from None
        if np.isinf(array).any():
            row = int(np.flatnonzero(np.isinf(array))[0])
            raise InvalidInputError(f"column {spec.name!r}: {values[row]!r} in row {row} is not a finite number", column=spec.name)
        return _float32(spec, values, array) if spec.type == "float" else array
    if kind == INT:
        integers = _integers(spec, values, types, has_null)
        # The signature's own width: MLflow refuses int64 for an `integer` (int32) column.
        return integers.astype(np.int32) if spec.type == "integer" and integers.dtype == np.int64 else integers
    if kind == STR:
        return values if type(values) is tuple else tuple(values)
    if kind == BOOL:
        return np.array(values, dtype=np.float64 if has_null else np.bool_)
    try:  # DATETIME
        return np.array(values, dtype="datetime64[ns]")
    except (ValueError, OverflowError):
        row = next((i for i, value in enumerate(values) if value is not None and not _is_datetime(value)), 0)
        # from None: a request body's parse error, restated for an HTTP 400 (noise; never a traceback)
        raise InvalidInputError(
            f"column {spec.name!r}: {_show(values[row])} in row {row} is not an ISO 8601 date-time", column=spec.name
        ) from None


def _float32(spec: ColumnSpec, values: Any, array: np.ndarray) -> np.ndarray:
    """A `float` (32-bit) column: MLflow refuses float64 for it. Raises when a value is
    beyond float32's range."""
    with np.errstate(over="ignore"):
        narrow = array.astype(np.float32)
    if np.isinf(narrow).any():
        row = int(np.flatnonzero(np.isinf(narrow))[0])
        raise InvalidInputError(f"column {spec.name!r}: {_show(values[row])} in row {row} is out of range for float (32-bit)", column=spec.name)
    return narrow


def _integers(spec: ColumnSpec, values: Any, types: set[type], has_null: bool) -> Any:
    low, high = _INT_RANGE.get(spec.type, _INT_RANGE["long"])
    array: np.ndarray[Any, Any] | None
    if float in types or has_null:
        array = np.array(values, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            bad = ~np.isnan(array) & (np.isinf(array) | (array != np.floor(array)) | (array < low) | (array >= high + 1))
        if bad.any():
            # float64 rounds integers near 2**63 up to it: check those rows on the exact values.
            for row in np.flatnonzero(bad):
                value = values[row]
                if not (type(value) is int and low <= value <= high):
                    raise InvalidInputError(
                        f"column {spec.name!r}: expected an integer ({spec.type}), got {_show(value)} in row {row}",
                        column=spec.name,
                    )
        # Without nulls, convert the checked values themselves: through float64, integers
        # past 2**53 would change.
        return array if has_null else np.array(values, dtype=np.int64)
    try:
        array = np.array(values, dtype=np.int64)
    except OverflowError:
        array = None
    if array is None or (spec.type == "integer" and (array.min() < low or array.max() > high)):
        first = next((i for i, value in enumerate(values) if not low <= value <= high), 0)
        raise InvalidInputError(
            f"column {spec.name!r}: {values[first]} in row {first} is out of range for {spec.type}", column=spec.name
        )
    return array


def _is_datetime(value: Any) -> bool:
    try:
        np.datetime64(value, "ns")
    except (ValueError, TypeError, OverflowError):
        return False
    return True


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _param_schema(param: ParamSpec) -> dict[str, Any]:
    scalar = _value_schema(ColumnSpec(param.name, param.type))
    schema = {"type": "array", "items": scalar} if param.shape else dict(scalar)
    if param.default is not None:
        schema["default"] = param.default
    schema["description"] = "declared by the model's signature; passed to the MLflow model"
    return schema


def _value_schema(spec: ColumnSpec) -> dict[str, Any]:
    base: dict[str, Any] = {
        FLOAT: {"type": "number", "minimum": -_FLOAT32_MAX, "maximum": _FLOAT32_MAX} if spec.type == "float" else {"type": "number"},
        INT: {"type": "integer", "minimum": _INT_RANGE.get(spec.type, _INT_RANGE["long"])[0], "maximum": _INT_RANGE.get(spec.type, _INT_RANGE["long"])[1]},
        BOOL: {"type": "boolean"},
        STR: {"type": "string"},
        DATETIME: {"type": "string", "format": "date-time"},
        ANY: {},
    }[spec.kind]
    if not spec.required and base:
        return {**base, "type": [base["type"], "null"]}
    return base


def _example_value(spec: ColumnSpec) -> Any:
    return {FLOAT: 1.5, INT: 1, BOOL: True, STR: "a", DATETIME: "2026-01-01T00:00:00", ANY: None}[spec.kind]


def _json_name(value: Any) -> str:
    name = _JSON_NAMES.get(type(value), type(value).__name__)
    return "null" if name == "null" else ("an " if name[0] in "aeio" else "a ") + name


def _show(value: Any) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, float) or math.isfinite(value) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _close(word: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else None


def _missing_hint(name: str, others: tuple[str, ...], names: list[str]) -> str:
    """For a missing column: the sent column it may be a typo of, else what the model takes."""
    close = difflib.get_close_matches(name, list(others), n=1, cutoff=0.6)
    if close:
        return f"the request has {close[0]!r}: did you mean {name!r}?"
    return f"the model takes: {', '.join(names)}"
