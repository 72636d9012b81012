"""MLflow, pointed at a workspace: its SQLite tracking store, its artifact folder.

MLflow keeps the tracking URI in process-wide state that its logging functions read, so
`connect` sets it (tracking and registry) every time brickyard is about to use MLflow.
MLflow creates its database schema (and runs its migrations) on first use without a lock,
so `connect` does that first use itself, once per process, under a file lock in the
workspace's `.brickyard/` folder: processes that start together on a fresh workspace wait
for the first one instead of failing with `table ... already exists`.

>>> import tempfile
>>> from brickyard import Workspace
>>> ws = Workspace.init(tempfile.mkdtemp())
>>> artifact_root(ws).endswith("/mlartifacts")
True
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from brickyard.workspace import Workspace

TAG_PREFIX = "brickyard."
TAG_RUN_ID = "brickyard.run_id"
TAG_PIPELINE = "brickyard.pipeline"
TAG_TASK = "brickyard.task"
TAG_KIND = "brickyard.kind"
TAG_INPUT = "brickyard.input."
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
INIT_LOCK = Path(".brickyard") / "mlflow-init.lock"

_READY: set[str] = set()
_READY_LOCK = threading.Lock()
_log = logging.getLogger(__name__)


def artifact_root(ws: Workspace) -> str:
    """The workspace's artifact root as a URI (a folder in the workspace unless configured
    as a URL such as `abfs://...` or `s3://...`)."""
    location = ws.config.mlflow.artifact_location
    if "://" in location:
        return location.rstrip("/")
    return (ws.root / location).resolve().as_uri()


@dataclass(frozen=True)
class Relocation:
    """Artifact locations that pointed under another workspace root, now under this one."""

    old_root: str
    new_root: str
    values: int

    def __str__(self) -> str:
        return f"MLflow artifact locations moved from {self.old_root} to {self.new_root} ({self.values} records)"


def relocate_artifacts(ws: Workspace) -> list[Relocation]:
    """Point the artifact locations the tracking store holds under an earlier root of this
    workspace at its current root, so that a workspace copied or moved keeps its models.

    MLflow records absolute artifact URIs (`file:///old/ws/mlartifacts/...`) in its
    database: experiments, runs, logged models, model versions. When the store is a SQLite
    file inside the workspace and the artifacts a folder inside it (the defaults), both
    moved with the folder, and every `file:` URI (and plain path) under the old root is
    rewritten to the same place under the new one, in one transaction. Other stores are left alone. The old root
    is told by the experiments brickyard creates (`<root>/<artifact folder>/<experiment>`).

    Returns what was moved (empty when nothing was stale).
    """
    database = _workspace_sqlite(ws, ws.mlflow_tracking_uri)
    folder = ws.config.mlflow.artifact_location
    if database is None or "://" in folder or not database.is_file():
        return []
    root = ws.root.resolve()
    artifacts = (root / folder).resolve()
    if not artifacts.is_relative_to(root):
        return []
    new_root = root.as_uri()
    suffix = artifacts.as_uri()[len(new_root):]  # "/mlartifacts", URI-quoted
    with closing(sqlite3.connect(database, timeout=60, isolation_level=None)) as con:
        if not _stale_roots(con, suffix, new_root):
            return []
        con.execute("BEGIN IMMEDIATE")  # another process may be relocating too
        try:
            moved = [
                Relocation(old, new_root, _rewrite_prefix(con, old + "/", new_root + "/")
                           + _rewrite_prefix(con, _path_of(old) + "/", str(root) + "/"))
                for old in _stale_roots(con, suffix, new_root)
            ]
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    for relocation in moved:
        _log.info("%s", relocation)
    return moved


def _workspace_sqlite(ws: Workspace, uri: str) -> Path | None:
    """The SQLite file of a tracking URI when it lies inside the workspace, else None."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    path = Path(uri[len(prefix):].split("?", 1)[0]).resolve()
    return path if path.is_relative_to(ws.root.resolve()) else None


def _path_of(uri: str) -> str:
    """The local path of a `file:` URI."""
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(uri).path)


def _stale_roots(con: sqlite3.Connection, suffix: str, current: str) -> list[str]:
    """Earlier workspace roots (as file URIs) that experiments' artifact locations name."""
    try:
        rows = con.execute("SELECT name, artifact_location FROM experiments").fetchall()
    except sqlite3.OperationalError:  # not an MLflow database yet
        return []
    roots = set()
    for name, location in rows:
        tail = f"{suffix}/{name}"
        if isinstance(location, str) and location.startswith("file://") and location.endswith(tail):
            root = location[: -len(tail)]
            if root != current:
                roots.add(root)
    return sorted(roots)


def _rewrite_prefix(con: sqlite3.Connection, old: str, new: str) -> int:
    """Replace the prefix `old` by `new` in every text value of every table; the count."""
    changed = 0
    tables = [row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        for column in con.execute(f'PRAGMA table_info("{table}")').fetchall():
            name, kind = column[1], str(column[2]).upper()
            if not any(text in kind for text in ("CHAR", "TEXT", "CLOB")):
                continue
            cursor = con.execute(
                f'UPDATE "{table}" SET "{name}" = ? || substr("{name}", ?) WHERE substr("{name}", 1, ?) = ?',
                (new, len(old) + 1, len(old), old),
            )
            changed += cursor.rowcount
    return changed


def connect(ws: Workspace) -> MlflowClient:
    """Point MLflow's fluent API at the workspace and return a client for it (after
    `relocate_artifacts`, so a moved workspace finds its artifacts)."""
    import mlflow

    uri = ws.mlflow_tracking_uri
    initialize_store(ws)
    relocate_artifacts(ws)
    mlflow.set_tracking_uri(uri)
    # The registry follows the tracking URI when none is set; setting it too would leave a
    # process-wide registry pointing at this workspace for code that later sets only tracking.
    return client_for(uri)


def client_for(uri: str) -> MlflowClient:
    """An MLflow client of tracking server and registry `uri`, leaving MLflow's
    process-wide state alone (what a serving process, which never trains, uses)."""
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def initialize_store(ws: Workspace) -> None:
    """Create the workspace's MLflow tables (and its default experiment) if missing, once
    per process, holding the workspace's MLflow init lock meanwhile. Tracking URIs that are
    not databases (a folder, an HTTP server) are left to MLflow."""
    uri = ws.mlflow_tracking_uri
    if uri.split(":", 1)[0].split("+", 1)[0] not in DATABASE_SCHEMES:
        return
    with _READY_LOCK:
        if uri in _READY:
            return
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        with _exclusive(ws.root / INIT_LOCK):
            SqlAlchemyStore(uri, artifact_root(ws))
        _READY.add(uri)


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) across processes. On Windows,
    which has no `flock`, and where the file cannot be made (a read-only workspace, whose
    MLflow database is then only read), nothing is locked."""
    if os.name == "nt":
        yield
        return
    import fcntl

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")  # noqa: SIM115 - closed below, after the lock is released
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def experiment_id(client: MlflowClient, ws: Workspace, name: str) -> str:
    """The id of experiment `name`, created with its artifacts under the workspace's
    artifact root when it does not exist yet."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(client.create_experiment(name, artifact_location=f"{artifact_root(ws)}/{name}"))
    except MlflowException:  # created meanwhile by another task
        again = client.get_experiment_by_name(name)
        if again is None:
            raise
        return str(again.experiment_id)


def ui_command(ws: Workspace, port: int = 5000, host: str = "127.0.0.1") -> list[str]:
    """The `mlflow ui` command line that shows this workspace's runs and models."""
    return [
        sys.executable, "-m", "mlflow", "ui",
        "--backend-store-uri", ws.mlflow_tracking_uri,
        "--default-artifact-root", artifact_root(ws),
        "--host", host,
        "--port", str(port),
    ]

