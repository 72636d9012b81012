"""featurestore: brickyard's point-in-time training-set join against Feast's offline stores.

    .venv/bin/python bench/featurestore.py [--feature-rows 2000000] [--entity-rows 500000]
        [--keys 100000] [--features 20] [--ttl-days 30] [--memory-rows 10000000]
        [--repeats 1] [--keep] [--record]

1. Makes Feast's own virtual environment, bench/.venvs/feast (git-ignored), when it is not
   there yet: `python -m venv` and `pip install 'feast[duckdb]' psutil` from PyPI (the
   latest release; Feast's pins clash with brickyard's, so it never enters the project venv).
2. Generates seeded synthetic data as Parquet in .bench/featurestore/ (`fs_data.generate`):
   --feature-rows rows of --keys entity ids with event times over a year and --features
   float columns; --entity-rows entity rows (id, timestamp, row_id), 5% of them with ids
   that have no feature row, 1% exactly on a feature row's time, 1% exactly TTL after one.
3. Computes the brute-force reference (`fs_data.reference_join`, numpy binary search) and
   checks it against a plain per-row loop (`fs_data.naive_join`) on a sample and on edge rows.
4. Runs the join as whole processes, --repeats rounds, the variants taking turns:
   - brickyard: bench/fs_brickyard_side.py in the project venv: `training_set.load`, what
     the `train` task runs for a `training_set:` block (DuckDB engine), over Delta tables
     made by a setup process beforehand (the feature table by a `features` task, which
     stores it in key and event-time order);
   - Feast, DuckDB offline store, on the generated file and on a copy sorted as brickyard
     stores it (`feast_duckdb_sorted`), and Feast, its default offline store (`dask`, alias
     `file`): bench/feast_side.py in Feast's venv, `get_historical_features(...).to_df()`.
   Each side times its join inside the process; the harness times the whole process and
   samples its peak RSS (process + children, psutil, every 20 ms).
5. Compares every value of every output with the reference (`fs_data.compare`) and reports
   the differences by kind: entity rows dropped, rows with values where none are live,
   rows whose difference Feast's inclusive TTL bound (age == TTL is live) explains.
6. Bars: brickyard's join >= 10x faster than Feast's default offline store and >= 3x faster
   than its DuckDB offline store (best join times, Feast's on whichever file order was
   faster for it; whole processes reported beside them),
   brickyard's values identical to the reference with no row dropped, and brickyard's join
   over --memory-rows feature rows under 2 GiB peak RSS.

--keep leaves .bench/featurestore/ (data and outputs) in place for a look afterwards;
--record replaces the "featurestore" section of bench/RESULTS.md. Exits 1 when a bar is
missed, or when there is no brickyard side to measure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fs_data  # noqa: E402
from common import (  # noqa: E402
    REPO,
    VENV_BIN,
    Run,
    facts_lines,
    human_bytes,
    load_average,
    machine_facts,
    measure,
    record_section,
    table,
    today,
    verdict,
    versions,
)

NAME = "featurestore"
WORK = REPO / ".bench" / NAME
FEAST_VENV = REPO / "bench" / ".venvs" / "feast"
FEAST_PYTHON = FEAST_VENV / "bin" / "python"
FEAST_REQUIREMENTS = ["feast[duckdb]", "psutil"]
FEAST_SIDE = REPO / "bench" / "feast_side.py"
BRICKYARD_SIDE = REPO / "bench" / "fs_brickyard_side.py"

DEFAULT_BAR = 10.0          # Feast default (dask) offline store join / brickyard join
DUCKDB_BAR = 3.0            # Feast DuckDB offline store join / brickyard join
MEMORY_BAR = 2 * 1024**3    # brickyard join over --memory-rows feature rows: peak RSS below 2 GiB
NAIVE_SAMPLE = 2000         # entity rows checked against the per-row loop (plus the edge rows)

VARIANTS = {
    "brickyard": "brickyard",
    "feast_duckdb": "Feast, DuckDB offline store",
    "feast_duckdb_sorted": "Feast, DuckDB offline store, feature file in key and time order",
    "feast_dask": "Feast, default offline store (dask, `type: file`)",
}
DUCKDB_VARIANTS = ("feast_duckdb", "feast_duckdb_sorted")  # the DuckDB bar is against the faster


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feature-rows", type=int, default=2_000_000)
    parser.add_argument("--entity-rows", type=int, default=500_000)
    parser.add_argument("--keys", type=int, default=100_000, help="distinct entity ids in the feature rows")
    parser.add_argument("--features", type=int, default=20, help="float feature columns")
    parser.add_argument("--ttl-days", type=float, default=30.0)
    parser.add_argument("--memory-rows", type=int, default=10_000_000,
                        help="feature rows of the memory check (brickyard only); 0 skips it")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of the three joins; the best counts")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a join process is killed")
    parser.add_argument("--skip", action="append", default=[], choices=sorted(VARIANTS),
                        help="leave a variant out (repeatable), e.g. to try the harness quickly")
    parser.add_argument("--keep", action="store_true", help="keep .bench/featurestore/ for the next run")
    parser.add_argument("--record", action="store_true", help="write the section into bench/RESULTS.md")
    return parser.parse_args(argv)


# --- Feast's environment ------------------------------------------------------------------


def ensure_feast_venv() -> Path:
    """Feast's own venv, made on first use from PyPI; returns its python."""
    if not FEAST_PYTHON.exists():
        print(f"making Feast's venv in {FEAST_VENV} (pip install {' '.join(FEAST_REQUIREMENTS)}) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(FEAST_VENV)], check=True)
        subprocess.run([str(FEAST_PYTHON), "-m", "pip", "install", "--quiet", *FEAST_REQUIREMENTS], check=True)
    return FEAST_PYTHON


# --- data and reference -------------------------------------------------------------------


def prepare_data(folder: Path, args: argparse.Namespace, feature_rows: int) -> tuple[fs_data.Data, float]:
    """Generate (or regenerate) the data set in `folder`; seconds taken."""
    started = time.perf_counter()
    print(f"generating {feature_rows:,} feature rows x {args.entity_rows:,} entity rows in {folder} ...", flush=True)
    data = fs_data.generate(
        folder, feature_rows=feature_rows, entity_rows=args.entity_rows, keys=args.keys,
        features=args.features, ttl_days=args.ttl_days,
    )
    return data, time.perf_counter() - started


@dataclass
class Reference:
    rows: np.ndarray            # per entity row, its feature row or -1 (the rule: age < TTL)
    inclusive: np.ndarray       # the same with Feast's rule (age <= TTL)
    seconds: float
    checked_rows: int


def build_reference(data: fs_data.Data) -> Reference:
    """The vectorised reference, checked against the per-row loop on a sample and the edges."""
    started = time.perf_counter()
    rows = fs_data.reference_join(data, data.ttl_s)
    seconds = time.perf_counter() - started
    inclusive = fs_data.reference_join(data, data.ttl_s, lower_inclusive=True)
    rng = np.random.default_rng(7)
    sample = [rng.choice(len(rows), min(NAIVE_SAMPLE, len(rows)), replace=False)]
    sample += [edge[:500] for edge in data.edge_rows.values()]
    checked = np.unique(np.concatenate(sample))
    for lower_inclusive, found in ((False, rows), (True, inclusive)):
        naive = fs_data.naive_join(data, data.ttl_s, checked.tolist(), lower_inclusive=lower_inclusive)
        wrong = np.flatnonzero(naive != found[checked])
        if len(wrong):
            raise SystemExit(f"reference and per-row loop disagree on entity rows {checked[wrong][:10].tolist()}")
    return Reference(rows, inclusive, seconds, len(checked))


# --- the joins ----------------------------------------------------------------------------


@dataclass
class Outcome:
    """One variant's run: the whole process, its own timings, and how its output compares."""

    run: Run
    inner: dict[str, Any]
    comparison: fs_data.Comparison
    killed: bool = False          # ran past --timeout: join_s is then a lower bound (the process wall)

    @property
    def join_s(self) -> float:
        return self.run.wall_s if self.killed else float(self.inner["join_s"])

    def seconds(self, value: float) -> str:
        return f">= {value:.0f} (killed)" if self.killed else f"{value:.2f}"


def brickyard_status() -> str | None:
    """None when the brickyard side can run; otherwise why not (shown in the report)."""
    if not BRICKYARD_SIDE.exists():
        return f"{BRICKYARD_SIDE.relative_to(REPO)} is missing"
    done = subprocess.run([str(VENV_BIN / "python"), str(BRICKYARD_SIDE), "--check"], capture_output=True, text=True)
    if done.returncode != 0:
        return (done.stdout + done.stderr).strip().splitlines()[-1] if (done.stdout + done.stderr).strip() else "unavailable"
    return None


def command_for(variant: str, data: fs_data.Data, ttl_days: float, out: Path, work: Path) -> list[str]:
    if variant == "brickyard":
        return [str(VENV_BIN / "python"), str(BRICKYARD_SIDE), "join", "--work", str(work), "--out", str(out)]
    store = "duckdb" if variant in DUCKDB_VARIANTS else variant.removeprefix("feast_")
    features = sorted_features(data) if variant == "feast_duckdb_sorted" else data.features_path
    return [str(FEAST_PYTHON), str(FEAST_SIDE), "--store", store, "--features", str(features),
            "--entities", str(data.entities_path), "--ttl-days", str(ttl_days), "--out", str(out)]


def sorted_features(data: fs_data.Data) -> Path:
    """The feature rows sorted by key and event time (the order brickyard's `features` task
    stores them in), as a Parquet file beside the generated one (written on first use)."""
    import pyarrow.parquet as pq

    path = data.features_path.with_name("features_sorted.parquet")
    if not path.exists():
        rows = pq.read_table(data.features_path).sort_by([("entity_id", "ascending"), ("event_ts", "ascending")])
        pq.write_table(rows, path, row_group_size=1_000_000)
    return path


def brickyard_setup(data: fs_data.Data, ttl_days: float, work: Path) -> float:
    """The brickyard side's workspace and Delta tables (a process of its own, untimed in
    the join); returns its wall seconds."""
    shutil.rmtree(work, ignore_errors=True)
    run = measure([
        str(VENV_BIN / "python"), str(BRICKYARD_SIDE), "setup", "--features", str(data.features_path),
        "--entities", str(data.entities_path), "--ttl-days", str(ttl_days), "--work", str(work),
    ]).check()
    return run.wall_s


def run_variant(variant: str, data: fs_data.Data, args: argparse.Namespace, folder: Path, reference: Reference) -> Outcome:
    """One run of `variant`, compared with the reference; a run past --timeout is killed
    and reported as such (every entity row counted as missing)."""
    out = folder / f"out_{variant}.parquet"
    out.unlink(missing_ok=True)
    run = measure(command_for(variant, data, args.ttl_days, out, folder / "brickyard_ws"), timeout_s=args.timeout)
    if not run.ok and run.wall_s >= args.timeout:
        rows = len(data.entity_key)
        return Outcome(run, {}, fs_data.Comparison(rows_in=rows, rows_out=0, missing=rows), killed=True)
    run.check()
    inner = json.loads(run.stdout.strip().splitlines()[-1])
    outcome = Outcome(run, inner, compare_output(data, reference, out))
    out.unlink(missing_ok=True)
    return outcome


def compare_output(data: fs_data.Data, reference: Reference, out: Path) -> fs_data.Comparison:
    import pyarrow.parquet as pq

    table_ = pq.read_table(out, columns=["row_id", *data.feature_names])
    row_id = table_.column("row_id").to_numpy()
    values = np.column_stack([
        table_.column(name).to_numpy(zero_copy_only=False).astype(np.float64) for name in data.feature_names
    ])
    return fs_data.compare(data, reference.rows, row_id, values, reference.inclusive)


def run_rounds(variants: list[str], data: fs_data.Data, args: argparse.Namespace, reference: Reference) -> dict[str, list[Outcome]]:
    """--repeats rounds, the variants taking turns, each checked against the reference."""
    found: dict[str, list[Outcome]] = {variant: [] for variant in variants}
    if "brickyard" in variants:
        print("  brickyard setup (workspace, Delta tables) ...", end=" ", flush=True)
        args.setup_s = brickyard_setup(data, args.ttl_days, WORK / "main" / "brickyard_ws")
        print(f"{args.setup_s:.2f} s", flush=True)
    for round_ in range(1, args.repeats + 1):
        for variant in variants:
            print(f"  [{round_}/{args.repeats}] {variant} ...", end=" ", flush=True)
            outcome = run_variant(variant, data, args, WORK / "main", reference)
            found[variant].append(outcome)
            c = outcome.comparison
            print(f"join {outcome.seconds(outcome.join_s)} s, process {outcome.seconds(outcome.run.wall_s)} s, "
                  f"peak {human_bytes(outcome.run.peak_rss)}, {c.rows_out:,} rows, {c.identical:,} identical", flush=True)
    return found


def run_memory_check(args: argparse.Namespace) -> tuple[fs_data.Data, Outcome, float] | None:
    """brickyard's join over --memory-rows feature rows (the same entity rows' shape)."""
    if args.memory_rows <= 0:
        return None
    folder = WORK / "memory"
    data, data_s = prepare_data(folder, args, args.memory_rows)
    reference = build_reference(data)
    setup_s = brickyard_setup(data, args.ttl_days, folder / "brickyard_ws")
    print(f"  memory check: brickyard over {args.memory_rows:,} feature rows ...", end=" ", flush=True)
    outcome = run_variant("brickyard", data, args, folder, reference)
    print(f"join {outcome.seconds(outcome.join_s)} s, peak {human_bytes(outcome.run.peak_rss)}", flush=True)
    return data, outcome, data_s + setup_s


# --- the report ---------------------------------------------------------------------------


def _best(outcomes: list[Outcome]) -> Outcome:
    return min(outcomes, key=lambda o: o.join_s)


def _runs(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def timing_table(found: dict[str, list[Outcome]]) -> str:
    rows = []
    for variant, outcomes in found.items():
        best = _best(outcomes)
        rows.append([
            VARIANTS[variant], best.seconds(best.join_s), _runs([o.join_s for o in outcomes]),
            best.seconds(min(o.run.wall_s for o in outcomes)), _runs([o.run.wall_s for o in outcomes]),
            human_bytes(max(o.run.peak_rss for o in outcomes)),
        ])
    return table(["variant", "join best s", "join runs s", "process best s", "process runs s", "peak RSS"], rows, markdown=True)


def values_table(found: dict[str, list[Outcome]], rows_in: int) -> str:
    rows = []
    for variant, outcomes in found.items():
        c = outcomes[-1].comparison
        if outcomes[-1].killed:
            rows.append([VARIANTS[variant], "killed at --timeout, no output", *["-"] * 10])
            continue
        edges = " / ".join(str(n) for n in c.edge_rows_differing.values())
        rows.append([
            VARIANTS[variant], f"{c.rows_out:,}", f"{c.missing:,}", f"{c.missing_reference_null:,}",
            f"{c.missing_twin_kept:,}", f"{c.duplicated + c.unknown:,}", f"{c.identical:,}",
            f"{c.value_not_expected:,}", f"{c.null_not_expected + c.other_values:,}",
            f"{c.explained_by_inclusive_ttl:,}", edges, "yes" if c.exact else "no",
        ])
    return table([
        "variant", "rows out", "rows dropped", "of which no live feature", "of which others: twin of a kept row",
        "extra rows", "rows identical", "values where none live", "other differing rows",
        "of differing: age == TTL", "edge rows differing (on time / at TTL)", "exact",
    ], rows, markdown=True)


def report(args: argparse.Namespace, found: dict[str, list[Outcome]], data: fs_data.Data, reference: Reference,
           data_s: float, memory: tuple[fs_data.Data, Outcome, float] | None, brickyard_missing: str | None,
           loads: tuple[str, str]) -> tuple[str, bool]:
    """The section as Markdown and whether every bar passed."""
    feast_inner = next((o[0].inner for v, o in found.items() if v.startswith("feast")), {})
    ratios: list[list[str]] = []
    passed: list[bool] = []
    by = found.get("brickyard")
    if by:
        b = _best(by)
        fastest_duckdb = min((v for v in DUCKDB_VARIANTS if v in found), key=lambda v: _best(found[v]).join_s, default=None)
        for variant in ("feast_dask", *DUCKDB_VARIANTS):
            if variant not in found:
                continue
            peer = _best(found[variant])
            ratio = peer.join_s / b.join_s
            shown = f"<= {ratio:.4f}x" if b.killed else (f">= {ratio:.2f}x" if peer.killed else f"{ratio:.2f}x")
            bar = DEFAULT_BAR if variant == "feast_dask" else DUCKDB_BAR
            ok = ratio >= bar and not b.killed
            counts = variant == "feast_dask" or variant == fastest_duckdb
            ratios.append([f"{VARIANTS[variant]} / brickyard, join", shown,
                           f">= {bar:g}x" if counts else "(info; the bar is against the faster DuckDB layout)",
                           verdict(ok) if counts else "-"])
            if counts:
                passed.append(ok)
            process = min(o.run.wall_s for o in found[variant]) / min(o.run.wall_s for o in by)
            ratios.append([f"{VARIANTS[variant]} / brickyard, whole process", f"{process:.2f}x", "(info)", "-"])
        exact = all(o.comparison.exact for o in by)
        ratios.append(["brickyard values identical to the reference, no row dropped", "yes" if exact else "no", "yes", verdict(exact)])
        passed.append(exact)
    if memory is not None:
        mem_data, mem_outcome, _ = memory
        ok = mem_outcome.run.peak_rss < MEMORY_BAR
        c = mem_outcome.comparison
        ratios.append([f"brickyard peak RSS, {len(mem_data.feature_key):,} feature rows", human_bytes(mem_outcome.run.peak_rss),
                       f"< {human_bytes(MEMORY_BAR)}", verdict(ok)])
        ratios.append([f"brickyard values identical, {len(mem_data.feature_key):,} feature rows",
                       "yes" if c.exact else "no", "yes", verdict(c.exact)])
        passed += [ok, c.exact]
    facts = {
        **machine_facts(),
        **{f"{k} (brickyard side)": v for k, v in versions("brickyard", "duckdb", "deltalake", "pyarrow", "pandas", "numpy").items()},
        **{f"{k} (Feast venv)": v for k, v in feast_inner.get("versions", {}).items()},
        "commit": _commit(),
        "load avg": f"{loads[0]} before, {loads[1]} after (the machine is shared with other work)",
    }
    live = int((reference.rows >= 0).sum())
    command = (
        f".venv/bin/python bench/featurestore.py --feature-rows {args.feature_rows} --entity-rows {args.entity_rows} "
        f"--keys {args.keys} --features {args.features} --ttl-days {args.ttl_days:g} --memory-rows {args.memory_rows} "
        f"--repeats {args.repeats} --timeout {args.timeout:g}" + "".join(f" --skip {s}" for s in args.skip)
    )
    lines = [
        f"## {NAME}",
        "",
        f"Run {today()}: `{command}`",
        "",
        "```",
        *facts_lines(facts),
        "```",
        "",
        f"Data (seeded, generated in {data_s:.1f} s): {len(data.feature_key):,} feature rows of {args.keys:,} entity ids "
        f"(event times at whole seconds over 2025, unique per id, {args.features} float64 features) and "
        f"{len(data.entity_key):,} entity rows (5% with ids that have no feature row, "
        f"{len(next(iter(data.edge_rows.values()))):,} exactly on a feature row's time, as many exactly TTL after one), "
        f"Parquet, timestamps UTC. TTL {args.ttl_days:g} days. The reference (numpy binary search, {reference.seconds:.2f} s; "
        f"checked against a per-row loop on {reference.checked_rows:,} rows) finds a live feature row for "
        f"{live:,} entity rows and none for {len(reference.rows) - live:,}.",
        "",
        "Join = the point-in-time join inside the process, from the entity rows in memory to the joined rows in memory "
        "(Feast: `get_historical_features(entity_df, refs).to_df()`, its registry already applied, the entity rows "
        "already a pandas frame; brickyard: `brickyard.ml.training_set.load`, what the `train` task runs for a "
        "`training_set:` block: names checked, `Engine.as_of_join` on DuckDB reading the entity rows and the feature "
        "rows from their Delta tables, the rows as a pandas frame). Process = the whole command: start-up, imports, writing the "
        "result to Parquet, and for Feast building its repository and `apply`; brickyard's process opens the "
        "workspace and reads the feature table's declaration (bench/fs_brickyard_side.py `join`), its workspace and "
        "Delta tables having been made by a process before, the feature table by a `features` task as a user's is "
        "(stored in key and event-time order; Feast's DuckDB store ran on the generator's file and on a copy in that "
        "order, and the bar counts the faster) "
        + (f"({getattr(args, 'setup_s', 0.0):.1f} s, not counted: Feast reads the Parquet file itself). " if "brickyard" in found else "(not run). ")
        + f"Best of {args.repeats}, the variants taking turns. Peak RSS: process + children, sampled every 20 ms.",
        "",
        timing_table(found),
        "",
        "Every value of every output against the reference (rows matched by `row_id`; NaN = null):",
        "",
        values_table(found, len(data.entity_key)),
        "",
        "Where the differences come from (Feast 0.67 source): the default store left-joins every feature row of "
        "the key to each entity row, then keeps the rows inside the TTL window (`_filter_ttl` in "
        "`offline_stores/dask.py`), so an entity row whose key has feature rows but none live is dropped (only keys "
        "with no feature row at all survive, with nulls); it then keeps one row per (keys, entity timestamp) "
        "(`_drop_duplicates`), so two entity rows with the same key and timestamp become one. Both Feast stores "
        "count a feature row exactly TTL old as live (`event_ts >= t - ttl` in dask.py; `event_ts + ttl >= t` in "
        "`offline_stores/ibis.py`), where the rule here (issue 13) has it expired (`event_ts > t - ttl`): "
        "the column 'age == TTL' counts the differing rows that Feast's inclusive bound accounts for exactly.",
        "",
    ]
    if ratios:
        lines += [table(["ratio", "value", "bar", "verdict"], ratios, markdown=True), ""]
    if brickyard_missing:
        lines += [f"No brickyard figure: {brickyard_missing}. The bars need it and are not met.", ""]
        passed.append(False)
    if memory is not None:
        mem_data, mem_outcome, mem_data_s = memory
        lines += [
            f"Memory check: brickyard's join over {len(mem_data.feature_key):,} feature rows x {len(mem_data.entity_key):,} "
            f"entity rows (same generator; generated and loaded into Delta in {mem_data_s:.1f} s): join {mem_outcome.seconds(mem_outcome.join_s)} s, process "
            f"{mem_outcome.seconds(mem_outcome.run.wall_s)} s, peak RSS {human_bytes(mem_outcome.run.peak_rss)}.",
            "",
        ]
    return "\n".join(lines), bool(passed) and all(passed)


def _commit() -> str:
    """The checkout's commit (and whether it has uncommitted changes)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    variants = [v for v in VARIANTS if v not in args.skip]
    brickyard_missing = None
    if "brickyard" in variants:
        brickyard_missing = brickyard_status()
        if brickyard_missing:
            print(f"brickyard side unavailable: {brickyard_missing}", flush=True)
            variants.remove("brickyard")
    if any(v.startswith("feast") for v in variants):
        ensure_feast_venv()
    try:
        data, data_s = prepare_data(WORK / "main", args, args.feature_rows)
        reference = build_reference(data)
        print(f"reference: {reference.seconds:.2f} s, checked on {reference.checked_rows:,} rows", flush=True)
        before = load_average()
        found = run_rounds(variants, data, args, reference)
        memory = run_memory_check(args) if "brickyard" in variants else None
        section, passed = report(args, found, data, reference, data_s, memory, brickyard_missing, (before, load_average()))
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
