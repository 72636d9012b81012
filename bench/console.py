"""console: the web console's first pages at scale, timed through real HTTP.

    .venv/bin/python bench/console.py [--runs 100000] [--versions 1000] [--repeat 7] [--keep]

1. Makes a workspace under .bench/console/ (reused when it already holds the asked sizes;
   --fresh remakes it) with pipeline `bench` (one python task) and:
   - --runs run records of that pipeline written straight into the state database's `runs`
     table (one multi-row INSERT per 10,000 records, through the run-record table of
     `brickyard.runtime.records`), each with one task attempt for the newest 1,000;
   - registered model `bench_model` with --versions versions, each from its own MLflow run
     with three metrics (through MlflowClient: create_run, log_batch, create_model_version),
     and the `champion` alias on the newest.
2. Starts `brickyard server --no-triggers` on a free loopback port, logs in through the
   login form (a reader token) and requests each page --repeat times (after one warm-up
   request per page): the overview, the runs list (first page and one 50,000 runs deep),
   the pipeline (its DAG and first page of runs), one run, the models list, the model's
   first page of versions and its second (MLflow's page token), one version.
3. Prints, per page, the median and worst server time (the `Server-Timing` header the
   console adds: from request to the first byte of the answer, rendering included) and the
   median wall time seen by the client; the bar is a first page under 300 ms server time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
BAR_MS = 300.0
PIPELINE = "bench"
MODEL = "bench_model"


def make_workspace(root: Path, runs: int, versions: int) -> None:
    """The workspace of step 1 (see the module's docstring)."""
    from brickyard import Workspace
    from brickyard.ml import tracking
    from brickyard.runtime.records import ATTEMPTS, RUNS, new_run_id
    from brickyard.runtime.state import StateStore

    ws = Workspace.init(root, name="console_bench")
    (root / "bench_task.py").write_text("def fn(ctx):\n    return {}\n")
    (root / "pipelines" / f"{PIPELINE}.yaml").write_text(
        "tasks:\n  - name: load\n    kind: python\n    function: bench_task:fn\n"
        "  - name: report\n    kind: python\n    function: bench_task:fn\n    depends_on: [load]\n"
    )
    store = StateStore(ws.state_url)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    started = time.perf_counter()
    ids = []
    with store.engine.begin() as conn:
        for first in range(0, runs, 10_000):
            rows = []
            for i in range(first, min(first + 10_000, runs)):
                moment = start + timedelta(seconds=30 * i)
                run_id = new_run_id(moment)
                ids.append((run_id, moment))
                rows.append({
                    "id": run_id, "pipeline": PIPELINE, "status": "succeeded" if i % 50 else "failed",
                    "trigger": "schedule", "created_at": moment.replace(tzinfo=None),
                    "started_at": moment.replace(tzinfo=None), "ended_at": (moment + timedelta(seconds=12)).replace(tzinfo=None),
                    "full_refresh": False, "params": {}, "tasks": ["load", "report"],
                    "error": None if i % 50 else "bench: a failed run",
                })
            conn.execute(RUNS.insert(), rows)
        attempts = [
            {"run_id": run_id, "task": task, "attempt": 1, "status": "succeeded",
             "started_at": moment.replace(tzinfo=None), "ended_at": (moment + timedelta(seconds=6)).replace(tzinfo=None),
             "wall_seconds": 6.0, "cpu_seconds": 4.5, "rows_in": 1000, "rows_out": 1000, "reads": {}, "writes": {},
             "metrics": {}, "transient": False}
            for run_id, moment in ids[-1000:] for task in ("load", "report")
        ]
        conn.execute(ATTEMPTS.insert(), attempts)
    print(f"  {runs:,} run records (+{len(attempts):,} attempts) in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    from mlflow.entities import Metric

    client = tracking.connect(ws)
    experiment = client.create_experiment("console_bench")
    client.create_registered_model(MODEL)
    now = int(time.time() * 1000)
    for version in range(1, versions + 1):
        run = client.create_run(experiment)
        client.log_batch(run.info.run_id, metrics=[
            Metric("accuracy", 0.7 + version / (versions * 10), now, 0), Metric("f1", 0.6 + version / (versions * 10), now, 0),
            Metric("roc_auc", 0.8, now, 0),
        ])
        client.set_terminated(run.info.run_id)
        client.create_model_version(MODEL, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.set_registered_model_alias(MODEL, "champion", str(versions))
    print(f"  {versions:,} model versions in {time.perf_counter() - started:.1f} s")
    (root / ".bench-sizes").write_text(f"{runs} {versions}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def token(root: Path) -> str:
    made = subprocess.run([sys.executable, "-m", "brickyard.cli", "tokens", "create", "--role", "reader"],
                          cwd=root, capture_output=True, text=True, check=True)
    return made.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--versions", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--fresh", action="store_true", help="remake the workspace")
    parser.add_argument("--keep", action="store_true", help="keep the workspace (it is kept anyway for reuse)")
    args = parser.parse_args()

    root = REPO / ".bench" / "console"
    sizes = root / ".bench-sizes"
    if args.fresh or not sizes.exists() or sizes.read_text() != f"{args.runs} {args.versions}":
        shutil.rmtree(root, ignore_errors=True)
        root.parent.mkdir(parents=True, exist_ok=True)
        print(f"making the workspace in {root}")
        make_workspace(root, args.runs, args.versions)
    else:
        print(f"reusing the workspace in {root} ({args.runs:,} runs, {args.versions:,} versions)")

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "BRICKYARD_WORKSPACE"}
    server = subprocess.Popen([sys.executable, "-m", "brickyard.cli", "server", "--port", str(port), "--no-triggers"],
                              cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        client = httpx.Client(base_url=url, timeout=60)
        deadline = time.monotonic() + 60
        while True:
            try:
                client.get("/healthz")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.2)
        client.post("/login", data={"token": token(root)})
        runs_page = client.get("/runs").text
        run_id = re.search(r'href="/runs/([0-9a-f-]+)"', runs_page).group(1)  # type: ignore[union-attr]
        model_page = client.get(f"/models/{MODEL}").text
        next_token = re.search(r'page_token=([^"]+)"', model_page).group(1)  # type: ignore[union-attr]
        pages = {
            "overview /": "/",
            "runs, first page": "/runs",
            "runs, 50,000 deep": "/runs?offset=50000",
            "pipeline (DAG + runs)": f"/pipelines/{PIPELINE}",
            "one run": f"/runs/{run_id}",
            "models": "/models",
            "model, first versions page": f"/models/{MODEL}",
            "model, second versions page": f"/models/{MODEL}?page_token={next_token}",
            "one version": f"/models/{MODEL}/versions/{args.versions}",
        }
        print(f"\n{args.runs:,} runs, {args.versions:,} versions; {args.repeat} requests per page after a warm-up; "
              f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        print(f"{'page':32} {'server median':>14} {'server worst':>13} {'client median':>14}")
        worst_first = 0.0
        for label, path in pages.items():
            assert client.get(path).status_code == 200, path
            server_ms, client_ms = [], []
            for _ in range(args.repeat):
                started = time.perf_counter()
                answer = client.get(path)
                client_ms.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, (path, answer.status_code)
                server_ms.append(float(answer.headers["server-timing"].split("dur=")[1]))
            median = statistics.median(server_ms)
            if "50,000 deep" not in label and "second" not in label:
                worst_first = max(worst_first, median)
            print(f"{label:32} {median:11.1f} ms {max(server_ms):10.1f} ms {statistics.median(client_ms):11.1f} ms")
        verdict = "meets" if worst_first < BAR_MS else "MISSES"
        print(f"\nslowest first page: {worst_first:.1f} ms server time (median): {verdict} the {BAR_MS:.0f} ms bar")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
