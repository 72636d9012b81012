"""score_export: batch-score 1M Titanic-like rows and export them to PostgreSQL, against
`pandas.DataFrame.to_sql`.

    .venv/bin/python bench/score_export.py [--rows 1000000] [--batch-rows 50000] [--keep] [--record]

1. Starts a throwaway PostgreSQL cluster on a free loopback port (initdb + pg_ctl, the same
   `PostgresServer` the tests use, from tests/conftest.py) and makes a workspace in
   .bench/score_export/ws whose `databases.pg` URL holds the password as `${env:...}`.
2. Trains the Titanic model (imputation + one-hot + logistic regression on the real 891
   rows), registers it in the workspace's MLflow and aliases it `champion`.
3. Synthesizes --rows rows by resampling titanic.csv with seed 42 (new PassengerIds) into
   the lake table silver.passengers.
4. Runs the `score` task (titanic@champion -> gold.titanic_predictions, batches of
   100,000) and the `export` task (source: the score task's batch, into PostgreSQL,
   mode append), timing each inside this process; then loads the same staged batch again
   into a fresh table with `load_staged` alone (the load phase: ledger + COPY + commit).
5. Writes the same rows with `DataFrame.to_sql(name, engine)` — default settings — into
   another table, and checks every table's row count.
6. Prints rows/s and the bar: the load at least 10x the rows/s of to_sql.

--keep leaves .bench/score_export/ in place; --record replaces the "score_export" section
of bench/RESULTS.md with this run's.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, facts_lines, human_rate, load_average, machine_facts, table, today, verdict, versions  # noqa: E402

NAME = "score_export"
WORK = REPO / ".bench" / NAME
DATA = REPO / "src" / "brickyard" / "demo" / "data" / "titanic.csv"
FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
LOAD_BAR = 10.0  # export load rows/s at least 10x DataFrame.to_sql's
SEED = 42
PASSWORD_ENV = "BENCH_PG_PASSWORD"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to score and export")
    parser.add_argument("--batch-rows", type=int, default=50_000, help="rows per COPY chunk of the export")
    parser.add_argument("--keep", action="store_true", help="keep .bench/score_export/ afterwards")
    parser.add_argument("--record", action="store_true", help="write the section into bench/RESULTS.md")
    return parser.parse_args(argv)


def postgres_server_class() -> Any:
    """`PostgresServer` from tests/conftest.py (one implementation for tests and bench)."""
    spec = importlib.util.spec_from_file_location("brickyard_test_conftest", REPO / "tests" / "conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module.PostgresServer


def make_workspace(pg_url: str, password: str) -> Any:
    from brickyard.workspace import Workspace

    if WORK.exists():
        shutil.rmtree(WORK)
    ws = Workspace.init(WORK / "ws", name="bench_score_export")
    os.environ[PASSWORD_ENV] = password
    url = pg_url.replace(f":{password}@", f":${{env:{PASSWORD_ENV}}}@")
    ws.config_path.write_text(ws.config_path.read_text() + f"  pg:\n    url: '{url}'\n")
    return Workspace.open(ws.root)


def register_titanic(ws: Any) -> float:
    """Fit and register the Titanic model as titanic@champion; returns its training accuracy."""
    import mlflow
    import pandas as pd
    import skops.io
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from brickyard.ml import tracking

    frame = pd.read_csv(DATA)
    X, y = frame[FEATURES], frame["Survived"]
    numeric = ["Pclass", "Age", "SibSp", "Parch", "Fare"]
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), ["Sex", "Embarked"]),
    ])
    model = Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=2000))]).fit(X, y)
    client = tracking.connect(ws)
    with mlflow.start_run(experiment_id=tracking.experiment_id(client, ws, "titanic")):
        mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(X, model.predict(X)), registered_model_name="titanic",
            serialization_format="skops", pip_requirements=["scikit-learn", "skops"],
            skops_trusted_types=list(skops.io.get_untrusted_types(data=skops.io.dumps(model))),
        )
    client.set_registered_model_alias("titanic", "champion", "1")
    return float((model.predict(X) == y).mean())


def synthesize(ws: Any, rows: int) -> None:
    """`rows` passengers resampled from titanic.csv (seeded), with new PassengerIds."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    frame = pd.read_csv(DATA).drop(columns=["Survived"])
    picks = np.random.default_rng(SEED).integers(0, len(frame), rows)
    sample = frame.iloc[picks].reset_index(drop=True)
    sample["PassengerId"] = np.arange(1, rows + 1)
    ws.lake.write("silver.passengers", pa.Table.from_pandas(sample, preserve_index=False))


def pipeline(batch_rows: int) -> Any:
    from brickyard.core.pipeline import PipelineSpec

    return PipelineSpec.model_validate({"name": "titanic", "tasks": [
        {"name": "score_passengers", "kind": "score", "model": "titanic@champion",
         "source": {"table": "silver.passengers"}, "target": "gold.titanic_predictions",
         "keys": ["PassengerId"], "batch_size": 100_000},
        {"name": "export_predictions", "kind": "export", "depends_on": ["score_passengers"],
         "source": {"task": "score_passengers"}, "database": "pg", "table": "titanic_predictions",
         "keys": ["PassengerId"], "mode": "append", "batch_rows": batch_rows, "keep_staging": True},
    ]})


def run_task(ws: Any, spec: Any, name: str) -> tuple[Any, float]:
    from brickyard.tasks import get_kind
    from brickyard.tasks.base import TaskContext

    task = spec.task(name)
    kind = get_kind(task.kind)
    context = TaskContext(ws, spec, task, "bench-run", 1, False, logging.getLogger(name))
    options = kind.Options.model_validate(task.options)
    started = time.perf_counter()
    kind.run(options, context)
    return context, time.perf_counter() - started


def count(engine: Any, table: str) -> int:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar())


def bench(args: argparse.Namespace) -> dict[str, Any]:
    import sqlalchemy as sa

    from brickyard.stores import Database, Target, load_staged
    from brickyard.stores.staging import load as load_staging

    server = postgres_server_class()()  # in /tmp, where the `postgres` OS user can reach it
    server.start()
    try:
        ws = make_workspace(server.url, server.PASSWORD)
        started = time.perf_counter()
        accuracy = register_titanic(ws)
        train_s = time.perf_counter() - started
        synthesize(ws, args.rows)
        spec = pipeline(args.batch_rows)
        print("scoring ...", flush=True)
        scored, score_s = run_task(ws, spec, "score_passengers")
        print("exporting ...", flush=True)
        exported, export_s = run_task(ws, spec, "export_predictions")
        extra = exported.metrics.extra
        staged = load_staging(ws.lake.location, f"staging/titanic/export_predictions/{extra['batch_id']}")
        assert staged is not None and staged.rows == args.rows
        database = Database.from_workspace(ws, "pg")
        print("loading the staged batch again (load phase only) ...", flush=True)
        load = load_staged(database, staged, Target("predictions_load_only", ("PassengerId",), "append", "bench-load-only", "bench", 0),
                           batch_rows=args.batch_rows)
        upsert = load_staged(database, staged, Target("predictions_upsert", ("PassengerId",), "upsert", "bench-upsert", "bench", 0),
                             batch_rows=args.batch_rows)
        frame = ws.lake.read("gold.titanic_predictions").to_pandas()
        engine = sa.create_engine(server.url)
        print("DataFrame.to_sql ...", flush=True)
        started = time.perf_counter()
        frame.to_sql("predictions_to_sql", engine)
        to_sql_s = time.perf_counter() - started
        counts = {name: count(engine, name) for name in ("titanic_predictions", "predictions_load_only", "predictions_upsert", "predictions_to_sql")}
        engine.dispose()
        return {
            "accuracy": accuracy, "train_s": train_s, "score_s": score_s, "scored": scored.metrics.extra,
            "export_s": export_s, "export": extra, "load_s": load.seconds, "upsert_s": upsert.seconds,
            "to_sql_s": to_sql_s, "counts": counts, "copy_format": copy_format(server.url),
        }
    finally:
        server.destroy()


def copy_format(url: str) -> str:
    """Which COPY format the export used for the predictions' column types."""
    import pyarrow as pa

    from brickyard.stores import pg_binary
    from brickyard.ml.scoring import output_schema

    schema = output_schema([pa.field("PassengerId", pa.int64())], pa.int64())
    types = ["int8", "int8", "float8", "text", "text", "timestamptz", "date"]
    return "binary" if pg_binary.encoder(types, schema) else "csv"


def report(args: argparse.Namespace, r: dict[str, Any], load: tuple[str, str]) -> tuple[str, bool]:
    rows = args.rows
    rate = lambda seconds: human_rate(rows / seconds)  # noqa: E731
    to_sql = rows / r["to_sql_s"]
    load_ratio = (rows / r["load_s"]) / to_sql
    export_ratio = (rows / r["export_s"]) / to_sql
    counts_ok = all(n == rows for n in r["counts"].values())
    timing = table(
        ["step", "seconds", "rows/s"],
        [
            ["score task: titanic@champion over silver.passengers -> gold (one Delta commit)", f"{r['score_s']:.2f}", rate(r["score_s"])],
            ["export task: stage Parquet in the lake + load into PostgreSQL", f"{r['export_s']:.2f}", rate(r["export_s"])],
            [f"  load phase alone (ledger + COPY {r['copy_format']} + commit), mode append", f"{r['load_s']:.2f}", rate(r["load_s"])],
            ["  load phase alone, mode upsert (COPY into a temp table, delete + insert)", f"{r['upsert_s']:.2f}", rate(r["upsert_s"])],
            ["pandas DataFrame.to_sql(name, engine), default settings", f"{r['to_sql_s']:.2f}", rate(r["to_sql_s"])],
        ],
        markdown=True,
    )
    ratios = table(
        ["ratio", "value", "bar", "verdict"],
        [
            ["load phase rows/s / to_sql rows/s", f"{load_ratio:.1f}x", f">= {LOAD_BAR:g}x", verdict(load_ratio >= LOAD_BAR)],
            ["whole export task rows/s / to_sql rows/s", f"{export_ratio:.1f}x", "(info)", "-"],
            ["row counts in PostgreSQL = rows scored", "yes" if counts_ok else f"no: {r['counts']}", "all equal", verdict(counts_ok)],
        ],
        markdown=True,
    )
    facts = {**machine_facts(), **versions("brickyard", "mlflow", "scikit-learn", "pyarrow", "deltalake", "psycopg", "sqlalchemy", "pandas")}
    command = f".venv/bin/python bench/score_export.py --rows {rows}" + (f" --batch-rows {args.batch_rows}" if args.batch_rows != 50_000 else "")
    text = "\n".join([
        f"## {NAME}",
        "",
        f"Run {today()}: `{command}`",
        "",
        "```",
        *facts_lines(facts),
        f"{'load':<12}  1/5/15-min load average {load[0]} at the start, {load[1]} at the end (other work on the machine)",
        f"{'data':<12}  {rows:,} passengers resampled from titanic.csv (seed {SEED}); model accuracy on the 891 real rows {r['accuracy']:.3f}",
        f"{'postgresql':<12}  throwaway local cluster on loopback (fsync=off, as in the tests), same for every variant",
        "```",
        "",
        "Timed inside one process (imports and model training excluded; the score task includes loading",
        f"the model from MLflow). Export COPY chunks of {args.batch_rows:,} rows; to_sql is called with no",
        "options (so it also writes the index, one transaction, SQLAlchemy's insertmanyvalues batches).",
        "",
        timing,
        "",
        ratios,
    ])
    return text, load_ratio >= LOAD_BAR and counts_ok


def record(section: str) -> Path:
    """Replace (or append) this benchmark's section in bench/RESULTS.md."""
    path = REPO / "bench" / "RESULTS.md"
    current = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^## {NAME}\n.*?(?=^## |\Z)", re.S | re.M)
    block = section.rstrip() + "\n\n"
    updated = pattern.sub(lambda _: block, current) if pattern.search(current) else current.rstrip() + "\n\n" + block
    path.write_text(updated.rstrip() + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        before = load_average()
        results = bench(args)
        section, passed = report(args, results, (before, load_average()))
    finally:
        if not args.keep:
            shutil.rmtree(WORK, ignore_errors=True)
    print()
    print(section)
    if args.record:
        print(f"\nrecorded in {record(section)}")
    print("\nall bars passed" if passed else "\nsome bars FAILED")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
