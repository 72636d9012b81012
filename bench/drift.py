"""drift: brickyard's drift statistics against Evidently's DataDriftPreset and a plain scipy floor.

    .venv/bin/python bench/drift.py [--rows 100000] [--pairs 7] [--evidently-runs 3]
                                    [--big-rows 3000000] [--big-columns 100] [--keep] [--record]

1. Generates a seeded reference and current table of --rows rows x 20 columns (14 numeric:
   normal, lognormal, uniform, Poisson counts, exponential, beta, one with nulls; 6
   categorical, one with 200 values), each drawn afresh for the current table, with drift
   injected in 7 columns (a mean shift, a doubled spread, a Poisson rate up by half, a moved
   uniform range, a null rate from 5% to 30%, changed category shares, a new category) and
   a tiny shift (0.03 sd) in one more that no monitor should call drift. Both are written to
   Parquet under .bench/drift/ (the Evidently side reads them there).
2. In one process, in --pairs back-to-back pairs (order alternating), on the same in-memory
   arrays:
   - brickyard: `brickyard.monitoring.profile` of the reference (the baseline a train task
     records) + `compare` of the current table (PSI, KS, null rate and range per numeric
     column; chi-square, Jensen-Shannon and null rate per categorical one), threads over columns;
   - the floor: straight numpy/scipy, one column after the other, written for speed: each
     numeric column sorted once, `scipy.stats.ks_2samp` on the sorted arrays + PSI over the
     reference's deciles read off them; `np.unique` counts of the text columns (fixed-width
     numpy strings) + `scipy.stats.chisquare` + `scipy.spatial.distance.jensenshannon`.
3. Evidently (latest release, in its own venv bench/.venvs/evidently, made with
   `python -m venv bench/.venvs/evidently && bench/.venvs/evidently/bin/pip install evidently`)
   runs `Report([DataDriftPreset()])` on the same Parquet files in a subprocess
   (bench/drift_evidently.py), --evidently-runs times. Times are in-process compute (data
   already in memory, imports and loading apart and reported), best of the runs.
4. Verdicts: the drifted columns of brickyard (defaults: PSI > 0.2 numeric, JS > 0.1
   categorical, null rate up > 0.05, > 1% out of range) and of Evidently (its defaults at
   this size: normed Wasserstein >= 0.1 numeric, JS >= 0.1 categorical), against each other
   and against the injected drift.
5. Bounded memory: a subprocess builds the baseline of a --big-rows x --big-columns reference
   and compares a current table of the same size, both streamed from Parquet in record
   batches (numeric edges from the reference's first 200,000 rows); its peak RSS (psutil,
   sampled every 20 ms) is the figure.
6. Bars: Evidently best / brickyard best >= 10x (all 20 columns); brickyard / floor <= 1.5x
   on the 14 numeric columns (the KS+PSI floor; median of the pairs' ratios; the whole
   table's ratio, categorical columns included, is shown too); peak RSS of the big run < 2 GiB.

--record replaces the "drift" section of bench/RESULTS.md with this run's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    REPO,
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

NAME = "drift"
DATA = REPO / ".bench" / "drift"
EVIDENTLY_PYTHON = REPO / "bench" / ".venvs" / "evidently" / "bin" / "python"
SAMPLE_ROWS = 200_000
RSS_LIMIT = 2 * 1024**3
INJECTED = {
    "n0": "mean +0.8 sd",
    "n5": "spread x2",
    "n7": "range moved +0.3",
    "n9": "Poisson rate 3 -> 4.5",
    "n12": "nulls 5% -> 30%",
    "c0": "shares changed",
    "c2": "new category (20%)",
}
SUBTLE = {"n1": "mean +0.03 sd"}
CATEGORIES = {
    "c0": (["a", "b", "c"], [0.5, 0.3, 0.2]),
    "c1": (["x", "y"], [0.7, 0.3]),
    "c2": ([f"k{i}" for i in range(6)], [0.3, 0.2, 0.2, 0.1, 0.1, 0.1]),
    "c3": ([f"r{i}" for i in range(12)], None),
    "c4": (["yes", "no", "maybe"], [0.45, 0.45, 0.1]),
    "c5": ([f"z{i:03d}" for i in range(200)], None),
}


# --- data -----------------------------------------------------------------------------------


def make_table(rows: int, seed: int, drifted: bool) -> pa.Table:
    """The 20-column table; `drifted`: with the injected drift (see the module text)."""
    rng = np.random.default_rng(seed)
    d = drifted
    columns: dict[str, Any] = {
        "n0": rng.normal(10 + (0.8 * 2 if d else 0), 2, rows),
        "n1": rng.normal(0 + (0.03 if d else 0), 1, rows),
        "n2": rng.normal(-5, 0.5, rows),
        "n3": rng.normal(100, 15, rows),
        "n4": rng.normal(0, 3, rows),
        "n5": rng.lognormal(0, 0.5, rows) * (2 if d else 1),
        "n6": rng.lognormal(1, 0.3, rows),
        "n7": rng.uniform(0.3 if d else 0, 1.3 if d else 1, rows),
        "n8": rng.uniform(-1, 1, rows),
        "n9": rng.poisson(4.5 if d else 3, rows).astype(np.float64),
        "n10": rng.poisson(10, rows).astype(np.float64),
        "n11": rng.exponential(2, rows),
        "n12": np.where(rng.random(rows) < (0.30 if d else 0.05), np.nan, rng.normal(50, 5, rows)),
        "n13": rng.beta(2, 5, rows),
    }
    for name, (values, shares) in CATEGORIES.items():
        if d and name == "c0":
            shares = [0.3, 0.3, 0.4]
        picked = rng.choice(values, rows, p=shares)
        if d and name == "c2":
            picked = np.where(rng.random(rows) < 0.2, "k_new", picked)
        columns[name] = picked
    arrays = {
        name: pa.array(values, from_pandas=True) if values.dtype.kind == "f" else pa.array(values.tolist(), pa.string())
        for name, values in columns.items()
    }
    return pa.table(arrays)


def numeric_names(schema: pa.Schema) -> list[str]:
    return [field.name for field in schema if pa.types.is_floating(field.type)]


def categorical_names(schema: pa.Schema) -> list[str]:
    return [field.name for field in schema if not pa.types.is_floating(field.type)]


def write_big(path: Path, rows: int, columns: int, seed: int, drifted: bool) -> None:
    """A wide table written in 100k-row row groups: `columns` - 10 numeric, 10 categorical;
    with `drifted`, every tenth numeric column is shifted by one sd."""
    numeric = columns - 10
    rng = np.random.default_rng(seed)
    schema = pa.schema([*(pa.field(f"n{i}", pa.float64()) for i in range(numeric)),
                        *(pa.field(f"c{i}", pa.string()) for i in range(10))])
    with pq.ParquetWriter(path, schema, compression="snappy") as writer:
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            arrays = [rng.normal(i % 7, 1, n) + (1.0 if drifted and i % 10 == 0 else 0.0) for i in range(numeric)]
            cats = [pa.array(np.char.add("v", rng.integers(0, 5 + i, n).astype(str)).tolist(), pa.string()) for i in range(10)]
            writer.write_table(pa.Table.from_arrays([*map(pa.array, arrays), *cats], schema=schema))


# --- the contenders -------------------------------------------------------------------------


def run_brickyard(reference: pa.Table, current: pa.Table) -> tuple[float, Any]:
    from brickyard.monitoring import compare, profile

    t0 = time.perf_counter()
    sketches, _ = profile(reference, numeric_names(reference.schema), categorical_names(reference.schema))
    report = compare(sketches, current)
    return time.perf_counter() - t0, report


def run_floor(ref_np: dict[str, np.ndarray], cur_np: dict[str, np.ndarray]) -> tuple[float, dict[str, Any]]:
    """KS + PSI per numeric column, chi-square + JS per categorical column: numpy/scipy only,
    written for speed (each numeric column sorted once, the deciles and the PSI counts read
    off the sorted arrays; ks_2samp gets the sorted arrays)."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chisquare, ks_2samp

    t0 = time.perf_counter()
    found: dict[str, Any] = {}
    for name, ref in ref_np.items():
        cur = cur_np[name]
        if ref.dtype.kind == "f":
            r, c = np.sort(ref[~np.isnan(ref)]), np.sort(cur[~np.isnan(cur)])
            ks = ks_2samp(r, c)
            edges = r[(np.arange(1, 10) * r.size) // 10]
            e = np.diff(np.searchsorted(r, edges, side="right"), prepend=0, append=r.size) / r.size
            a = np.diff(np.searchsorted(c, edges, side="right"), prepend=0, append=c.size) / c.size
            e, a = np.clip(e, 1e-4, None), np.clip(a, 1e-4, None)
            found[name] = (ks.statistic, ks.pvalue, float(np.sum((a - e) * np.log(a / e))))
        else:
            values, ref_counts = np.unique(ref, return_counts=True)
            cur_values, cur_counts = np.unique(cur, return_counts=True)
            cur_map = dict(zip(cur_values.tolist(), cur_counts.tolist()))
            observed = np.array([cur_map.get(v, 0) for v in values.tolist()], dtype=np.float64)
            observed = np.append(observed, cur.size - observed.sum())
            expected = np.append(ref_counts / ref.size * cur.size, 0.0)
            keep = expected > 0
            chi = chisquare(observed[keep], expected[keep] * observed[keep].sum() / expected[keep].sum())
            found[name] = (chi.statistic, chi.pvalue, float(jensenshannon(np.append(ref_counts, 0), observed)))
    return time.perf_counter() - t0, found


def as_numpy(data: pa.Table) -> dict[str, np.ndarray]:
    """The columns as numpy arrays: float64 (NaN for nulls), and fixed-width strings for text."""
    out = {}
    for name in data.column_names:
        column = data.column(name)
        out[name] = column.to_numpy() if pa.types.is_floating(column.type) else np.asarray(column.to_pylist(), dtype=str)
    return out


def run_evidently(runs: int) -> dict[str, Any]:
    if not EVIDENTLY_PYTHON.exists():
        raise SystemExit(
            f"Evidently's venv is missing: python -m venv {EVIDENTLY_PYTHON.parent.parent} && "
            f"{EVIDENTLY_PYTHON.parent / 'pip'} install evidently 'pandas<3'"
        )
    command = [EVIDENTLY_PYTHON, REPO / "bench" / "drift_evidently.py", DATA / "reference.parquet", DATA / "current.parquet",
               "--runs", str(runs)]
    run = measure(command).check()
    found = json.loads(run.stdout)
    found["process_wall_s"], found["peak_rss"] = run.wall_s, run.peak_rss
    return found


def big_worker(args: argparse.Namespace) -> int:
    """The bounded-memory run (a subprocess): stream both big Parquet files, print JSON."""
    from brickyard.monitoring import compare, profile

    reference, current = pq.ParquetFile(DATA / "big_reference.parquet"), pq.ParquetFile(DATA / "big_current.parquet")
    schema = reference.schema_arrow
    t0 = time.perf_counter()
    sample = pa.Table.from_batches(list(_first_rows(reference, SAMPLE_ROWS)), schema=schema)
    sketches, rows = profile(reference.iter_batches(batch_size=65_536), numeric_names(schema), categorical_names(schema),
                             edges_from=sample)
    del sample
    baseline_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    report = compare(sketches, current.iter_batches(batch_size=65_536))
    compare_s = time.perf_counter() - t1
    json.dump({"rows": rows, "window_rows": report.rows, "baseline_s": baseline_s, "compare_s": compare_s,
               "drifted": report.drifted_features, "drift_share": report.drift_share}, sys.stdout)
    return 0


def _first_rows(source: pq.ParquetFile, rows: int) -> Any:
    taken = 0
    for batch in source.iter_batches(batch_size=65_536):
        if taken >= rows:
            return
        yield batch.slice(0, rows - taken)
        taken += batch.num_rows


# --- the run --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=7, help="back-to-back brickyard / floor pairs")
    parser.add_argument("--evidently-runs", type=int, default=3)
    parser.add_argument("--big-rows", type=int, default=3_000_000)
    parser.add_argument("--big-columns", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="reuse the Parquet files of an earlier run")
    parser.add_argument("--record", action="store_true", help="write the section into bench/RESULTS.md")
    parser.add_argument("--big-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.big_worker:
        return big_worker(args)

    load_start = load_average()
    DATA.mkdir(parents=True, exist_ok=True)
    print(f"data: {args.rows:,} x 20, reference and current ...", flush=True)
    reference, current = make_table(args.rows, 1, False), make_table(args.rows, 2, True)
    pq.write_table(reference, DATA / "reference.parquet")
    pq.write_table(current, DATA / "current.parquet")
    ref_np, cur_np = as_numpy(reference), as_numpy(current)

    print(f"brickyard vs floor, {args.pairs} pairs ...", flush=True)
    numeric = numeric_names(reference.schema)
    ref_num, cur_num = reference.select(numeric), current.select(numeric)
    ref_num_np, cur_num_np = {k: ref_np[k] for k in numeric}, {k: cur_np[k] for k in numeric}
    run_brickyard(reference, current)  # warm: imports, first-call costs
    run_floor(ref_np, cur_np)
    timings: dict[str, list[float]] = {"b_num": [], "f_num": [], "b_all": [], "f_all": []}
    report = None
    for i in range(args.pairs):
        order = ("b", "f") if i % 2 == 0 else ("f", "b")
        for who in order:
            if who == "b":
                timings["b_num"].append(run_brickyard(ref_num, cur_num)[0])
                seconds, report = run_brickyard(reference, current)
                timings["b_all"].append(seconds)
            else:
                timings["f_num"].append(run_floor(ref_num_np, cur_num_np)[0])
                timings["f_all"].append(run_floor(ref_np, cur_np)[0])
        print(f"  [{i + 1}/{args.pairs}] numeric: brickyard {timings['b_num'][-1]:.3f} s, floor {timings['f_num'][-1]:.3f} s;"
              f" all 20: brickyard {timings['b_all'][-1]:.3f} s, floor {timings['f_all'][-1]:.3f} s", flush=True)
    assert report is not None

    print(f"Evidently DataDriftPreset, {args.evidently_runs} runs (subprocess, own venv) ...", flush=True)
    evidently = run_evidently(args.evidently_runs)
    print(f"  runs {', '.join(f'{s:.2f}' for s in evidently['runs_s'])} s", flush=True)

    big_note = f"{args.big_rows:,} x {args.big_columns}"
    if not (args.keep and (DATA / "big_current.parquet").exists()):
        print(f"big data: {big_note} twice, Parquet ...", flush=True)
        write_big(DATA / "big_reference.parquet", args.big_rows, args.big_columns, 3, False)
        write_big(DATA / "big_current.parquet", args.big_rows, args.big_columns, 4, True)
    print("bounded memory run ...", flush=True)
    big_run = measure([sys.executable, __file__, "--big-worker"], env={**os.environ}).check()
    big = json.loads(big_run.stdout)
    load_end = load_average()

    section, passed = render(args, timings, report, evidently, big, big_run, (load_start, load_end))
    print()
    print(section)
    if args.record:
        print(f"recorded in {record_section(NAME, section)}")
    if not args.keep:
        for name in ("reference", "current", "big_reference", "big_current"):
            (DATA / f"{name}.parquet").unlink(missing_ok=True)
    return 0 if passed else 1


def render(args: argparse.Namespace, timings: dict[str, list[float]], report: Any,
           evidently: dict[str, Any], big: dict[str, Any], big_run: Any, loads: tuple[str, str]) -> tuple[str, bool]:
    facts = {
        **machine_facts(),
        **versions("numpy", "scipy", "pyarrow", "brickyard"),
        **{f"{name} (its venv)": version for name, version in evidently["versions"].items()},
        "load": f"1/5/15-min load average {loads[0]} at the start, {loads[1]} at the end "
                "(a shared machine: other work ran during the run)",
    }
    best_all, best_ev = min(timings["b_all"]), min(evidently["runs_s"])
    speedup = best_ev / best_all
    floor_ratio = statistics.median(b / f for b, f in zip(timings["b_num"], timings["f_num"]))
    all_ratio = statistics.median(b / f for b, f in zip(timings["b_all"], timings["f_all"]))
    rss_ok = big_run.peak_rss < RSS_LIMIT

    def runs(key: str) -> str:
        return " / ".join(f"{s:.3f}" for s in timings[key])

    lines = [
        f"## {NAME}",
        "",
        f"Run {today()}: `.venv/bin/python bench/drift.py --rows {args.rows} --pairs {args.pairs} "
        f"--evidently-runs {args.evidently_runs} --big-rows {args.big_rows} --big-columns {args.big_columns}`",
        "",
        "```",
        *facts_lines(facts),
        "```",
        "",
        f"Reference and current: {args.rows:,} rows x 20 columns (14 numeric, 6 categorical), seeded, drift injected in "
        f"{len(INJECTED)} columns. Times are in-process compute on data already in memory (imports and loading apart), "
        "brickyard and the floor in alternating back-to-back pairs. brickyard = `profile` of the reference (the baseline) "
        "+ `compare` of the current table (every statistic: PSI, KS, null rate, range; chi-square, JS, null rate), "
        "threads over columns; floor = numpy/scipy alone, column after column.",
        "",
        table(
            ["contender", "best s", "runs s", "note"],
            [
                ["brickyard, 14 numeric columns", f"{min(timings['b_num']):.3f}", runs("b_num"), "baseline + compare"],
                ["floor: ks_2samp + PSI, 14 numeric columns", f"{min(timings['f_num']):.3f}", runs("f_num"), "sorted once per column"],
                ["brickyard, all 20 columns", f"{best_all:.3f}", runs("b_all"), "baseline + compare"],
                ["floor + np.unique/chisquare/jensenshannon, all 20", f"{min(timings['f_all']):.3f}", runs("f_all"), "(info)"],
                ["Evidently DataDriftPreset, all 20 columns", f"{best_ev:.3f}", " / ".join(f"{s:.2f}" for s in evidently["runs_s"]),
                 f"subprocess; import {evidently['import_s']:.1f} s, load {evidently['load_s']:.2f} s, "
                 f"process {evidently['process_wall_s']:.1f} s, peak RSS {human_bytes(evidently['peak_rss'])}"],
            ],
            markdown=True,
        ),
        "",
        table(
            ["ratio", "value", "bar", "verdict"],
            [
                ["Evidently best / brickyard best (all 20 columns)", f"{speedup:.1f}x", ">= 10x", verdict(speedup >= 10)],
                ["brickyard / KS+PSI floor (numeric, median of pairs)", f"{floor_ratio:.2f}x", "<= 1.5x", verdict(floor_ratio <= 1.5)],
                ["brickyard / floor (all 20, median of pairs)", f"{all_ratio:.2f}x", "(info)", "-"],
            ],
            markdown=True,
        ),
        "",
        *verdict_lines(report, evidently["verdicts"]),
        "",
        f"Bounded memory: baseline of a {args.big_rows:,} x {args.big_columns} reference ({args.big_columns - 10} numeric, "
        "10 categorical; every tenth numeric column shifted by 1 sd in the current table) and a compare of a current "
        f"table of the same size, both streamed from Parquet in 65,536-row batches; edges from the first {SAMPLE_ROWS:,} rows.",
        "",
        table(
            ["bounded run", "value"],
            [
                ["baseline rows / window rows", f"{big['rows']:,} / {big['window_rows']:,}"],
                ["baseline s (stream + edges)", f"{big['baseline_s']:.1f}"],
                ["compare s", f"{big['compare_s']:.1f}"],
                ["whole process s", f"{big_run.wall_s:.1f}"],
                ["drifted columns / injected", f"{len(big['drifted'])} / {len(range(0, args.big_columns - 10, 10))}"],
                ["peak RSS (process, psutil every 20 ms)", human_bytes(big_run.peak_rss)],
                ["bar < 2 GiB", verdict(rss_ok)],
            ],
            markdown=True,
        ),
    ]
    return "\n".join(lines), speedup >= 10 and floor_ratio <= 1.5 and rss_ok


def verdict_lines(report: Any, theirs: dict[str, dict[str, Any]]) -> list[str]:
    rows, agree = [], 0
    for feature in report.features:
        name = feature.feature
        ours = feature.drifted
        why = ", ".join(s.method for s in feature.statistics if s.drifted and (s.decisive or s.method in ("null_rate", "out_of_range")))
        decisive = feature.decisive
        other = theirs.get(name, {})
        same = other.get("drifted") == ours
        agree += same
        rows.append([
            name,
            INJECTED.get(name) or SUBTLE.get(name, "-"),
            f"{'DRIFT' if ours else 'ok'}" + (f" ({why})" if why else ""),
            f"{decisive.method} {decisive.statistic:.3f}" if decisive.statistic is not None else "-",
            "DRIFT" if other.get("drifted") else "ok",
            f"{other.get('method', '?')} {other.get('value', float('nan')):.3f}",
            "yes" if same else "NO",
        ])
    truth = sum(1 for f in report.features if f.drifted == (f.feature in INJECTED))
    truth_ev = sum(1 for f in report.features if theirs.get(f.feature, {}).get("drifted") == (f.feature in INJECTED))
    return [
        table(["column", "injected", "brickyard", "brickyard statistic", "Evidently", "Evidently statistic", "agree"],
              rows, markdown=True),
        "",
        f"Verdicts agree on {agree} of {len(rows)} columns. Against the injected drift: brickyard right on {truth} of "
        f"{len(rows)}, Evidently on {truth_ev} of {len(rows)}. brickyard's drift share {report.drift_share:.2f}.",
    ]


if __name__ == "__main__":
    sys.exit(main())
