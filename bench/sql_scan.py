"""sql_scan: `brickyard sql` over a raw taxi CSV, against plain DuckDB and PySpark local mode.

    .venv/bin/python bench/sql_scan.py [--rows 5000000] [--repeats 3] [--keep] [--record]

1. Makes a workspace in .bench/sql_scan/ws (gitignored) with a synthetic taxi CSV of --rows
   rows in lake/raw/taxi/ (reused when a kept workspace has the same row count).
2. Times one group-by over the CSV as whole commands (process wall, start-up included),
   best of --repeats, the variants taking turns: `brickyard sql`, `python -c` with plain DuckDB, and a PySpark
   local[*] script (its session start and query are also timed inside the process).
3. Prints rows/s and the ratios against the bars: brickyard >= 10x faster than PySpark,
   and DuckDB time / brickyard time >= 0.8.
4. Measures the peak RSS (process + children, sampled every 20 ms) of `brickyard sql` writing
   every row to Parquet and to CSV; bar: under 50% of the CSV's size.

--keep leaves .bench/sql_scan/ (workspace and outputs) in place; otherwise it is removed at
the end. --record replaces the "sql_scan" section of bench/RESULTS.md with this run's.
Exits 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    REPO,
    VENV_BIN,
    Runs,
    interleaved,
    facts_lines,
    human_bytes,
    human_rate,
    java_version,
    load_average,
    machine_facts,
    measure,
    record_section,
    table,
    today,
    verdict,
    versions,
)

NAME = "sql_scan"
WORK = REPO / ".bench" / NAME
CSV_NAME = "yellow_tripdata_2017-01_synthetic.csv"
QUERY_TEMPLATE = (
    "SELECT passenger_count, count(*), avg(fare_amount), avg(trip_distance) "
    "FROM read_csv('{source}') GROUP BY 1"
)
LAKE_QUERY = QUERY_TEMPLATE.format(source="raw/taxi/*.csv")
ALL_ROWS_QUERY = "SELECT * FROM read_csv('raw/taxi/*.csv')"

SPARK_BAR = 10.0   # brickyard at least 10x faster than PySpark (process wall)
DUCKDB_BAR = 0.8   # duckdb_time / brickyard_time at least 0.8
MEMORY_BAR = 0.5   # peak RSS under half the CSV's size

# Plain DuckDB, the way a user would write it: default connection settings, absolute path.
DUCKDB_SCRIPT = """\
import sys, duckdb
rows = duckdb.connect().sql(sys.argv[1]).fetchall()
print(sum(r[1] for r in rows))
"""

# The same group-by in PySpark local mode. The schema is given (inferSchema would scan the
# whole file once more before the query) with the types DuckDB's sniffer picks for this
# file: BIGINT -> long, DOUBLE -> double, VARCHAR -> string, TIMESTAMP -> timestamp
# (tpep_pickup_datetime holds a few unparseable values, so both read it as a string).
SPARK_SCHEMA = (
    "VendorID long, tpep_pickup_datetime string, tpep_dropoff_datetime timestamp, "
    "passenger_count long, trip_distance double, RatecodeID long, store_and_fwd_flag string, "
    "PULocationID long, DOLocationID long, payment_type long, fare_amount double, extra double, "
    "mta_tax double, tip_amount double, tolls_amount double, improvement_surcharge double, "
    "total_amount double"
)
SPARK_SCRIPT = textwrap.dedent(
    """\
    import json, sys, time
    t0 = time.perf_counter()
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.master("local[*]").appName("sql_scan").getOrCreate()
    t1 = time.perf_counter()
    spark.read.csv(sys.argv[1], header=True, inferSchema=False, schema=sys.argv[2]) \\
        .createOrReplaceTempView("taxi")
    rows = spark.sql(sys.argv[3]).collect()
    t2 = time.perf_counter()
    spark.stop()
    print(json.dumps({"session_s": t1 - t0, "query_s": t2 - t1, "rows": sum(r[1] for r in rows)}))
    """
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows in the synthetic CSV")
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant; the best counts")
    parser.add_argument("--keep", action="store_true", help="keep .bench/sql_scan/ for the next run")
    parser.add_argument("--record", action="store_true", help="write the section into bench/RESULTS.md")
    return parser.parse_args(argv)


def prepare_workspace(rows: int) -> tuple[Path, Path]:
    """The bench workspace and its CSV, made (or reused when its row count matches)."""
    from brickyard.demo.synth import write_taxi_csv
    from brickyard.workspace import Workspace

    ws = WORK / "ws"
    csv = ws / "lake" / "raw" / "taxi" / CSV_NAME
    stamp = ws / ".brickyard" / "bench_rows"
    if csv.exists() and stamp.exists() and stamp.read_text() == str(rows):
        print(f"reusing {csv} ({rows:,} rows, {human_bytes(csv.stat().st_size)})")
        return ws, csv
    if ws.exists():
        shutil.rmtree(ws)
    Workspace.init(ws, name="bench_sql_scan")
    csv.parent.mkdir(parents=True, exist_ok=True)
    print(f"writing {rows:,} synthetic rows to {csv} ...", flush=True)
    write_taxi_csv(csv, rows)
    stamp.write_text(str(rows))
    print(f"  {human_bytes(csv.stat().st_size)}")
    return ws, csv


def bench_aggregation(ws: Path, csv: Path, rows: int, repeats: int) -> dict[str, object]:
    """Time the group-by as brickyard, plain DuckDB and PySpark commands (round-robin),
    and the bare start-up of brickyard and of DuckDB for reference."""
    python = str(VENV_BIN / "python")
    brickyard = str(VENV_BIN / "brickyard")
    script = WORK / "spark_groupby.py"
    script.write_text(SPARK_SCRIPT)
    spark_query = QUERY_TEMPLATE.replace("read_csv('{source}')", "taxi")
    print(f"group-by, {repeats} rounds:", flush=True)
    found: dict[str, object] = dict(interleaved(repeats, {
        "brickyard": [brickyard, "sql", LAKE_QUERY, "--workspace", ws],
        "duckdb": [python, "-c", DUCKDB_SCRIPT, QUERY_TEMPLATE.format(source=csv.resolve())],
        "spark": [python, script, str(csv.resolve()), SPARK_SCHEMA, spark_query],
        "brickyard_startup": [brickyard, "sql", "SELECT 1", "--workspace", ws],
        "duckdb_startup": [python, "-c", "import duckdb; duckdb.connect().sql('SELECT 1').fetchall()"],
    }))
    by: Runs = found["brickyard"]  # type: ignore[assignment]
    if "passenger_count" not in by.best.stdout:
        raise RuntimeError(f"unexpected brickyard output:\n{by.best.stdout}")
    dd: Runs = found["duckdb"]  # type: ignore[assignment]
    for run in dd.runs:
        _check_rows("duckdb", int(run.stdout.strip().splitlines()[-1]), rows)
    sp: Runs = found["spark"]  # type: ignore[assignment]
    inner = [json.loads(run.stdout.strip().splitlines()[-1]) for run in sp.runs]
    for figures in inner:
        _check_rows("pyspark", figures["rows"], rows)
    found["spark_session"] = [f["session_s"] for f in inner]
    found["spark_query"] = [f["query_s"] for f in inner]
    return found


def _check_rows(name: str, counted: int, rows: int) -> None:
    """Every variant must have counted every row of the file."""
    if counted != rows:
        raise RuntimeError(f"{name} counted {counted} rows, expected {rows}")


def bench_memory(ws: Path, csv: Path) -> list[tuple[str, object]]:
    """Peak RSS of writing every row to Parquet and CSV with `brickyard sql --out`
    (and, for reference, with plain DuckDB's COPY)."""
    out = WORK / "out"
    out.mkdir(parents=True, exist_ok=True)
    brickyard = str(VENV_BIN / "brickyard")
    results = []
    for fmt in ("parquet", "csv"):
        target = out / f"all.{fmt}"
        print(f"brickyard sql 'SELECT * ...' --format {fmt} --out {target} ...", flush=True)
        run = measure([brickyard, "sql", ALL_ROWS_QUERY, "--format", fmt, "--out", target, "--workspace", ws]).check()
        results.append((f"brickyard sql --format {fmt} --out", run, target.stat().st_size))
    target = out / "duckdb_all.parquet"
    copy = f"COPY (SELECT * FROM read_csv('{csv.resolve()}')) TO '{target}' (FORMAT parquet)"
    print("plain duckdb COPY ... TO parquet (reference) ...", flush=True)
    run = measure([str(VENV_BIN / "python"), "-c", f"import duckdb; duckdb.connect().execute({copy!r})"]).check()
    results.append(("plain duckdb COPY TO parquet (reference)", run, target.stat().st_size))
    return results


def _s(seconds: float) -> str:
    return f"{seconds:.2f}"


def _runs(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def report(
    args: argparse.Namespace, csv: Path, agg: dict[str, object], mem: list, load: tuple[str, str]
) -> tuple[str, bool]:
    """The section as Markdown (also readable as plain text) and whether every bar passed."""
    rows = args.rows
    csv_size = csv.stat().st_size
    by: Runs = agg["brickyard"]  # type: ignore[assignment]
    dd: Runs = agg["duckdb"]  # type: ignore[assignment]
    sp: Runs = agg["spark"]  # type: ignore[assignment]
    session = min(agg["spark_session"])  # type: ignore[arg-type]
    query = min(agg["spark_query"])  # type: ignore[arg-type]
    by_s, dd_s, sp_s = by.best.wall_s, dd.best.wall_s, sp.best.wall_s
    by_start: Runs = agg["brickyard_startup"]  # type: ignore[assignment]
    dd_start: Runs = agg["duckdb_startup"]  # type: ignore[assignment]

    timing = table(
        ["command", "best s", f"runs s (of {args.repeats})", "rows/s", "peak RSS"],
        [
            ["brickyard sql (console script)", _s(by_s), _runs(by.walls), human_rate(rows / by_s), human_bytes(by.best.peak_rss)],
            ["plain duckdb (python -c)", _s(dd_s), _runs(dd.walls), human_rate(rows / dd_s), human_bytes(dd.best.peak_rss)],
            ["pyspark local[*], whole process", _s(sp_s), _runs(sp.walls), human_rate(rows / sp_s), human_bytes(sp.best.peak_rss)],
            ["  of which session start (import + getOrCreate)", _s(session), _runs(agg["spark_session"]), "-", "-"],  # type: ignore[arg-type]
            ["  of which query (read + group-by + collect)", _s(query), _runs(agg["spark_query"]), human_rate(rows / query), "-"],  # type: ignore[arg-type]
            ["start-up only: brickyard sql 'SELECT 1'", _s(by_start.best.wall_s), _runs(by_start.walls), "-", human_bytes(by_start.best.peak_rss)],
            ["start-up only: python -c 'import duckdb; SELECT 1'", _s(dd_start.best.wall_s), _runs(dd_start.walls), "-", human_bytes(dd_start.best.peak_rss)],
        ],
        markdown=True,
    )
    spark_ratio, spark_query_ratio, duckdb_ratio = sp_s / by_s, query / by_s, dd_s / by_s
    ratios = [
        ["pyspark process wall / brickyard", f"{spark_ratio:.3f}x", f">= {SPARK_BAR:g}x", verdict(spark_ratio >= SPARK_BAR)],
        ["pyspark query only / brickyard", f"{spark_query_ratio:.3f}x", "(info)", "-"],
        ["duckdb / brickyard", f"{duckdb_ratio:.3f}x", f">= {DUCKDB_BAR:g}x", verdict(duckdb_ratio >= DUCKDB_BAR)],
    ]
    passed = [spark_ratio >= SPARK_BAR, duckdb_ratio >= DUCKDB_BAR]
    memory_rows = []
    for label, run, size in mem:
        share = run.peak_rss / csv_size
        is_bar = label.startswith("brickyard")
        if is_bar:
            passed.append(share < MEMORY_BAR)
        memory_rows.append([
            label, _s(run.wall_s), human_bytes(run.peak_rss), f"{share:.0%}", human_bytes(size),
            verdict(share < MEMORY_BAR) if is_bar else "(info)",
        ])
    memory = table(
        ["all rows out", "wall s", "peak RSS", "of CSV size", "output size", f"bar < {MEMORY_BAR:.0%}"],
        memory_rows,
        markdown=True,
    )
    facts = {**machine_facts(), **versions("duckdb", "pyspark", "brickyard", "pyarrow"), "java": java_version()}
    command = f".venv/bin/python bench/sql_scan.py --rows {rows}" + (f" --repeats {args.repeats}" if args.repeats != 3 else "")
    text = "\n".join([
        f"## {NAME}",
        "",
        f"Run {today()}: `{command}`",
        "",
        "```",
        *facts_lines(facts),
        f"{'load':<9}  1/5/15-min load average {load[0]} at the start, {load[1]} at the end (other work on the machine)",
        f"{'data':<9}  {rows:,} synthetic taxi rows, {human_bytes(csv_size)} CSV ({csv_size:,} bytes), page-cached",
        "```",
        "",
        f"Query: `{LAKE_QUERY}`. Whole commands, wall time from process start to exit, best of {args.repeats}",
        "(run round-robin, so load from elsewhere hits every variant alike);",
        "peak RSS sums the process and its children (the JVM for PySpark), sampled every 20 ms.",
        "PySpark reads with an explicit schema (inferSchema would scan the file twice) matching DuckDB's sniffed types.",
        "",
        timing,
        "",
        table(["ratio", "value", "bar", "verdict"], ratios, markdown=True),
        "",
        f"Every row out with `brickyard sql \"{ALL_ROWS_QUERY}\" --format F --out FILE` (one run each):",
        "",
        memory,
    ])
    return text, all(passed)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        ws, csv = prepare_workspace(args.rows)
        load_before = load_average()
        agg = bench_aggregation(ws, csv, args.rows, args.repeats)
        mem = bench_memory(ws, csv)
        section, passed = report(args, csv, agg, mem, (load_before, load_average()))
    finally:
        if not args.keep:
            shutil.rmtree(WORK, ignore_errors=True)
    print()
    print(section)
    if args.record:
        print(f"\nrecorded in {record_section(NAME, section)}")
    print("\nall bars passed" if passed else "\nsome bars FAILED")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
