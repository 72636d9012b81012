"""One ingest batch on the DuckDB engine (`DuckDBEngine.ingest_batch`): the files scanned as
text, typed and checked with `brickyard.engines.ingest_sql`, streamed through this process
in file order (so each quarantined row's line is counted), the bad rows committed to the
quarantine first, then the good rows to the target, each with the batch's transaction."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import duckdb
import numpy as np

from brickyard.core import pii
from brickyard.core.quality import (
    LINE_COLUMN,
    LOADED_AT_COLUMN,
    REASON,
    REASON_COLUMN,
    RUN_ID_COLUMN,
    SOURCE_FILE_COLUMN,
    CheckedWrite,
    ExpectationResult,
    Splitter,
    StreamGuard,
    loaded_at_array,
    prefetched,
)
from brickyard.core.sources import LineCounter, SourceFile, line_offset
from brickyard.engines.base import IngestBatch
from brickyard.engines.duckdb.ingest_errors import IngestError, read_error
from brickyard.engines.duckdb.quarantine import write_quarantine
from brickyard.engines.duckdb.sources import scan_sql
from brickyard.engines.ingest_sql import RAW_LIST, duplicates_sql, final_sql, typed_sql
from brickyard.engines.sql_text import one_line

if TYPE_CHECKING:
    import pyarrow as pa

    from brickyard.engines.duckdb.engine import DuckDBEngine

BATCH_ROWS = 256 * 1024


def ingest_batch(base: DuckDBEngine, batch: IngestBatch) -> CheckedWrite:
    """`Engine.ingest_batch` on DuckDB (see the module doc), on a fresh engine of its own."""
    engine = base.fresh()
    try:
        # Rows must stream in file order for their line numbers to be counted.
        engine.connection.execute("SET preserve_insertion_order = true")
        return _load(engine, batch)
    finally:
        engine.close()


def _load(engine: DuckDBEngine, batch: IngestBatch) -> CheckedWrite:
    import pyarrow as pa

    con, lake = engine.connection, engine.lake
    location = lake.location
    fmt, files, uris, sources, planned = batch.fmt, batch.files, batch.uris, batch.sources, batch.planned
    scan = scan_sql(fmt, uris, batch.reader, sources)  # type: ignore[arg-type]
    prefix = len(location.uri("").rstrip("/")) + 1
    typed = typed_sql(fmt, scan, planned, sources, prefix, [f.path for f in files])  # type: ignore[arg-type]
    query = final_sql(typed, planned, sources, batch.row_rules, batch.key)
    counted = _count_duplicates(con, typed, batch)
    counter = LineCounter(line_offset(fmt, batch.reader))  # type: ignore[arg-type]
    good_columns = [p.name for p in planned] + [SOURCE_FILE_COLUMN]
    run_id, loaded_at = batch.run_id, batch.loaded_at

    def read_failed(failing: Sequence[SourceFile], failing_uris: Sequence[str], exc: Exception, *, sniffing: bool = False) -> IngestError:
        return read_error(
            con, location, batch.task, fmt, batch.reader, failing, failing_uris, exc,  # type: ignore[arg-type]
            sniffing=sniffing, pii_columns=batch.pii_columns,
        )

    def bad_rows(rows: pa.RecordBatch, mask: pa.Array) -> pa.RecordBatch:
        import pyarrow.compute as pc

        positions = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
        picked = rows.filter(mask)
        raw = picked.column(RAW_LIST)
        arrays = [pc.list_element(raw, index) for index in range(len(sources))]
        arrays += [
            picked.column(REASON),
            picked.column(SOURCE_FILE_COLUMN).cast(pa.string()),
            pa.array(counter.lines(positions), pa.int64()),
            loaded_at_array(loaded_at, picked.num_rows),
            pa.array([run_id] * picked.num_rows, pa.string()),
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=quarantine_schema)

    def finish_good(rows: pa.RecordBatch) -> pa.RecordBatch:
        return rows.append_column(
            pa.field(LOADED_AT_COLUMN, pa.timestamp("us")),
            loaded_at_array(loaded_at, rows.num_rows),
        )

    quarantine_schema = pa.schema(
        [pa.field(name, pa.string()) for name in sources]
        + [
            pa.field(REASON_COLUMN, pa.string()),
            pa.field(SOURCE_FILE_COLUMN, pa.string()),
            pa.field(LINE_COLUMN, pa.int64()),
            pa.field(LOADED_AT_COLUMN, pa.timestamp("us")),
            pa.field(RUN_ID_COLUMN, pa.string()),
        ]
    )
    splitter = Splitter(
        rules=batch.row_rules,
        good_columns=good_columns,
        bad_rows=bad_rows,
        target=batch.target,
        finish_good=finish_good,
        counted=counted,
        max_quarantined=batch.max_quarantined,
    )
    try:
        reader = con.sql(query).to_arrow_reader(BATCH_ROWS)
    except (duckdb.Error, OSError) as exc:
        # from None: the engine's text may quote raw rows with PII values; the message withholds them
        raise read_failed(files, uris, exc, sniffing=True) from None
    good_schema = pa.schema(
        [reader.schema.field(name) for name in good_columns]
        + [pa.field(LOADED_AT_COLUMN, pa.timestamp("us"))]
    )

    def numbered() -> Iterator[pa.RecordBatch]:
        try:
            for rows in reader:
                counter.observe(rows.column(SOURCE_FILE_COLUMN))
                yield rows
        except (duckdb.Error, OSError) as exc:  # an Arrow reader raises DuckDB's errors as OSError
            # from None: the engine's text may quote raw rows with PII values; the message withholds them
            raise read_failed(files, uris, exc) from None

    quarantine_versions: list[int] = []

    def before_commit() -> None:
        if batch.skip_quarantine:
            return
        version = write_quarantine(
            lake,
            batch.target,
            splitter.bad,
            quarantine_schema,
            overwrite=batch.quarantine_mode == "overwrite",
            metadata=batch.metadata,
            transaction=batch.transaction,
            if_committed="conflict",
        )
        if version is not None:
            quarantine_versions.append(version)

    try:
        guard = StreamGuard()
        stream = pa.RecordBatchReader.from_batches(good_schema, guard.wrap(prefetched(splitter.split(numbered()))))
        with guard:
            version = lake.write(
                batch.target,
                stream,
                mode=batch.mode,
                partition_by=batch.partition_by or None,
                evolve_schema=True,
                metadata=batch.metadata,
                transaction=batch.transaction,
                before_commit=before_commit,
                if_committed="conflict",
            )
    finally:
        reader.close()  # a write refused before it read the stream leaves the result open
    splitter.log_warnings(batch.log)
    return CheckedWrite(
        rows_in=splitter.rows_in,
        rows_good=splitter.rows_good,
        rows_bad=splitter.rows_bad,
        results=splitter.results(),
        version=version,
        quarantine_version=quarantine_versions[-1] if quarantine_versions else None,
        reasons=splitter.reasons(),
    )


def _count_duplicates(con: duckdb.DuckDBPyConnection, typed: str, batch: IngestBatch) -> list[ExpectationResult]:
    """Rows of the batch whose key occurs more than once, per `unique` rule."""
    results = []
    for rule in batch.unique_rules:
        try:
            found = con.sql(duplicates_sql(typed, rule)).fetchall()
        except duckdb.Error as exc:
            text = one_line(str(exc))
            text = pii.withhold_values(text, batch.pii_columns) if batch.pii_columns else text
            # from None: the engine's text may quote raw rows with PII values; the message withholds them
            raise IngestError(f"expectation {rule.label!r} of {batch.contract}: {text}") from None
        results.append(ExpectationResult(rule.label, rule.check, rule.action, int(found[0][0])))
    return results


