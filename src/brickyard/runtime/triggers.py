"""Starting runs: from an HTTP call, on a cron schedule, when files arrive in the lake.

Every trigger starts a run the same way (`Launcher.launch`): a `queued` run record in the
state database, then `python -m brickyard.cli run NAME --run-id ID` as a detached process,
so a restart of the server does not kill it. The runner admits `max_active_runs` runs of a
pipeline at once; further runs wait in `queued`.

`TriggerLoop` drives schedules and file-arrival triggers. It is deterministic under test:
`tick(now)` does one round with the time it is given; `start()` runs rounds in a thread.

>>> import tempfile
>>> from datetime import datetime, UTC
>>> from brickyard import Workspace
>>> ws = Workspace.init(tempfile.mkdtemp())
>>> _ = (ws.root / "pipelines" / "hourly.yaml").write_text(
...     'schedule: "0 * * * *"\\ntasks: [{name: t, kind: sql, sql: "SELECT 1"}]\\n')
>>> started = []
>>> loop = TriggerLoop(ws, spawn=lambda ws, run: started.append(run.trigger))
>>> [t.describe() for t in loop.load(datetime(2026, 1, 1, 9, 30, tzinfo=UTC))]
['hourly: schedule "0 * * * *" (UTC), next at 2026-01-01 10:00']
>>> loop.tick(datetime(2026, 1, 1, 10, 0, 5, tzinfo=UTC))[0].trigger, started
('schedule', ['schedule'])

Schedules are evaluated in UTC. A tick that passed while no server ran is not made up.
A file-arrival trigger ignores the files already there when it first starts watching a
path (it records them); a file that is new or changed (size, modification time or etag)
joins a batch, and once no file of the batch has changed for `debounce_seconds` the
batch starts one run. The files seen are kept in the state database, so a restart does
not trigger again for them; file names starting with `.` or `_` are ignored.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from brickyard.config.yaml_lines import line_of
from brickyard.errors import BrickyardError, ConfigError
from brickyard.runtime.db import METADATA
from brickyard.runtime.logs import logs_folder
from brickyard.runtime.records import RunRecord, RunStatus, to_db, utcnow
from brickyard.runtime.state import DuplicateRunError, StateStore
from brickyard.telemetry import tracing

if TYPE_CHECKING:
    from brickyard.core.files import PipelineFile
    from brickyard.core.pipeline import FileArrival
    from brickyard.workspace import Workspace

log = logging.getLogger("brickyard.triggers")

SCHEDULE = "schedule"
FILE_ARRIVAL = "file_arrival"
HTTP = "http"
MAX_FILES_IN_PARAMS = 100
GLOB_CHARS = "*?["

TRIGGER_WATCHES = sa.Table(
    "trigger_watches",
    METADATA,
    sa.Column("pipeline", sa.String(200), primary_key=True),
    sa.Column("path", sa.String(1024), nullable=False),
    sa.Column("started_at", sa.DateTime(), nullable=False),
)

TRIGGER_FILES = sa.Table(
    "trigger_files",
    METADATA,
    sa.Column("pipeline", sa.String(200), primary_key=True),
    sa.Column("path", sa.String(1024), primary_key=True),
    sa.Column("signature", sa.String(200), nullable=False),
    sa.Column("seen_at", sa.DateTime(), nullable=False),
)

Spawn = Callable[["Workspace", RunRecord], object]
Clock = Callable[[], datetime]


class LaunchError(BrickyardError):
    """The process that executes a run could not be started."""

    transient = True


# -- starting a run ------------------------------------------------------------------------


def run_command(workspace: Workspace, run: RunRecord) -> list[str]:
    """The command line that executes queued run `run`."""
    return [
        sys.executable, "-m", "brickyard.cli", "run", run.pipeline,
        "--run-id", run.id, "--workspace", str(workspace.root),
    ]


def run_log_path(workspace: Workspace, run_id: str) -> Path:
    """Where the output of a run's process goes, beside its task logs (`brickyard logs`
    reads only the `*.log` files there)."""
    return logs_folder(workspace.root, run_id) / "process.out"


def spawn_run(workspace: Workspace, run: RunRecord) -> subprocess.Popen[bytes]:
    """Start the process that executes `run`, detached from this one (its own session, so a
    Ctrl-C or restart of the server leaves it running). A thread reaps it; if it exits
    without having claimed the run, the run is failed with the exit code and log path.

    Raises:
        LaunchError: the process could not be started.
    """
    out_path = run_log_path(workspace, run.id)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        with out_path.open("ab") as out:
            process = subprocess.Popen(
                run_command(workspace, run),
                cwd=workspace.root,
                env=_run_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
    except OSError as exc:
        raise LaunchError(f"could not start the process for run {run.id}: {exc}") from exc
    store = StateStore(workspace.state_url)
    threading.Thread(
        target=_reap, args=(process, store, run.id, out_path), name=f"reap-{run.id}", daemon=True
    ).start()
    return process


def _run_env() -> dict[str, str]:
    """The run process's environment: this one's, with `TRACEPARENT` set to the current span
    (the caller's trace continues in the run) or left out (no stale parent passed on)."""
    env = {name: value for name, value in os.environ.items() if name != tracing.TRACEPARENT_ENV}
    return {**env, **tracing.child_env()}


def _reap(process: subprocess.Popen[bytes], store: StateStore, run_id: str, out_path: Path) -> None:
    code = process.wait()
    try:
        run = store.get_run(run_id)
        if run.status == RunStatus.QUEUED and run.pid is None:
            store.finish_run(
                run_id, RunStatus.FAILED,
                error=f"the run's process exited with code {code} before starting; see {out_path}",
            )
    except Exception:  # a reaper must never raise into the void
        log.exception("could not check run %s after its process exited", run_id)


@dataclass(frozen=True)
class Launch:
    """The outcome of `Launcher.launch`: the run, and whether this call created it."""

    run: RunRecord
    created: bool


class Launcher:
    """Creates queued runs and starts their processes; one per workspace, shared by the
    HTTP routes and the trigger loop."""

    def __init__(self, workspace: Workspace, *, spawn: Spawn = spawn_run, store: StateStore | None = None) -> None:
        self.workspace = workspace
        self.store = store or StateStore(workspace.state_url)
        self.spawn = spawn
        self._lock = threading.Lock()

    def launch(
        self,
        pipeline: str,
        trigger: str,
        *,
        idempotency_key: str | None = None,
        params: dict[str, Any] | None = None,
        full_refresh: bool = False,
    ) -> Launch:
        """Queue a run of `pipeline` and start its process. With an idempotency key that the
        pipeline has seen before, return that run instead (nothing new is started).

        Raises:
            LaunchError: the process could not be started (the run is marked failed).
        """
        with self._lock:
            if idempotency_key is not None:
                existing = self.store.find_run_by_idempotency_key(pipeline, idempotency_key)
                if existing is not None:
                    return Launch(existing, created=False)
            try:
                run = self.store.create_run(
                    pipeline, trigger, idempotency_key=idempotency_key,
                    params=params, full_refresh=full_refresh,
                )
            except DuplicateRunError as exc:  # another server process won the race
                return Launch(exc.existing, created=False)
        try:
            self.spawn(self.workspace, run)
        except Exception as exc:
            self.store.finish_run(run.id, RunStatus.FAILED, error=f"could not start the run: {exc}")
            if isinstance(exc, BrickyardError):
                raise
            raise LaunchError(f"could not start run {run.id}: {exc}") from exc
        log.info("started run %s of %s (%s)", run.id, pipeline, trigger)
        return Launch(run, created=True)


# -- trigger definitions -------------------------------------------------------------------


def check_schedule(pipeline: PipelineFile) -> str | None:
    """The cron expression of a pipeline, checked.

    Raises:
        ConfigError: the expression is not valid cron (names the file and line).
    """
    from croniter import croniter

    expression = pipeline.spec.schedule
    if expression is None:
        return None
    if not croniter.is_valid(expression):
        raise ConfigError(
            f"invalid cron expression {expression!r}",
            file=str(pipeline.path),
            line=line_of(pipeline.lines, ("schedule",)),
            field="schedule",
            hint="five fields: minute hour day-of-month month day-of-week (UTC), e.g. \"0 6 * * *\"",
        )
    return expression


def check_file_trigger(pipeline: PipelineFile) -> FileArrival | None:
    """The file-arrival trigger of a pipeline, checked.

    Raises:
        ConfigError: the path is absolute, a URL, or leaves the lake.
    """
    trigger = pipeline.spec.trigger
    if trigger is None:
        return None
    path = trigger.file_arrival
    if "://" in path or path.startswith("/") or ".." in PurePosixPath(path).parts or not path.strip("/"):
        raise ConfigError(
            f"file_arrival path {path!r} must be a folder or glob inside the lake",
            file=str(pipeline.path),
            line=line_of(pipeline.lines, ("trigger", "file_arrival")),
            field="trigger.file_arrival",
            hint="write it relative to the lake root, e.g. raw/taxi/",
        )
    return trigger


def check_triggers(pipeline: PipelineFile) -> list[ConfigError]:
    """The trigger problems of a pipeline (for `brickyard validate`), each a ConfigError
    with `.file`, `.line` and `.field`; `str()` gives the whole located message."""
    problems = []
    for check in (check_schedule, check_file_trigger):
        try:
            check(pipeline)
        except ConfigError as exc:
            problems.append(exc)
    return problems


@dataclass
class ScheduleTrigger:
    """A pipeline's cron schedule and when it fires next."""

    pipeline: str
    expression: str
    next_at: datetime
    tz: tzinfo = UTC

    def describe(self) -> str:
        zone = self.next_at.tzname() or "UTC"
        return f'{self.pipeline}: schedule "{self.expression}" ({zone}), next at {self.next_at:%Y-%m-%d %H:%M}'

    def due(self, now: datetime) -> datetime | None:
        """The latest cron tick at or before `now` if one is due (then advance past it)."""
        from croniter import croniter

        if now < self.next_at:
            return None
        boundary = self.next_at
        ticks = croniter(self.expression, boundary)
        while (following := ticks.get_next(datetime)) <= now:
            boundary = following
        self.next_at = following
        return boundary


@dataclass
class FileTrigger:
    """A pipeline's watched lake path and the batch of new files waiting to settle."""

    pipeline: str
    spec: FileArrival
    next_poll: datetime
    known: dict[str, str] | None = None
    pending: dict[str, str] = field(default_factory=dict)
    changed_at: datetime | None = None

    @property
    def path(self) -> str:
        return self.spec.file_arrival

    def describe(self) -> str:
        return (
            f"{self.pipeline}: new files in {self.path} (every {self.spec.poll_seconds:g} s, "
            f"settled for {self.spec.debounce_seconds:g} s)"
        )


# -- the loop ------------------------------------------------------------------------------


class TriggerLoop:
    """Fires schedules and file-arrival triggers of a workspace's pipelines.

    `load` reads the pipelines (and raises on a bad one); `tick(now)` does one round;
    `start` runs rounds every `interval` seconds in a daemon thread until `stop`. Changed
    pipeline files are picked up on the next tick (a now-broken file is logged and its old
    triggers kept).
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        clock: Clock = utcnow,
        spawn: Spawn = spawn_run,
        launcher: Launcher | None = None,
        tz: tzinfo = UTC,
    ) -> None:
        self.workspace = workspace
        self.clock = clock
        self.launcher = launcher or Launcher(workspace, spawn=spawn)
        self.tz = tz
        self.schedules: dict[str, ScheduleTrigger] = {}
        self.files: dict[str, FileTrigger] = {}
        self._fingerprint: dict[str, tuple[int, int]] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def store(self) -> StateStore:
        return self.launcher.store

    @property
    def running(self) -> bool:
        """Whether the background thread runs."""
        return self._thread is not None and self._thread.is_alive()

    # -- definitions

    def load(self, now: datetime | None = None) -> list[ScheduleTrigger | FileTrigger]:
        """Read every pipeline's schedule and file trigger; returns the triggers.

        Raises:
            ConfigError: a pipeline file is invalid (e.g. a bad cron expression).
        """
        now = now or self.clock()
        fingerprint = self._pipeline_fingerprint()
        for name in fingerprint:
            self._define(self.workspace.pipeline(name), now)
        for name in set(self.schedules) - set(fingerprint):
            del self.schedules[name]
        for name in set(self.files) - set(fingerprint):
            del self.files[name]
        self._fingerprint = fingerprint
        return self.triggers()

    def triggers(self) -> list[ScheduleTrigger | FileTrigger]:
        """The triggers in force, by pipeline name."""
        found: list[ScheduleTrigger | FileTrigger] = [*self.schedules.values(), *self.files.values()]
        return sorted(found, key=lambda t: (t.pipeline, isinstance(t, FileTrigger)))

    def _define(self, pipeline: PipelineFile, now: datetime) -> None:
        name = pipeline.spec.name
        expression = check_schedule(pipeline)
        file_spec = check_file_trigger(pipeline)
        old = self.schedules.get(name)
        if expression is None:
            self.schedules.pop(name, None)
        elif old is None or old.expression != expression:
            self.schedules[name] = ScheduleTrigger(name, expression, self._next_tick(expression, now), self.tz)
        watching = self.files.get(name)
        if file_spec is None:
            self.files.pop(name, None)
        elif watching is None or watching.spec != file_spec:
            self.files[name] = FileTrigger(name, file_spec, next_poll=now)

    def _next_tick(self, expression: str, now: datetime) -> datetime:
        from croniter import croniter

        return croniter(expression, now.astimezone(self.tz)).get_next(datetime)

    def _pipeline_fingerprint(self) -> dict[str, tuple[int, int]]:
        folder = self.workspace.root / "pipelines"
        found = {}
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            stat = path.stat()
            found[path.stem] = (stat.st_mtime_ns, stat.st_size)
        return found

    def _reload(self, now: datetime) -> None:
        fingerprint = self._pipeline_fingerprint()
        if fingerprint == self._fingerprint:
            return
        previous = self._fingerprint or {}
        for name, stamp in fingerprint.items():
            if previous.get(name) == stamp:
                continue
            try:
                self._define(self.workspace.pipeline(name), now)
                log.info("pipeline %s changed; triggers reloaded", name)
            except BrickyardError as exc:
                log.error("pipeline %s is invalid, keeping its previous triggers: %s", name, exc)
        for name in set(previous) - set(fingerprint):
            self.schedules.pop(name, None)
            self.files.pop(name, None)
        self._fingerprint = fingerprint

    # -- rounds

    def tick(self, now: datetime | None = None) -> list[RunRecord]:
        """One round at time `now`: fire due schedules, poll due file triggers. Returns the
        runs started. A failing trigger is logged and does not stop the others."""
        now = now or self.clock()
        if self._fingerprint is None:
            self.load(now)
        else:
            self._reload(now)
        started: list[RunRecord] = []
        for schedule in list(self.schedules.values()):
            try:
                run = self._fire_schedule(schedule, now)
            except Exception:
                log.exception("schedule of %s failed", schedule.pipeline)
                continue
            if run is not None:
                started.append(run)
        for watch in list(self.files.values()):
            if now < watch.next_poll:
                continue
            try:
                run = self._poll(watch, now)
            except Exception:
                watch.next_poll = now + timedelta(seconds=watch.spec.poll_seconds)
                log.exception("file-arrival trigger of %s failed (retried in %g s)",
                              watch.pipeline, watch.spec.poll_seconds)
                continue
            if run is not None:
                started.append(run)
        return started

    def _fire_schedule(self, schedule: ScheduleTrigger, now: datetime) -> RunRecord | None:
        boundary = schedule.due(now.astimezone(self.tz))
        if boundary is None:
            return None
        stamp = boundary.astimezone(UTC).isoformat()
        launch = self.launcher.launch(
            schedule.pipeline, SCHEDULE, idempotency_key=f"schedule:{stamp}",
            params={"scheduled_for": stamp},
        )
        return launch.run if launch.created else None

    def _poll(self, watch: FileTrigger, now: datetime) -> RunRecord | None:
        listing = list_files(self.workspace, watch.path)
        if watch.known is None and not self._resume(watch, listing, now):
            watch.next_poll = now + timedelta(seconds=watch.spec.poll_seconds)
            return None
        known = watch.known or {}
        gone = [path for path in known if path not in listing]
        if gone:
            self._forget(watch.pipeline, gone)
            for path in gone:
                del known[path]
        changed = {path: sig for path, sig in listing.items() if known.get(path) != sig}
        if changed != watch.pending:
            watch.pending = changed
            watch.changed_at = now
        run = None
        settle = timedelta(seconds=watch.spec.debounce_seconds)
        if watch.pending and watch.changed_at is not None and now - watch.changed_at >= settle:
            run = self._fire_files(watch, now)
        wait = watch.spec.poll_seconds
        if watch.pending:
            wait = min(wait, max(watch.spec.debounce_seconds, 0.01))
        watch.next_poll = now + timedelta(seconds=wait)
        return run

    def _fire_files(self, watch: FileTrigger, now: datetime) -> RunRecord | None:
        batch = dict(sorted(watch.pending.items()))
        digest = hashlib.sha256(json.dumps(batch, sort_keys=True).encode()).hexdigest()[:32]
        files = list(batch)
        launch = self.launcher.launch(
            watch.pipeline, FILE_ARRIVAL, idempotency_key=f"file_arrival:{digest}",
            params={"path": watch.path, "file_count": len(files), "files": files[:MAX_FILES_IN_PARAMS]},
        )
        self._remember(watch.pipeline, batch, now)
        assert watch.known is not None
        watch.known.update(batch)
        watch.pending = {}
        watch.changed_at = None
        if launch.created:
            log.info("%d new file(s) in %s: run %s of %s", len(files), watch.path, launch.run.id, watch.pipeline)
            return launch.run
        return None

    # -- the files seen, in the state database

    def _resume(self, watch: FileTrigger, listing: dict[str, str], now: datetime) -> bool:
        """Load what was seen before; on the first watch of a path, record the files
        already there as seen. Returns False after such a baseline."""
        engine = self.store.engine
        with engine.begin() as conn:
            row = conn.execute(
                sa.select(TRIGGER_WATCHES).where(TRIGGER_WATCHES.c.pipeline == watch.pipeline)
            ).first()
            if row is not None and row.path == watch.path:
                query = sa.select(TRIGGER_FILES.c.path, TRIGGER_FILES.c.signature).where(
                    TRIGGER_FILES.c.pipeline == watch.pipeline
                )
                watch.known = {r.path: r.signature for r in conn.execute(query)}
                return True
            conn.execute(TRIGGER_WATCHES.delete().where(TRIGGER_WATCHES.c.pipeline == watch.pipeline))
            conn.execute(TRIGGER_FILES.delete().where(TRIGGER_FILES.c.pipeline == watch.pipeline))
            conn.execute(TRIGGER_WATCHES.insert().values(pipeline=watch.pipeline, path=watch.path, started_at=to_db(now)))
            _insert_files(conn, watch.pipeline, listing, now)
        watch.known = dict(listing)
        log.info("watching %s for %s: %d file(s) already there are not new", watch.path, watch.pipeline, len(listing))
        return False

    def _remember(self, pipeline: str, files: dict[str, str], now: datetime) -> None:
        with self.store.engine.begin() as conn:
            _delete_files(conn, pipeline, files)
            _insert_files(conn, pipeline, files, now)

    def _forget(self, pipeline: str, paths: Iterable[str]) -> None:
        with self.store.engine.begin() as conn:
            _delete_files(conn, pipeline, paths)

    # -- the thread

    def start(self, interval: float = 1.0) -> threading.Thread:
        """Run `tick` every `interval` seconds in a daemon thread (until `stop`)."""
        if self._thread is not None and self._thread.is_alive():
            return self._thread
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(interval,), name="brickyard-triggers", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after its current round."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            try:
                self.tick(self.clock())
            except Exception:
                log.exception("trigger round failed")
            self._stop.wait(interval)


def _insert_files(conn: sa.Connection, pipeline: str, files: dict[str, str], now: datetime) -> None:
    rows = [{"pipeline": pipeline, "path": p, "signature": s, "seen_at": to_db(now)} for p, s in files.items()]
    for start in range(0, len(rows), 500):
        conn.execute(TRIGGER_FILES.insert(), rows[start : start + 500])


def _delete_files(conn: sa.Connection, pipeline: str, paths: Iterable[str]) -> None:
    names = list(paths)
    for start in range(0, len(names), 500):
        conn.execute(
            TRIGGER_FILES.delete().where(
                TRIGGER_FILES.c.pipeline == pipeline, TRIGGER_FILES.c.path.in_(names[start : start + 500])
            )
        )


# -- listing the lake ----------------------------------------------------------------------


def list_files(workspace: Workspace, path: str) -> dict[str, str]:
    """The files under a lake-relative folder or glob, as {lake-relative path: signature}.
    The signature changes when a file's size, modification time or etag does. Works for
    local and abfs lakes through the lake's fsspec filesystem. A missing folder is empty."""
    location = workspace.lake.location
    fs = location.filesystem
    pattern = path.strip("/")
    cut = min((pattern.find(c) for c in GLOB_CHARS if c in pattern), default=-1)
    folder = pattern if cut < 0 else pattern[:cut].rsplit("/", 1)[0] if "/" in pattern[:cut] else ""
    root = location.fs_path(folder)
    fs.invalidate_cache(root)
    try:
        found = fs.find(root, detail=True)
    except FileNotFoundError:
        return {}
    files: dict[str, str] = {}
    prefix = root.rstrip("/") + "/"
    for full, info in found.items():
        if info.get("type", "file") != "file" or not full.startswith(prefix):
            continue
        inner = full[len(prefix) :]
        if any(part.startswith((".", "_")) for part in inner.split("/")):
            continue
        relative = f"{folder}/{inner}" if folder else inner
        if cut >= 0 and not fnmatch.fnmatchcase(relative, pattern):
            continue
        files[relative] = _signature(info)
    return files


def _signature(info: dict[str, Any]) -> str:
    stamp = info.get("etag") or info.get("mtime") or info.get("last_modified") or info.get("LastModified") or ""
    if isinstance(stamp, datetime):
        stamp = stamp.isoformat()
    return f"{info.get('size')}:{stamp}"[:200]
