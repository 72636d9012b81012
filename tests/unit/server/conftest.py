"""A real uvicorn server on a free loopback port, in a thread, for the app under test."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from brickyard import Workspace
from brickyard.runtime.tokens import TokenStore


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """Serves an ASGI app with uvicorn until `stop`."""

    def __init__(self, app: object) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))  # type: ignore[arg-type]
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def serve() -> Iterator[object]:
    """`serve(app)` starts a live server and returns an httpx client bound to it."""
    started: list[tuple[LiveServer, httpx.Client]] = []

    def start(app: object) -> httpx.Client:
        live = LiveServer(app).start()
        client = httpx.Client(base_url=live.url, timeout=30)
        started.append((live, client))
        return client

    yield start
    for live, client in started:
        client.close()
        live.stop()


@pytest.fixture
def job_workspace(tmp_path: Path) -> Workspace:
    """A workspace with pipeline `hello`: one python task calling mymodule:fn."""
    ws = Workspace.init(tmp_path / "ws")
    (ws.root / "mymodule.py").write_text(
        "import os, time\n"
        "def fn(ctx, pause=0.0):\n"
        "    time.sleep(pause)\n"
        "    ctx.metrics.rows_out = 7\n"
        "    (ctx.workspace.root / f'ran-{ctx.run_id}.txt').write_text(str(ctx.full_refresh))\n"
        "    return {'pid': os.getpid()}\n"
    )
    (ws.root / "pipelines" / "hello.yaml").write_text(
        "description: says hello\n"
        "tasks:\n"
        "  - {name: greet, kind: python, function: 'mymodule:fn', args: {pause: 1.0}}\n"
    )
    return ws


@pytest.fixture
def tokens(job_workspace: Workspace) -> dict[str, str]:
    """One token per role, as `Authorization` headers."""
    store = TokenStore(job_workspace.state_url)
    return {role: f"Bearer {store.create(role, name=f'test {role}')[1]}" for role in ("reader", "runner", "admin")}
