"""brickyard.lake.Lake: Delta tables in a local folder, addressed zone.name."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from brickyard.errors import CommitConflictError, LakeError, TableNotFoundError
from brickyard.lake import Lake, LakeLocation


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(LakeLocation(str(tmp_path)))


def ids(table: pa.Table) -> list[int]:
    return sorted(table.column("id").to_pylist())


def parquet_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.parquet"))


def test_writes_return_versions_for_table_dataframe_and_reader(lake: Lake) -> None:
    first = pa.table({"id": [1, 2], "fare": [5.0, 6.0]})
    second = pd.DataFrame({"id": [3], "fare": [7.0]})
    third = pa.RecordBatchReader.from_batches(
        first.schema, pa.table({"id": [4, 5], "fare": [8.0, 9.0]}).to_batches()
    )
    assert lake.write("bronze.trips", first) == 0
    assert lake.write("bronze.trips", second) == 1
    assert lake.write("bronze.trips", third) == 2
    assert ids(lake.read("bronze.trips")) == [1, 2, 3, 4, 5]
    assert lake.version("bronze.trips") == 2


def test_overwrite_replaces_rows(lake: Lake) -> None:
    lake.write("bronze.trips", pa.table({"id": [1, 2]}))
    assert lake.write("bronze.trips", pa.table({"id": [9]}), mode="overwrite") == 1
    assert ids(lake.read("bronze.trips")) == [9]


def test_read_old_version(lake: Lake) -> None:
    lake.write("bronze.trips", pa.table({"id": [1]}))
    lake.write("bronze.trips", pa.table({"id": [2]}))
    assert ids(lake.read("bronze.trips", version=0)) == [1]
    assert ids(lake.read("bronze.trips")) == [1, 2]


def test_read_columns(lake: Lake) -> None:
    lake.write("bronze.trips", pa.table({"id": [1], "fare": [5.0]}))
    assert lake.read("bronze.trips", columns=["fare"]).column_names == ["fare"]


def test_read_missing_version_raises_lake_error(lake: Lake) -> None:
    lake.write("bronze.trips", pa.table({"id": [1]}))
    with pytest.raises(LakeError, match="no version 5"):
        lake.read("bronze.trips", version=5)


def test_read_as_of_timestamp_between_commits(lake: Lake) -> None:
    lake.write("bronze.trips", pa.table({"id": [1]}))
    time.sleep(1.1)
    between = datetime.now(UTC)
    time.sleep(1.1)
    lake.write("bronze.trips", pa.table({"id": [2]}))
    assert ids(lake.read("bronze.trips", as_of=between)) == [1]
    assert ids(lake.read("bronze.trips", as_of=between.isoformat())) == [1]
    assert ids(lake.read("bronze.trips", as_of=datetime.now(UTC))) == [1, 2]


def test_read_as_of_bad_text_raises_lake_error(lake: Lake) -> None:
    lake.write("bronze.trips", pa.table({"id": [1]}))
    with pytest.raises(LakeError, match="not a timestamp"):
        lake.read("bronze.trips", as_of="yesterday")


def test_merge_updates_matches_and_inserts_the_rest(lake: Lake) -> None:
    lake.write("silver.fares", pa.table({"id": [1, 2], "fare": [5.0, 7.5]}))
    version = lake.merge("silver.fares", pa.table({"id": [2, 3], "fare": [8.0, 9.0]}), keys=["id"])
    assert version == 1
    rows = lake.read("silver.fares").sort_by("id").to_pydict()
    assert rows == {"id": [1, 2, 3], "fare": [5.0, 8.0, 9.0]}


def test_merge_creates_a_missing_table(lake: Lake) -> None:
    assert lake.merge("silver.fares", pd.DataFrame({"id": [1], "fare": [2.0]}), keys=["id"]) == 0
    assert lake.read("silver.fares").to_pydict() == {"id": [1], "fare": [2.0]}


def test_merge_without_keys_raises(lake: Lake) -> None:
    with pytest.raises(LakeError, match="key"):
        lake.merge("silver.fares", pa.table({"id": [1]}), keys=[])


def test_partition_by_creates_hive_folders_and_describe_reports_them(
    lake: Lake, tmp_path: Path
) -> None:
    data = pa.table({"id": [1, 2, 3], "day": ["mon", "tue", "mon"]})
    lake.write("bronze.trips", data, partition_by=["day"])
    folder = tmp_path / "bronze" / "trips"
    assert (folder / "day=mon").is_dir()
    assert (folder / "day=tue").is_dir()
    assert lake.describe("bronze.trips").partition_columns == ["day"]


def test_describe_reports_rows_files_size_versions_and_columns(lake: Lake) -> None:
    lake.write("gold.fares", pa.table({"id": [1, 2], "fare": [5.0, 6.0]}))
    lake.write("gold.fares", pa.table({"id": [3], "fare": [7.0]}))
    info = lake.describe("gold.fares")
    assert info.name == "gold.fares"
    assert info.rows == 3
    assert info.files == 2
    assert info.size_bytes > 0
    assert info.version == 1
    assert info.versions == 2
    assert info.partition_columns == []
    assert [column.name for column in info.columns] == ["id", "fare"]
    assert info.columns[0].type == "int64"
    assert info.columns[1].type == "double"
    assert info.last_modified is not None


def test_history_is_newest_first_with_operations(lake: Lake) -> None:
    lake.write("bronze.trips", pa.table({"id": [1]}))
    lake.write("bronze.trips", pa.table({"id": [2]}))
    lake.merge("bronze.trips", pa.table({"id": [2]}), keys=["id"])
    history = lake.history("bronze.trips")
    assert [entry["version"] for entry in history] == [2, 1, 0]
    assert history[0]["operation"] == "MERGE"
    assert history[1]["operation"] == "WRITE"
    assert isinstance(history[0]["timestamp"], datetime)
    assert len(lake.history("bronze.trips", limit=1)) == 1


def test_write_metadata_is_recorded_in_history(lake: Lake) -> None:
    lake.write("bronze.trips", pa.table({"id": [1]}), metadata={"pipeline": "ingest", "run": 7})
    entry = lake.history("bronze.trips")[0]
    assert entry.get("pipeline") == "ingest"
    assert entry.get("run") == "7"


def test_optimize_compacts_small_files(lake: Lake) -> None:
    for value in range(4):
        lake.write("bronze.trips", pa.table({"id": [value]}))
    assert lake.describe("bronze.trips").files == 4
    metrics = lake.optimize("bronze.trips")
    assert metrics["numFilesRemoved"] == 4
    assert lake.describe("bronze.trips").files < 4
    assert ids(lake.read("bronze.trips")) == [0, 1, 2, 3]


def test_vacuum_removes_unreferenced_files_after_overwrite(lake: Lake, tmp_path: Path) -> None:
    folder = tmp_path / "bronze" / "trips"
    lake.write("bronze.trips", pa.table({"id": [1, 2]}))
    lake.write("bronze.trips", pa.table({"id": [3]}), mode="overwrite")
    assert len(parquet_files(folder)) == 2
    assert lake.vacuum("bronze.trips", retention_hours=0, dry_run=True)
    assert len(parquet_files(folder)) == 2
    removed = lake.vacuum("bronze.trips", retention_hours=0)
    assert len(removed) == 1
    assert len(parquet_files(folder)) == 1
    assert ids(lake.read("bronze.trips")) == [3]


def test_tables_lists_zone_names_sorted_and_ignores_raw(lake: Lake, tmp_path: Path) -> None:
    lake.write("silver.b", pa.table({"id": [1]}))
    lake.write("bronze.z", pa.table({"id": [1]}))
    lake.write("bronze.a", pa.table({"id": [1]}))
    raw_like = tmp_path / "raw" / "files" / "_delta_log"
    raw_like.mkdir(parents=True)
    (tmp_path / "raw" / "taxi.csv").write_text("id\n1\n")
    assert lake.tables() == ["bronze.a", "bronze.z", "silver.b"]


def test_tables_of_empty_lake_is_empty(lake: Lake) -> None:
    assert lake.tables() == []


def test_exists(lake: Lake) -> None:
    assert not lake.exists("bronze.trips")
    lake.write("bronze.trips", pa.table({"id": [1]}))
    assert lake.exists("bronze.trips")


def test_missing_table_raises_with_close_name_suggestion(lake: Lake) -> None:
    lake.write("bronze.trips", pa.table({"id": [1]}))
    with pytest.raises(TableNotFoundError) as caught:
        lake.read("bronze.trip")
    assert caught.value.suggestions == ["bronze.trips"]
    assert "bronze.trip'" in str(caught.value)
    assert "did you mean bronze.trips?" in str(caught.value)


def test_missing_table_without_close_names_hints_tables_command(lake: Lake) -> None:
    with pytest.raises(TableNotFoundError, match="brickyard tables"):
        lake.describe("gold.nothing")


@pytest.mark.parametrize("name", ["Bronze-Trips", "bronze", "a.b.c", "bronze.Trips"])
def test_bad_table_name_raises_lake_error(lake: Lake, name: str) -> None:
    with pytest.raises(LakeError, match="not a table name"):
        lake.write(name, pa.table({"id": [1]}))


def test_raw_zone_is_not_a_table_zone(lake: Lake) -> None:
    with pytest.raises(LakeError, match="raw zone"):
        lake.write("raw.x", pa.table({"id": [1]}))


def test_different_schema_fails_and_keeps_previous_version(lake: Lake) -> None:
    lake.write("bronze.trips", pa.table({"id": [1, 2]}))
    with pytest.raises(LakeError) as caught:
        lake.write("bronze.trips", pa.table({"id": [3], "extra": ["x"]}))
    assert "bronze.trips" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert lake.version("bronze.trips") == 0
    assert ids(lake.read("bronze.trips")) == [1, 2]


def test_evolve_schema_adds_the_column(lake: Lake) -> None:
    lake.write("bronze.trips", pa.table({"id": [1]}))
    version = lake.write(
        "bronze.trips", pa.table({"id": [2], "extra": ["x"]}), evolve_schema=True
    )
    assert version == 1
    rows = lake.read("bronze.trips").sort_by("id").to_pydict()
    assert rows == {"id": [1, 2], "extra": [None, "x"]}


def test_write_of_unsupported_data_raises_lake_error(lake: Lake) -> None:
    with pytest.raises(LakeError, match="cannot write list"):
        lake.write("bronze.trips", [{"id": 1}])


def test_transaction_makes_a_retried_batch_idempotent(lake: Lake) -> None:
    batch = pa.table({"id": [1, 2]})
    assert lake.write("bronze.trips", batch, transaction=("batch-app", 1)) == 0
    assert lake.write("bronze.trips", batch, transaction=("batch-app", 1)) == 0
    assert lake.read("bronze.trips").num_rows == 2
    assert lake.write("bronze.trips", pa.table({"id": [3]}), transaction=("batch-app", 2)) == 1
    assert ids(lake.read("bronze.trips")) == [1, 2, 3]


# -- the same application transaction from two writers at once --------------------------


def stream(table: pa.Table) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())


@pytest.mark.parametrize("table_exists", [True, False], ids=["existing table", "new table"])
def test_a_writer_that_loses_its_transaction_to_a_concurrent_commit_commits_nothing(
    lake: Lake, table_exists: bool
) -> None:
    """The other writer commits batch 1 after this writer checked the table and before it
    commits (its `before_commit` runs in that gap): this writer's commit is refused."""
    if table_exists:
        lake.write("bronze.trips", pa.table({"id": [0]}))
    other = Lake(LakeLocation(lake.location.root))

    def other_writer_commits_first() -> None:
        other.write("bronze.trips", pa.table({"id": [1, 2]}), transaction=("batch-app", 1))

    with pytest.raises(CommitConflictError, match="bronze.trips"):
        lake.write(
            "bronze.trips",
            stream(pa.table({"id": [1, 2]})),
            transaction=("batch-app", 1),
            before_commit=other_writer_commits_first,
        )
    assert ids(lake.read("bronze.trips")) == ([0] if table_exists else []) + [1, 2]
    assert lake.transaction_version("bronze.trips", "batch-app") == 1


def test_a_committed_transaction_is_skipped_or_reported_as_a_conflict(lake: Lake) -> None:
    lake.write("bronze.trips", pa.table({"id": [1]}), transaction=("batch-app", 1))
    assert lake.write("bronze.trips", pa.table({"id": [1]}), transaction=("batch-app", 1)) == 0
    with pytest.raises(CommitConflictError, match="batch 1"):
        lake.write("bronze.trips", pa.table({"id": [1]}), transaction=("batch-app", 1), if_committed="conflict")
    assert ids(lake.read("bronze.trips")) == [1]


@pytest.mark.parametrize("table_exists", [True, False], ids=["existing table", "new table"])
def test_a_concurrent_commit_of_another_batch(lake: Lake, table_exists: bool) -> None:
    """Another application's append in the gap is no conflict; losing the table's creation
    is one (the stream cannot be replayed on top of the new table: the caller plans again)."""
    if table_exists:
        lake.write("bronze.trips", pa.table({"id": [0]}))
    other = Lake(LakeLocation(lake.location.root))

    def other_batch_commits_first() -> None:
        other.write("bronze.trips", pa.table({"id": [5]}), transaction=("other-app", 1))

    def write() -> int:
        return lake.write(
            "bronze.trips",
            stream(pa.table({"id": [1]})),
            transaction=("batch-app", 1),
            before_commit=other_batch_commits_first,
        )

    if table_exists:
        assert write() == 2
        assert ids(lake.read("bronze.trips")) == [0, 1, 5]
    else:
        with pytest.raises(CommitConflictError, match="created"):
            write()
        assert ids(lake.read("bronze.trips")) == [5]


def commit_files_at_once(root: str, trials: int, worker: int, barrier: Any, results: Any) -> None:
    """One process: per trial, write a Parquet file into the table's folder, wait for the
    other process, then commit it as batch 1 (how the Spark engine commits its files)."""
    import pyarrow.parquet as pq

    from brickyard.lake import DataFile

    lake = Lake(LakeLocation(root))
    for trial in range(trials):
        name = f"bronze.t{trial}"
        folder = Path(lake.table_uri(name))
        folder.mkdir(parents=True, exist_ok=True)
        data = pa.table({"id": pa.array([trial * 10 + worker, trial * 10 + worker + 5], pa.int64())})
        pq.write_table(data, folder / f"part-{worker}.parquet")
        file = DataFile(f"part-{worker}.parquet", (folder / f"part-{worker}.parquet").stat().st_size, 2, {})
        barrier.wait(timeout=60)
        try:
            lake.commit_files(name, [file], data.schema, transaction=("batch-app", 1))
            results.put((trial, worker, "ok"))
        except CommitConflictError:
            results.put((trial, worker, "conflict"))
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            results.put((trial, worker, f"{type(exc).__name__}: {exc}"))


@pytest.mark.slow
def test_two_processes_committing_the_same_batch_of_files_commit_it_once(lake: Lake) -> None:
    import multiprocessing

    trials = 20
    for trial in range(1, trials, 2):  # odd trials: the table exists already
        lake.write(f"bronze.t{trial}", pa.table({"id": pa.array([-1], pa.int64())}))
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=commit_files_at_once, args=(lake.location.root, trials, w, barrier, results))
        for w in range(2)
    ]
    for process in workers:
        process.start()
    outcomes = [results.get(timeout=300) for _ in range(2 * trials)]
    for process in workers:
        process.join(timeout=60)

    assert sorted(o for o in outcomes if o[2] not in ("ok", "conflict")) == []
    for trial in range(trials):
        rows = lake.read(f"bronze.t{trial}").column("id").to_pylist()
        assert len([r for r in rows if r >= 0]) == 2, f"trial {trial}: {rows}"
        assert lake.transaction_version(f"bronze.t{trial}", "batch-app") == 1


def test_a_merge_that_loses_the_tables_creation_merges_into_the_new_table(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two merges into a table that does not exist yet: the other one creates it while this
    one writes; this one then merges, it does not replace the other one's rows."""
    other = Lake(LakeLocation(lake.location.root))
    real = Lake._write_once

    def other_creates_first(self: Lake, *args: Any, **kwargs: Any) -> int:
        if self is lake and not other.exists("silver.t"):
            other.merge("silver.t", pa.table({"id": [1, 2], "v": ["a", "b"]}), keys=["id"])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Lake, "_write_once", other_creates_first)
    lake.merge("silver.t", pa.table({"id": [2, 3], "v": ["B", "C"]}), keys=["id"])

    assert sorted(lake.read("silver.t").to_pylist(), key=lambda r: r["id"]) == [
        {"id": 1, "v": "a"}, {"id": 2, "v": "B"}, {"id": 3, "v": "C"}
    ]
