"""PII columns: replaced at ingest by a keyed hash (HMAC-SHA256, lower-case hex).

The hash is computed inside DuckDB with its native `sha256`, as the HMAC construction
`H((K ^ opad) || H((K ^ ipad) || m))`, so it runs vectorised and in parallel with the rest
of the ingest query (no Python per row). Equal values give equal tokens under one key, so
joins and counts on a PII column still work; without the key the value cannot be guessed
by hashing candidates. The Spark engine computes the same tokens (`hmac_spark_sql`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Collection

from brickyard.config.secrets import resolve
from brickyard.core.contract import Contract
from brickyard.errors import ConfigError

BLOCK_SIZE = 64  # SHA-256's block size in bytes
WITHHELD = "<pii value withheld>"  # stands for a PII value in reasons and messages


def contract_key(contract: Contract, where: str) -> bytes | None:
    """The HMAC key of a contract with PII columns (None when it has none).

    Raises:
        ConfigError: PII columns but no `pii_key`, or its `${env:NAME}` is not set.
    """
    if not contract.pii_columns:
        return None
    if not contract.pii_key:
        raise ConfigError(
            f"{where}: columns {', '.join(contract.pii_columns)} are marked pii but the "
            "contract has no pii_key",
            hint="add `pii_key: ${env:BRICKYARD_PII_KEY}` to the contract and export the variable",
        )
    key = resolve(contract.pii_key)
    if not key:
        raise ConfigError(f"{where}: the contract's pii_key resolves to an empty string")
    return key.encode()


def hmac_hex(value: str, key: bytes) -> str:
    """HMAC-SHA256 of `value` (UTF-8) under `key`, as lower-case hex (the reference)."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def hmac_sql(expression: str, key: bytes) -> str:
    """A DuckDB expression giving the HMAC-SHA256 hex of `expression` cast to text (NULL
    stays NULL)."""
    if len(key) > BLOCK_SIZE:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(BLOCK_SIZE, b"\0")
    inner = bytes(byte ^ 0x36 for byte in padded).hex()
    outer = bytes(byte ^ 0x5C for byte in padded).hex()
    message = f"encode(CAST({expression} AS VARCHAR))"
    return f"sha256(unhex('{outer}') || unhex(sha256(unhex('{inner}') || {message})))"


def hmac_spark_sql(expression: str, key: bytes) -> str:
    """`hmac_sql` for the Spark engine (written in DuckDB's dialect with functions Spark
    has: `sha2`, `unhex`, `concat` of binaries); the same tokens."""
    if len(key) > BLOCK_SIZE:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(BLOCK_SIZE, b"\0")
    inner = bytes(byte ^ 0x36 for byte in padded).hex()
    outer = bytes(byte ^ 0x5C for byte in padded).hex()
    message = f"CAST(CAST({expression} AS VARCHAR) AS BLOB)"
    return f"sha2(concat(unhex('{outer}'), unhex(sha2(concat(unhex('{inner}'), {message}), 256))), 256)"


# -- messages ---------------------------------------------------------------------------


WITHHELD_MESSAGE = "<message withheld: it may quote pii values>"
# Where an engine's error about the data begins: DuckDB's runtime error kinds, Spark's error
# classes about values, records and files, and Spark's malformed-record text. What follows
# may quote values (a cast's input, a CSV line, a JSON document, an argument of error()).
_DATA_ERROR = re.compile(
    r"\b(?:Conversion|Invalid Input|Out of Range|Constraint|Mismatch Type|Invalid) Error: "
    r"|\[(?:CAST|MALFORMED|NUMERIC|ARITHMETIC|BINARY_ARITHMETIC|CANNOT_PARSE|DATETIME|INVALID|"
    r"CONVERSION|USER_RAISED|FAILED_READ|DIVIDE|DUPLICATE|BAD_RECORD)[A-Z_.]*\] ?"
    r"|Malformed (?:CSV |JSON )?records?\b[^:\n]*: "
    r"|\b\d+ fields? where \d+ (?:was|were) expected: "  # brickyard.engines.csv_errors
)
# Where such an error's text ends: our own additions after it (a hint, the position in the
# query that `one_line` adds, the file), else the end of the message.
_SEGMENT_END = re.compile(r" \(hint: | \(line \d+, column \d+| \(file |\Z")
# Facts an engine's message states apart from any value, kept in the withheld form: only
# numbers, type names and the columns the caller names can come from these, never a value.
_TYPES = (
    "TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|"
    "INT|INT8|INT16|INT32|INT64|INT128|UINT8|UINT16|UINT32|UINT64|LONG|SHORT|BYTE|"
    "DOUBLE|FLOAT|REAL|BOOLEAN|BOOL|DATE|TIME|TIMESTAMP|TIMESTAMP_NTZ|INTERVAL|UUID|VARCHAR|STRING|"
    r"BLOB|BINARY|JSON|(?:DECIMAL|NUMERIC)(?:\(\d+(?:, ?\d+)?\))?"
)
_FACTS = (
    (re.compile(r"CSV Error on Line: (\d+)"), "CSV line {0}"),
    (re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)"), "expected {0} columns, found {1}"),
    (re.compile(r"(?:from source column|converting column) \"?([A-Za-z_][\w$]{0,63})\"?"), "column {0}"),
    (re.compile(rf" to '?\"?({_TYPES})[\"']?(?=[\s.;,]|$)"), "to {0}"),
)


def withhold_values(message: str, columns: Collection[str] = ()) -> str:
    """`message` with the text of every engine error about the data replaced by
    `WITHHELD_MESSAGE` and the facts it states that carry no value: the target type, the
    CSV line, and the column when it is one of `columns`. For the errors of tasks that
    handle PII columns; idempotent.

    >>> withhold_values("Conversion Error: Could not convert string 'x@y.z' to INT32 "
    ...                 "when casting from source column email (hint: fix it)", ["email"])
    'Conversion Error: <message withheld: it may quote pii values> (column email, to INT32) (hint: fix it)'
    """
    parts: list[str] = []
    position = 0
    for head in _DATA_ERROR.finditer(message):
        if head.start() < position:
            continue
        end = _SEGMENT_END.search(message, head.end())
        stop = end.start() if end is not None else len(message)
        body = message[head.end() : stop]
        parts.append(message[position : head.end()])
        parts.append(body if body.startswith(WITHHELD_MESSAGE) else _withheld(body, columns))
        position = stop
    parts.append(message[position:])
    return "".join(parts)


def _withheld(body: str, columns: Collection[str]) -> str:
    facts: list[str] = []
    for pattern, shape in _FACTS:
        found = [m.groups() for m in pattern.finditer(body) if shape != "column {0}" or m.group(1) in columns]
        if found:
            facts.append(shape.format(*found[-1]))
    return WITHHELD_MESSAGE + (f" ({', '.join(dict.fromkeys(facts))})" if facts else "")
