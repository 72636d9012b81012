"""The brickyard side of bench/featurestore.py: one point-in-time join, as a user's code runs it.

Runs in the project's venv, in two steps (two processes, so that the join's peak memory is
the join's alone):

    .venv/bin/python bench/fs_brickyard_side.py setup --features F.parquet --entities E.parquet \\
        --ttl-days 30 --work DIR
    .venv/bin/python bench/fs_brickyard_side.py join --work DIR --out OUT.parquet
    .venv/bin/python bench/fs_brickyard_side.py --check     # exit 0 when brickyard has the join

`setup` makes a workspace in DIR (`Workspace.init`) with the feature table declared in
`features/bench.yaml` (keys entity_id, event time event_ts, the TTL, source table
`silver.bench_features`), streams the Parquet rows into the Delta tables
`silver.bench_features` (the feature rows, in the generator's order) and
`silver.bench_entities` (the entity rows), and runs the pipeline `bench_features`, whose
`features` task materializes `features.bench` as a user's would (stored in key and
event-time order).
`join` opens the workspace and loads the training set the way the `train` task does
(`brickyard.ml.training_set.load` with a `TrainingSetSpec`: entity table
`silver.bench_entities`, keys [entity_id], timestamp event_timestamp, one lookup of every
feature of `features.bench` at its current version): names checked, `Engine.as_of_join` on
the default engine (DuckDB), the rows as a pandas frame (a training set in memory, like
Feast's `to_df()`). It writes the frame to --out and prints one JSON line: seconds for
the imports (deltalake, duckdb, pandas, pyarrow.dataset and brickyard's modules, before the clock
starts, as bench/feast_side.py imports feast and pandas before its own), opening the
workspace, the load (the join) and the write, and the table versions read.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()

FEATURE_TABLE = "features.bench"
SOURCE_TABLE = "silver.bench_features"
ENTITY_TABLE = "silver.bench_entities"
SPEC = """\
description: bench/featurestore.py's synthetic features
owner: bench
keys: [entity_id]
event_time: event_ts
ttl: {ttl_seconds}s
source:
  table: {source}
"""
PIPELINE = """name: bench_features
tasks:
  - name: features
    kind: features
    table: bench
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", nargs="?", choices=("setup", "join"))
    parser.add_argument("--check", action="store_true", help="exit 0 when brickyard has the join, 1 otherwise")
    parser.add_argument("--features", type=Path)
    parser.add_argument("--entities", type=Path)
    parser.add_argument("--ttl-days", type=float, default=30.0)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--out", type=Path)
    return parser.parse_args(argv)


def check() -> int:
    try:
        from brickyard.ml.training_set import load  # noqa: F401
    except ImportError as exc:
        print(f"this brickyard has no training sets ({exc})")
        return 1
    return 0


def setup(features: Path, entities: Path, ttl_days: float, work: Path) -> dict[str, float]:
    """The workspace, its feature table declaration and its Delta tables (streamed in)."""
    import pyarrow.dataset as ds

    from brickyard.runtime.runner import PipelineRunner
    from brickyard.workspace import Workspace

    started = time.perf_counter()
    ws = Workspace.init(work, name="bench_featurestore")
    (ws.root / "features").mkdir(exist_ok=True)
    (ws.root / "features" / "bench.yaml").write_text(
        SPEC.format(ttl_seconds=round(ttl_days * 86400), source=SOURCE_TABLE), encoding="utf-8"
    )
    (ws.root / "pipelines" / "bench_features.yaml").write_text(PIPELINE, encoding="utf-8")
    for path, table in ((features, SOURCE_TABLE), (entities, ENTITY_TABLE)):
        ws.lake.write(table, ds.dataset(path).scanner(batch_size=256_000).to_reader(), mode="overwrite")
    written = time.perf_counter()
    result = PipelineRunner(ws).run("bench_features")
    if not result.ok:
        raise SystemExit(f"the features task failed: {result.error}")
    return {"setup_s": time.perf_counter() - started, "features_task_s": time.perf_counter() - written}


def join(work: Path, out: Path) -> dict[str, object]:
    """The training set, loaded as the `train` task loads it; timings in seconds."""
    import deltalake  # noqa: F401  (imported before the clock starts, as Feast's side imports feast and pandas)
    import duckdb  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.dataset  # noqa: F401

    from brickyard.ml.spec import LookupSpec, TrainingSetSpec
    from brickyard.ml.training_set import load
    from brickyard.workspace import Workspace

    started = time.perf_counter()
    import_s = started - STARTED
    ws = Workspace.open(work)
    spec = TrainingSetSpec(
        table=ENTITY_TABLE, keys=["entity_id"], timestamp="event_timestamp", features=[LookupSpec(table=FEATURE_TABLE)],
    )
    opened = time.perf_counter()
    loaded = load(ws, spec)
    joined = time.perf_counter()
    loaded.frame.to_parquet(out, index=False)
    written = time.perf_counter()
    return {
        "import_s": import_s, "open_s": opened - started, "join_s": joined - opened, "write_s": written - joined,
        "rows_out": len(loaded.frame), "reads": loaded.reads, "since_start_s": written - STARTED,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.check:
        return check()
    if args.step == "setup":
        print(json.dumps(setup(args.features, args.entities, args.ttl_days, args.work)))
    elif args.step == "join":
        print(json.dumps(join(args.work, args.out)))
    else:
        raise SystemExit("give a step (setup or join) or --check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
