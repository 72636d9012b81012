"""Table names: `zone.name`, both parts lower-case identifiers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from brickyard.errors import LakeError

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
RAW_ZONE = "raw"


@dataclass(frozen=True, order=True)
class TableName:
    """A lake table address such as `bronze.taxi_trips`."""

    zone: str
    name: str

    @classmethod
    def parse(cls, text: str) -> TableName:
        """Parse `zone.name`.

        Raises:
            LakeError: the text is not two identifiers joined by a dot.
        """
        parts = text.strip().split(".")
        if len(parts) != 2 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
            raise LakeError(
                f"{text!r} is not a table name",
                hint="tables are addressed zone.name in lower case, e.g. bronze.taxi_trips",
            )
        if parts[0] == RAW_ZONE:
            raise LakeError(
                f"{text!r}: the raw zone holds files, not tables",
                hint="query raw files with read_csv('raw/...') and write tables to bronze",
            )
        return cls(parts[0], parts[1])

    @property
    def path(self) -> str:
        """The table's folder, relative to the lake root."""
        return f"{self.zone}/{self.name}"

    def __str__(self) -> str:
        return f"{self.zone}.{self.name}"
