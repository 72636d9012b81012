"""The ingest checkpoint: which raw files a task has loaded, kept inside the Delta log.

Every ingest commit carries custom metadata `brickyard.ingest` = JSON
`{"task", "batch", "full_refresh", "run_id", "files": [{"path", "size", "modified", "etag"}]}`
and a Delta application transaction `(brickyard.ingest:<pipeline>.<task>, batch)`. The set
of loaded files is read back from the target's history, newest first, stopping at the
task's last full refresh (or at any other overwrite, which removed the earlier rows). So the
checkpoint can never disagree with the data: both are in the same atomic commit.

The quarantine commit of a batch carries the same metadata; when it exists and the target
commit does not (a crash between the two, or another run between its two commits), the
batch is redone with the recorded files. A task's full refresh is done for a run when the
oldest record of its checkpoint is a full-refresh record of that run (`refreshed_in_run`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from brickyard.core.sources import SourceFile
from brickyard.tasks.refresh import replaces

if TYPE_CHECKING:
    from brickyard.lake import Lake

INGEST_KEY = "brickyard.ingest"
EXPECT_KEY = "brickyard.expect"


@dataclass(frozen=True)
class BatchRecord:
    """What an ingest commit records about its batch."""

    task: str
    batch: int
    full_refresh: bool
    run_id: str
    files: tuple[SourceFile, ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "task": self.task,
                "batch": self.batch,
                "full_refresh": self.full_refresh,
                "run_id": self.run_id,
                "files": [f.as_dict() for f in self.files],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> BatchRecord | None:
        try:
            data = json.loads(text)
            return cls(
                task=str(data["task"]),
                batch=int(data["batch"]),
                full_refresh=bool(data.get("full_refresh", False)),
                run_id=str(data.get("run_id", "")),
                files=tuple(
                    SourceFile(
                        str(f["path"]), int(f["size"]), str(f.get("modified", "")), f.get("etag")
                    )
                    for f in data["files"]
                ),
            )
        except (ValueError, KeyError, TypeError):
            return None


def app_id(pipeline: str, task: str) -> str:
    """The Delta application id of an ingest task."""
    return f"brickyard.ingest:{pipeline}.{task}"


def list_files(lake: Lake, pattern: str) -> list[SourceFile]:
    """Files under the lake matching a lake-relative path or glob, sorted by path.

    Names starting with `_` or `.` (markers such as `_SUCCESS`) are skipped, as Spark does.
    """
    location = lake.location
    fs = location.filesystem
    root = location.fs_path().rstrip("/") + "/"
    pattern = pattern.strip().lstrip("/")
    full = location.fs_path(pattern)
    if any(char in pattern for char in "*?["):
        found: dict[str, Any] = fs.glob(full, detail=True)
    elif fs.isdir(full):
        found = fs.find(full, detail=True)
    elif fs.exists(full):
        found = {full: fs.info(full)}
    else:
        found = {}
    files = []
    for path, info in found.items():
        if info.get("type", "file") != "file":
            continue
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if name.startswith(("_", ".")):
            continue
        relative = path[len(root) :] if path.startswith(root) else path
        modified = info.get("mtime") or info.get("last_modified") or info.get("LastModified") or ""
        etag = info.get("etag") or info.get("ETag")
        files.append(
            SourceFile(
                relative,
                int(info.get("size") or 0),
                _stamp(modified),
                str(etag).strip('"') if etag else None,
            )
        )
    return sorted(files, key=lambda f: f.path)


def _stamp(value: Any) -> str:
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    if isinstance(value, float):
        return repr(value)
    return str(value)


def records(history: Iterable[dict[str, Any]], task: str) -> list[BatchRecord]:
    """The task's batch records in a table's history (newest first)."""
    found = []
    for entry in history:
        text = entry.get(INGEST_KEY)
        record = BatchRecord.from_json(text) if isinstance(text, str) else None
        if record is not None and record.task == task:
            found.append(record)
    return found


def checkpoint_records(lake: Lake, target: str, task: str) -> list[BatchRecord]:
    """The task's batch records whose rows the target holds, newest first: back to the
    task's last full refresh, or to an overwrite by another writer (which removed the
    task's earlier rows)."""
    if not lake.exists(target):
        return []
    found: list[BatchRecord] = []
    for entry in lake.history(target):
        text = entry.get(INGEST_KEY)
        record = BatchRecord.from_json(text) if isinstance(text, str) else None
        if record is not None and record.task == task:
            found.append(record)
            if record.full_refresh:
                break
            continue
        if replaces(entry) and EXPECT_KEY not in entry:
            break
    return found


def loaded_files(lake: Lake, target: str, task: str) -> dict[str, SourceFile]:
    """The files whose rows the target holds for this task (see `checkpoint_records`)."""
    loaded: dict[str, SourceFile] = {}
    for record in checkpoint_records(lake, target, task):
        for file in record.files:
            loaded.setdefault(file.path, file)
    return loaded


def refreshed_in_run(lake: Lake, target: str, task: str, run_id: str) -> bool:
    """Whether the task's full refresh of run `run_id` is in the target already (a retried
    attempt, or a later step of the same attempt, then loads only new files)."""
    records = checkpoint_records(lake, target, task)
    return bool(records) and records[-1].full_refresh and records[-1].run_id == run_id


def recorded_batch(lake: Lake, table: str, task: str, batch: int) -> BatchRecord | None:
    """The record of batch number `batch` in a table's history (None if absent)."""
    if not lake.exists(table):
        return None
    for record in records(lake.history(table), task):
        if record.batch == batch:
            return record
    return None
