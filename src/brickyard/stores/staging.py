"""Staged batches: rows written as Parquet files under a lake folder before a load.

A batch is staged once: each attempt writes its files into a folder of its own under the
batch's folder, and `_manifest.json` (naming those files) last, so a batch folder with a
manifest is complete and a retry reuses it. Without one, a new attempt writes afresh and
never touches the files of a crashed (or concurrent) attempt; `remove` clears them all
after the load.

The manifest appears whole or not at all: on a local lake it is written to a temporary
file and renamed over `_manifest.json`; on Azure storage it is one PUT of the full bytes.
A manifest that cannot be read anyway (empty, truncated, or naming files that are gone,
as a crash under older versions could leave) counts as not written: the batch is staged
afresh and the batch's `notes` say why.

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
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from brickyard.errors import LakeError

if TYPE_CHECKING:
    from brickyard.lake import LakeLocation

MANIFEST = "_manifest.json"
ROWS_PER_FILE = 1_000_000

log = logging.getLogger("brickyard.export")


@dataclass(frozen=True)
class StagedBatch:
    """A complete staged batch: its folder (lake-relative), files, row count and schema."""

    location: LakeLocation
    prefix: str
    files: tuple[str, ...]
    rows: int
    schema: pa.Schema
    notes: tuple[str, ...] = ()  # what staging found and set aside (an unreadable manifest)

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
    existing, problem = read_manifest(location, prefix)
    if existing is not None:
        return existing
    notes: tuple[str, ...] = ()
    if problem is not None:
        notes = (f"{problem}; staged afresh",)
        log.warning("%s", notes[0])
    fs = location.filesystem
    folder = location.fs_path(prefix)
    attempt = uuid.uuid4().hex[:12]
    try:
        fs.makedirs(f"{folder}/{attempt}", exist_ok=True)
        files: list[str] = []
        total = 0
        writer: pq.ParquetWriter | None = None
        handle: BinaryIO | None = None
        in_file = 0
        try:
            for batch in data:
                if batch.num_rows == 0:
                    continue
                if writer is None or in_file >= rows_per_file:
                    if writer is not None:
                        writer.close()
                    if handle is not None:
                        handle.close()
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
        write_whole(location, f"{prefix}/{MANIFEST}", json.dumps(manifest).encode(), temp_suffix=attempt)
    except OSError as exc:
        raise LakeError(f"cannot stage rows under {location.uri(prefix)}: {exc}") from exc
    return StagedBatch(location, prefix, tuple(files), total, data.schema, notes)


def write_whole(location: LakeLocation, relative: str, data: bytes, *, temp_suffix: str) -> None:
    """Write `data` to a lake-relative path so that readers see all of it or no file:
    locally a synced temporary file renamed over the path; on blob storage one PUT.

    Raises:
        OSError: the write failed (nothing is left at the path).
    """
    if not location.is_local:
        location.filesystem.pipe_file(location.fs_path(relative), data)
        return
    path = location.fs_path(relative)
    temp = f"{path}.{temp_suffix}.tmp"
    try:
        with open(temp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except OSError:
        if os.path.exists(temp):
            os.remove(temp)
        raise


def load(location: LakeLocation, prefix: str) -> StagedBatch | None:
    """The complete staged batch under `prefix`, or None when there is none (also when its
    manifest cannot be read: see `read_manifest`)."""
    return read_manifest(location, prefix)[0]


def read_manifest(location: LakeLocation, prefix: str) -> tuple[StagedBatch | None, str | None]:
    """(the complete staged batch under `prefix` or None, why a manifest found there does
    not count or None). A missing manifest is no problem; an empty, truncated or otherwise
    unreadable one, or one naming files that are gone, is reported and counts as missing."""
    fs = location.filesystem
    path = location.fs_path(f"{prefix}/{MANIFEST}")
    where = location.uri(f"{prefix}/{MANIFEST}")
    try:
        raw = fs.cat_file(path)
    except FileNotFoundError:
        return None, None
    try:
        manifest = json.loads(raw)
        files = tuple(manifest["files"])
        rows = int(manifest["rows"])
        schema = pa.ipc.read_schema(pa.py_buffer(bytes.fromhex(manifest["schema"])))
        if not all(isinstance(name, str) for name in files):
            raise ValueError("file names are not strings")
    except (ValueError, KeyError, TypeError, pa.ArrowException) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, f"staging manifest {where} is unreadable ({len(raw)} bytes: {reason}), as a crash while writing it leaves it"
    gone = [name for name in files if not fs.exists(location.fs_path(f"{prefix}/{name}"))]
    if gone:
        return None, f"staging manifest {where} names {len(gone)} file(s) that are gone ({gone[0]})"
    return StagedBatch(location, prefix, files, rows, schema), None
