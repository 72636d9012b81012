"""Several workers: accepted connections keep TCP_NODELAY (uvicorn issue #3149 made every
keep-alive request after the first wait ~40 ms for a delayed ACK), and metrics add up."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from serving_helpers import split_body

from brickyard import Workspace
from brickyard.serving.server import bind_socket
from titanic_example import RegisteredExample

pytestmark = pytest.mark.slow


def test_accepted_connections_have_tcp_nodelay() -> None:
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    seen: list[int] = []

    class Report(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted = transport.get_extra_info("socket")
            seen.append(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()  # type: ignore[attr-defined]

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Report, sock=sock)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()

    asyncio.run(main())
    assert seen and seen[0] != 0


@pytest.fixture(params=["asyncio", "auto"])
def two_workers(request: pytest.FixtureRequest, serving_ws: Workspace, titanic: RegisteredExample) -> Iterator[int]:
    """`brickyard serve --workers 2` on asyncio's loop (where the bug shows) and on uvloop."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "brickyard.cli", "serve", "titanic", "--workers", "2", "--no-auth", "--port", str(port),
         "--workspace", str(serving_ws.root)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "BRICKYARD_WORKSPACE": "", "BRICKYARD_SERVE_LOOP": request.param},
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the server did not get ready"
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(60)


def test_keep_alive_requests_to_two_workers_are_not_delayed(two_workers: int) -> None:
    body = json.dumps(split_body())
    connection = http.client.HTTPConnection("127.0.0.1", two_workers, timeout=10)
    took = []
    for _ in range(21):
        started = time.perf_counter()
        connection.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200, response.read()
        response.read()
        took.append(time.perf_counter() - started)
    keep_alive = took[1:]  # the first request opens the connection
    # With Nagle on, each keep-alive request waits for a ~40 ms delayed ACK.
    assert statistics.median(keep_alive) < 0.020, [f"{t * 1000:.1f} ms" for t in keep_alive]
    assert sum(keep_alive) < 20 * 0.040 / 2

    time.sleep(0.2)
    metrics = http.client.HTTPConnection("127.0.0.1", two_workers, timeout=10)
    totals = 0.0
    for _ in range(4):  # whichever worker answers, /metrics adds up both
        metrics.request("GET", "/metrics")
        text = metrics.getresponse().read().decode()
        line = next(line for line in text.splitlines() if line.startswith("brickyard_serving_requests_total{") and 'status="200"' in line)
        totals = float(line.rsplit(" ", 1)[1])
        assert totals == 21.0
