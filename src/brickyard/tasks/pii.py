"""PII columns: replaced at ingest by a keyed hash (HMAC-SHA256, lower-case hex).

The hash is computed inside DuckDB with its native `sha256`, as the HMAC construction
`H((K ^ opad) || H((K ^ ipad) || m))`, so it runs vectorised and in parallel with the rest
of the ingest query (no Python per row). Equal values give equal tokens under one key, so
joins and counts on a PII column still work; without the key the value cannot be guessed
by hashing candidates.

>>> key = b"k"
>>> token("alice@example.com", key) == hmac_hex("alice@example.com", key)
True
"""

from __future__ import annotations

import hashlib
import hmac

from brickyard.config.secrets import resolve
from brickyard.core.contract import Contract
from brickyard.errors import ConfigError

BLOCK_SIZE = 64  # SHA-256's block size in bytes


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


def token(value: str, key: bytes) -> str:
    """The token DuckDB computes for `value` (for tests and lookups by a known value)."""
    import duckdb

    found = duckdb.connect().sql(f"SELECT {hmac_sql('$v', key)}", params={"v": value}).fetchall()
    return str(found[0][0])
