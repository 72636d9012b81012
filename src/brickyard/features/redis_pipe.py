"""One Redis connection per event loop for the serving request path: commands are written
as they come and replies matched to them in order (Redis answers a connection's commands in
the order it got them), so a keys-only request awaits its HMGET instead of blocking the event
loop for the round trip, and the lookups of concurrent requests share one connection
(pipelined: Redis reads them in one go).

Only the replies HMGET, AUTH and SELECT give are parsed (RESP2: simple strings, errors,
integers, bulk strings, arrays). A reply that does not come within `timeout` seconds breaks
the connection (the replies after it could no longer be matched): every waiting call fails,
and the next call connects again. `RedisOnlineStore.read_async` uses it; redis-py serves
everything else.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any


class RedisReplyError(Exception):
    """Redis answered a command with an error reply (``-ERR ...``)."""


@dataclass(frozen=True)
class Address:
    """Where to connect and how to log in: a TCP host and port, or a Unix socket path."""

    host: str = "localhost"
    port: int = 6379
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None


def pack(*args: bytes) -> bytes:
    """One command in Redis's protocol (RESP): an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    parts += [b"$%d\r\n%b\r\n" % (len(arg), arg) for arg in args]
    return b"".join(parts)


_INCOMPLETE = object()


def parse(buffer: bytes | bytearray, start: int) -> tuple[Any, int]:
    """The reply that begins at `start` and where the next one begins; (_INCOMPLETE, start)
    when the buffer does not hold all of it yet. An error reply is a `RedisReplyError`."""
    end = buffer.find(b"\r\n", start)
    if end < 0:
        return _INCOMPLETE, start
    kind, line = buffer[start : start + 1], bytes(buffer[start + 1 : end])
    after = end + 2
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, after
        if len(buffer) < after + size + 2:
            return _INCOMPLETE, start
        return bytes(buffer[after : after + size]), after + size + 2
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, after
        items = []
        for _ in range(count):
            item, after = parse(buffer, after)
            if item is _INCOMPLETE:
                return _INCOMPLETE, start
            items.append(item)
        return items, after
    if kind == b"+":
        return line, after
    if kind == b":":
        return int(line), after
    if kind == b"-":
        return RedisReplyError(line.decode("utf-8", "replace")), after
    raise RedisReplyError(f"unexpected reply from Redis: {bytes(buffer[start:end])[:40]!r}")


class RedisPipe(asyncio.Protocol):
    """A connection of one event loop; `call` sends a packed command and awaits its reply."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self.broken: BaseException | None = None
        self._waiting: deque[tuple[asyncio.Future[Any], asyncio.TimerHandle]] = deque()
        self._buffer = bytearray()

    @classmethod
    async def open(cls, address: Address, *, timeout: float, connect_timeout: float = 5.0) -> RedisPipe:
        """Connect (and log in and select the database, when the address says so).

        Raises:
            OSError, TimeoutError: cannot connect; RedisReplyError: the login or SELECT was refused.
        """
        loop = asyncio.get_running_loop()
        pipe = cls(loop, timeout)
        async with asyncio.timeout(connect_timeout):
            if address.path is not None:
                await loop.create_unix_connection(lambda: pipe, address.path)
            else:
                await loop.create_connection(lambda: pipe, address.host, address.port)
        try:
            if address.password is not None:
                login = (address.username.encode(),) if address.username else ()
                await pipe.call(pack(b"AUTH", *login, address.password.encode()))
            if address.db:
                await pipe.call(pack(b"SELECT", str(address.db).encode()))
        except BaseException:
            pipe.close()
            raise
        return pipe

    @property
    def usable(self) -> bool:
        return self.broken is None and self.transport is not None and not self.transport.is_closing()

    async def call(self, command: bytes) -> Any:
        """Send one packed command; its reply (bytes, int, None or a list of them).

        Raises:
            ConnectionError or TimeoutError: the connection broke or the reply was late;
            RedisReplyError: Redis answered with an error.
        """
        (reply,) = await self.call_many([command])
        return reply

    async def call_many(self, commands: list[bytes]) -> list[Any]:
        """Send packed commands in one write; their replies, in order."""
        if not self.usable:
            raise ConnectionError(f"the connection to Redis is closed ({self.broken or 'not connected'})")
        futures = []
        for _ in commands:
            future = self.loop.create_future()
            self._waiting.append((future, self.loop.call_later(self.timeout, self._late, future)))
            futures.append(future)
        self.transport.write(b"".join(commands) if len(commands) > 1 else commands[0])  # type: ignore[union-attr]
        try:
            replies = [await future for future in futures]
        except BaseException:
            for future in futures:  # the others failed too: mark them seen (no "never retrieved" noise)
                if future.done() and not future.cancelled():
                    future.exception()
            raise
        for reply in replies:
            if isinstance(reply, RedisReplyError):
                raise reply
        return replies

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        waiting = self._waiting
        while waiting and start < len(buffer):
            try:
                reply, end = parse(buffer, start)
            except (ValueError, RedisReplyError) as exc:
                self._break(ConnectionError(f"cannot read Redis's reply: {exc}"))
                return
            if reply is _INCOMPLETE:
                break
            start = end
            future, timer = waiting.popleft()
            timer.cancel()
            if not future.done():
                future.set_result(reply)
        del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self._break(exc or ConnectionError("Redis closed the connection"))

    def _late(self, future: asyncio.Future[Any]) -> None:
        if not future.done():
            self._break(TimeoutError(f"no reply from Redis in {self.timeout:g} s"))

    def _break(self, error: BaseException) -> None:
        """Fail every waiting call and drop the connection (later replies cannot be matched)."""
        if self.broken is None:
            self.broken = error
        while self._waiting:
            future, timer = self._waiting.popleft()
            timer.cancel()
            if not future.done():
                future.set_exception(error if isinstance(error, OSError | TimeoutError) else ConnectionError(str(error)))
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()
