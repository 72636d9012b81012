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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from brickyard.errors import LakeError, TableNotFoundError
from brickyard.lake.location import LakeLocation
from brickyard.lake.names import RAW_ZONE, TableName

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads
    from deltalake import DeltaTable

WriteMode = Literal["append", "overwrite"]
TableData = Any  # a pyarrow Table / RecordBatchReader, a pandas DataFrame, any Arrow stream
AsOf = datetime | str


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
        return self.delta(name, version=version, as_of=as_of).to_pyarrow_dataset()

    def read(
        self,
        name: str | TableName,
        *,
        version: int | None = None,
        as_of: AsOf | None = None,
        columns: Sequence[str] | None = None,
    ) -> "pa.Table":
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
    ) -> int:
        """Append to or overwrite a table (created on first write) in one commit.

        `evolve_schema` adds new columns instead of failing. `transaction` is an
        `(app_id, version)` pair recorded in the commit: a later write with the same app id
        and a version not above it is skipped, which makes retried batches idempotent.
        Returns the table version after the write.

        Raises:
            LakeError: the data does not fit the table's schema, or the commit failed.
        """
        from deltalake import write_deltalake

        table = name if isinstance(name, TableName) else TableName.parse(name)
        uri = self.table_uri(table)
        if transaction is not None and self._already_committed(uri, transaction):
            return self.version(table)
        try:
            write_deltalake(
                uri,
                _as_arrow(data),
                mode=mode,
                partition_by=list(partition_by) if partition_by else None,
                schema_mode=("merge" if mode == "append" else "overwrite")
                if evolve_schema
                else None,
                storage_options=self.location.delta_options(),
                commit_properties=_commit_properties(metadata, transaction),
            )
        except Exception as exc:
            raise _write_error(table, mode, exc) from exc
        return self.version(table)

    def merge(
        self,
        name: str | TableName,
        data: TableData,
        *,
        keys: Sequence[str],
        partition_by: Sequence[str] | None = None,
        evolve_schema: bool = False,
        metadata: Mapping[str, Any] | None = None,
    ) -> int:
        """Upsert rows by key: matching rows are updated, the rest inserted; one commit.

        Creates the table from `data` when it does not exist yet. Returns the new version.
        """
        if not keys:
            raise LakeError("merge needs at least one key column")
        table = name if isinstance(name, TableName) else TableName.parse(name)
        if not self.exists(table):
            return self.write(
                table, data, mode="overwrite", partition_by=partition_by, metadata=metadata
            )
        source = _as_arrow(data)
        predicate = " AND ".join(f't."{key}" = s."{key}"' for key in keys)
        try:
            (
                self.delta(table)
                .merge(
                    source,
                    predicate=predicate,
                    source_alias="s",
                    target_alias="t",
                    merge_schema=evolve_schema,
                    commit_properties=_commit_properties(metadata, None),
                )
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )
        except Exception as exc:
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

    def _already_committed(self, uri: str, transaction: tuple[str, int]) -> bool:
        from deltalake import DeltaTable

        options = self.location.delta_options()
        if not DeltaTable.is_deltatable(uri, options):
            return False
        seen = DeltaTable(uri, storage_options=options).transaction_version(transaction[0])
        return seen is not None and seen >= transaction[1]


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


def _commit_properties(
    metadata: Mapping[str, Any] | None, transaction: tuple[str, int] | None
) -> Any:
    from deltalake import CommitProperties, Transaction

    return CommitProperties(
        custom_metadata={key: str(value) for key, value in (metadata or {}).items()} or None,
        max_commit_retries=10,
        app_transactions=[Transaction(app_id=transaction[0], version=transaction[1])]
        if transaction
        else None,
    )


def _write_error(table: TableName, operation: str, exc: Exception) -> LakeError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    hint = None
    if "schema" in text.lower():
        hint = "the data's columns differ from the table's; allow schema evolution or fix the data"
    return LakeError(f"{operation} into {table} failed: {text}", hint=hint)


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

