"""Bearer tokens and per-token rate limits for scoring requests.

Tokens are the workspace's (`brickyard tokens create --role reader --rate-limit 50`, kept by
`brickyard.runtime.tokens.TokenStore`); a token of role reader or above may score. A verified
token is remembered for `cache_seconds`, so the state database is not read on every request;
a revoked token stops working within that time.

The rate limit is a token bucket per token: `rate_limit` requests per second on average, bursts
of up to one second's worth. It is kept per server process (with `--workers N` each worker
allows the full rate).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from brickyard.serving.errors import ForbiddenError, RateLimitedError, UnauthenticatedError

CACHE_SECONDS = 5.0
CACHE_ENTRIES = 10_000
INVOKE_ROLE = "reader"


@dataclass
class _Bucket:
    tokens: float
    updated: float


class Authenticator:
    """Checks `Authorization: Bearer <token>` against a TokenStore and applies rate limits."""

    def __init__(self, store: Any, *, cache_seconds: float = CACHE_SECONDS, clock: Any = time.monotonic) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[Any, float, bool]] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def authenticate(self, header: str | None) -> Any:
        """The token record for an Authorization header value.

        Raises:
            UnauthenticatedError: no header, not a bearer token, unknown or revoked token.
            ForbiddenError: the token's role may not score.
            RateLimitedError: the token is over its rate limit (with Retry-After).
        """
        if not header:
            raise UnauthenticatedError(
                "this endpoint needs a token: send 'Authorization: Bearer <token>'",
                hint="create one with `brickyard tokens create --role reader`",
            )
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise UnauthenticatedError("the Authorization header must be 'Bearer <token>'")
        now = self._clock()
        cached = self._cache.get(token)
        if cached is not None and cached[1] > now:
            record, allowed = cached[0], cached[2]
        else:
            record = self.store.verify(token)
            allowed = record is not None and record.allows(INVOKE_ROLE)
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
            self._cache[token] = (record, now + self.cache_seconds, allowed)
        if record is None:
            raise UnauthenticatedError("unknown or revoked token", hint="check the token, or create one with `brickyard tokens create --role reader`")
        if not allowed:
            raise ForbiddenError(f"a {record.role.value} token may not score models; it needs role {INVOKE_ROLE} or above")
        if record.rate_limit is not None:
            self._take(record.id, float(record.rate_limit), now)
        return record

    def _take(self, token_id: str, rate: float, now: float) -> None:
        capacity = max(1.0, rate)
        with self._lock:
            bucket = self._buckets.get(token_id)
            if bucket is None:
                bucket = self._buckets[token_id] = _Bucket(capacity, now)
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = (1.0 - bucket.tokens) / rate
        raise RateLimitedError(
            f"this token may make {rate:g} requests per second", retry_after=max(1, math.ceil(wait))
        )
