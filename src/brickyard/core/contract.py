"""Table contracts: columns and types, keys, expectations with actions, PII columns.

```yaml
# contracts/silver.taxi_trips.yaml
table: silver.taxi_trips
evolution: add                    # a new source column: add it, or fail
pii_key: ${env:BRICKYARD_PII_KEY} # HMAC key for pii columns (a secret reference)
columns:
  - {name: tpep_pickup_datetime, type: timestamp, format: "%m/%d/%Y %H:%M", nullable: false}
  - {name: fare_amount, type: double}
  - {name: customer_email, type: string, pii: true}
keys: [trip_id]
expectations:
  - {not_null: passenger_count, action: drop}
  - {range: {column: fare_amount, min: 0, max: 1000}, action: drop}
  - {accepted_values: {column: payment_type, values: [1, 2, 3, 4, 5, 6]}, action: warn}
  - {unique: [trip_id], action: fail}
  - {sql: "tpep_dropoff_datetime > tpep_pickup_datetime", name: dropoff_after_pickup, action: drop}
```
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Action = Literal["warn", "drop", "fail"]
EvolutionPolicy = Literal["add", "fail"]

# Contract type names -> DuckDB types. Anything else is passed to DuckDB as written
# (e.g. `decimal(10,2)`), and `brickyard validate` checks it parses.
TYPE_ALIASES = {
    "string": "VARCHAR",
    "str": "VARCHAR",
    "text": "VARCHAR",
    "int": "INTEGER",
    "integer": "INTEGER",
    "long": "BIGINT",
    "bigint": "BIGINT",
    "float": "DOUBLE",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "datetime": "TIMESTAMP",
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(Strict):
    """One column: its type, how to parse it, whether it may be null, whether it is PII."""

    name: str
    type: str = "string"
    source: str | None = None  # the column's name in the source file, when it differs
    format: str | None = None  # strptime format for date/timestamp text
    nullable: bool = True
    pii: bool = False

    @property
    def duckdb_type(self) -> str:
        return TYPE_ALIASES.get(self.type.lower(), self.type.upper())

    @property
    def source_name(self) -> str:
        return self.source or self.name


class RangeCheck(Strict):
    column: str
    min: float | None = None
    max: float | None = None


class AcceptedValues(Strict):
    column: str
    values: list[Any] = Field(min_length=1)


class Expectation(Strict):
    """One rule with its action: exactly one of the check fields is set."""

    name: str | None = None
    action: Action = "warn"
    not_null: str | None = None
    unique: list[str] | None = None
    range: RangeCheck | None = None
    accepted_values: AcceptedValues | None = None
    sql: str | None = None

    @model_validator(mode="after")
    def _exactly_one_check(self) -> Expectation:
        checks = [key for key in CHECKS if getattr(self, key) is not None]
        if len(checks) != 1:
            raise ValueError(
                f"an expectation needs exactly one of {', '.join(CHECKS)} (found {len(checks)})"
            )
        return self

    @property
    def check(self) -> str:
        """Which check this is: not_null, unique, range, accepted_values or sql."""
        return next(key for key in CHECKS if getattr(self, key) is not None)

    @property
    def label(self) -> str:
        """A readable name for reports and quarantine reasons."""
        if self.name:
            return self.name
        value = getattr(self, self.check)
        if isinstance(value, RangeCheck | AcceptedValues):
            return f"{self.check}({value.column})"
        if isinstance(value, list):
            return f"{self.check}({', '.join(value)})"
        return f"{self.check}({value})"


CHECKS = ("not_null", "unique", "range", "accepted_values", "sql")


class Contract(Strict):
    """A table's contract."""

    table: str | None = None
    evolution: EvolutionPolicy = "add"
    pii_key: str | None = None
    columns: tuple[ColumnSpec, ...] = ()
    keys: tuple[str, ...] = ()
    expectations: tuple[Expectation, ...] = ()

    @property
    def pii_columns(self) -> list[str]:
        return [column.name for column in self.columns if column.pii]

    def column(self, name: str) -> ColumnSpec | None:
        return next((c for c in self.columns if c.name == name), None)
