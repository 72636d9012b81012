"""`arrow_dataset`: a lake table's files read by Arrow itself (local) or without pre-buffering
(remote), with the same rows as deltalake's own reader."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
from deltalake import DeltaTable, write_deltalake

from brickyard.lake.datasets import _without_prebuffer, arrow_dataset, local_folder

ODD_VALUES = ["New York", "a=b/c", "ü%20x", "x y", ""]


def partitioned_table(folder: Path) -> DeltaTable:
    first = pa.table({"city": ODD_VALUES, "v": list(range(5)), "note": ["α", None, "c", "d", "e"]})
    write_deltalake(str(folder), first, partition_by=["city"])
    write_deltalake(str(folder), pa.table({"city": ["x y"], "v": [9], "note": ["late"]}), mode="append")
    return DeltaTable(str(folder))


def rows(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda row: (row["v"], row["city"]))


def test_a_local_table_is_read_by_arrows_own_filesystem_with_deltalakes_rows(tmp_path: Path) -> None:
    delta = partitioned_table(tmp_path / "odd folder")
    dataset = arrow_dataset(delta)
    assert isinstance(dataset.filesystem, pafs.SubTreeFileSystem)
    assert isinstance(dataset.filesystem.base_fs, pafs.LocalFileSystem)
    assert rows(dataset.to_table()) == rows(delta.to_pyarrow_dataset().to_table())
    assert len(rows(dataset.to_table())) == 6


def test_an_old_version_reads_only_its_files(tmp_path: Path) -> None:
    partitioned_table(tmp_path / "t")
    first = DeltaTable(str(tmp_path / "t"), version=0)
    assert rows(arrow_dataset(first).to_table()) == rows(first.to_pyarrow_dataset().to_table())
    assert arrow_dataset(first).count_rows() == 5


def test_the_python_handlers_dataset_keeps_its_files_and_rows_without_prebuffering(tmp_path: Path) -> None:
    delta = partitioned_table(tmp_path / "t")
    handled = delta.to_pyarrow_dataset()
    assert isinstance(handled.filesystem, pafs.PyFileSystem)
    plain = _without_prebuffer(handled)
    assert not plain.format.default_fragment_scan_options.pre_buffer
    assert sorted(f.path for f in plain.get_fragments()) == sorted(f.path for f in handled.get_fragments())
    assert rows(plain.to_table(filter=pads.field("city") == "x y")) == rows(
        handled.to_table(filter=pads.field("city") == "x y")
    )


def test_local_folder_reads_file_uris_and_paths_and_refuses_remote_ones() -> None:
    assert local_folder("file:///tmp/my%20lake/silver/t/") == "/tmp/my lake/silver/t"
    assert local_folder("/tmp/lake/silver/t") == "/tmp/lake/silver/t"
    assert local_folder("abfss://lake@acct.dfs.core.windows.net/silver/t") is None
    assert local_folder("az://lake/silver/t") is None


def test_a_process_that_scanned_a_table_exits_cleanly(tmp_path: Path) -> None:
    """The abort at exit this module avoids came from Arrow I/O threads holding Python buffers;
    with Arrow's own filesystem no thread holds one. (The race itself needs a loaded machine to
    show, about one run in five: see the module docstring.)"""
    partitioned_table(tmp_path / "t")
    script = (
        "from deltalake import DeltaTable\n"
        "from brickyard.lake.datasets import arrow_dataset\n"
        f"ds = arrow_dataset(DeltaTable({str(tmp_path / 't')!r}))\n"
        "print(ds.head(1, columns=['v']).num_rows)\n"
    )
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "1"
