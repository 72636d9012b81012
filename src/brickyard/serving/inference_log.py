"""The inference log: every scoring request appended to a Delta table, off the request path.

A request only appends a tuple to a bounded in-memory buffer (no lock, no I/O, no hashing);
a background thread drains the buffer in batches and appends them to the table with
`Lake.write` (one Delta commit per batch). When the buffer is full the record is dropped and
counted, and the request still succeeds. `close()` flushes what is left (called on shutdown).

Columns: request_id, ts (UTC), endpoint, model, version, variant (champion, challenger or
shadow), status (HTTP), latency_ms, rows, input and output (the request and response bodies
as JSON text, or ``sha256:<hex>`` of them when the endpoint logs hashes), and features (for a
model trained from a training set, the feature values looked up online per row: a JSON list
of {table: {key, event_us, values}}, values null when absent or expired; null otherwise).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from operator import itemgetter
from typing import Any, Literal

log = logging.getLogger("brickyard.serving")

PayloadMode = Literal["full", "hash"]
Record = tuple[str, float, str, str, str, str, int, float, int, bytes, bytes, bytes | None]
WRITE_ATTEMPTS = 3
CONVERT_ROWS = 256  # records per conversion to Arrow (see InferenceLog._arrow)


class InferenceLog:
    """A bounded buffer of request records and the thread that writes them to `table`."""

    def __init__(
        self,
        lake: Any,
        table: str,
        *,
        payloads: PayloadMode = "full",
        queue_size: int = 10_000,
        batch_rows: int = 5_000,
        flush_seconds: float = 2.0,
        on_drop: Callable[[str, int], None] | None = None,
        on_write: Callable[[str, int], None] | None = None,
    ) -> None:
        self.lake = lake
        self.table = table
        self.payloads = payloads
        self.queue_size = queue_size
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self._buffer: deque[Record] = deque()
        self._on_drop = on_drop or (lambda endpoint, n: None)
        self._on_write = on_write or (lambda endpoint, n: None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()
        self.dropped = 0
        self.written = 0
        self.write_errors = 0

    # -- the request path ----------------------------------------------------------------

    def record(self, record: Record) -> bool:
        """Buffer one record; False (and counted as dropped) when the buffer is full."""
        if len(self._buffer) >= self.queue_size:
            self.dropped += 1
            self._on_drop(record[2], 1)
            return False
        self._buffer.append(record)
        return True

    @property
    def pending(self) -> int:
        return len(self._buffer)

    # -- the writer ----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"inference-log:{self.table}", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the writer and write every buffered record."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        deadline = time.monotonic() + timeout
        while self._buffer and time.monotonic() < deadline:
            self.flush()

    def _run(self) -> None:
        last = time.monotonic()
        tick = min(0.25, self.flush_seconds)
        while not self._stop.wait(tick):
            now = time.monotonic()
            if len(self._buffer) >= self.batch_rows or (self._buffer and now - last >= self.flush_seconds):
                self.flush()
                last = time.monotonic()

    def flush(self) -> int:
        """Write up to `batch_rows` buffered records now; returns how many were written."""
        with self._flush_lock:
            batch: list[Record] = []
            buffer = self._buffer
            while buffer and len(batch) < self.batch_rows:
                batch.append(buffer.popleft())
            if not batch:
                return 0
            table = self._arrow(batch)
            for attempt in range(WRITE_ATTEMPTS):
                try:
                    self.lake.write(self.table, table, mode="append", evolve_schema=True)
                    break
                except Exception as exc:
                    if attempt == WRITE_ATTEMPTS - 1:
                        self.write_errors += 1
                        self.dropped += len(batch)
                        for endpoint, count in Counter(map(itemgetter(2), batch)).items():
                            self._on_drop(endpoint, count)
                        log.error("inference log: dropped %d records, writing %s failed: %s", len(batch), self.table, exc)
                        return 0
                    time.sleep(0.2 * (attempt + 1))
            self.written += len(batch)
            for endpoint, count in Counter(map(itemgetter(2), batch)).items():
                self._on_write(endpoint, count)
            return len(batch)

    def _arrow(self, batch: list[Record]) -> Any:
        """The batch as an Arrow table, converted `CONVERT_ROWS` records at a time.

        Each conversion from Python objects (the transpose, every `pa.array`) is one native
        call that holds the GIL throughout, and the request path waits for it: a whole
        12,000-record batch at once stalled the event loop 25-40 ms per flush, the serving
        p99's largest part (bench/online_lookup.py). Between small chunks the event loop
        gets the GIL back within the switch interval."""
        import pyarrow as pa

        chunks = [self._record_batch(batch[start:start + CONVERT_ROWS]) for start in range(0, len(batch), CONVERT_ROWS)]
        return pa.Table.from_batches(chunks)

    def _record_batch(self, records: list[Record]) -> Any:
        import pyarrow as pa

        columns = list(zip(*records))
        inputs, outputs = columns[9], columns[10]
        if self.payloads == "hash":
            input_text = pa.array(["sha256:" + hashlib.sha256(body).hexdigest() for body in inputs], pa.string())
            output_text = pa.array(["sha256:" + hashlib.sha256(body).hexdigest() for body in outputs], pa.string())
        else:
            input_text, output_text = _text(inputs), _text(outputs)
        return pa.record_batch(
            {
                "request_id": pa.array(columns[0], pa.string()),
                "ts": _timestamps(columns[1]),
                "endpoint": pa.array(columns[2], pa.string()),
                "model": pa.array(columns[3], pa.string()),
                "version": pa.array(columns[4], pa.string()),
                "variant": pa.array(columns[5], pa.string()),
                "status": pa.array(columns[6], pa.int32()),
                "latency_ms": pa.array(columns[7], pa.float64()),
                "rows": pa.array(columns[8], pa.int32()),
                "input": input_text,
                "output": output_text,
                "features": _text(columns[11] if len(columns) > 11 else (None,) * len(records)),
            }
        )


def _timestamps(seconds: tuple[float, ...]) -> Any:
    """Unix times (float seconds) as an Arrow UTC timestamp column, truncated to the
    microsecond, in Arrow rather than a Python int per record (the writer shares the GIL
    with the request path)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    micros = pc.multiply(pa.array(seconds, pa.float64()), 1_000_000.0)
    return micros.cast(pa.int64(), safe=False).cast(pa.timestamp("us", tz="UTC"))


def _text(bodies: tuple[bytes | None, ...]) -> Any:
    """Bodies (None: null) as an Arrow string column, without a Python str per body
    (invalid UTF-8 replaced)."""
    import pyarrow as pa

    try:
        return pa.array(bodies, pa.binary()).cast(pa.string())
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return pa.array([None if body is None else body.decode("utf-8", "replace") for body in bodies], pa.string())
