"""Feature table definitions: `features/NAME.yaml` as immutable data.

A feature table holds, per entity key, values that change over time: each row is the
entity's feature values as of its event time. It is materialized as the Delta table
`features.NAME` (by the `features` task kind) and looked up as of a timestamp by training
sets and the online store.

```yaml
# features/customer_rfm.yaml
description: Recency, frequency and monetary value per customer, as of each purchase
owner: data-science@example.com
keys: [customer_id]
event_time: purchased_at        # when the values became true
created_time: computed_at       # optional: when they became known ("as known at" lookups)
ttl: 365d                       # a value older than this at lookup time is absent (null)
source:
  sql: sql/features_customer_rfm.sql   # or  table: silver.customer_rfm
```
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pydantic import Field, field_validator, model_validator

from brickyard.core.pipeline import NAME_PATTERN, Strict

FEATURE_ZONE = "features"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> timedelta:
    """`30d`, `12h`, `90m`, `45s`, `2w`, or a number of seconds, as a timedelta.

    Raises:
        ValueError: anything else (pydantic turns it into a located config error).
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration such as 30d, 12h, 90m or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ValueError("a duration such as 30d, 12h, 90m or a number of seconds")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return timedelta(seconds=seconds)


class FeatureSource(Strict):
    """Where a feature table's rows come from: a SQL file (or inline SQL) or a table."""

    sql: str | None = None
    table: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> FeatureSource:
        if (self.sql is None) == (self.table is None):
            raise ValueError("give exactly one of sql (a file under sql/ or a query) or table (zone.name)")
        return self


class FeatureTableSpec(Strict):
    """A whole `features/NAME.yaml` file."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    owner: str = ""
    keys: tuple[str, ...] = Field(min_length=1)
    event_time: str
    created_time: str | None = None
    ttl: timedelta | None = None
    source: FeatureSource

    @field_validator("keys", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("ttl", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @property
    def table(self) -> str:
        """The Delta table it is materialized as: `features.NAME`."""
        return f"{FEATURE_ZONE}.{self.name}"

    @property
    def feature_columns_excluded(self) -> tuple[str, ...]:
        """The columns that are not features: keys, event time, created time."""
        return (*self.keys, self.event_time, *((self.created_time,) if self.created_time else ()))
