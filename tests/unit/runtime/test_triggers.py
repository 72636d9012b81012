"""Schedules and file-arrival triggers, driven by `TriggerLoop.tick` with a fake clock."""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from brickyard import Workspace
from brickyard.errors import ConfigError
from brickyard.runtime.records import RunRecord
from brickyard.runtime.state import StateStore
from brickyard.runtime.triggers import (
    FILE_ARRIVAL,
    SCHEDULE,
    Launcher,
    LaunchError,
    TriggerLoop,
    check_triggers,
    list_files,
    spawn_run,
)

T0 = datetime(2026, 3, 1, 10, 2, tzinfo=UTC)
TASKS = "tasks:\n  - {name: t, kind: python, function: 'mymodule:fn'}\n"


def at(seconds: float = 0, minutes: float = 0) -> datetime:
    return T0 + timedelta(seconds=seconds, minutes=minutes)


class Spawned(list[RunRecord]):
    """A fake spawn: remembers the runs it was asked to start."""

    def __call__(self, _ws: Workspace, run: RunRecord) -> None:
        self.append(run)


def pipeline(ws: Workspace, name: str, header: str) -> Path:
    path = ws.root / "pipelines" / f"{name}.yaml"
    path.write_text(header + TASKS)
    return path


def land(ws: Workspace, relative: str, text: str = "a,b\n1,2\n") -> Path:
    path = ws.root / "lake" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def spawned() -> Spawned:
    return Spawned()


# -- schedules -----------------------------------------------------------------------------


def test_cron_fires_once_per_tick_boundary(workspace: Workspace, spawned: Spawned) -> None:
    pipeline(workspace, "every5", 'schedule: "*/5 * * * *"\n')
    loop = TriggerLoop(workspace, spawn=spawned)
    (trigger,) = loop.load(at())
    assert trigger.next_at == datetime(2026, 3, 1, 10, 5, tzinfo=UTC)
    fired = [len(loop.tick(moment)) for moment in (at(30), at(minutes=2, seconds=59), at(minutes=3), at(minutes=3, seconds=1),
                                                   at(minutes=7), at(minutes=8, seconds=0.5), at(minutes=9))]
    assert fired == [0, 0, 1, 0, 0, 1, 0]
    assert [r.trigger for r in spawned] == [SCHEDULE, SCHEDULE]
    assert [r.params["scheduled_for"] for r in spawned] == ["2026-03-01T10:05:00+00:00", "2026-03-01T10:10:00+00:00"]
    runs = StateStore(workspace.state_url).list_runs("every5")
    assert {r.status for r in runs} == {"queued"} and len(runs) == 2


def test_missed_ticks_coalesce_into_one_run(workspace: Workspace, spawned: Spawned) -> None:
    pipeline(workspace, "every5", 'schedule: "*/5 * * * *"\n')
    loop = TriggerLoop(workspace, spawn=spawned)
    loop.load(at())
    assert len(loop.tick(at(minutes=40))) == 1  # 10:42: ticks 10:05 ... 10:40 passed
    assert spawned[0].idempotency_key == "schedule:2026-03-01T10:40:00+00:00"
    assert loop.schedules["every5"].next_at == datetime(2026, 3, 1, 10, 45, tzinfo=UTC)


def test_two_loops_on_one_state_database_start_one_run_per_tick(workspace: Workspace, spawned: Spawned) -> None:
    pipeline(workspace, "hourly", 'schedule: "0 * * * *"\n')
    first, second = TriggerLoop(workspace, spawn=spawned), TriggerLoop(workspace, spawn=spawned)
    first.load(at()), second.load(at())
    assert len(first.tick(at(minutes=58))) == 1
    assert second.tick(at(minutes=58, seconds=1)) == []
    assert len(spawned) == 1


def test_invalid_cron_names_the_file_and_line(workspace: Workspace, spawned: Spawned) -> None:
    path = pipeline(workspace, "broken", 'description: x\nschedule: "61 * * * *"\n')
    with pytest.raises(ConfigError) as caught:
        TriggerLoop(workspace, spawn=spawned).load(at())
    message = str(caught.value)
    assert f"{path}:2: schedule: invalid cron expression '61 * * * *'" in message
    assert "0 6 * * *" in message
    (problem,) = check_triggers(workspace.pipeline("broken"))
    assert (problem.file, problem.line, problem.field, str(problem)) == (str(path), 2, "schedule", message)


def test_file_trigger_path_must_stay_in_the_lake(workspace: Workspace, spawned: Spawned) -> None:
    pipeline(workspace, "escape", "trigger: {file_arrival: ../outside/}\n")
    with pytest.raises(ConfigError, match="escape.yaml:1: trigger.file_arrival"):
        TriggerLoop(workspace, spawn=spawned).load(at())


def test_changed_pipelines_are_reloaded_and_broken_ones_keep_their_triggers(
    workspace: Workspace, spawned: Spawned, caplog: pytest.LogCaptureFixture
) -> None:
    path = pipeline(workspace, "p", 'schedule: "0 * * * *"\n')
    loop = TriggerLoop(workspace, spawn=spawned)
    loop.load(at())
    pipeline(workspace, "p", 'schedule: "*/5 * * * *"\n')
    _touch_later(path)
    loop.tick(at(1))
    assert loop.schedules["p"].expression == "*/5 * * * *"
    path.write_text('schedule: "nope"\n' + TASKS)
    _touch_later(path)
    with caplog.at_level(logging.ERROR, "brickyard.triggers"):
        assert len(loop.tick(at(minutes=3))) == 1
    assert "invalid cron" in caplog.text and loop.schedules["p"].expression == "*/5 * * * *"
    path.unlink()
    loop.tick(at(minutes=4))
    assert loop.triggers() == []


def _touch_later(path: Path) -> None:
    stat = path.stat()
    import os

    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


# -- file arrival ----------------------------------------------------------------------------


def test_file_arrival_fires_once_after_debounce_and_again_for_new_files(workspace: Workspace, spawned: Spawned) -> None:
    land(workspace, "raw/taxi/old.csv")
    pipeline(workspace, "taxi", "trigger: {file_arrival: raw/taxi/, poll_seconds: 5, debounce_seconds: 10}\n")
    loop = TriggerLoop(workspace, spawn=spawned)
    assert loop.tick(at(0)) == []  # files already there are not new
    assert loop.tick(at(2)) == []  # not yet time to poll
    growing = land(workspace, "raw/taxi/jan.csv")
    assert loop.tick(at(5)) == []  # seen; waits for it to settle
    growing.write_text("a,b\n1,2\n3,4\n")
    assert loop.tick(at(10)) == []  # changed: the wait starts again
    assert loop.tick(at(15)) == []
    (run,) = loop.tick(at(20))
    assert run.trigger == FILE_ARRIVAL and run.status == "queued"
    assert run.params == {"path": "raw/taxi/", "file_count": 1, "files": ["raw/taxi/jan.csv"]}
    assert [loop.tick(at(s)) for s in (25, 30, 60, 120)] == [[], [], [], []]
    land(workspace, "raw/taxi/feb.csv")
    land(workspace, "raw/taxi/mar.csv")
    assert loop.tick(at(125)) == []
    (second,) = loop.tick(at(135))
    assert second.params["files"] == ["raw/taxi/feb.csv", "raw/taxi/mar.csv"]
    assert [r.id for r in spawned] == [run.id, second.id]


def test_file_arrival_survives_a_restart(workspace: Workspace, spawned: Spawned) -> None:
    pipeline(workspace, "taxi", "trigger: {file_arrival: raw/taxi, poll_seconds: 1, debounce_seconds: 0}\n")
    TriggerLoop(workspace, spawn=spawned).tick(at(0))
    land(workspace, "raw/taxi/jan.csv")
    assert len(TriggerLoop(workspace, spawn=spawned).tick(at(1))) == 1
    restarted = TriggerLoop(workspace, spawn=spawned)
    assert restarted.tick(at(2)) == [] and restarted.tick(at(10)) == []
    land(workspace, "raw/taxi/feb.csv")
    (run,) = restarted.tick(at(11))
    assert run.params["files"] == ["raw/taxi/feb.csv"]
    assert len(spawned) == 2


def test_a_batch_pending_at_a_crash_fires_after_restart_without_duplicates(workspace: Workspace, spawned: Spawned) -> None:
    pipeline(workspace, "taxi", "trigger: {file_arrival: raw/taxi/, poll_seconds: 1, debounce_seconds: 5}\n")
    TriggerLoop(workspace, spawn=spawned).tick(at(0))
    land(workspace, "raw/taxi/jan.csv")
    crashed = TriggerLoop(workspace, spawn=spawned)
    assert crashed.tick(at(1)) == []  # pending, then the server dies
    restarted = TriggerLoop(workspace, spawn=spawned)
    assert restarted.tick(at(2)) == []
    assert len(restarted.tick(at(7))) == 1
    # the run was created but the process died before the files were recorded as seen:
    # the idempotency key of the batch prevents a second run
    again = TriggerLoop(workspace, spawn=spawned)
    again._resume = lambda watch, listing, now: _forget_all(watch)  # type: ignore[method-assign]
    again.tick(at(8)), again.tick(at(20))
    assert len(spawned) == 1


def _forget_all(watch) -> bool:  # type: ignore[no-untyped-def]
    watch.known = {}
    return True


def test_hidden_files_globs_and_deletions(workspace: Workspace, spawned: Spawned) -> None:
    pipeline(workspace, "csvs", "trigger: {file_arrival: 'raw/in/*.csv', poll_seconds: 1, debounce_seconds: 0}\n")
    loop = TriggerLoop(workspace, spawn=spawned)
    loop.tick(at(0))
    land(workspace, "raw/in/.partial.csv")
    land(workspace, "raw/in/_SUCCESS")
    land(workspace, "raw/in/notes.txt")
    assert loop.tick(at(1)) == []
    land(workspace, "raw/in/a.csv").unlink()
    assert loop.tick(at(2)) == []
    land(workspace, "raw/in/a.csv")
    assert [r.params["files"] for r in loop.tick(at(3))] == [["raw/in/a.csv"]]
    assert list_files(workspace, "raw/in/*.csv").keys() == {"raw/in/a.csv"}
    assert list_files(workspace, "raw/missing/") == {}


def test_a_failing_spawn_fails_its_run_and_the_loop_goes_on(
    workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_ws: Workspace, _run: RunRecord) -> None:
        raise OSError("no such interpreter")

    pipeline(workspace, "every5", 'schedule: "*/5 * * * *"\n')
    pipeline(workspace, "taxi", "trigger: {file_arrival: raw/taxi/, poll_seconds: 1, debounce_seconds: 0}\n")
    loop = TriggerLoop(workspace, spawn=broken)
    loop.tick(at(0))
    land(workspace, "raw/taxi/jan.csv")
    with caplog.at_level(logging.ERROR, "brickyard.triggers"):
        assert loop.tick(at(minutes=3, seconds=1)) == []
    runs = StateStore(workspace.state_url).list_runs()
    assert sorted(r.pipeline for r in runs) == ["every5", "taxi"]
    assert {r.status for r in runs} == {"failed"}
    assert all("no such interpreter" in (r.error or "") for r in runs)
    with pytest.raises(LaunchError):
        Launcher(workspace, spawn=broken).launch("every5", "http")


def test_thread_runs_ticks_until_stopped(workspace: Workspace, spawned: Spawned) -> None:
    pipeline(workspace, "taxi", "trigger: {file_arrival: raw/taxi/, poll_seconds: 0.05, debounce_seconds: 0.1}\n")
    loop = TriggerLoop(workspace, spawn=spawned)
    loop.load()
    loop.start(interval=0.02)
    try:
        time.sleep(0.2)
        land(workspace, "raw/taxi/jan.csv")
        deadline = time.monotonic() + 10
        while not spawned and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        loop.stop()
    assert not loop.running
    assert [r.params["files"] for r in spawned] == [["raw/taxi/jan.csv"]]


def test_real_spawn_fails_a_run_whose_process_exits_before_claiming_it(workspace: Workspace) -> None:
    pipeline(workspace, "real", "")
    processes = []

    def spawn_for_wrong_pipeline(ws: Workspace, run: RunRecord) -> None:
        processes.append(spawn_run(ws, dataclasses.replace(run, pipeline="other")))

    run = Launcher(workspace, spawn=spawn_for_wrong_pipeline).launch("real", "http").run
    processes[0].wait(timeout=60)
    store = StateStore(workspace.state_url)
    deadline = time.monotonic() + 10
    while store.get_run(run.id).status == "queued" and time.monotonic() < deadline:
        time.sleep(0.05)
    failed = store.get_run(run.id)
    assert failed.status == "failed"
    assert "exited with code 2 before starting" in (failed.error or "")
    assert "process.out" in (failed.error or "")


# -- file arrival on Azure (Azurite) ------------------------------------------------------------


def test_file_arrival_on_an_abfs_lake(abfs_workspace: Workspace, spawned: Spawned) -> None:
    ws = abfs_workspace
    (ws.root / "pipelines").mkdir(exist_ok=True)
    pipeline(ws, "landing", "trigger: {file_arrival: raw/landing/, poll_seconds: 1, debounce_seconds: 2}\n")
    fs = ws.lake.location.filesystem

    def put(relative: str, data: bytes = b"a,b\n1,2\n") -> None:
        fs.pipe_file(ws.lake.location.fs_path(relative), data)

    assert list_files(ws, "raw/landing/") == {}
    put("raw/landing/existing.csv")
    put("raw/landing2/elsewhere.csv")
    assert list(list_files(ws, "raw/landing/")) == ["raw/landing/existing.csv"]
    loop = TriggerLoop(ws, spawn=spawned)
    assert loop.tick(at(0)) == []
    put("raw/landing/day1/new.csv")
    assert loop.tick(at(1)) == []
    put("raw/landing/day1/new.csv", b"a,b\n1,2\n3,4\n")  # rewritten: the wait starts again
    assert loop.tick(at(2)) == [] and loop.tick(at(3)) == []
    (run,) = loop.tick(at(4))
    assert run.params["files"] == ["raw/landing/day1/new.csv"]
    assert loop.tick(at(10)) == []

    restarted = TriggerLoop(ws, spawn=spawned)
    assert restarted.tick(at(11)) == []
    put("raw/landing/day2.csv")
    restarted.tick(at(12))
    (second,) = restarted.tick(at(14))
    assert second.params["files"] == ["raw/landing/day2.csv"]
    assert len(spawned) == 2
