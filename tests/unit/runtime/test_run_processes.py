"""Runs as real processes: one active run per pipeline, and recovery from a killed run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kinds_for_tests import write_module, write_pipeline

from brickyard import Workspace
from brickyard.runtime.records import RunRecord
from brickyard.runtime.state import DIED, StateStore

pytestmark = pytest.mark.slow

NAP = """\
import os
import time


def nap(context, seconds=30.0):
    seconds = float(os.environ.get("NAP_SECONDS", seconds))
    release = os.environ.get("NAP_UNTIL")  # a file: nap until it exists instead
    context.log.info("napping %s s", seconds)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (release and os.path.exists(release)):
        time.sleep(0.02)
    return {"slept": seconds}
"""


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = Workspace.init(tmp_path / "ws")
    write_module(workspace, "naps", NAP)
    write_pipeline(workspace, "slow_pipeline", "tasks:\n  - {name: nap, kind: python, function: 'naps:nap'}\n")
    return workspace


def start_run(ws: Workspace, pipeline: str, nap_seconds: float, until: Path | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "NAP_SECONDS": str(nap_seconds), "NAP_UNTIL": str(until or ""), "COLUMNS": "200"}
    env.pop("BRICKYARD_WORKSPACE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "brickyard.cli", "run", pipeline, "--workspace", str(ws.root)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for(condition: Callable[[], Any], seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {seconds} s")


def running_attempt(store: StateStore) -> RunRecord | None:
    for run in store.active_runs("slow_pipeline"):
        if run.status == "running" and any(a.status == "running" for a in store.attempts(run.id)):
            return run
    return None


def test_a_killed_run_is_marked_failed_when_the_next_run_starts(ws: Workspace) -> None:
    store = StateStore(ws.state_url)
    victim = start_run(ws, "slow_pipeline", nap_seconds=60)
    try:
        run = wait_for(lambda: running_attempt(store))
        assert run.pid == victim.pid
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    assert store.get_run(run.id).status == "running"  # nothing noticed yet

    after = start_run(ws, "slow_pipeline", nap_seconds=0.1)
    out, err = after.communicate(timeout=120)
    assert after.returncode == 0, err
    dead = store.get_run(run.id)
    assert (dead.status, dead.error) == ("failed", DIED)
    assert [a.status for a in store.attempts(run.id)] == ["failed"]
    newest = store.list_runs("slow_pipeline")[0]
    assert newest.id != run.id and newest.status == "succeeded"
    assert f"run {newest.id} succeeded" in out


def test_a_second_run_of_a_pipeline_waits_until_the_first_finishes(ws: Workspace, tmp_path: Path) -> None:
    store = StateStore(ws.state_url)
    release = tmp_path / "release"
    first = start_run(ws, "slow_pipeline", nap_seconds=120, until=release)
    second: subprocess.Popen[str] | None = None
    try:
        first_run = wait_for(lambda: running_attempt(store))
        second = start_run(ws, "slow_pipeline", nap_seconds=0.1)
        pid = second.pid
        second_run = wait_for(lambda: [r for r in store.active_runs("slow_pipeline") if r.pid == pid])[0]
        time.sleep(1.0)  # the second process polls while the first still runs
        assert store.get_run(second_run.id).status == "queued"
        assert store.get_run(first_run.id).status == "running"
        release.touch()
        assert first.wait(timeout=120) == 0
        assert second.wait(timeout=120) == 0, second.stderr.read() if second.stderr else ""
    finally:
        release.touch()
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    a, b = store.get_run(first_run.id), store.get_run(second_run.id)
    assert a.status == b.status == "succeeded"
    assert a.ended_at is not None and b.started_at is not None and b.started_at >= a.ended_at


def test_a_terminated_run_is_recorded_as_cancelled(ws: Workspace) -> None:
    store = StateStore(ws.state_url)
    process = start_run(ws, "slow_pipeline", nap_seconds=60)
    try:
        run = wait_for(lambda: running_attempt(store))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stopped = store.get_run(run.id)
    assert (stopped.status, stopped.error) == ("cancelled", "interrupted")
    assert [(a.status, a.error) for a in store.attempts(run.id)] == [("failed", "interrupted")]
