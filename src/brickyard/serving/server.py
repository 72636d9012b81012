"""Running the serving app on uvicorn, with one or several worker processes.

The listening socket is made here, not by uvicorn: created with ``proto=IPPROTO_TCP`` and
``TCP_NODELAY``, so that every accepted connection has Nagle's algorithm off. uvicorn's own
multi-worker path binds a socket with ``proto=0``; accepted sockets inherit it, asyncio then
skips ``TCP_NODELAY``, and every keep-alive request after the first waits ~40 ms for the
client's delayed ACK (uvicorn issue #3149). ``tests/unit/serving/test_server.py`` times
sequential keep-alive requests against two workers to keep it fixed.

Workers are separate processes (spawned by uvicorn's supervisor); each builds its app from
the `ServeSpec` passed in the environment, loads its own models and writes its own
inference-log batches. With several workers, Prometheus metrics are kept in a shared folder
(``PROMETHEUS_MULTIPROC_DIR``) and ``/metrics`` sums them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from brickyard.serving.metrics import MULTIPROC_ENV
from brickyard.telemetry.logs import console_formatter, uvicorn_log_config

if TYPE_CHECKING:
    from brickyard.serving.app import FastLane

SPEC_ENV = "BRICKYARD_SERVE_SPEC"
LOOP_ENV = "BRICKYARD_SERVE_LOOP"  # uvicorn's event loop: auto (uvloop when installed) or asyncio


@dataclass(frozen=True)
class ServeSpec:
    """What a worker needs to build its app: the workspace and what to serve."""

    workspace: str
    models: list[str]
    auth: bool = True
    strict_columns: bool = False  # a column the signature does not name is a 400, not ignored
    log_level: str = "info"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeSpec:
        return cls(**json.loads(os.environ[SPEC_ENV]))


def build_app(spec: ServeSpec) -> FastLane:
    """The app for a spec (opens the workspace; models load in the background)."""
    from brickyard.ml.registry import ModelRef
    from brickyard.serving.app import create_app
    from brickyard.serving.service import ServingService
    from brickyard.workspace import Workspace

    ws = Workspace.open(spec.workspace)
    service = ServingService(ws, [ModelRef.parse(text) for text in spec.models], auth=spec.auth, strict_columns=spec.strict_columns)
    return create_app(service)


def app_from_env() -> FastLane:
    """uvicorn's app factory in each worker process."""
    spec = ServeSpec.from_env()
    _quiet_libraries()
    return build_app(spec)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket whose accepted connections have TCP_NODELAY.

    Raises:
        OSError: the address is taken or not ours.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def run(spec: ServeSpec, *, host: str, port: int, workers: int = 1, sock: socket.socket | None = None) -> None:
    """Serve until interrupted (SIGINT/SIGTERM flushes the inference logs before exiting)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    sock = sock or bind_socket(host, port)
    os.environ[SPEC_ENV] = spec.to_env()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    metrics_dir = None
    if workers > 1:
        metrics_dir = tempfile.mkdtemp(prefix="brickyard-serve-metrics-")
        os.environ[MULTIPROC_ENV] = metrics_dir
    config = uvicorn.Config(
        "brickyard.serving.server:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level=spec.log_level,
        loop=os.environ.get(LOOP_ENV, "auto"),
        http="auto",
        timeout_graceful_shutdown=30,
        log_config=uvicorn_log_config(),
    )
    try:
        if workers > 1:
            Multiprocess(config, sockets=[sock]).run()
        else:
            config.workers = 1
            uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _quiet_libraries() -> None:
    for name in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if not logging.getLogger("brickyard.serving").handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(console_formatter("%(levelname)s:     %(message)s"))
        logger = logging.getLogger("brickyard.serving")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
