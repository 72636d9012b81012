"""The demo's taxi pipeline on both engines: DuckDB (embedded) and Spark (local mode).

For each size (default 1M and 5M synthetic TLC rows, plus the real 2017 sample) the same
raw files are landed in two fresh workspaces and `brickyard run taxi_trips --engine E`
runs as a whole process in each, in turn. Printed per task: wall time (from the run's
records) and peak resident memory of the process tree (brickyard + Spark's JVM) while the
task ran; per run: whole-process wall time and peak memory; and the Spark/DuckDB ratios.
The silver and gold tables of the two runs are checked to hold the same number of rows.

    .venv/bin/python bench/engines.py                 # 1M and 5M rows
    .venv/bin/python bench/engines.py --rows 200000   # a quick look
    .venv/bin/python bench/engines.py --record        # also write bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    REPO,
    VENV_BIN,
    _tree_rss,
    facts_lines,
    human_bytes,
    java_version,
    load_average,
    machine_facts,
    record_section,
    table,
    today,
    versions,
)

WORK = REPO / ".bench" / "engines"
ENGINES = ("duckdb", "spark")
SYNTHETIC = "raw/taxi/yellow_tripdata_2017-01_synthetic.csv"
SAMPLE = "raw/taxi/sample_2017/nyc_taxi_2017_sample.csv"
CHECKED_TABLES = ("bronze.taxi_trips", "silver.taxi_trips", "silver.taxi_trips__quarantine", "gold.taxi_daily")


@dataclass
class EngineRun:
    """One `brickyard run taxi_trips` on one engine."""

    engine: str
    rows: int
    wall_s: float
    peak_rss: int
    tasks: list[tuple[str, float, int]] = field(default_factory=list)  # name, wall s, peak rss
    counts: dict[str, int] = field(default_factory=dict)


def data_file(rows: int) -> Path:
    """The synthetic CSV of `rows` rows (made once, kept under .bench/engines/data/)."""
    from brickyard.demo.synth import write_taxi_csv

    path = WORK / "data" / f"taxi_{rows}.csv"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"writing {rows:,} synthetic rows to {path} ...", flush=True)
        partial = path.with_suffix(".partial")
        write_taxi_csv(partial, rows)
        partial.rename(path)
    return path


def workspace(csv: Path, engine: str, rows: int) -> Path:
    """A fresh demo workspace (pipelines, SQL, contracts) with the raw files landed."""
    from brickyard.workspace import Workspace

    root = WORK / f"ws_{engine}_{rows}"
    if root.exists():
        shutil.rmtree(root)
    Workspace.init(root, name=f"bench_engines_{engine}")
    shipped = resources.files("brickyard.demo")
    with resources.as_file(shipped / "workspace") as source:
        for folder in ("pipelines", "sql", "contracts"):
            for path in Path(source, folder).glob("*"):
                shutil.copyfile(path, root / folder / path.name)
    synthetic = root / "lake" / SYNTHETIC
    synthetic.parent.mkdir(parents=True, exist_ok=True)
    synthetic.hardlink_to(csv)
    sample = root / "lake" / SAMPLE
    sample.parent.mkdir(parents=True, exist_ok=True)
    with resources.as_file(shipped / "data" / "nyc_taxi_2017_sample.csv") as real:
        shutil.copyfile(real, sample)
    return root


def run_pipeline(root: Path, engine: str, rows: int) -> EngineRun:
    """Run the pipeline as a whole process, sampling the tree's memory with timestamps."""
    from brickyard.runtime.state import StateStore
    from brickyard.workspace import Workspace

    command = [str(VENV_BIN / "brickyard"), "run", "taxi_trips", "--engine", engine, "--workspace", str(root)]
    samples: list[tuple[datetime, int]] = []
    done = threading.Event()
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def sample() -> None:
        try:
            tree = psutil.Process(process.pid)
        except psutil.Error:
            return
        while not done.is_set():
            samples.append((datetime.now(UTC), _tree_rss(tree)))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{engine} run failed ({process.returncode}):\n{stderr[-3000:]}")
    ws = Workspace.open(root)
    store = StateStore(ws.state_url)
    run = store.list_runs("taxi_trips", limit=1)[0]
    result = EngineRun(engine, rows, wall, max((rss for _, rss in samples), default=0))
    for attempt in store.attempts(run.id):
        if attempt.started_at is None or attempt.ended_at is None:
            continue
        begin, end = _utc(attempt.started_at), _utc(attempt.ended_at)
        peak = max((rss for stamp, rss in samples if begin <= stamp <= end), default=0)
        result.tasks.append((attempt.task, attempt.wall_seconds or (end - begin).total_seconds(), peak))
    for name in CHECKED_TABLES:
        result.counts[name] = ws.lake.delta(name).count() if ws.lake.exists(name) else 0
    return result


def _utc(stamp: datetime) -> datetime:
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def report(pairs: list[tuple[EngineRun, EngineRun]]) -> str:
    """The tables: per task and per run, both engines and the Spark/DuckDB ratio."""
    lines = []
    for duck, spark in pairs:
        lines.append(f"\n### {duck.rows:,} synthetic rows (+ 999 real 2017 rows)\n")
        rows = []
        spark_tasks = {name: (wall, rss) for name, wall, rss in spark.tasks}
        for name, wall, rss in duck.tasks:
            s_wall, s_rss = spark_tasks.get(name, (float("nan"), 0))
            rows.append([name, f"{wall:.2f}", f"{s_wall:.2f}", f"{s_wall / wall:.1f}x", human_bytes(rss), human_bytes(s_rss)])
        rows.append([
            "whole process", f"{duck.wall_s:.2f}", f"{spark.wall_s:.2f}", f"{spark.wall_s / duck.wall_s:.1f}x",
            human_bytes(duck.peak_rss), human_bytes(spark.peak_rss),
        ])
        lines.append(table(["task", "duckdb s", "spark s", "spark/duckdb", "duckdb peak RSS", "spark peak RSS"], rows, markdown=True))
        same = duck.counts == spark.counts
        counted = ", ".join(f"{name} {count:,}" for name, count in duck.counts.items())
        lines.append(f"\nrows: {counted} — {'the same on both engines' if same else 'DIFFERENT on spark: ' + str(spark.counts)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--record", action="store_true", help="write the results into bench/RESULTS.md")
    args = parser.parse_args(argv)
    pairs = []
    for rows in args.rows:
        csv = data_file(rows)
        results = {}
        for engine in ENGINES:
            print(f"{rows:,} rows on {engine} ...", flush=True)
            results[engine] = run_pipeline(workspace(csv, engine, rows), engine, rows)
            print(f"  {results[engine].wall_s:.1f} s, peak {human_bytes(results[engine].peak_rss)}", flush=True)
        pairs.append((results["duckdb"], results["spark"]))
    text = report(pairs)
    facts = {
        **machine_facts(),
        **versions("duckdb", "deltalake", "pyspark", "sqlglot"),
        "java": java_version(),
        "load average": load_average(),
    }
    print(text)
    print("\n" + "\n".join(facts_lines(facts)))
    if args.record:
        section = (
            f"## Engines\n\nThe demo taxi pipeline on DuckDB and on Spark (`bench/engines.py`, {today()}): "
            "`brickyard run taxi_trips --engine duckdb|spark`, each a whole process on the same raw files; "
            "per-task wall time from the run's records, peak RSS of brickyard plus Spark's JVM while the "
            "task ran (the JVM keeps what it took, so Spark's later tasks show the earlier peak). "
            "Spark's session start (~10-15 s) falls in its first task.\n"
            + text
            + "\n\n"
            + "\n".join(facts_lines(facts))
            + "\n"
        )
        print(f"recorded in {record_section('Engines', section)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
