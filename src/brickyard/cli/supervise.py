"""Run a server command (such as `mlflow ui`) as a process tree brickyard owns.

The command starts in its own session, so it and everything it starts (MLflow's uvicorn
workers, its job runner) form one process group. Ctrl-C or SIGTERM to brickyard stops that
whole group: SIGTERM first, SIGKILL for what is still there after a grace period, so no
child keeps the port. Readiness is the server answering HTTP, not the process existing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from types import FrameType

from brickyard.errors import BrickyardError

STOP_GRACE_SECONDS = 20.0
POLL_SECONDS = 0.2


class ChildProcessError(BrickyardError):
    """A supervised server exited on its own."""


def supervise(
    command: Sequence[str],
    *,
    health_url: str,
    on_ready: Callable[[], None],
    name: str,
) -> int:
    """Run `command` until it exits or brickyard gets SIGINT/SIGTERM; call `on_ready` once
    `health_url` answers 200. Returns 0 when stopped by a signal, else the command's code.

    Raises:
        ChildProcessError: the command exited before it answered (a port in use, a bad option).
    """
    stop: list[int] = []

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop.append(signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        process = subprocess.Popen(list(command), start_new_session=os.name == "posix")
        try:
            ready = False
            while process.poll() is None and not stop:
                if not ready and answers(health_url):
                    ready = True
                    on_ready()
                time.sleep(POLL_SECONDS)
        finally:
            stop_tree(process)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stop:
        return 0
    if not ready:
        raise ChildProcessError(
            f"{name} exited with code {process.returncode} before it answered at {health_url}",
            hint="see its output above (is the port in use? try --port)",
        )
    return int(process.returncode or 0)


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether `url` answers HTTP 200 (no proxy: the server is local)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def stop_tree(process: subprocess.Popen[bytes], grace: float = STOP_GRACE_SECONDS) -> None:
    """Stop `process` and every process of its group: SIGTERM, then SIGKILL after `grace`."""
    if os.name != "posix":
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.kill()
        process.wait()
        return
    group = process.pid  # the leader of its own session
    _signal_group(group, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()  # reap the leader, so that it does not count as alive
        if not _group_alive(group):
            break
        time.sleep(POLL_SECONDS)
    else:
        _signal_group(group, signal.SIGKILL)
    process.wait()


def _signal_group(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
