"""Fault campaign: kill -9 of runs, PostgreSQL restarts mid-export, two writers at once.

    .venv/bin/python bench/faults.py [--kills 30] [--restarts 10] [--writers 20] [--record]

Every trial drives the `brickyard` command as a user would, breaks something at a random
moment, lets the pipeline finish with a plain re-run, and then checks the result against
what it must be, row by row:

- kill: `brickyard run events` (ingest of CSV files -> bronze.events, incremental `sql`
  append -> silver.events) is SIGKILLed at a uniformly random time within one clean run's
  duration, then run again. bronze and silver must hold every source row exactly once
  (count = distinct ids = the rows in the files), the quarantine every bad row exactly once.
- restart: `brickyard run export_events` copies gold.events (100,000 rows) into PostgreSQL;
  at a random moment the server is stopped like a crash (`pg_ctl -m immediate`) and started
  again; the pipeline is re-run until it succeeds. The SQL table must hold every row once.
- writers: two `brickyard run events` processes start together on a fresh workspace whose
  pipeline allows `max_active_runs: 2`. bronze and silver must hold every row once.

Figures are trials, trials that held, and the kinds of failure seen; --record writes them to
the `faults` section of bench/RESULTS.md. PostgreSQL comes from tests/conftest.py's
`PostgresServer` (initdb + pg_ctl on a free loopback port).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, facts_lines, load_average, machine_facts, record_section, table, today, versions  # noqa: E402

WORK = REPO / ".bench" / "faults"
BRICKYARD = [sys.executable, "-m", "brickyard.cli"]
FILES = 6
ROWS_PER_FILE = 20_000
BAD_EVERY = 997  # one row in 997 has an unparseable value and goes to quarantine
EXPORT_ROWS = 100_000

EVENTS_PIPELINE = """\
description: fault campaign - CSV files -> bronze.events -> silver.events
max_active_runs: {max_active_runs}
tasks:
  - name: ingest_events
    kind: ingest
    source: raw/events/*.csv
    target: bronze.events
    contract: contracts/bronze.events.yaml
  - name: clean_events
    kind: sql
    depends_on: [ingest_events]
    sql: sql/clean_events.sql
    target: silver.events
    mode: append
    incremental: true
"""

EVENTS_CONTRACT = """\
table: bronze.events
columns:
  - {name: id, type: bigint, nullable: false}
  - {name: value, type: double}
  - {name: name, type: string}
"""

EXPORT_PIPELINE = """\
description: fault campaign - gold.events -> PostgreSQL, exactly once
tasks:
  - name: export
    kind: export
    source: gold.events
    database: warehouse
    table: events
    keys: [id]
    mode: append
    batch_rows: 5000
    attempts: 3
    backoff_seconds: 0.5
"""


@dataclass
class Campaign:
    """The trials of one kind of fault and what each ended as."""

    name: str
    fault: str
    trials: int = 0
    held: int = 0
    hit: int = 0  # trials where the fault struck before the run had finished
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, problem: str | None, hit: bool = True) -> None:
        self.trials += 1
        self.hit += hit
        self.held += problem is None
        self.outcomes[problem or "held"] += 1
        mark = "." if problem is None else "F"
        print(mark, end="" if problem is None else f"({problem})", flush=True)


def brickyard(ws: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run `brickyard ARGS` in the workspace to the end."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*BRICKYARD, *args], cwd=ws, env=env, capture_output=True, text=True, timeout=timeout)


def start(ws: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start `brickyard ARGS` in the workspace in its own process group."""
    return subprocess.Popen([*BRICKYARD, *args], cwd=ws, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and everything it started."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def write_events(folder: Path, seed: int) -> tuple[int, int]:
    """The CSV files of a trial; returns (good rows, bad rows)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    good = bad = 0
    for number in range(FILES):
        lines = ["id,value,name"]
        for row in range(ROWS_PER_FILE):
            key = number * ROWS_PER_FILE + row
            if key % BAD_EVERY == 0:
                lines.append(f"{key},not-a-number,event {key}")
                bad += 1
            else:
                lines.append(f"{key},{rng.random():.6f},event {key}")
                good += 1
        (folder / f"events_{number:02d}.csv").write_text("\n".join(lines) + "\n")
    return good, bad


def new_workspace(name: str, max_active_runs: int = 1, seed: int = 0) -> tuple[Path, int, int]:
    """A fresh workspace with the events pipeline and its files; (root, good rows, bad rows)."""
    ws = WORK / name
    shutil.rmtree(ws, ignore_errors=True)
    brickyard(WORK, "init", str(ws)).check_returncode()
    (ws / "pipelines" / "events.yaml").write_text(EVENTS_PIPELINE.format(max_active_runs=max_active_runs))
    (ws / "contracts" / "bronze.events.yaml").write_text(EVENTS_CONTRACT)
    (ws / "sql" / "clean_events.sql").write_text("SELECT id, value * 2 AS doubled, name FROM bronze.events\n")
    good, bad = write_events(ws / "lake" / "raw" / "events", seed)
    return ws, good, bad


def events_problem(ws: Path, good: int, bad: int) -> str | None:
    """What is wrong with bronze/silver/quarantine after the pipeline finished; None if right."""
    from brickyard import Workspace

    workspace = Workspace.open(ws)
    try:
        checks = {
            "bronze.events": ("SELECT count(*), count(DISTINCT id) FROM bronze.events", good),
            "silver.events": ("SELECT count(*), count(DISTINCT id) FROM silver.events", good),
            "bronze.events__quarantine": (
                "SELECT count(*), count(DISTINCT _source_file || ':' || _line) FROM bronze.events__quarantine", bad),
        }
        for table_name, (query, expected) in checks.items():
            [(rows, distinct)] = workspace.sql(query).fetchall()
            if rows != expected or distinct != expected:
                return f"{table_name}: {rows} rows, {distinct} distinct, expected {expected}"
    except Exception as exc:  # noqa: BLE001 - a campaign reports every failure kind
        return f"unreadable: {type(exc).__name__}: {str(exc)[:120]}"
    return None


def finish(ws: Path, pipeline: str, tries: int = 3) -> str | None:
    """Re-run the pipeline until it succeeds; the error of the last try if it never does."""
    done = None
    for _ in range(tries):
        done = brickyard(ws, "run", pipeline)
        if done.returncode == 0:
            return None
        time.sleep(1)
    assert done is not None
    return "re-run failed: " + (done.stderr.strip().splitlines() or ["?"])[-1][:160]


def calibrate() -> float:
    """Seconds a clean `brickyard run events` takes on a fresh workspace."""
    ws, good, bad = new_workspace("calibrate")
    began = time.perf_counter()
    done = brickyard(ws, "run", "events")
    seconds = time.perf_counter() - began
    if done.returncode != 0 or events_problem(ws, good, bad):
        raise SystemExit(f"the clean run is wrong, no campaign makes sense:\n{done.stdout}\n{done.stderr}"
                         f"\n{events_problem(ws, good, bad)}")
    return seconds


def kill_campaign(trials: int, clean_seconds: float, rng: random.Random) -> Campaign:
    """kill -9 of `brickyard run events` at a random moment, then a plain re-run."""
    campaign = Campaign("kill", "kill -9 of `brickyard run` (ingest + incremental sql) at a random moment")
    for trial in range(trials):
        ws, good, bad = new_workspace(f"kill_{trial:03d}", seed=trial)
        process = start(ws, "run", "events")
        time.sleep(rng.uniform(0.3, clean_seconds))
        hit = process.poll() is None
        kill_group(process)
        campaign.add(finish(ws, "events") or events_problem(ws, good, bad), hit)
        shutil.rmtree(ws, ignore_errors=True)
    return campaign


def writers_campaign(trials: int) -> Campaign:
    """Two `brickyard run events` at once on a pipeline allowing two active runs."""
    campaign = Campaign("writers", "two `brickyard run` processes of one pipeline at once (max_active_runs: 2)")
    for trial in range(trials):
        ws, good, bad = new_workspace(f"writers_{trial:03d}", max_active_runs=2, seed=trial)
        first, second = start(ws, "run", "events"), start(ws, "run", "events")
        codes = (first.wait(), second.wait())
        problem = events_problem(ws, good, bad)
        if problem is None and codes != (0, 0):
            problem = f"exit codes {codes[0]}, {codes[1]}"
        campaign.add(problem)
        shutil.rmtree(ws, ignore_errors=True)
    return campaign


def postgres_server() -> Any:
    """`PostgresServer` from tests/conftest.py (one implementation for tests and bench)."""
    spec = importlib.util.spec_from_file_location("brickyard_test_conftest", REPO / "tests" / "conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    shutil.rmtree(WORK / "postgres", ignore_errors=True)
    return module.PostgresServer(folder=WORK / "postgres")


def export_workspace(url: str) -> Path:
    """A workspace with gold.events (EXPORT_ROWS rows) and the export pipeline to PostgreSQL."""
    import pyarrow as pa

    from brickyard import Workspace

    ws = WORK / "export"
    shutil.rmtree(ws, ignore_errors=True)
    brickyard(WORK, "init", str(ws)).check_returncode()
    config = ws / "brickyard.yaml"
    config.write_text(config.read_text() + f"\ndatabases:\n  warehouse:\n    url: {url}\n")
    (ws / "pipelines" / "export_events.yaml").write_text(EXPORT_PIPELINE)
    workspace = Workspace.open(ws)
    ids = pa.array(range(EXPORT_ROWS), pa.int64())
    workspace.lake.write("gold.events", pa.table({"id": ids, "name": pa.array([f"event {i}" for i in range(EXPORT_ROWS)])}))
    return ws


def sql_counts(url: str) -> tuple[int, int]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("events"):
                return 0, 0
            row = conn.execute(sa.text("SELECT count(*), count(DISTINCT id) FROM events")).one()
            return int(row[0]), int(row[1])
    finally:
        engine.dispose()


def restart_campaign(trials: int, rng: random.Random) -> Campaign:
    """PostgreSQL crashed and restarted at a random moment of `brickyard run export_events`."""
    import sqlalchemy as sa

    campaign = Campaign("restart", "PostgreSQL stopped like a crash and restarted during `brickyard run` of an export")
    server = postgres_server()
    server.start()
    try:
        ws = export_workspace(server.url)
        began = time.perf_counter()
        brickyard(ws, "run", "export_events").check_returncode()
        clean_seconds = time.perf_counter() - began
        campaign.fault += f" (a clean export run: {clean_seconds:.1f} s)"
        for trial in range(trials):
            engine = sa.create_engine(server.url)
            with engine.begin() as conn:
                conn.execute(sa.text("DROP TABLE IF EXISTS events"))
                conn.execute(sa.text("DROP TABLE IF EXISTS brickyard_export_batches"))
            engine.dispose()
            shutil.rmtree(ws / "lake" / "staging", ignore_errors=True)
            process = start(ws, "run", "export_events")
            time.sleep(rng.uniform(0.5, clean_seconds))
            server.stop("immediate")
            time.sleep(rng.uniform(0, 2))
            server.start()
            hit = process.wait() != 0
            problem = finish(ws, "export_events")
            if problem is None and sql_counts(server.url) != (EXPORT_ROWS, EXPORT_ROWS):
                rows, distinct = sql_counts(server.url)
                problem = f"events: {rows} rows, {distinct} distinct, expected {EXPORT_ROWS}"
            campaign.add(problem, hit)
    finally:
        server.destroy()
    return campaign


def report(campaigns: list[Campaign], clean_seconds: float) -> str:
    rows = []
    for campaign in campaigns:
        failures = ", ".join(f"{n}x {kind}" for kind, n in campaign.outcomes.items() if kind != "held") or "none"
        rows.append([campaign.name, campaign.fault, campaign.trials, campaign.hit, campaign.held, failures])
    facts = machine_facts() | versions("deltalake", "duckdb", "psycopg") | {"load": load_average()}
    return "\n".join([
        "## faults",
        "",
        f"Run {today()}: `.venv/bin/python bench/faults.py {' '.join(sys.argv[1:])}`",
        "",
        "```", *facts_lines(facts), "```",
        "",
        f"Data: {FILES} CSV files x {ROWS_PER_FILE:,} rows (1 in {BAD_EVERY} unparseable, to quarantine); "
        f"export of {EXPORT_ROWS:,} rows in COPY chunks of 5,000. A clean events run took {clean_seconds:.1f} s.",
        "",
        table(["campaign", "fault", "trials", "struck mid-run", "held", "failures"], rows, markdown=True),
        "",
        "Struck mid-run: the killed process had not exited yet; for the restart campaign, the "
        "interrupted run failed (a fault that the export's own retries absorbed is not counted). "
        "Held: after a plain re-run, every table held every row exactly once.",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=30, help="kill -9 trials")
    parser.add_argument("--restarts", type=int, default=10, help="PostgreSQL restart trials")
    parser.add_argument("--writers", type=int, default=20, help="two-writer trials")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--record", action="store_true", help="write the section into bench/RESULTS.md")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    WORK.mkdir(parents=True, exist_ok=True)
    clean_seconds = calibrate()
    print(f"a clean run of `events` takes {clean_seconds:.1f} s")
    campaigns = []
    for name, run_it in (("kill", lambda: kill_campaign(args.kills, clean_seconds, rng)),
                         ("writers", lambda: writers_campaign(args.writers)),
                         ("restart", lambda: restart_campaign(args.restarts, rng))):
        print(f"{name}: ", end="", flush=True)
        campaigns.append(run_it())
        print()
    section = report(campaigns, clean_seconds)
    print("\n" + section)
    if args.record:
        print(f"\nrecorded in {record_section('faults', section)}")
    if any(c.held != c.trials for c in campaigns):
        sys.exit(1)


if __name__ == "__main__":
    main()
