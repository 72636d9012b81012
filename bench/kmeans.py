"""kmeans: brickyard's segmentation training path against Spark MLlib and scikit-learn.

    .venv/bin/python bench/kmeans.py [--rows 2000000] [--pairs 15] [--repeats 3] [--record]

1. Generates seeded synthetic taxi trips (`brickyard.demo.synth.generate_taxi_trips`), cleans
   them with DuckDB (numbers that parse, 0 < trip_distance < 100 miles, 0 < fare_amount < $500,
   1 <= passenger_count <= 9) and keeps the first --rows rows of
   (trip_distance, fare_amount, passenger_count); standardizes them for the peers.
2. Fits KMeans with k=4, 20 iterations (max_iter=20, tol=0), one initialization, in one
   process:
   - brickyard: `brickyard.ml.kmeans.fit_kmeans` on the cleaned frame, the function the
     train task calls (median impute + standardize + scikit-learn KMeans), without MLflow;
     its preprocessing and KMeans parts are reported too;
   - scikit-learn: `KMeans(n_init=1, algorithm="lloyd")` on the standardized array;
     brickyard and scikit-learn run in --pairs back-to-back pairs, the order alternating;
   - Spark MLlib: `pyspark.ml.clustering.KMeans` (local[*], k-means|| init) on the
     standardized vectors, cached and counted before the fits (load timed apart), --repeats fits;
   - for information, scikit-learn's own Pipeline(SimpleImputer, StandardScaler, KMeans) on
     the frame: what brickyard's path would cost with scikit-learn's preprocessing fit.
   Per-iteration time is fit time / iterations run (initialization included).
3. Scores every variant's clustering by silhouette on one seeded sample of --sample rows
   (scikit-learn's silhouette_score, euclidean), and the inertia on all rows.
4. Bars: brickyard at least 5x faster than Spark MLlib (best fit times), and at most 1.2x
   scikit-learn (median of the pairs' ratios: on a shared machine a single best-of compares
   two lucky moments, a paired median compares like with like).

--record replaces the "kmeans" section of bench/RESULTS.md with this run's.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    REPO,
    facts_lines,
    java_version,
    load_average,
    machine_facts,
    table,
    today,
    verdict,
    versions,
)

NAME = "kmeans"
FEATURES = ["trip_distance", "fare_amount", "passenger_count"]
K = 4
MAX_ITER = 20
SEED = 42
SPARK_BAR = 5.0     # Spark MLlib fit time / brickyard fit time at least 5
SKLEARN_BAR = 1.2   # brickyard fit time / scikit-learn fit time at most 1.2

CLEAN_SQL = """
SELECT trip_distance, fare_amount, passenger_count FROM (
    SELECT TRY_CAST(trip_distance AS DOUBLE) AS trip_distance,
           TRY_CAST(fare_amount AS DOUBLE) AS fare_amount,
           TRY_CAST(passenger_count AS INTEGER) AS passenger_count
    FROM trips
)
WHERE trip_distance > 0 AND trip_distance < 100
  AND fare_amount > 0 AND fare_amount < 500
  AND passenger_count BETWEEN 1 AND 9
LIMIT {rows}
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--pairs", type=int, default=15, help="back-to-back brickyard / scikit-learn pairs")
    parser.add_argument("--repeats", type=int, default=3, help="Spark MLlib fits")
    parser.add_argument("--sample", type=int, default=10_000, help="rows of the silhouette sample")
    parser.add_argument("--record", action="store_true", help="write the section into bench/RESULTS.md")
    return parser.parse_args(argv)


def make_data(rows: int) -> tuple[Any, np.ndarray, float]:
    """The cleaned frame (pandas) and its standardized float64 array; seconds taken."""
    from brickyard.demo.synth import generate_taxi_trips

    started = time.perf_counter()
    trips = generate_taxi_trips(int(rows * 1.03) + 1000, seed=SEED)  # ~1% dirty rows are dropped
    frame = _clean(trips, rows)
    if len(frame) != rows:
        raise SystemExit(f"only {len(frame)} clean rows; generate more")
    values = frame[FEATURES].to_numpy(dtype=np.float64)
    standardized = np.ascontiguousarray((values - values.mean(axis=0)) / values.std(axis=0))
    return frame, standardized, time.perf_counter() - started


def _clean(trips: Any, rows: int) -> Any:
    import duckdb

    con = duckdb.connect()
    con.register("trips", trips)
    return con.execute(CLEAN_SQL.format(rows=rows)).df()


def fit_brickyard(frame: Any, sample: int) -> dict[str, Any]:
    """The train task's kmeans path; the fit is preprocessing + KMeans, the silhouette
    scoring of the chosen model (on `sample` rows) is reported apart."""
    from brickyard.ml.kmeans import fit_kmeans

    fitted = fit_kmeans(frame, FEATURES, K, seed=SEED, params={"max_iter": MAX_ITER, "tol": 0.0}, silhouette_sample=sample)
    estimator = fitted.model.steps[-1][1]
    return {
        "fit_s": fitted.preprocess_seconds + fitted.kmeans_seconds,
        "kmeans_s": fitted.kmeans_seconds,
        "preprocess_s": fitted.preprocess_seconds,
        "silhouette_s": fitted.silhouette_seconds,
        "call_s": fitted.fit_seconds,
        "iterations": int(estimator.n_iter_),
        "inertia": float(estimator.inertia_),
        "centers": np.asarray(estimator.cluster_centers_),
    }


def fit_sklearn(standardized: np.ndarray) -> dict[str, Any]:
    from sklearn.cluster import KMeans

    started = time.perf_counter()
    model = KMeans(K, n_init=1, max_iter=MAX_ITER, tol=0.0, algorithm="lloyd", random_state=SEED).fit(standardized)
    seconds = time.perf_counter() - started
    return {
        "fit_s": seconds, "iterations": int(model.n_iter_), "inertia": float(model.inertia_),
        "centers": np.asarray(model.cluster_centers_),
    }


def fit_sklearn_pipeline(frame: Any) -> dict[str, Any]:
    from sklearn.cluster import KMeans
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = Pipeline([
        ("impute", SimpleImputer(strategy="median")),
        ("scale", StandardScaler()),
        ("model", KMeans(K, n_init=1, max_iter=MAX_ITER, tol=0.0, algorithm="lloyd", random_state=SEED)),
    ])
    started = time.perf_counter()
    pipeline.fit(frame[FEATURES])
    seconds = time.perf_counter() - started
    model = pipeline.named_steps["model"]
    return {"fit_s": seconds, "iterations": int(model.n_iter_), "inertia": float(model.inertia_)}


class SparkPeer:
    """A local[*] session with the standardized vectors cached."""

    def __init__(self, standardized: np.ndarray) -> None:
        started = time.perf_counter()
        from pyspark.sql import SparkSession

        self.spark = (
            SparkSession.builder.master("local[*]").appName("bench_kmeans")
            .config("spark.driver.memory", "4g")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", str(os.cpu_count() or 2))
            .getOrCreate()
        )
        self.spark.sparkContext.setLogLevel("ERROR")
        self.session_s = time.perf_counter() - started
        started = time.perf_counter()
        import pandas as pd
        from pyspark.ml.feature import VectorAssembler

        frame = self.spark.createDataFrame(pd.DataFrame(standardized, columns=FEATURES))
        frame = frame.repartition(os.cpu_count() or 2)
        self.data = VectorAssembler(inputCols=FEATURES, outputCol="features").transform(frame).select("features").cache()
        self.rows = self.data.count()
        self.load_s = time.perf_counter() - started

    def fit(self) -> dict[str, Any]:
        from pyspark.ml.clustering import KMeans

        started = time.perf_counter()
        model = KMeans(k=K, maxIter=MAX_ITER, tol=0.0, seed=SEED, featuresCol="features").fit(self.data)
        seconds = time.perf_counter() - started
        summary = model.summary
        return {
            "fit_s": seconds, "iterations": int(summary.numIter), "inertia": float(summary.trainingCost),
            "centers": np.asarray(model.clusterCenters()),
        }

    def stop(self) -> None:
        self.spark.stop()


def silhouette(standardized: np.ndarray, centers: np.ndarray, sample: np.ndarray) -> float:
    from sklearn.metrics import silhouette_score

    points = standardized[sample]
    labels = ((points[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    return float(silhouette_score(points, labels))


def run(args: argparse.Namespace) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    from brickyard.ml.kmeans import sample_rows

    print(f"generating and cleaning {args.rows:,} taxi rows ...", flush=True)
    frame, standardized, data_s = make_data(args.rows)
    found: dict[str, list[dict[str, Any]]] = {"brickyard": [], "sklearn": [], "spark": [], "sklearn_pipeline": []}

    def one(name: str, work: Any, label: str) -> None:
        time.sleep(0.3)
        result = work()
        found[name].append(result)
        print(f"  {label}: {name:17s} {result['fit_s']:7.3f} s, {result['iterations']} iterations", flush=True)

    fit_sklearn(standardized[:20_000])  # warm OpenMP threads and imports, untimed
    fit_brickyard(frame.head(300_000), 1000)
    pair = [("brickyard", lambda: fit_brickyard(frame, args.sample)), ("sklearn", lambda: fit_sklearn(standardized))]
    for index in range(args.pairs):
        # back to back, the order alternating, so load from elsewhere hits both alike
        for name, work in pair if index % 2 == 0 else pair[::-1]:
            one(name, work, f"pair {index + 1}")
    print("starting Spark and caching the vectors ...", flush=True)
    spark = SparkPeer(standardized)
    try:
        for index in range(args.repeats):
            one("spark", spark.fit, f"round {index + 1}")
            one("sklearn_pipeline", lambda: fit_sklearn_pipeline(frame), f"round {index + 1}")
    finally:
        spark.stop()
    sample = sample_rows(len(standardized), args.sample, SEED)
    best = {name: min(results, key=lambda r: r["fit_s"]) for name, results in found.items()}
    # brickyard's centers live in its own standardized space: the same transform up to 1e-12
    scores = {name: silhouette(standardized, best[name]["centers"], sample) for name in ("brickyard", "sklearn", "spark")}
    facts = {
        "data_s": data_s, "spark_session_s": spark.session_s, "spark_load_s": spark.load_s,
        "spark_rows": spark.rows, "sample": len(sample), "silhouette": scores,
    }
    return found, facts


def report(args: argparse.Namespace, found: dict[str, list[dict[str, Any]]], facts: dict[str, Any], loads: tuple[str, str]) -> tuple[str, bool]:
    best = {name: min(results, key=lambda r: r["fit_s"]) for name, results in found.items()}
    median = {name: statistics.median(r["fit_s"] for r in results) for name, results in found.items()}

    def runs(name: str, key: str = "fit_s") -> str:
        values = [r[key] for r in found[name]]
        if len(values) <= 5:
            return " / ".join(f"{v:.2f}" for v in values)
        return f"{min(values):.2f} .. {max(values):.2f}"

    def row(label: str, name: str, score: bool = True) -> list[str]:
        b = best[name]
        per_iteration = b["fit_s"] / max(b["iterations"], 1) * 1000
        return [
            label, f"{b['fit_s']:.3f}", f"{median[name]:.3f}", runs(name), str(len(found[name])),
            str(b["iterations"]), f"{per_iteration:.1f}", f"{b['inertia']:.6g}",
            f"{facts['silhouette'][name]:.4f}" if score else "-",
        ]

    def part(label: str, key: str, iterations: bool = False) -> list[str]:
        values = [r[key] for r in found["brickyard"]]
        by = best["brickyard"]
        per = f"{min(values) / max(by['iterations'], 1) * 1000:.1f}" if iterations else "-"
        return [label, f"{min(values):.3f}", f"{statistics.median(values):.3f}", runs("brickyard", key), str(len(values)),
                str(by["iterations"]) if iterations else "-", per, "-", "-"]

    headers = ["variant", "best s", "median s", "range s", "runs", "iterations", "ms / iteration (best)", "inertia", "silhouette"]
    rows = [
        row("brickyard fit_kmeans (impute + scale + KMeans)", "brickyard"),
        part("  of which preprocessing (median, mean, std, scale)", "preprocess_s"),
        part("  of which scikit-learn KMeans", "kmeans_s", iterations=True),
        part(f"  then: silhouette on {facts['sample']:,} rows (not in fit)", "silhouette_s"),
        row("scikit-learn KMeans on the standardized array", "sklearn"),
        row("Spark MLlib KMeans, local[*], cached vectors", "spark"),
        row("(info) scikit-learn Pipeline(SimpleImputer, StandardScaler, KMeans)", "sklearn_pipeline", score=False),
    ]
    paired = sorted(b["fit_s"] / s["fit_s"] for b, s in zip(found["brickyard"], found["sklearn"], strict=True))
    paired_median = statistics.median(paired)
    spark_ratio = best["spark"]["fit_s"] / best["brickyard"]["fit_s"]
    ratios = [
        ["Spark MLlib / brickyard, best fit times", f"{spark_ratio:.2f}x", f">= {SPARK_BAR:g}x", verdict(spark_ratio >= SPARK_BAR)],
        ["Spark MLlib / brickyard, median fit times", f"{median['spark'] / median['brickyard']:.2f}x", "(info)", "-"],
        [f"brickyard / scikit-learn, median of {len(paired)} back-to-back pairs", f"{paired_median:.3f}x",
         f"<= {SKLEARN_BAR:g}x", verdict(paired_median <= SKLEARN_BAR)],
        ["brickyard / scikit-learn, pairs' quartiles",
         f"{paired[len(paired) // 4]:.2f} .. {paired[(3 * len(paired)) // 4]:.2f}", "(info)", "-"],
        ["brickyard / scikit-learn, best fit times", f"{best['brickyard']['fit_s'] / best['sklearn']['fit_s']:.3f}x", "(info)", "-"],
        ["scikit-learn Pipeline / brickyard, best fit times", f"{best['sklearn_pipeline']['fit_s'] / best['brickyard']['fit_s']:.2f}x", "(info)", "-"],
    ]
    passed = spark_ratio >= SPARK_BAR and paired_median <= SKLEARN_BAR
    machine = {
        **machine_facts(),
        **versions("numpy", "scikit-learn", "pyspark", "pandas", "duckdb", "brickyard"),
        "java": java_version(),
        "threads": f"scikit-learn OpenMP default ({os.cpu_count()}); Spark local[*]",
        "load avg": f"{loads[0]} before, {loads[1]} after",
    }
    command = (
        f".venv/bin/python bench/kmeans.py --rows {args.rows} --pairs {args.pairs} "
        f"--repeats {args.repeats} --sample {args.sample}"
    )
    text = "\n".join([
        f"## {NAME}",
        "",
        f"Run {today()}: `{command}`",
        "",
        "```",
        *facts_lines(machine),
        f"data      {args.rows:,} x 3 cleaned synthetic taxi trips (trip_distance, fare_amount, passenger_count), "
        f"generated + cleaned in {facts['data_s']:.1f} s",
        "```",
        "",
        f"KMeans k={K}, max_iter={MAX_ITER}, tol=0, one initialization (k-means++ for scikit-learn and brickyard, "
        "k-means|| for Spark, seed 42), all in one process. Times are the fit alone. brickyard is `fit_kmeans` "
        "(what the train task runs) on the cleaned frame, its own median imputation and standardization included, "
        "MLflow excluded; scikit-learn gets the already standardized array. The two ran in "
        f"{args.pairs} back-to-back pairs (order alternating); their bar is the median of the pairs' ratios, which "
        "load from elsewhere on the machine shifts least. Spark ran after them "
        f"(session start {facts['spark_session_s']:.1f} s and load + cache + count of {facts['spark_rows']:,} "
        f"vectors {facts['spark_load_s']:.1f} s, both outside the fit), {args.repeats} fits. "
        "ms / iteration = fit / iterations (initialization included). Inertia on all rows in standardized units; "
        f"silhouette (euclidean) of each variant's centers on one seeded sample of {facts['sample']:,} rows.",
        "",
        table(headers, rows, markdown=True),
        "",
        table(["ratio", "value", "bar", "verdict"], ratios, markdown=True),
    ])
    return text, passed


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
    before = load_average()
    found, facts = run(args)
    section, passed = report(args, found, facts, (before, load_average()))
    print()
    print(section)
    if args.record:
        print(f"\nrecorded in {record(section)}")
    print("\nall bars passed" if passed else "\nsome bars FAILED")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
