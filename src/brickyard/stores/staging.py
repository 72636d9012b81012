"""Staged batches: rows written as Parquet files under a lake folder before a load.

A batch is staged once: each attempt writes its files into a folder of its own under the
batch's folder, and `_manifest.json` (naming those files) last, so a batch folder with a
manifest is complete and a retry reuses it. Without one, a new attempt writes afresh and
never touches the files of a crashed (or concurrent) attempt; `remove` clears them all
after the load.

>>> import tempfile, pyarrow as pa
>>> from brickyard.lake import LakeLocation
>>> location = LakeLocation(tempfile.mkdtemp())
>>> batch = stage(location, "staging/p/t/b1", pa.table({"id": [1, 2, 3]}).to_reader())
>>> batch.rows, len(batch.files)
(3, 1)
>>> stage(location, "staging/p/t/b1", pa.table({"id": [9]}).to_reader()).rows  # reused
3
>>> sum(b.num_rows for b in batch.batches(2))
3
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from brickyard.errors import LakeError

if TYPE_CHECKING:
    from brickyard.lake import LakeLocation

MANIFEST = "_manifest.json"
ROWS_PER_FILE = 1_000_000


@dataclass(frozen=True)
class StagedBatch:
    """A complete staged batch: its folder (lake-relative), files, row count and schema."""

    location: LakeLocation
    prefix: str
    files: tuple[str, ...]
    rows: int
    schema: pa.Schema

    def batches(self, rows: int) -> Iterator[pa.RecordBatch]:
        """Stream the staged rows in record batches of at most `rows` rows."""
        fs = self.location.filesystem
        for name in self.files:
            with fs.open(self.location.fs_path(f"{self.prefix}/{name}"), "rb") as handle:
                yield from pq.ParquetFile(handle).iter_batches(batch_size=rows)

    def remove(self) -> None:
        """Delete the staged folder (after a load); one already deleted (by a concurrent
        exporter of the same batch) is fine."""
        fs = self.location.filesystem
        path = self.location.fs_path(self.prefix)
        try:
            if fs.exists(path):
                fs.rm(path, recursive=True)
        except FileNotFoundError:
            pass


def stage(
    location: LakeLocation, prefix: str, data: pa.RecordBatchReader, *, rows_per_file: int = ROWS_PER_FILE
) -> StagedBatch:
    """Write `data` as Parquet files under `prefix`, or reuse a complete earlier staging.

    Raises:
        LakeError: the files could not be written.
    """
    existing = load(location, prefix)
    if existing is not None:
        return existing
    fs = location.filesystem
    folder = location.fs_path(prefix)
    attempt = uuid.uuid4().hex[:12]
    try:
        fs.makedirs(f"{folder}/{attempt}", exist_ok=True)
        files: list[str] = []
        total = 0
        writer: pq.ParquetWriter | None = None
        handle = None
        in_file = 0
        try:
            for batch in data:
                if batch.num_rows == 0:
                    continue
                if writer is None or in_file >= rows_per_file:
                    if writer is not None:
                        writer.close()
                        handle.close()  # type: ignore[union-attr]
                    name = f"{attempt}/part-{len(files):05d}.parquet"
                    files.append(name)
                    handle = fs.open(f"{folder}/{name}", "wb")
                    writer = pq.ParquetWriter(handle, data.schema, compression="zstd")
                    in_file = 0
                writer.write_batch(batch)
                in_file += batch.num_rows
                total += batch.num_rows
        finally:
            if writer is not None:
                writer.close()
            if handle is not None:
                handle.close()
        manifest = {"files": files, "rows": total, "schema": data.schema.serialize().to_pybytes().hex()}
        with fs.open(f"{folder}/{MANIFEST}", "w") as out:
            out.write(json.dumps(manifest))
    except OSError as exc:
        raise LakeError(f"cannot stage rows under {location.uri(prefix)}: {exc}") from exc
    return StagedBatch(location, prefix, tuple(files), total, data.schema)


def load(location: LakeLocation, prefix: str) -> StagedBatch | None:
    """The complete staged batch under `prefix`, or None when there is none."""
    fs = location.filesystem
    path = location.fs_path(f"{prefix}/{MANIFEST}")
    if not fs.exists(path):
        return None
    with fs.open(path, "r") as handle:
        manifest = json.loads(handle.read())
    schema = pa.ipc.read_schema(pa.py_buffer(bytes.fromhex(manifest["schema"])))
    return StagedBatch(location, prefix, tuple(manifest["files"]), int(manifest["rows"]), schema)
