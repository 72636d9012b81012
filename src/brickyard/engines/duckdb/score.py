"""Batch scoring on the DuckDB engine (`DuckDBEngine.score_table`): the source's batches
stream through the scoring function in this process into one Delta write, so the whole
source is never in memory."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from brickyard.engines.base import Scored, ScoreRequest, ScoringFailedError
from brickyard.errors import BrickyardError

if TYPE_CHECKING:
    from brickyard.lake import Lake


def score_table(lake: Lake, request: ScoreRequest) -> Scored:
    """`Engine.score_table` in this process (see the module doc).

    Raises:
        ScoringFailedError, BrickyardError: see `Engine.score_table`.
    """
    import pyarrow as pa

    counter = _Counter(request.batches())
    scored = request.score(iter(counter))
    try:
        first = next(scored, None)
    except BrickyardError:
        raise
    except Exception as exc:  # the model failed on the first batch, before the write
        raise ScoringFailedError(str(exc)) from exc
    if first is None:
        schema = request.empty_schema(counter.schema)
        batches: Iterator[Any] = iter(())
    else:
        schema = first.schema
        batches = itertools.chain([first], scored)
    guard = _Guard(batches)
    reader = pa.RecordBatchReader.from_batches(schema, guard)
    try:
        version = lake.write(
            request.target, reader, mode=request.mode, partition_by=request.partition_by,
            metadata=request.metadata, transaction=request.transaction,
        )
    except BrickyardError:
        if isinstance(guard.error, BrickyardError):
            # from None: the guard's own error, re-raised; the write failed because of it (noise)
            raise guard.error from None
        if guard.error is not None:
            raise ScoringFailedError(str(guard.error)) from guard.error
        raise
    return Scored(version, counter.rows, counter.batches)


class _Counter:
    """Counts the rows and batches that pass through, and remembers the first schema."""

    def __init__(self, batches: Iterator[Any]) -> None:
        self._batches = batches
        self.rows = 0
        self.batches = 0
        self.schema: Any = None

    def __iter__(self) -> Iterator[Any]:
        for batch in self._batches:
            if self.schema is None:
                self.schema = batch.schema
            self.rows += batch.num_rows
            self.batches += 1 if batch.num_rows else 0
            yield batch


class _Guard:
    """Iterates batches for a RecordBatchReader and keeps an error raised while reading or
    scoring, so the task reports it instead of the write error Arrow wraps it in."""

    def __init__(self, batches: Iterator[Any]) -> None:
        self._batches = batches
        self.error: Exception | None = None

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self._batches
        except Exception as exc:
            self.error = exc
            raise
