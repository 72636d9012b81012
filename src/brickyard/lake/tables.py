"""Delta tables in the lake, read and written with delta-rs (`deltalake`).

This is the only module that imports `deltalake`; both engines go through it.

>>> import tempfile, pyarrow as pa
>>> lake = Lake(LakeLocation(tempfile.mkdtemp()))
>>> lake.write("bronze.trips", pa.table({"id": [1, 2], "fare": [5.0, 7.5]}))
0
>>> lake.merge("bronze.trips", pa.table({"id": [2, 3], "fare": [8.0, 9.0]}), keys=["id"])
1
>>> sorted(lake.read("bronze.trips").column("fare").to_pylist())
[5.0, 8.0, 9.0]
>>> lake.read("bronze.trips", version=0).num_rows
2
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from brickyard.errors import BrickyardError, CommitConflictError, LakeError, TableNotFoundError
from brickyard.lake.datasets import arrow_dataset
from brickyard.lake.location import LakeLocation
from brickyard.lake.names import RAW_ZONE, TableName

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads
    from deltalake import DeltaTable

WriteMode = Literal["append", "overwrite"]
IfCommitted = Literal["skip", "conflict"]
TableData = Any  # a pyarrow Table / RecordBatchReader, a pandas DataFrame, any Arrow stream
AsOf = datetime | str
COMMIT_ATTEMPTS = 10  # commits of replayable data (tables, files written already) lost to other writers


@dataclass(frozen=True)
class Column:
    """One column of a table's schema."""

    name: str
    type: str
    nullable: bool


@dataclass(frozen=True)
class TableInfo:
    """What `brickyard describe` shows about a table."""

    name: str
    uri: str
    version: int
    versions: int
    rows: int
    files: int
    size_bytes: int
    partition_columns: list[str]
    columns: list[Column]
    last_modified: datetime | None


@dataclass(frozen=True)
class DataFile:
    """A Parquet data file of a table: its path relative to the table's folder, its size,
    row count and partition values (as Delta stores them: text, or None for NULL)."""

    path: str
    size: int
    rows: int
    partition_values: Mapping[str, str | None]


@dataclass(frozen=True)
class TableFiles:
    """A table version as a list of files, for engines that read Parquet themselves."""

    uri: str
    version: int
    schema: pa.Schema
    partition_columns: list[str]
    files: list[DataFile]


class Lake:
    """The lake's Delta tables, addressed `zone.name`."""

    def __init__(self, location: LakeLocation) -> None:
        self.location = location

    # -- addressing ---------------------------------------------------------------------

    def table_uri(self, name: str | TableName) -> str:
        """The URI (or absolute path) of a table's folder."""
        table = name if isinstance(name, TableName) else TableName.parse(name)
        return self.location.uri(table.path)

    def tables(self) -> list[str]:
        """Every table in the lake, sorted, as `zone.name`."""
        fs = self.location.filesystem
        pattern = f"{self.location.fs_path()}/*/*/_delta_log"
        found = []
        for log_dir in fs.glob(pattern):
            zone, name = log_dir.rstrip("/").split("/")[-3:-1]
            if zone != RAW_ZONE:
                found.append(f"{zone}.{name}")
        return sorted(found)

    def exists(self, name: str | TableName) -> bool:
        """True when the table has at least one committed version."""
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(self.table_uri(name), self.location.delta_options())

    # -- reading ------------------------------------------------------------------------

    def delta(
        self, name: str | TableName, *, version: int | None = None, as_of: AsOf | None = None
    ) -> DeltaTable:
        """Open a table, at its latest version or at a past version or timestamp.

        Raises:
            TableNotFoundError: no such table (with the closest names).
            LakeError: the version or timestamp does not exist.
        """
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError as DeltaMissing

        table = name if isinstance(name, TableName) else TableName.parse(name)
        try:
            dt = DeltaTable(
                self.table_uri(table),
                version=version,
                storage_options=self.location.delta_options(),
            )
        except DeltaMissing as exc:
            raise TableNotFoundError(str(table), self.tables()) from exc
        except Exception as exc:
            if version is not None:
                raise LakeError(
                    f"{table} has no version {version}: {exc}",
                    hint=f"run `brickyard history {table}` to list its versions",
                ) from exc
            raise LakeError(f"cannot open {table}: {exc}") from exc
        if as_of is not None:
            try:
                dt.load_as_version(_as_datetime(as_of))
            except Exception as exc:
                raise LakeError(
                    f"{table} has no version at or before {as_of}: {exc}",
                    hint=f"run `brickyard history {table}` to see when versions were written",
                ) from exc
        return dt

    def dataset(
        self, name: str | TableName, *, version: int | None = None, as_of: AsOf | None = None
    ) -> pads.Dataset:
        """A lazily read Arrow dataset of the table (for streaming scans and DuckDB)."""
        return arrow_dataset(self.delta(name, version=version, as_of=as_of))

    def read(
        self,
        name: str | TableName,
        *,
        version: int | None = None,
        as_of: AsOf | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        """Read a whole table (or some columns) into memory."""
        return self.dataset(name, version=version, as_of=as_of).to_table(
            columns=list(columns) if columns else None
        )

    def version(self, name: str | TableName) -> int:
        """The latest committed version of a table."""
        return self.delta(name).version()

    def history(self, name: str | TableName, limit: int | None = None) -> list[dict[str, Any]]:
        """The table's commits, newest first: version, timestamp, operation, parameters, metrics."""
        entries = self.delta(name).history(limit)
        for entry in entries:
            stamp = entry.get("timestamp")
            if isinstance(stamp, int):
                entry["timestamp"] = datetime.fromtimestamp(stamp / 1000, tz=UTC)
            for key, value in _user_metadata(entry.get("userMetadata")).items():
                entry.setdefault(key, value)
        return entries

    def describe(self, name: str | TableName) -> TableInfo:
        """Schema, row count, size, file count and version count of a table."""
        import pyarrow as pa
        import pyarrow.compute as pc

        table = name if isinstance(name, TableName) else TableName.parse(name)
        dt = self.delta(table)
        actions = pa.table(dt.get_add_actions(flatten=True))
        schema = pa.schema(dt.schema().to_arrow())
        history = dt.history(1)
        stamp = history[0].get("timestamp") if history else None
        return TableInfo(
            name=str(table),
            uri=dt.table_uri,
            version=dt.version(),
            versions=dt.version() + 1,
            rows=dt.count(),
            files=actions.num_rows,
            size_bytes=int(pc.sum(actions.column("size_bytes")).as_py() or 0),
            partition_columns=list(dt.metadata().partition_columns),
            columns=[Column(f.name, str(f.type), f.nullable) for f in schema],
            last_modified=datetime.fromtimestamp(stamp / 1000, tz=UTC) if stamp else None,
        )

    # -- writing ------------------------------------------------------------------------

    def write(
        self,
        name: str | TableName,
        data: TableData,
        *,
        mode: WriteMode = "append",
        partition_by: Sequence[str] | None = None,
        evolve_schema: bool = False,
        metadata: Mapping[str, Any] | None = None,
        transaction: tuple[str, int] | None = None,
        before_commit: Callable[[], None] | None = None,
        if_committed: IfCommitted = "skip",
    ) -> int:
        """Append to or overwrite a table (created on first write) in one commit.

        `evolve_schema` adds new columns instead of failing. `transaction` is an
        `(app_id, version)` pair recorded in the commit. The table is read once; when it
        already records that app id at that version or above, nothing is written
        (`if_committed="skip"`: a retried batch is a no-op) or CommitConflictError is raised
        (`"conflict"`: the batch was someone else's). Otherwise the commit is made against
        that read, so a concurrent commit with the same app id (or a concurrent creation of
        the table, or a schema change) makes this commit fail instead of landing twice:
        data given as a table is then written again after a fresh read (up to
        COMMIT_ATTEMPTS times, `before_commit` permitting), a stream cannot be replayed and
        CommitConflictError is raised (its data files stay unreferenced until `vacuum`).
        `before_commit` is called once the whole stream has been written to data files
        and before the commit is made (from the calling thread); if it raises, nothing is
        committed and its exception propagates. An exception raised by the data stream
        itself also propagates unchanged, with nothing committed.
        Returns the table version after the write.

        Raises:
            CommitConflictError: as above.
            LakeError: the data does not fit the table's schema, or the commit failed.
        """
        table = name if isinstance(name, TableName) else TableName.parse(name)
        if transaction is None:
            return self._write_once(table, None, data, mode, partition_by, evolve_schema, metadata, None, before_commit)
        replayable = before_commit is None and _replayable(data)
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            snapshot = self._snapshot(table)
            if snapshot is not None and _holds(snapshot, transaction):
                return self._already_committed(table, snapshot, transaction, if_committed)
            try:
                return self._write_once(
                    table, snapshot, data, mode, partition_by, evolve_schema, metadata, transaction, before_commit
                )
            except CommitConflictError:
                if not replayable or attempt == COMMIT_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _write_once(
        self,
        table: TableName,
        snapshot: DeltaTable | None,
        data: TableData,
        mode: WriteMode,
        partition_by: Sequence[str] | None,
        evolve_schema: bool,
        metadata: Mapping[str, Any] | None,
        transaction: tuple[str, int] | None,
        before_commit: Callable[[], None] | None,
        *,
        create: bool = False,
    ) -> int:
        """One write. With a transaction (or `create`), against `snapshot` (None: the table
        must not exist yet, and a concurrent creation is a conflict)."""
        from deltalake import write_deltalake

        uri = self.table_uri(table)
        creating = (transaction is not None or create) and snapshot is None
        retries = 0 if creating else COMMIT_ATTEMPTS

        def commit(stream: Any) -> None:
            write_deltalake(
                snapshot if snapshot is not None else uri,
                stream,
                mode="error" if creating else mode,
                partition_by=list(partition_by) if partition_by else None,
                schema_mode=("merge" if mode == "append" else "overwrite")
                if evolve_schema and not creating
                else None,
                storage_options=self.location.delta_options(),
                commit_properties=_commit_properties(metadata, transaction, retries),
            )

        stream = _as_arrow(data)
        try:
            if before_commit is None:
                _call_keeping_stream_errors(commit, stream)
            else:
                _write_with_hook(commit, stream, before_commit)
        except _StreamFailed as failed:
            if failed.from_hook or isinstance(failed.error, BrickyardError):
                # from None: _StreamFailed only carries this error (noise)
                raise failed.error from None
            raise _write_error(table, mode, failed.error) from failed.error
        except Exception as exc:
            self._raise_if_conflict(table, exc, creating, transaction)
            raise _write_error(table, mode, exc) from exc
        return self.version(table)

    def transaction_version(self, name: str | TableName, app_id: str) -> int | None:
        """The latest batch version an application recorded in the table (None if none,
        or if the table does not exist)."""
        table = name if isinstance(name, TableName) else TableName.parse(name)
        if not self.exists(table):
            return None
        return self.delta(table).transaction_version(app_id)

    def committed_version(
        self, name: str | TableName, transaction: tuple[str, int], if_committed: IfCommitted = "skip"
    ) -> int | None:
        """The table's version when it already records the application transaction (None
        when it does not), for writers that check before they do expensive work; the commit
        itself checks again.

        Raises:
            CommitConflictError: it records it and `if_committed` is "conflict".
        """
        table = name if isinstance(name, TableName) else TableName.parse(name)
        snapshot = self._snapshot(table)
        if snapshot is None or not _holds(snapshot, transaction):
            return None
        return self._already_committed(table, snapshot, transaction, if_committed)

    def added_since(
        self, name: str | TableName, version: int | None, *, until: int | None = None
    ) -> tuple[pads.Dataset, int]:
        """The rows added to a table after `version`, as an Arrow dataset, and the table's
        current version (the whole table when `version` is None); with `until`, up to that
        version instead of the current one (and `until` is returned).

        Works for append-only history: the added rows are the data files present now and
        absent at `version`.

        Raises:
            LakeError: files of `version` were removed since (an overwrite, delete, merge or
                optimize rewrote the table), or `version` is newer than the table.
        """
        import pyarrow.dataset as pads

        table = name if isinstance(name, TableName) else TableName.parse(name)
        dt = self.delta(table, version=until)
        current = dt.version()
        dataset = arrow_dataset(dt)
        if version is None:
            return dataset, current
        _check_since(table, version, current)
        if version == current:
            fragments: list[Any] = []
        else:
            before = {f.path for f in arrow_dataset(self.delta(table, version=version)).get_fragments()}
            now = list(dataset.get_fragments())
            _check_append_only(table, version, current, before - {f.path for f in now})
            fragments = [f for f in now if f.path not in before]
        added = pads.FileSystemDataset(
            fragments, dataset.schema, dataset.format, dataset.filesystem
        )
        return added, current

    def merge(
        self,
        name: str | TableName,
        data: TableData,
        *,
        keys: Sequence[str],
        partition_by: Sequence[str] | None = None,
        evolve_schema: bool = False,
        metadata: Mapping[str, Any] | None = None,
        transaction: tuple[str, int] | None = None,
        if_committed: IfCommitted = "skip",
    ) -> int:
        """Upsert rows by key: matching rows are updated, the rest inserted; one commit.

        Creates the table from `data` when it does not exist yet. `transaction` and
        `if_committed` work as in `write` (data given as a table is merged again after a
        concurrent commit). Returns the new version.

        Raises:
            CommitConflictError: as `write`.
            LakeError: the merge failed.
        """
        if not keys:
            raise LakeError("merge needs at least one key column")
        table = name if isinstance(name, TableName) else TableName.parse(name)
        replayable = _replayable(data)
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            snapshot = self._snapshot(table)
            if snapshot is not None and transaction is not None and _holds(snapshot, transaction):
                return self._already_committed(table, snapshot, transaction, if_committed)
            try:
                if snapshot is None:  # created by this write, or merged into if another creates it
                    return self._write_once(
                        table, None, data, "overwrite", partition_by, False, metadata, transaction, None, create=True
                    )
                return self._merge_once(table, snapshot, data, keys, evolve_schema, metadata, transaction)
            except CommitConflictError:
                if not replayable or attempt == COMMIT_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _merge_once(
        self,
        table: TableName,
        snapshot: DeltaTable,
        data: TableData,
        keys: Sequence[str],
        evolve_schema: bool,
        metadata: Mapping[str, Any] | None,
        transaction: tuple[str, int] | None,
    ) -> int:
        source = _as_arrow(data)
        predicate = " AND ".join(f't."{key}" = s."{key}"' for key in keys)
        try:
            (
                snapshot.merge(
                    source,
                    predicate=predicate,
                    source_alias="s",
                    target_alias="t",
                    merge_schema=evolve_schema,
                    commit_properties=_commit_properties(metadata, transaction),
                )
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )
        except Exception as exc:
            self._raise_if_conflict(table, exc, False, transaction)
            raise _write_error(table, "merge", exc) from exc
        return self.version(table)

    def optimize(self, name: str | TableName, *, zorder_by: Sequence[str] | None = None) -> dict[str, Any]:
        """Compact small files (or z-order by columns); returns delta-rs's metrics."""
        dt = self.delta(name)
        if zorder_by:
            return dict(dt.optimize.z_order(list(zorder_by)))
        return dict(dt.optimize.compact())

    def vacuum(
        self, name: str | TableName, *, retention_hours: int = 168, dry_run: bool = False
    ) -> list[str]:
        """Delete files no version within the retention window needs; returns their paths."""
        return self.delta(name).vacuum(
            retention_hours=retention_hours, dry_run=dry_run, enforce_retention_duration=False
        )

    def table_files(
        self,
        name: str | TableName,
        *,
        version: int | None = None,
        as_of: AsOf | None = None,
        since_version: int | None = None,
    ) -> TableFiles:
        """The files of a table version, with its schema and partition columns; with
        `since_version`, only the files added after that version (as `added_since`).

        Raises:
            TableNotFoundError, LakeError: as `delta`; LakeError also when the table uses a
                Delta feature a plain Parquet reader would get wrong (deletion vectors,
                column mapping), or, with `since_version`, as `added_since`.
        """
        import pyarrow as pa

        table = name if isinstance(name, TableName) else TableName.parse(name)
        dt = self.delta(table, version=version, as_of=as_of)
        features = set(dt.protocol().reader_features or ())
        unsupported = features & {"deletionVectors", "columnMapping"}
        if unsupported:
            raise LakeError(
                f"{table} uses Delta reader features {sorted(unsupported)}, which the file-list "
                "reader cannot apply",
                hint="read it with a Spark session that has Delta Lake's own Spark support",
            )
        partitions = list(dt.metadata().partition_columns)
        actions = pa.table(dt.get_add_actions(flatten=True))
        files = [
            DataFile(
                path=row["path"],
                size=row["size_bytes"],
                rows=row.get("num_records") or 0,
                partition_values={column: row.get(f"partition.{column}") for column in partitions},
            )
            for row in actions.to_pylist()
        ]
        partition_values = [
            {column: _as_text(value) for column, value in file.partition_values.items()} for file in files
        ]
        files = [
            DataFile(file.path, file.size, file.rows, values)
            for file, values in zip(files, partition_values, strict=True)
        ]
        if since_version is not None:
            _check_since(table, since_version, dt.version())
            earlier = self.delta(table, version=since_version).get_add_actions(flatten=True)
            before = set(pa.table(earlier).column("path").to_pylist())
            _check_append_only(table, since_version, dt.version(), before - {file.path for file in files})
            files = [file for file in files if file.path not in before]
        schema = pa.schema(dt.schema().to_arrow())
        return TableFiles(self.table_uri(table), dt.version(), schema, partitions, files)

    def commit_files(
        self,
        name: str | TableName,
        files: Sequence[DataFile],
        schema: pa.Schema,
        *,
        mode: WriteMode = "append",
        partition_by: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        transaction: tuple[str, int] | None = None,
        if_committed: IfCommitted = "skip",
    ) -> int:
        """Commit Parquet files that another writer (Spark's executors) put in the table's
        folder, in one Delta commit; the table is created by the first commit.

        `schema` is the table's (partition columns included); the files hold the other
        columns. An append whose schema has new columns first adds them (a metadata
        commit). `transaction` and `if_committed` work as in `write`; a commit lost to a
        concurrent writer is made again after a fresh read (the files are still there), so
        with the same transaction at once, exactly one writer commits. Returns the table
        version after the commit.

        Raises:
            CommitConflictError: as `write`, after COMMIT_ATTEMPTS lost commits.
            LakeError: the commit failed (nothing is committed; the files stay unreferenced
                until `vacuum`).
        """
        from deltalake.transaction import AddAction

        table = name if isinstance(name, TableName) else TableName.parse(name)
        now = int(datetime.now(UTC).timestamp() * 1000)
        actions = [
            AddAction(
                path=file.path,
                size=file.size,
                partition_values=dict(file.partition_values),
                modification_time=now,
                data_change=True,
                stats=f'{{"numRecords": {int(file.rows)}}}',
            )
            for file in files
        ]
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                return self._commit_files_once(table, actions, schema, mode, partition_by, metadata, transaction, if_committed)
            except CommitConflictError:
                if attempt == COMMIT_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _commit_files_once(
        self,
        table: TableName,
        actions: list[Any],
        schema: pa.Schema,
        mode: WriteMode,
        partition_by: Sequence[str] | None,
        metadata: Mapping[str, Any] | None,
        transaction: tuple[str, int] | None,
        if_committed: IfCommitted,
    ) -> int:
        from deltalake import Schema
        from deltalake.transaction import create_table_with_add_actions

        partitions = list(partition_by or [])
        snapshot = self._snapshot(table)
        try:
            if snapshot is None:
                create_table_with_add_actions(
                    self.table_uri(table),
                    Schema.from_arrow(schema),
                    actions,
                    mode="error",
                    partition_by=partitions or None,
                    storage_options=self.location.delta_options(),
                    commit_properties=_commit_properties(metadata, transaction, retries=0),
                )
                return self.version(table)
            if transaction is not None and _holds(snapshot, transaction):
                return self._already_committed(table, snapshot, transaction, if_committed)
            # A column commit moves the read to the newest version: check the transaction again.
            if (
                mode == "append"
                and _add_new_columns(snapshot, schema)
                and transaction is not None
                and _holds(snapshot, transaction)
            ):
                return self._already_committed(table, snapshot, transaction, if_committed)
            snapshot.create_write_transaction(
                actions, mode, schema, partitions, commit_properties=_commit_properties(metadata, transaction)
            )
        except BrickyardError:
            raise
        except Exception as exc:
            self._raise_if_conflict(table, exc, snapshot is None, transaction)
            raise _write_error(table, mode, exc) from exc
        return self.version(table)

    # -- one read, one commit -----------------------------------------------------------

    def _snapshot(self, table: TableName) -> DeltaTable | None:
        """The table's latest version, read once (None when the table does not exist)."""
        from deltalake import DeltaTable

        uri, options = self.table_uri(table), self.location.delta_options()
        if not DeltaTable.is_deltatable(uri, options):
            return None
        try:
            return DeltaTable(uri, storage_options=options)
        except Exception as exc:
            raise LakeError(f"cannot open {table}: {exc}") from exc

    def _already_committed(
        self, table: TableName, snapshot: DeltaTable, transaction: tuple[str, int], if_committed: IfCommitted
    ) -> int:
        if if_committed == "skip":
            return snapshot.version()
        app, batch = transaction
        raise CommitConflictError(
            f"{table} already holds batch {snapshot.transaction_version(app)} of {app} "
            f"(version {snapshot.version()}), so batch {batch} was committed by another writer; "
            "nothing was committed",
            hint="read the table again and plan the batch again",
        )

    def _raise_if_conflict(
        self, table: TableName, exc: Exception, creating: bool, transaction: tuple[str, int] | None
    ) -> None:
        """Raise CommitConflictError when `exc` says another writer committed first."""
        from deltalake.exceptions import CommitFailedError

        what = f" batch {transaction[1]} of {transaction[0]}" if transaction else ""
        if creating and self.exists(table):
            raise CommitConflictError(
                f"{table} was created by another writer while this one wrote{what}; nothing was committed",
                hint="read the table again and plan the write again",
            ) from exc
        if isinstance(exc, CommitFailedError):
            raise CommitConflictError(
                f"another writer committed to {table} first ({_first_line(exc)}); "
                f"nothing of{what or ' this write'} was committed",
                hint="read the table again and plan the write again",
            ) from exc


def _check_since(table: TableName, version: int, current: int) -> None:
    if version > current:
        raise LakeError(
            f"{table} is at version {current}, older than version {version} read before; "
            "the table was recreated",
            hint="rebuild from it with --full-refresh",
        )


def _check_append_only(table: TableName, version: int, current: int, removed: set[str]) -> None:
    if removed:
        raise LakeError(
            f"{table} was rewritten between version {version} and {current} "
            f"({len(removed)} data file(s) removed by an overwrite, delete, merge or optimize); "
            "only appended rows can be read incrementally",
            hint="rebuild from it with --full-refresh",
        )


class _StreamFailed(Exception):
    """The data stream given to a write raised; carries the original exception."""

    def __init__(self, error: BaseException, from_hook: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.from_hook = from_hook


def _guarded(stream: Any, errors: list[BaseException]) -> Any:
    """A reader over `stream` that remembers an exception the stream raises, so the caller
    sees it instead of delta-rs's wrapped text."""
    import pyarrow as pa

    reader = stream if isinstance(stream, pa.RecordBatchReader) else _to_reader(stream)

    def batches() -> Iterator[Any]:
        try:
            yield from reader
        except BaseException as exc:
            errors.append(exc)
            raise

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def _to_reader(stream: Any) -> Any:
    import pyarrow as pa

    if isinstance(stream, pa.Table):
        return stream.to_reader()
    return pa.RecordBatchReader.from_stream(stream)


def _call_keeping_stream_errors(commit: Callable[[Any], None], stream: Any) -> None:
    import pyarrow as pa

    if not isinstance(stream, pa.RecordBatchReader):
        commit(stream)
        return
    errors: list[BaseException] = []
    try:
        commit(_guarded(stream, errors))
    except Exception:
        if errors:
            # from None: delta-rs failed because the stream did; its error is noise beside the stream's
            raise _StreamFailed(errors[0]) from None
        raise


def _write_with_hook(
    commit: Callable[[Any], None], stream: Any, before_commit: Callable[[], None]
) -> None:
    """Run `commit` over `stream` on a worker thread; when the stream is exhausted (all data
    files written, commit not yet made), run `before_commit` on this thread, then let the
    commit go ahead, or abort it if the hook raised.

    delta-rs pulls the stream from inside its async runtime, where a nested delta-rs call
    would panic; so the hook runs here, while the stream's last `next()` waits for it.
    """
    import pyarrow as pa

    reader = _to_reader(stream)
    exhausted = threading.Event()
    finished = threading.Event()
    proceed = threading.Event()
    stream_errors: list[BaseException] = []
    hook_errors: list[BaseException] = []
    write_errors: list[BaseException] = []

    def batches() -> Iterator[Any]:
        try:
            yield from reader
        except BaseException as exc:
            stream_errors.append(exc)
            raise
        exhausted.set()
        proceed.wait()
        if hook_errors:
            raise RuntimeError("aborted before commit")

    def work() -> None:
        try:
            commit(pa.RecordBatchReader.from_batches(reader.schema, batches()))
        except BaseException as exc:
            write_errors.append(exc)
        finally:
            finished.set()
            exhausted.set()

    worker = threading.Thread(target=work, name="brickyard-delta-write", daemon=True)
    worker.start()
    exhausted.wait()
    if not finished.is_set():
        try:
            before_commit()
        except BaseException as exc:
            hook_errors.append(exc)
        finally:
            proceed.set()
    worker.join()
    if hook_errors:
        raise _StreamFailed(hook_errors[0], from_hook=True)
    if stream_errors:
        raise _StreamFailed(stream_errors[0])
    if write_errors:
        error = write_errors[0]
        if isinstance(error, Exception):
            raise error
        raise RuntimeError(str(error)) from error


def _as_arrow(data: TableData) -> Any:
    import pyarrow as pa

    if hasattr(data, "__arrow_c_stream__") or isinstance(data, pa.Table | pa.RecordBatchReader):
        if _is_pandas(data):
            return pa.Table.from_pandas(data, preserve_index=False)
        return data
    if _is_pandas(data):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise LakeError(f"cannot write {type(data).__name__} to the lake; pass an Arrow table or pandas DataFrame")


def _is_pandas(data: Any) -> bool:
    return type(data).__module__.startswith("pandas")


def _holds(snapshot: DeltaTable, transaction: tuple[str, int]) -> bool:
    """Whether the read version records the application transaction (or a later one)."""
    seen = snapshot.transaction_version(transaction[0])
    return seen is not None and seen >= transaction[1]


def _replayable(data: TableData) -> bool:
    """Whether `data` can be written a second time (an in-memory table, not a stream)."""
    import pyarrow as pa

    return isinstance(data, pa.Table) or _is_pandas(data)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _commit_properties(
    metadata: Mapping[str, Any] | None,
    transaction: tuple[str, int] | None,
    retries: int = COMMIT_ATTEMPTS,
) -> Any:
    """The commit's metadata and application transaction. `retries`: how many times delta-rs
    may move the commit past concurrent commits, each checked for a conflict with it (the
    same app id, a schema change); 0 for a table's creation, whose conflicts it does not
    check."""
    from deltalake import CommitProperties, Transaction

    return CommitProperties(
        custom_metadata={key: str(value) for key, value in (metadata or {}).items()} or None,
        max_commit_retries=retries,
        app_transactions=[Transaction(app_id=transaction[0], version=transaction[1])]
        if transaction
        else None,
    )


def _write_error(table: TableName, operation: str, exc: BaseException) -> LakeError:
    text = _first_line(exc)
    hint = None
    if "schema" in text.lower():
        hint = "the data's columns differ from the table's; allow schema evolution or fix the data"
    return LakeError(f"{operation} into {table} failed: {text}", hint=hint)


def _user_metadata(text: Any) -> dict[str, Any]:
    """Commit metadata a Spark writer with Delta's own support stored as JSON in
    `userMetadata` (delta-rs writers put the keys in the commit info itself)."""
    import json

    if not isinstance(text, str) or not text.startswith("{"):
        return {}
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _add_new_columns(dt: DeltaTable, schema: pa.Schema) -> bool:
    """Add the columns of `schema` the table lacks (a metadata commit of its own: delta-rs
    keeps the table's schema when it commits an append of files written elsewhere);
    True when it did."""
    from deltalake import Field

    known = {field.name for field in dt.schema().fields}
    new = [Field.from_arrow(field) for field in schema if field.name not in known]
    if new:
        dt.alter.add_columns(new)
    return bool(new)


def _as_text(value: Any) -> str | None:
    """A partition value as Delta's text form (delta-rs hands typed values back)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)


def _as_datetime(value: AsOf) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise LakeError(
            f"{value!r} is not a timestamp", hint="use ISO 8601, e.g. 2026-11-23T10:00:00Z"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

