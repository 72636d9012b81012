"""Serving benchmark: `brickyard serve` against `mlflow models serve` and a constant floor.

The same registered Titanic model (scikit-learn Pipeline, logged with MLflow) is served by

- ``mlflow models serve --env-manager local`` (MLflow's own FastAPI/uvicorn scoring server),
- ``brickyard serve`` (auth on with a reader token, inference log on), and
- the floor: a bare Starlette endpoint on uvicorn that returns a constant,

each with 1 and 2 workers in turn, loaded by ``wrk`` from 8 connections with one-row
``dataframe_split`` requests (and, for the two model servers, 1,000-row requests). Prints
requests/s and p50/p90/p99 per run, the best of each server, the ratios and the bars.

    .venv/bin/python bench/serving.py                              # 30 s per run (about 10 minutes)
    .venv/bin/python bench/serving.py --duration 10 --repeats 3    # medians of 3 shorter runs
    .venv/bin/python bench/serving.py --record                     # also write the "serving" section of RESULTS.md

Needs ``wrk`` (``apt-get install -y wrk``). Writes its workspace under .bench/serving/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "tests"))  # titanic_example: the served model
from common import REPO, VENV_BIN, facts_lines, load_average, machine_facts, table, today, verdict, versions  # noqa: E402

WORK = REPO / ".bench" / "serving"
CONNECTIONS = 8
THREADS = 2
COLUMNS = ["Age", "SibSp", "Parch", "Fare", "Pclass", "Sex", "Embarked"]
PASSENGER = [22.0, 1, 0, 7.25, 3, "male", "S"]

FLOOR_APP = '''
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def invocations(request):
    return Response(b'{"predictions":[0]}', media_type="application/json")

app = Starlette(routes=[Route("/invocations", invocations, methods=["POST"])])
'''

LUA = '''
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
{auth}
local f = io.open("{body}", "rb")
wrk.body = f:read("*a")
f:close()

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT {{\\"requests\\": %d, \\"seconds\\": %f, \\"non2xx\\": %d, \\"socket_errors\\": %d, \\"p50\\": %f, \\"p90\\": %f, \\"p99\\": %f, \\"max\\": %f}}\\n",
    summary.requests, summary.duration / 1e6, summary.errors.status, errors,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
'''


@dataclass
class Result:
    server: str
    workers: int
    rows: int
    rps: float
    p50: float
    p90: float
    p99: float
    errors: int
    load: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready: {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} not ready within {seconds} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def prepare(workspace: Path) -> str:
    """A fresh workspace with the Titanic example as champion; returns a reader token."""
    from brickyard import Workspace
    from brickyard.runtime.tokens import TokenStore
    from titanic_example import register_titanic_example

    if workspace.exists():
        shutil.rmtree(workspace)
    ws = Workspace.init(workspace)
    register_titanic_example(ws)
    _, token = TokenStore(ws.state_url).create("reader", name="bench")
    return token


def write_bodies(folder: Path) -> dict[int, Path]:
    import pandas as pd

    from titanic_example import FEATURES, titanic_frame

    bodies = {}
    one = {"dataframe_split": {"columns": COLUMNS, "data": [PASSENGER]}}
    sample = titanic_frame()[FEATURES].sample(1000, replace=True, random_state=0)
    many = {"dataframe_split": {"columns": COLUMNS, "data": json.loads(pd.DataFrame(sample).to_json(orient="values"))}}
    for rows, doc in ((1, one), (1000, many)):
        path = folder / f"body_{rows}.json"
        path.write_text(json.dumps(doc, separators=(",", ":")))
        bodies[rows] = path
    return bodies


def wrk(url: str, body: Path, duration: int, token: str | None, folder: Path) -> dict[str, float]:
    script = folder / f"wrk_{body.stem}_{'auth' if token else 'open'}.lua"
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"' if token else ""
    script.write_text(LUA.format(auth=auth, body=body))
    done = subprocess.run(
        ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{duration}s", "--timeout", "10s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    doc = json.loads(line[len("RESULT "):])
    doc["rps"] = doc["requests"] / doc["seconds"]
    return doc  # type: ignore[no-any-return]


def start(server: str, workers: int, port: int, workspace: Path, folder: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = open(folder / f"{server}_{workers}.log", "wb")
    if server == "floor":
        (folder / "floor_app.py").write_text(FLOOR_APP)
        command = [str(VENV_BIN / "python"), "-m", "uvicorn", "floor_app:app", "--app-dir", str(folder), "--port", str(port),
                   "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
        process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        wait_port(port, process)
        return process, "", f"http://127.0.0.1:{port}/invocations"
    if server == "mlflow":
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{workspace / 'mlflow.db'}"
        command = [str(VENV_BIN / "mlflow"), "models", "serve", "-m", "models:/titanic@champion", "--env-manager", "local",
                   "-h", "127.0.0.1", "-p", str(port), "-w", str(workers)]
        ready = f"http://127.0.0.1:{port}/ping"
    else:
        command = [str(VENV_BIN / "brickyard"), "serve", "titanic", "--port", str(port), "--workers", str(workers),
                   "--workspace", str(workspace)]
        ready = f"http://127.0.0.1:{port}/readyz"
    process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
    wait_ready(ready, process)
    return process, ready, f"http://127.0.0.1:{port}/invocations"


def wait_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("floor server exited")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                time.sleep(1.0)  # let every worker start
                return
        time.sleep(0.1)
    raise RuntimeError("floor server did not listen")


def logged_rows(workspace: Path) -> int:
    from brickyard import Workspace

    ws = Workspace.open(workspace)
    return ws.lake.read("gold.inference_log", columns=["request_id"]).num_rows if ws.lake.exists("gold.inference_log") else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=30, help="seconds per wrk run (default 30)")
    parser.add_argument("--repeats", type=int, default=1, help="wrk runs per configuration; medians are reported")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--servers", nargs="+", default=["floor", "mlflow", "brickyard"])
    parser.add_argument("--record", action="store_true", help="write the section into bench/RESULTS.md")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk (or scripts/install-test-services.sh --bench)")
    WORK.mkdir(parents=True, exist_ok=True)
    facts = {**machine_facts(), **versions("mlflow", "scikit-learn", "fastapi", "uvicorn", "uvloop", "orjson")}
    print("\n".join(facts_lines(facts)))
    load_before = load_average()
    workspace = WORK / "ws"
    token = prepare(workspace)
    bodies = write_bodies(WORK)
    results: list[Result] = []
    sent = 0  # requests sent to brickyard, warm-ups included: each must be in the inference log
    for server in args.servers:
        for workers in args.workers:
            port = free_port()
            process, _, url = start(server, workers, port, workspace, WORK)
            try:
                auth = token if server == "brickyard" else None
                for rows in (1, 1000) if server != "floor" else (1,):
                    warm = wrk(url, bodies[rows], 3, auth, WORK)
                    runs = []
                    loads = []
                    for _ in range(args.repeats):
                        loads.append(os.getloadavg()[0])
                        runs.append(wrk(url, bodies[rows], args.duration, auth, WORK))
                    if server == "brickyard":
                        sent += int(warm["requests"] + sum(run["requests"] for run in runs))
                    result = Result(
                        server, workers, rows, *(statistics.median(run[key] for run in runs) for key in ("rps", "p50", "p90", "p99")),
                        int(sum(run["non2xx"] + run["socket_errors"] for run in runs)), statistics.median(loads),
                    )
                    results.append(result)
                    print(f"{server:9} workers={workers} rows={rows:4}: {result.rps:8.0f} req/s  p50 {result.p50:6.2f} ms  "
                          f"p90 {result.p90:6.2f} ms  p99 {result.p99:6.2f} ms  errors {result.errors}  load {result.load:.1f}", flush=True)
            finally:
                stop(process)
    section, passed = report(args, facts, results, workspace if "brickyard" in args.servers else None, sent, (load_before, load_average()))
    print()
    print(section)
    if args.record:
        print(f"\nrecorded in {record(section)}")
    return 0 if passed else 1


def record(section: str) -> Path:
    """Replace (or append) the "serving" section in bench/RESULTS.md."""
    path = REPO / "bench" / "RESULTS.md"
    current = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(r"^## serving\n.*?(?=^## |\Z)", re.S | re.M)
    block = section.rstrip() + "\n\n"
    updated = pattern.sub(lambda _: block, current) if pattern.search(current) else current.rstrip() + "\n\n" + block
    path.write_text(updated.rstrip() + "\n")
    return path


def best(results: list[Result], server: str, rows: int) -> Result | None:
    found = [r for r in results if r.server == server and r.rows == rows]
    return max(found, key=lambda r: r.rps) if found else None


def report(
    args: argparse.Namespace, facts: dict[str, str], results: list[Result], workspace: Path | None, sent: int, loads: tuple[str, str]
) -> tuple[str, bool]:
    rows = [
        (r.server, r.workers, r.rows, f"{r.rps:.0f}", f"{r.p50:.2f}", f"{r.p90:.2f}", f"{r.p99:.2f}", r.errors, f"{r.load:.1f}")
        for r in results
    ]
    ours, theirs, floor = best(results, "brickyard", 1), best(results, "mlflow", 1), best(results, "floor", 1)
    ours_many = best(results, "brickyard", 1000)
    theirs_many = best(results, "mlflow", 1000)
    lines = []
    passed = []
    if ours and theirs:
        passed.append(ours.rps >= 10 * theirs.rps)
        lines.append(f"- brickyard / mlflow, one-row req/s (each at its best worker count): **{ours.rps / theirs.rps:.1f}x** (bar >= 10x) {verdict(passed[-1])}")
    if ours and floor:
        passed.append(ours.rps >= 0.4 * floor.rps)
        lines.append(f"- brickyard / constant floor, one-row req/s: **{ours.rps / floor.rps:.0%}** (bar >= 40%) {verdict(passed[-1])}")
    if ours:
        p99 = min(r.p99 for r in results if r.server == "brickyard" and r.rows == 1)
        passed.append(p99 < 10)
        floor_p99 = f"; the floor's best p99 in this run: {min(r.p99 for r in results if r.server == 'floor'):.2f} ms" if floor else ""
        lines.append(f"- brickyard one-row p99 at 8 connections (best worker count): **{p99:.2f} ms** (bar < 10 ms) {verdict(passed[-1])}{floor_p99}")
    if ours_many:
        p50 = min(r.p50 for r in results if r.server == "brickyard" and r.rows == 1000)
        passed.append(p50 < 10)
        lines.append(f"- brickyard 1,000-row p50 at 8 connections: **{p50:.2f} ms** (bar < 10 ms) {verdict(passed[-1])}")
    if ours_many and theirs_many:
        lines.append(f"- brickyard / mlflow, 1,000-row req/s: {ours_many.rps / theirs_many.rps:.1f}x")
    if workspace is not None:
        lines.append(f"- inference log (on for every brickyard run): {logged_rows(workspace)} rows in gold.inference_log for {sent} "
                     "requests completed by wrk (wrk does not count the few in flight when it stops)")
    command = "  ".join(["`.venv/bin/python bench/serving.py", f"--duration {args.duration}", f"--repeats {args.repeats}`"])
    text = "\n".join([
        "## serving",
        "",
        f"Run {today()}: {command}. wrk -t{THREADS} -c{CONNECTIONS}, POST `dataframe_split` bodies of 1 and 1,000 Titanic rows;",
        "brickyard with auth on (a reader token) and the inference log on; mlflow is `mlflow models serve --env-manager local`;",
        "the floor is a bare Starlette endpoint on uvicorn returning a constant. Figures are medians of the repeats.",
        f"Load average (1/5/15 min) before: {loads[0]}, after: {loads[1]} (the machine is shared; the table's last column is the 1-min load at each run).",
        "",
        "```",
        *facts_lines(facts),
        "```",
        "",
        table(["server", "workers", "rows/request", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors", "load"], rows, markdown=True),
        "",
        *lines,
    ])
    return text, all(passed)


if __name__ == "__main__":
    sys.exit(main())
