"""Soak test of `brickyard serve`: a long run at 80% of the measured maximum rate.

Starts `brickyard serve titanic` (auth on, inference log on), measures its maximum one-row
rate with wrk for 15 s, then holds 80% of it (wrk with a per-connection delay) for
``--minutes`` (default 10), sampling the resident memory of the server's processes. Passes
when there were no errors, RSS grew less than 10% from the first to the last minute, and
the inference log holds every request (none dropped: checked in /metrics and by counting
the Delta table's rows after the server flushed it on shutdown).

    .venv/bin/python bench/soak.py                 # 10 minutes
    .venv/bin/python bench/soak.py --minutes 2     # a shorter run

Needs ``wrk`` (``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, VENV_BIN, facts_lines, machine_facts, today, verdict  # noqa: E402
from serving import CONNECTIONS, THREADS, free_port, prepare, wait_ready, write_bodies  # noqa: E402

WORK = REPO / ".bench" / "soak"

LUA = '''
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
local f = io.open("{body}", "rb")
wrk.body = f:read("*a")
f:close()
{delay}
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT {{\\"requests\\": %d, \\"seconds\\": %f, \\"non2xx\\": %d, \\"socket_errors\\": %d, \\"p50\\": %f, \\"p99\\": %f}}\\n",
    summary.requests, summary.duration / 1e6, summary.errors.status, errors, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
'''


def wrk(url: str, seconds: int, token: str, body: Path, delay_ms: float | None) -> dict[str, float]:
    delay = f"delay = function() return {delay_ms:.3f} end" if delay_ms else ""
    script = WORK / ("soak.lua" if delay_ms else "max.lua")
    script.write_text(LUA.format(token=token, body=body, delay=delay))
    done = subprocess.run(
        ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    doc = json.loads(line[len("RESULT "):])
    doc["rps"] = doc["requests"] / doc["seconds"]
    return doc  # type: ignore[no-any-return]


def tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
    except psutil.Error:
        return 0


def metric(url: str, name: str) -> float:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"# soak, {today()}")
    print("\n".join(facts_lines(machine_facts())))
    workspace = WORK / "ws"
    token = prepare(workspace)
    body = write_bodies(WORK)[1]
    port = free_port()
    log = open(WORK / "server.log", "wb")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    server = subprocess.Popen(
        [str(VENV_BIN / "brickyard"), "serve", "titanic", "--port", str(port), "--workers", str(args.workers), "--workspace", str(workspace)],
        stdout=log, stderr=log, env=env,
    )
    base = f"http://127.0.0.1:{port}"
    sent = 0
    try:
        wait_ready(f"{base}/readyz", server)
        probe = wrk(f"{base}/invocations", 15, token, body, None)
        sent += int(probe["requests"])
        target = 0.8 * probe["rps"]
        # each connection waits `delay` between requests: 8 connections at target/8 per second
        delay_ms = max(0.0, CONNECTIONS * 1000.0 / target - probe["p50"])
        print(f"max rate {probe['rps']:.0f} req/s (p50 {probe['p50']:.2f} ms); soaking at ~{target:.0f} req/s "
              f"(delay {delay_ms:.2f} ms per connection) for {args.minutes:g} min, {args.workers} workers", flush=True)
        samples: list[tuple[float, int]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(5.0):
                samples.append((time.monotonic(), tree_rss(server.pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        soak = wrk(f"{base}/invocations", int(args.minutes * 60), token, body, delay_ms)
        stop.set()
        sampler.join()
        sent += int(soak["requests"])
        dropped = metric(f"{base}/metrics", "brickyard_serving_inference_log_dropped_total")
        errors = metric(f"{base}/metrics", "brickyard_serving_requests_total") - sent
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(120)
    from brickyard import Workspace

    rows = Workspace.open(workspace).lake.read("gold.inference_log", columns=["status"])
    statuses = rows.column("status").to_pylist()
    first = [rss for t, rss in samples if t - started <= 60] or [samples[0][1]]
    last = [rss for t, rss in samples if t - started >= args.minutes * 60 - 60] or [samples[-1][1]]
    growth = (sum(last) / len(last)) / (sum(first) / len(first)) - 1
    failures = int(soak["non2xx"] + soak["socket_errors"]) + sum(1 for status in statuses if status != 200)
    print(f"soak: {soak['rps']:.0f} req/s for {soak['seconds']:.0f} s, p50 {soak['p50']:.2f} ms, p99 {soak['p99']:.2f} ms")
    print(f"errors: {failures}  {verdict(failures == 0)}")
    print(f"RSS first minute {sum(first) / len(first) / 2**20:.0f} MiB, last minute {sum(last) / len(last) / 2**20:.0f} MiB: "
          f"growth {growth:+.1%}  bar < 10%  {verdict(growth < 0.10)}")
    lost = sent - len(statuses)
    print(f"inference log: {len(statuses)} rows for {sent} requests counted by wrk (+{-lost} in flight at wrk's stops), "
          f"dropped {dropped:.0f}  {verdict(dropped == 0 and lost <= 0)}")
    print(f"(server counted {errors:+.0f} requests beyond wrk's count: in flight when wrk stopped)")
    print(f"load average at end: {os.getloadavg()}")
    return 0 if failures == 0 and growth < 0.10 and dropped == 0 and lost <= 0 else 1


if __name__ == "__main__":
    sys.exit(main())
