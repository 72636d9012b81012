"""Arrow datasets of Delta tables, read without Python in the I/O threads.

deltalake's `DeltaTable.to_pyarrow_dataset()` reads every file through a Python filesystem
handler with Parquet pre-buffering on. Arrow's I/O threads then hold Python-owned buffers,
and one can drop the last of them while the interpreter is shutting down: the thread asks for
the GIL, is ended by CPython, and the process aborts ("terminate called without an active
exception", exit code 134) after the command printed its success. Under load it happened to
about one `brickyard features materialize` in five. So every brickyard read of a lake table
goes through `arrow_dataset`:

- a local table is read by Arrow's own `LocalFileSystem` (no Python buffers at all; also
  faster), its files memory-mapped: reading them copied each file from the page cache into
  fresh memory, and that copy (kernel time, zeroing fresh pages) cost a point-in-time
  join's value reads as much as decoding them (Delta files are never rewritten in place);
- a remote (Azure) table keeps deltalake's handler, with pre-buffering off, so no read is
  still in flight when a scan has returned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:
    import pyarrow.dataset as pads
    from deltalake import DeltaTable


def arrow_dataset(delta: DeltaTable) -> pads.Dataset:
    """The table's files at its loaded version as a lazily read Arrow dataset."""
    import pyarrow.fs as pafs

    folder = local_folder(delta.table_uri)
    if folder is not None:
        filesystem = pafs.SubTreeFileSystem(folder, pafs.LocalFileSystem(use_mmap=True))
        return delta.to_pyarrow_dataset(filesystem=filesystem)
    return _without_prebuffer(delta.to_pyarrow_dataset())


def local_folder(table_uri: str) -> str | None:
    """The local path of a `file://` URI or plain path; None for a remote URI."""
    if "://" not in table_uri:
        return table_uri.rstrip("/") or "/"
    parsed = urlparse(table_uri)
    if parsed.scheme != "file":
        return None
    return unquote(parsed.path).rstrip("/") or "/"


def _without_prebuffer(dataset: pads.FileSystemDataset) -> pads.FileSystemDataset:
    import pyarrow.dataset as pads

    file_format = pads.ParquetFileFormat(
        read_options=dataset.format.read_options,
        default_fragment_scan_options=pads.ParquetFragmentScanOptions(pre_buffer=False),
    )
    fragments = [
        file_format.make_fragment(
            fragment.path, filesystem=dataset.filesystem, partition_expression=fragment.partition_expression
        )
        for fragment in dataset.get_fragments()
    ]
    return pads.FileSystemDataset(fragments, dataset.schema, file_format, dataset.filesystem)
