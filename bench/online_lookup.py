"""Online store benchmark: materialize N entities into Redis (and SQLite), then keys-only
requests through `brickyard serve` at 8 connections, one entity x 20 features each.

Bars (issue 13): materialize 1M entities to Redis in < 60 s; keys-only lookup p99 < 5 ms at
8 connections, SQLite and Redis.

    .venv/bin/python bench/online_lookup.py                            # 1M entities, 30 s per load run
    .venv/bin/python bench/online_lookup.py --entities 20000 --duration 5   # a quick check that it works
    .venv/bin/python bench/online_lookup.py --record                   # also write the "online lookup" section of RESULTS.md

The feature table `features.bench_stats` (one row per entity, 20 float features, event times
in the last day, TTL 30 days) is written straight to the lake; the model (`bench_churn`, a
scikit-learn pipeline on 20 features) carries `feature_store/training_set.json`, so the
server looks each request's features up online. Each request names one random entity:
`{"dataframe_split": {"columns": ["customer_id"], "data": [[KEY]]}}`. The load comes from
``wrk`` (random key per request, a Lua script) when it is installed, else from a built-in
asyncio client with 8 keep-alive connections (in its own process; on a small machine it
competes with the server for CPU: say which one ran when you report numbers). wrk runs 2 threads
(`BENCH_WRK_THREADS=N` to change it: on 2 cores its second thread takes CPU the server needs). Starts its own
redis-server on a free loopback port. Writes its workspace under .bench/online_lookup/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "tests"))  # feature_store_example: the served model
from common import REPO, facts_lines, load_average, machine_facts, record_section, table, today, verdict, versions  # noqa: E402

WORK = REPO / ".bench" / "online_lookup"
CONNECTIONS = 8
THREADS = int(os.environ.get("BENCH_WRK_THREADS", "2"))  # wrk threads; 2 in every recorded run
FEATURES = 20
TABLE = "bench_stats"
MODEL = "bench_churn"
TRAIN_ENTITIES = 500

LUA = '''
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
math.randomseed(os.time())
request = function()
  local key = math.random(0, {top})
  return wrk.format(nil, nil, nil, '{{"dataframe_split": {{"columns": ["customer_id"], "data": [[' .. key .. ']]}}}}')
end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT {{\\"requests\\": %d, \\"seconds\\": %f, \\"non2xx\\": %d, \\"socket_errors\\": %d, \\"p50\\": %f, \\"p90\\": %f, \\"p99\\": %f}}\\n",
    summary.requests, summary.duration / 1e6, summary.errors.status, errors,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000))
end
'''


@dataclass
class LoadResult:
    store: str
    workers: int
    client: str
    requests: int
    rps: float
    p50: float
    p90: float
    p99: float
    errors: int


# -- setup ---------------------------------------------------------------------------------


def feature_table(entities: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """One row per entity: 20 float features (a few nulls), event times in the last day."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    now_us = time.time_ns() // 1000
    columns = {
        "customer_id": pa.array(np.arange(entities, dtype=np.int64)),
        "event_time": pa.array(now_us - rng.integers(0, 86_400_000_000, entities), pa.int64()).cast(pa.timestamp("us", tz="UTC")),
    }
    for index in range(FEATURES):
        values = rng.normal(100, 30, entities).round(3)
        columns[f"f{index:02d}"] = pa.array(values, mask=rng.random(entities) < 0.02)
    return pa.table(columns)


def prepare(entities: int) -> tuple[Path, str]:
    """A fresh workspace: the feature table and the model; returns (folder, reader token)."""
    from brickyard import Workspace
    from brickyard.runtime.tokens import TokenStore
    from feature_store_example import numeric_features, register_feature_model, write_feature_table

    if WORK.exists():
        shutil.rmtree(WORK)
    ws = Workspace.init(WORK / "ws")
    rows = feature_table(entities)
    write_feature_table(ws, rows, name=TABLE)
    sample = feature_table(min(entities, TRAIN_ENTITIES), seed=1)
    # one snapshot a day from now: every sampled row is within the TTL then
    tomorrow = datetime.now(UTC) + timedelta(days=31)
    register_feature_model(ws, sample, name=MODEL, table=TABLE, features=numeric_features(FEATURES), snapshots=1, now=tomorrow)
    _, token = TokenStore(ws.state_url).create("reader", name="bench")
    return ws.root, token


def set_store(root: Path, url: str) -> None:
    path = root / "brickyard.yaml"
    lines = [line for line in path.read_text().splitlines() if not line.startswith("online_store:")]
    path.write_text("\n".join([*lines, f"online_store: {url}"]) + "\n")


def materialize(root: Path) -> dict[str, object]:
    """`brickyard features materialize` as a user runs it; its result and wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "brickyard.cli", "features", "materialize", TABLE, "--full", "--format", "json"],
        cwd=root, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    result = json.loads(done.stdout)
    result["wall_s"] = time.perf_counter() - started
    return result


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    from conftest import free_port, wait_for_port

    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("redis-server is not installed: run `make services`")
    port = free_port()
    folder = WORK / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [exe, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, process)
    return process, f"redis://127.0.0.1:{port}/0"


def serve(root: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    from conftest import free_port

    port = free_port()
    log = open(WORK / f"serve_{port}.log", "wb")  # noqa: SIM115 - open for the server's life
    env = {**os.environ}
    env.pop("BRICKYARD_WORKSPACE", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "brickyard.cli", "serve", MODEL, "--port", str(port), "--workers", str(workers)],
        cwd=root, stdout=log, stderr=log, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"brickyard serve exited with {process.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} not ready in time")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- load ----------------------------------------------------------------------------------


def load_wrk(url: str, token: str, top: int, duration: int) -> dict[str, float]:
    script = WORK / "keys_only.lua"
    script.write_text(LUA.format(token=token, top=top))
    done = subprocess.run(
        ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{duration}s", "--timeout", "10s", "-s", str(script), f"{url}/invocations"],
        capture_output=True, text=True, check=True,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    result: dict[str, float] = json.loads(line[len("RESULT "):])
    return result


def load_asyncio(url: str, token: str, top: int, duration: int) -> dict[str, float]:
    """8 keep-alive connections from a separate process, random keys; latencies in ms."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        result: dict[str, float] = pool.apply(_asyncio_client, (url, token, top, duration))
    return result


def _asyncio_client(url: str, token: str, top: int, duration: int) -> dict[str, float]:
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    failures = [0]

    async def connection(deadline: float) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        rng = random.Random()
        while time.perf_counter() < deadline:
            body = f'{{"dataframe_split": {{"columns": ["customer_id"], "data": [[{rng.randint(0, top)}]]}}}}'.encode()
            head = (f"POST /invocations HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                    f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
            started = time.perf_counter()
            writer.write(head + body)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append((time.perf_counter() - started) * 1000)
            if b" 200 " not in status_line:
                failures[0] += 1
        writer.close()

    async def run() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(connection(started + duration) for _ in range(CONNECTIONS)))
        return time.perf_counter() - started

    seconds = asyncio.run(run())
    ordered = sorted(latencies)

    def percentile(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")

    return {"requests": len(ordered), "seconds": seconds, "non2xx": failures[0], "socket_errors": 0,
            "p50": percentile(50), "p90": percentile(90), "p99": percentile(99)}


# -- main ----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=1_000_000, help="entities materialized (default 1,000,000)")
    parser.add_argument("--duration", type=int, default=30, help="seconds per load run (default 30)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="uvicorn worker counts to try (default 1 2)")
    parser.add_argument("--stores", nargs="+", default=["sqlite", "redis"], choices=["sqlite", "redis"])
    parser.add_argument("--client", choices=["auto", "wrk", "asyncio"], default="auto")
    parser.add_argument("--record", action="store_true", help='write the "online lookup" section of bench/RESULTS.md')
    args = parser.parse_args()
    client = args.client if args.client != "auto" else ("wrk" if shutil.which("wrk") else "asyncio")
    load = load_wrk if client == "wrk" else load_asyncio
    facts = {**machine_facts(), **versions("brickyard", "redis", "uvicorn")}
    before = load_average()
    print(f"preparing {args.entities:,} entities x {FEATURES} features and the model in {WORK} ...", flush=True)
    root, token = prepare(args.entities)
    redis_process, redis_url = start_redis() if "redis" in args.stores else (None, "")
    materialized: dict[str, dict[str, object]] = {}
    results: list[LoadResult] = []
    try:
        for store in args.stores:
            set_store(root, redis_url if store == "redis" else "sqlite:///.brickyard/online.db")
            materialized[store] = materialize(root)
            print(f"{store}: materialized {materialized[store]['rows_written']:,} entities in "
                  f"{materialized[store]['seconds']:.1f}s (command: {materialized[store]['wall_s']:.1f}s)", flush=True)
            for workers in args.workers:
                server, url = serve(root, workers)
                try:
                    load(url, token, args.entities - 1, min(3, args.duration))  # warm-up
                    found = load(url, token, args.entities - 1, args.duration)
                finally:
                    stop(server)
                result = LoadResult(
                    store, workers, client, int(found["requests"]), found["requests"] / found["seconds"],
                    found["p50"], found["p90"], found["p99"], int(found["non2xx"] + found["socket_errors"]),
                )
                results.append(result)
                print(f"{store} workers={workers}: {result.rps:.0f} req/s, p50 {result.p50:.2f} ms, "
                      f"p99 {result.p99:.2f} ms, errors {result.errors}", flush=True)
    finally:
        if redis_process is not None:
            stop(redis_process)
    text, passed = report(args, facts, client, materialized, results, (before, load_average()))
    print()
    print(text)
    if args.record:
        print(f"recorded in {record_section('online lookup', text)}")
    return 0 if passed else 1


def report(
    args: argparse.Namespace, facts: dict[str, str], client: str, materialized: dict[str, dict[str, object]],
    results: list[LoadResult], loads: tuple[str, str],
) -> tuple[str, bool]:
    lines, passed = [], []
    if "redis" in materialized:
        seconds = float(materialized["redis"]["seconds"])  # type: ignore[arg-type]
        scale = f" ({args.entities:,} entities: the bar is for 1,000,000)" if args.entities != 1_000_000 else ""
        passed.append(seconds < 60 and args.entities >= 1_000_000)
        lines.append(f"- materialize to Redis: **{seconds:.1f} s**{scale} (bar < 60 s for 1M) {verdict(passed[-1])}")
    for store in args.stores:
        mine = [r for r in results if r.store == store]
        if mine:
            p99 = min(r.p99 for r in mine)
            passed.append(p99 < 5 and all(r.errors == 0 for r in mine))
            lines.append(f"- keys-only p99 through brickyard serve, {store}, 8 connections (best worker count): "
                         f"**{p99:.2f} ms** (bar < 5 ms) {verdict(passed[-1])}")
    rows = [(r.store, r.workers, r.client, r.requests, f"{r.rps:.0f}", f"{r.p50:.2f}", f"{r.p90:.2f}", f"{r.p99:.2f}", r.errors)
            for r in results]
    mat = [(store, f"{m['rows_written']:,}", f"{float(m['seconds']):.1f}", f"{float(m['wall_s']):.1f}")  # type: ignore[arg-type]
           for store, m in materialized.items()]
    text = "\n".join([
        "## online lookup",
        "",
        f"Run {today()}: `.venv/bin/python bench/online_lookup.py --entities {args.entities} --duration {args.duration}`. "
        f"Load from {client} (-c{CONNECTIONS}), one random entity per request, {FEATURES} features looked up online; auth on "
        "(a reader token), inference log on.",
        f"Load average (1/5/15 min) before: {loads[0]}, after: {loads[1]}.",
        "",
        "```",
        *facts_lines(facts),
        "```",
        "",
        table(["store", "entities written", "materialize s", "command s"], mat, markdown=True),
        "",
        table(["store", "workers", "client", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors"], rows, markdown=True),
        "",
        *lines,
    ])
    return text, all(passed)


if __name__ == "__main__":
    sys.exit(main())
