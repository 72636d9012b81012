"""`supervise` / `stop_tree`: a server's whole process tree stops, even a child that
ignores SIGTERM; a server that dies before it answers is an error that says so."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from brickyard.cli.supervise import ChildProcessError, stop_tree, supervise

# A parent that starts a child which ignores SIGTERM, prints the child's pid, then waits.
TREE = """
import signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(300)"],
    stdout=subprocess.PIPE, text=True)
child.stdout.readline()
print(child.pid, flush=True)
time.sleep(300)
"""


def test_stop_tree_stops_children_and_kills_what_ignores_sigterm() -> None:
    parent = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert parent.stdout is not None
    child = psutil.Process(int(parent.stdout.readline()))
    started = time.monotonic()
    stop_tree(parent, grace=1.0)
    assert parent.returncode is not None
    assert psutil.wait_procs([child], timeout=10)[1] == []
    assert time.monotonic() - started < 10


def test_a_server_that_exits_before_it_answers_is_an_error() -> None:
    ready: list[bool] = []
    with pytest.raises(ChildProcessError, match="the test server exited with code 3 before it answered"):
        supervise(
            [sys.executable, "-c", "import sys; sys.exit(3)"],
            health_url="http://127.0.0.1:9/health",
            on_ready=lambda: ready.append(True),
            name="the test server",
        )
    assert ready == []
