"""Is a process still alive? Process ids plus a start-time token, so a reused pid is not
mistaken for the process that recorded it (Linux `/proc`; elsewhere the pid alone)."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def this_host() -> str:
    """The host name recorded with a run's pid."""
    return socket.gethostname()


def start_token(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None if unknown."""
    fields = _stat_fields(pid)
    return fields[19] if fields is not None and len(fields) > 19 else None


def is_alive(pid: int, token: str | None = None) -> bool:
    """Whether process `pid` (started at `token`, when known) still runs. Zombies are dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _stat_fields(pid)
    if fields is None:
        return True
    if fields[0] in ("Z", "X"):
        return False
    return token is None or len(fields) <= 19 or fields[19] == token


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state is the first)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()
