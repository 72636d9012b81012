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

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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


def artifact_root(ws: Workspace) -> str:
    """The workspace's artifact root as a URI (a folder in the workspace unless configured
    as a URL such as `abfs://...` or `s3://...`)."""
    location = ws.config.mlflow.artifact_location
    if "://" in location:
        return location.rstrip("/")
    return (ws.root / location).resolve().as_uri()


def connect(ws: Workspace) -> MlflowClient:
    """Point MLflow's fluent API at the workspace and return a client for it."""
    import mlflow

    uri = ws.mlflow_tracking_uri
    initialize_store(ws)
    mlflow.set_tracking_uri(uri)
    # The registry follows the tracking URI when none is set; setting it too would leave a
    # process-wide registry pointing at this workspace for code that later sets only tracking.
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

