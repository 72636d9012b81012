"""KMeans on Spark's executors: `SparkEngine.fit_kmeans` (MLlib, brickyard's seeding).

The train kind's Spark path (`brickyard.ml.spark_kmeans`) asks for it with a
`KMeansRequest` and logs what comes back; the rows never leave the executors:

- rows: the table (at its version) or the query, read by Spark; the same column checks as
  the DuckDB path (missing, dates or times, not numeric, all null, too few rows, no more
  rows than k);
- features: each cast to double, median-imputed (`Imputer`, Spark's approximate median,
  relative error 0.001), assembled and standardized (`StandardScaler` with mean and
  standard deviation: Spark divides by the sample deviation, scikit-learn by the
  population one, a factor that is the same for every feature, so the clusters are the
  same);
- KMeans: the DuckDB path's clusters. The initial centres are the rows k-means++ picks
  (`request.seeds`, seeded with the task's `split.seed`) from the hashed sample of distinct
  rows of `brickyard.ml.kmeans_init`, drawn by Spark with the same hashes
  (`distinct_sample`); Lloyd's iterations run as one Spark aggregate each (`_lloyd`) with
  scikit-learn's stopping rule (`maxIter` 300, `tol` 1e-4 relative to the features' mean
  variance; no row changed cluster also stops); the model is an MLlib `KMeansModel` with
  those centres, numbered as the DuckDB path numbers them. `params:` take
  `maxIter`/`max_iter` and `tol`; naming any other of MLlib's (`initMode`/`init`,
  `initSteps`, `distanceMeasure`, ...) runs MLlib's own KMeans (k-means|| seeded with
  `split.seed`) instead, without that parity;
- k: each of `request.ks`, the best silhouette winning (ties to the smaller k). The
  silhouette is MLlib's `ClusteringEvaluator` over every row (squared Euclidean distances);
- the fitted `PipelineModel` (cast, impute, assemble, scale, KMeans; output column
  `prediction`), the profile's aggregates (k rows and one), and the tables: the profile from
  the driver, the assignments written by the executors, never collected.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from brickyard.engines.base import ClusterStats, FittedKMeans, KMeansRequest
from brickyard.errors import BrickyardError, ModelError, TrainingDataError, suggest

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from brickyard.engines.spark.engine import SparkEngine

ESTIMATOR = "pyspark.ml.clustering:KMeans"
PREDICTION = "prediction"
FEATURES = "__brickyard_features"
DEFAULTS = {"maxIter": 300, "tol": 1e-4}
SKLEARN_NAMES = {"max_iter": "maxIter", "tol": "tol", "init": "initMode"}
# With only these params (or none) brickyard seeds and runs Lloyd's iterations itself, as
# the DuckDB engine does (`brickyard.ml.kmeans_init`); any other goes to MLlib's KMeans.
LLOYD_PARAMS = ("maxIter", "tol")
INIT_MODE = "brickyard k-means++"  # logged as model.initMode when brickyard seeded
SPARK_PARAMS = ("maxIter", "tol", "initMode", "initSteps", "distanceMeasure", "weightCol", "solver", "maxBlockSizeInMB")


@dataclass
class SparkKMeans(FittedKMeans):
    """A fit on Spark: the `PipelineModel` and the cached scaled rows it was fitted on."""

    engine: Any = None  # SparkEngine
    scaled: Any = None  # cached DataFrame with the features vector
    base: Any = None  # the cached rows it was fitted on (key and feature columns)

    def cluster_stats(self) -> ClusterStats:
        """Two small aggregates over the model's predictions (k rows and one row)."""
        from pyspark.sql import functions as F

        predictions = self.model.stages[-1].transform(self.scaled)
        values = [F.col(f"`{name}`").cast("double") for name in self.features]
        overall = predictions.agg(
            *[F.avg(v).alias(f"m{i}") for i, v in enumerate(values)],
            *[F.stddev_pop(v).alias(f"s{i}") for i, v in enumerate(values)],
        ).first()
        grouped = (
            predictions.groupBy(PREDICTION)
            .agg(F.count(F.lit(1)).alias("__rows"), *[F.avg(v).alias(f"m{i}") for i, v in enumerate(values)])
            .orderBy(PREDICTION)
            .collect()
        )
        assert overall is not None
        width = range(len(self.features))
        return ClusterStats(
            clusters=[
                (int(group[PREDICTION]), int(group["__rows"]), [_float(group[f"m{i}"]) for i in width]) for group in grouped
            ],
            mean=[_float(overall[f"m{i}"]) for i in width],
            std=[_float(overall[f"s{i}"]) for i in width],
        )

    def write_tables(self, *, profile: pa.Table | None, profile_table: str | None, assignments_table: str | None,
                     key: Any) -> dict[str, int]:
        """The profile (k rows, from the driver) and the assignments (written by executors)."""
        from pyspark.sql import functions as F

        from brickyard.engines.spark_delta import write_table

        lake = self.engine.lake
        spark = self.scaled.sparkSession
        writes: dict[str, int] = {}
        if profile_table and profile is not None:
            frame = spark.createDataFrame(profile)
            writes[profile_table] = write_table(lake, profile_table, frame, mode="overwrite", evolve_schema=True)
        if assignments_table:
            assignments = self.model.stages[-1].transform(self.scaled).select(
                *[F.col(f"`{name}`") for name in key], F.col(PREDICTION).cast("int").alias("cluster")
            )
            writes[assignments_table] = write_table(lake, assignments_table, assignments, mode="overwrite", evolve_schema=True)
        return writes

    def model_folders(self) -> tuple[str, str | None]:
        """MLflow's dfs tmpdir in the lake (every node sees it); over Spark Connect also a
        lake folder the server writes the model into before it is logged
        (`brickyard.ml.spark_connect_model`)."""
        from brickyard.engines.spark.training import mlflow_dfs_tmpdir
        from brickyard.engines.spark_connect import is_connect

        lake = self.engine.lake
        if not is_connect(self.scaled):
            return mlflow_dfs_tmpdir(self.engine), None
        if not lake.location.is_local:
            raise ModelError(
                "logging a Spark MLlib model over Spark Connect needs a lake the server sees by path; "
                f"{lake.location.root} is remote",
                hint="use a lake folder shared with the Connect server, or train with engine: duckdb",
            )
        return mlflow_dfs_tmpdir(self.engine), lake.location.uri("staging/mlflow-spark")

    def close(self) -> None:
        for frame in (self.scaled, self.base):
            if frame is not None:
                frame.unpersist()


def _float(value: Any) -> float | None:
    return float(value) if value is not None else None


def fit_kmeans(engine: SparkEngine, request: KMeansRequest) -> SparkKMeans:
    """`Engine.fit_kmeans` on Spark (see the module docstring).

    Raises:
        SparkUnavailableError, TrainingDataError, ModelError, LakeError, SqlError.
    """
    from brickyard.engines.spark.training import spark_source

    engine.spark  # noqa: B018 - SparkUnavailableError before any pyspark.ml import
    frame, reads, where = spark_source(
        engine, table=request.table, query=request.query, version=request.version, pinned=request.pinned
    )
    features = _features(frame, request, where)
    columns = list(dict.fromkeys([*request.key, *features]))
    base = frame.select(*[f"`{c}`" for c in columns]).cache()
    try:
        rows, with_nulls = _check_rows(base, features, request, where)
        fitted = _fit(base, features, request)
    except BaseException:
        base.unpersist()
        raise
    fitted.engine, fitted.base = engine, base
    fitted.rows, fitted.features, fitted.reads, fitted.where, fitted.nullable = rows, features, reads, where, with_nulls
    fitted.feature_types = _mlflow_types(frame, features)
    return fitted


def _mlflow_types(frame: DataFrame, features: list[str]) -> dict[str, str]:
    """Each feature's MLflow column type. Integers of every width are `long`: MLflow
    refuses a JSON client's int64 for an `integer` (int32) column; the model casts each
    feature to double anyway."""
    from pyspark.sql import types as T

    kinds = {f.name: f.dataType for f in frame.schema.fields}

    def mlflow_type(kind: Any) -> str:
        if isinstance(kind, T.ByteType | T.ShortType | T.IntegerType | T.LongType):
            return "long"
        if isinstance(kind, T.FloatType):
            return "float"
        return "double"

    return {name: mlflow_type(kinds[name]) for name in features}


def _features(frame: DataFrame, request: KMeansRequest, where: str) -> list[str]:
    """The feature columns, checked as the DuckDB path (`brickyard.ml.data.prepare`) checks them."""
    from pyspark.sql import types as T

    columns = list(frame.columns)
    kinds = {f.name: f.dataType for f in frame.schema.fields}
    for name in [*(request.features or []), *request.exclude]:
        if name not in kinds:
            role = "feature" if name in (request.features or []) else "excluded"
            raise TrainingDataError(
                f"{role} column {name!r} does not exist in {where}",
                hint=suggest(name, columns) or f"its columns are: {', '.join(columns)}",
            )
    for name in request.key:
        if name not in kinds:
            raise TrainingDataError(
                f"key column {name!r} does not exist in {request.source}",
                hint=suggest(name, columns) or "key: names columns of the input",
            )
    temporal = (T.DateType, T.TimestampType, T.TimestampNTZType, T.DayTimeIntervalType, T.YearMonthIntervalType)
    if request.features is None:
        features = [c for c in columns if c not in request.exclude and not isinstance(kinds[c], temporal)]
    else:
        features = [c for c in request.features if c not in request.exclude]
    if not features:
        raise TrainingDataError(f"no feature columns are left in {where}", hint="list them in features:")
    for name in features:
        if isinstance(kinds[name], temporal):
            raise TrainingDataError(
                f"feature column {name!r} holds dates or times, which the model cannot use as they are",
                hint="derive numbers from it in a sql task (hour, day of week, age in days) or exclude it",
            )
    numeric = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)
    categorical = [c for c in features if not isinstance(kinds[c], numeric)]
    if categorical:
        raise TrainingDataError(
            f"kmeans clusters numeric features; {', '.join(map(repr, categorical))} "
            f"{'is' if len(categorical) == 1 else 'are'} not numeric",
            hint="list numeric columns in features:, or derive numbers from them in a sql task",
        )
    return features


def _check_rows(base: DataFrame, features: list[str], request: KMeansRequest, where: str) -> tuple[int, set[str]]:
    """The row count and the features that hold nulls (one Spark job, which also fills the
    cache); raises on all-null features and too few rows."""
    from pyspark.sql import functions as F

    from brickyard.engines.spark.engine import translate_errors

    with translate_errors(f"reading {where}"):
        counts = base.agg(F.count(F.lit(1)).alias("__rows"), *[F.count(F.col(f"`{c}`")).alias(f"__n{i}") for i, c in enumerate(features)]).first()
    assert counts is not None
    rows = int(counts["__rows"])
    for index, name in enumerate(features):
        if rows and counts[f"__n{index}"] == 0:
            raise TrainingDataError(
                f"feature column {name!r} is null in every row of {where}",
                hint=f"add {name!r} to exclude: (or drop it from features:), or fix the upstream task",
            )
    if rows < request.min_rows:
        raise TrainingDataError(
            f"{where} has {rows} usable rows; training needs at least {request.min_rows}",
            hint="check the filters of the upstream tasks, or point the task at a bigger table",
        )
    smallest = min(request.ks)
    if rows <= smallest:
        raise TrainingDataError(f"{rows} rows cannot make {smallest} clusters")
    return rows, {name for index, name in enumerate(features) if counts[f"__n{index}"] < rows}


def _estimator_params(params: dict[str, Any], seed: int) -> dict[str, Any]:
    """MLlib KMeans params from `params:` (Spark's names, or scikit-learn's common ones)."""
    chosen: dict[str, Any] = dict(DEFAULTS)
    for key, value in params.items():
        name = SKLEARN_NAMES.get(key, key)
        if name not in SPARK_PARAMS:
            raise ModelError(
                f"kmeans on Spark has no parameter {key!r}",
                hint=f"Spark MLlib's KMeans takes: {', '.join(SPARK_PARAMS)} (or max_iter, tol, init)",
            )
        if name == "initMode" and value == "k-means++":
            value = "k-means||"
        chosen[name] = value
    chosen["seed"] = int(seed)
    return chosen


def _lloyd_here(options: dict[str, Any]) -> bool:
    """Whether brickyard seeds and iterates (`LLOYD_PARAMS` only), rather than MLlib."""
    return set(options) <= {*LLOYD_PARAMS, "seed"}


def _fit(base: DataFrame, features: list[str], request: KMeansRequest) -> SparkKMeans:
    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.ml.evaluation import ClusteringEvaluator
    from pyspark.ml.feature import Imputer, SQLTransformer, StandardScaler, VectorAssembler
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F


    started = time.perf_counter()
    seed, log = request.seed, request.log
    options = _estimator_params(request.params, seed)
    numbers = [f"__brickyard_x{i}" for i in range(len(features))]
    imputed = [f"__brickyard_i{i}" for i in range(len(features))]
    casts = ", ".join(f"CAST(`{name}` AS DOUBLE) AS `{number}`" for name, number in zip(features, numbers, strict=True))
    prepare = Pipeline(stages=[
        SQLTransformer(statement=f"SELECT *, {casts} FROM __THIS__"),
        Imputer(inputCols=numbers, outputCols=imputed, strategy="median"),
        VectorAssembler(inputCols=imputed, outputCol=f"{FEATURES}_raw"),
        StandardScaler(inputCol=f"{FEATURES}_raw", outputCol=FEATURES, withMean=True, withStd=True),
    ])
    lloyd_here = _lloyd_here(options)
    try:
        prepared = prepare.fit(base)
        scaled = prepared.transform(base).drop(*numbers, *imputed, f"{FEATURES}_raw")
        if lloyd_here:
            coordinates = vector_to_array(F.col(FEATURES))
            scaled = scaled.withColumns({column: coordinates[j] for j, column in enumerate(_coordinates(len(features)))})
        scaled = scaled.cache()
        ks = request.ks
        rows = scaled.count()
        sample = distinct_sample(base, features, seed, request.sample_size) if lloyd_here else None
        scaling = _scaling(prepared, len(features)) if lloyd_here else None
        evaluator = ClusteringEvaluator(featuresCol=FEATURES, predictionCol=PREDICTION, metricName="silhouette")
        best: tuple[float, int, Any, int] | None = None
        silhouettes: dict[int, float] = {}
        inertias: dict[int, float] = {}
        for candidate in ks:
            if candidate >= rows:
                break
            if sample is None:
                model, sizes, cost, iterations = _mllib_kmeans(scaled, candidate, options)
            else:
                if best is not None and candidate > len(sample[0]):
                    break
                assert scaling is not None
                initial = scaling.apply(sample[0][request.seeds(sample[0], sample[1], candidate)])
                model, sizes, cost, iterations = _brickyard_kmeans(scaled, initial, options, rows, scaling)
            score = float(evaluator.evaluate(model.transform(scaled))) if len([n for n in sizes if n]) > 1 else -1.0
            silhouettes[candidate] = score
            inertias[candidate] = cost
            log.info("kmeans k=%d: silhouette %.4f, cost %.4g, %d iterations", candidate, score, cost, iterations)
            if best is None or score > best[0]:
                best = (score, candidate, model, iterations)
    except BrickyardError:
        raise
    except Exception as exc:
        from brickyard.engines.spark.engine import one_line

        raise ModelError(
            f"kmeans failed to fit on Spark: {one_line(str(exc))}",
            hint="check params: against Spark MLlib's KMeans, and the feature columns",
        ) from exc
    assert best is not None, "k must be below the number of rows"
    score, chosen, model, iterations = best
    if lloyd_here:
        estimator_params = {"k": chosen, "seed": int(seed), "maxIter": options["maxIter"], "tol": options["tol"],
                            "initMode": INIT_MODE}
    else:
        estimator_params = {
            param.name: value
            for param, value in model.extractParamMap().items()
            if param.name in ("k", "seed", *SPARK_PARAMS) and isinstance(value, int | float | str)
        }
    return SparkKMeans(
        model=PipelineModel(stages=[*prepared.stages, model]),
        estimator=ESTIMATOR,
        rows=rows,
        features=features,
        feature_types={},
        nullable=set(),
        reads={},
        where="",
        scaled=scaled,
        k=chosen,
        silhouette=score,
        inertia=inertias[chosen],
        iterations=iterations,
        silhouette_by_k=silhouettes,
        inertia_by_k=inertias,
        params=estimator_params,
        seconds=time.perf_counter() - started,
    )


@dataclass
class _Scaling:
    """The fitted imputer's medians and scaler's means and deviations, on the driver."""

    medians: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Raw feature rows (NaN for null) as the fitted pipeline scales them."""
        imputed = np.where(np.isnan(raw), self.medians, raw)
        factor = np.where(self.std > 0, 1.0 / np.where(self.std > 0, self.std, 1.0), 0.0)
        return (imputed - self.mean) * factor


def _scaling(prepared: Any, width: int) -> _Scaling:
    imputer, scaler = prepared.stages[1], prepared.stages[3]
    surrogates = imputer.surrogateDF.first()
    medians = np.array([float(surrogates[f"__brickyard_x{i}"]) for i in range(width)])
    return _Scaling(medians, np.array(scaler.mean.toArray()), np.array(scaler.std.toArray()))


def distinct_sample(base: DataFrame, features: list[str], seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """`brickyard.ml.kmeans_init`'s sample of distinct feature rows, by Spark: the same
    hashes as `row_hashes`, the smallest `size` of them, rows counted per hash. Returns
    (values: raw feature rows with NaN for null, weights: rows per distinct row)."""
    from pyspark.sql import functions as F

    values = [F.coalesce(F.col(f"`{name}`").cast("double"), F.lit(float("nan"))) for name in features]
    named = [value.alias(f"__v{i}") for i, value in enumerate(values)]
    hashed = base.select(F.xxhash64(F.lit(int(seed)).cast("bigint"), *values).alias("__h"), *named)
    groups = (
        hashed.groupBy("__h")
        .agg(F.count(F.lit(1)).alias("__n"), *[F.first(f"__v{i}").alias(f"__v{i}") for i in range(len(features))])
        .orderBy("__h")
        .limit(size)
        .collect()
    )
    sample = np.array([[group[f"__v{i}"] for i in range(len(features))] for group in groups], dtype=np.float64)
    return sample.reshape(len(groups), len(features)), np.array([g["__n"] for g in groups], dtype=np.float64)


def _mllib_kmeans(scaled: DataFrame, k: int, options: dict[str, Any]) -> tuple[Any, list[int], float, int]:
    """MLlib's KMeans with its own initialisation (params: name one of MLlib's own options):
    the model, cluster sizes, training cost and iterations."""
    from pyspark.ml.clustering import KMeans

    model = KMeans(k=k, featuresCol=FEATURES, predictionCol=PREDICTION, **options).fit(scaled)
    summary = model.summary
    return model, list(summary.clusterSizes), float(summary.trainingCost), int(summary.numIter)


def _brickyard_kmeans(
    scaled: DataFrame, initial: np.ndarray, options: dict[str, Any], rows: int, scaling: _Scaling
) -> tuple[Any, list[int], float, int]:
    """Lloyd's iterations from `initial` with scikit-learn's stopping rule (`_lloyd`), as an
    MLlib KMeansModel: the model, cluster sizes, inertia and iterations."""
    columns = _coordinates(initial.shape[1])
    # scikit-learn's tol is relative to the mean variance of the scaled features: 1 for
    # each non-constant one there; Spark's scaler divides by the sample deviation, so
    # (rows - 1) / rows here (constant features are 0 on both).
    variance = float(np.mean([(rows - 1) / rows if std > 0 else 0.0 for std in scaling.std]))
    centres, iterations = _lloyd(scaled, columns, initial, int(options["maxIter"]), float(options["tol"]) * variance)
    sizes, inertia = _assign(scaled, columns, centres)
    return _model_with_centres(scaled.sparkSession, centres, options), sizes, inertia, iterations


def _coordinates(width: int) -> list[str]:
    """The columns holding the scaled features one by one (for Lloyd's iterations)."""
    return [f"__brickyard_z{i}" for i in range(width)]


def _lloyd(points: DataFrame, columns: list[str], centres: np.ndarray, max_iter: int, tol: float) -> tuple[np.ndarray, int]:
    """scikit-learn's Lloyd loop (`sklearn.cluster._kmeans._kmeans_single_lloyd`), one Spark
    aggregate per iteration: assign each row to its nearest centre, move each centre to its
    rows' mean; stop when no row changed cluster since the iteration before, when the centres
    moved by at most `tol` in all (sum of squared shifts), or after `max_iter` iterations.
    A cluster that loses every row keeps its centre (scikit-learn moves it to a far row)."""
    from pyspark.sql import functions as F

    previous: np.ndarray | None = None
    iterations = 0
    k = len(centres)
    while iterations < max_iter:
        iterations += 1
        # rows whose nearest centre changed since the last iteration (all rows on the first)
        before = F.lit(-1) if previous is None else _nearest(columns, previous)
        labelled = points.select(_nearest(columns, centres).alias("__c"), before.alias("__b"), *columns)
        inside = [F.col("__c") == cluster for cluster in range(k)]
        totals = labelled.agg(
            F.sum(F.when(F.col("__c") != F.col("__b"), 1).otherwise(0)).alias("__changed"),
            *[F.count(F.when(inside[c], 1)).alias(f"__n{c}") for c in range(k)],
            *[F.sum(F.when(inside[c], F.col(name))).alias(f"__s{c}_{j}") for c in range(k) for j, name in enumerate(columns)],
        ).first()
        assert totals is not None
        updated = centres.copy()
        for c in range(k):
            if totals[f"__n{c}"]:
                updated[c] = [totals[f"__s{c}_{j}"] / totals[f"__n{c}"] for j in range(len(columns))]
        shift = float(((updated - centres) ** 2).sum())
        previous, centres = centres, updated
        if totals["__changed"] == 0 or shift <= tol:
            break
    return centres, iterations


def _squared_distances(columns: list[str], centres: np.ndarray) -> tuple[list[Any], Any]:
    """Columns: each row's squared distance to each centre, and the smallest of them."""
    from pyspark.sql import functions as F

    distances = []
    for centre in centres:
        terms = [(F.col(c) - F.lit(float(value))) ** 2 for c, value in zip(columns, centre, strict=True)]
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        distances.append(total)
    return distances, F.least(*distances) if len(distances) > 1 else distances[0]


def _nearest(columns: list[str], centres: np.ndarray) -> Any:
    """The index of the centre nearest each row (the first one on a tie), as a Column."""
    from pyspark.sql import functions as F

    distances, nearest = _squared_distances(columns, centres)
    choice = F.when(distances[0] == nearest, 0)
    for index, distance in enumerate(distances[1:], start=1):
        choice = choice.when(distance == nearest, index)
    return choice


def _assign(points: DataFrame, columns: list[str], centres: np.ndarray) -> tuple[list[int], float]:
    """Rows per cluster and the inertia (sum of squared distances to the nearest centre)."""
    from pyspark.sql import functions as F

    _, nearest = _squared_distances(columns, centres)
    labelled = points.select(_nearest(columns, centres).alias("__c"), nearest.alias("__d"))
    totals = labelled.agg(
        F.sum("__d").alias("__inertia"), *[F.count(F.when(F.col("__c") == c, 1)).alias(f"__n{c}") for c in range(len(centres))]
    ).first()
    assert totals is not None
    sizes = [int(totals[f"__n{c}"]) for c in range(len(centres))]
    inertia = float(totals["__inertia"])
    return sizes, inertia


def _model_with_centres(spark: Any, centres: np.ndarray, options: dict[str, Any]) -> Any:
    """An MLlib KMeansModel whose cluster i has centre `centres[i]` (so cluster numbers are
    those of the DuckDB engine, which starts from the same seeds in the same order).

    pyspark has no public way to build a model from given centres, so this is MLlib's
    KMeans fitted on the k centres alone: random initialisation takes all k points, and
    each stays its own cluster's mean. MLlib numbers them in the order it drew them; a
    second fit on the points in that order numbers them as given.

    Raises:
        ModelError: two centres are the same point (MLlib's model would have fewer).
    """
    model = _fit_on_points(spark, centres, options)
    order = _numbering(model, centres)
    if order is not None and order != list(range(len(centres))):
        reordered = np.empty_like(centres)
        reordered[order] = centres
        again = _fit_on_points(spark, reordered, options)
        if _numbering(again, centres) == list(range(len(centres))):
            model = again
    if order is None:
        raise ModelError(
            f"kmeans on Spark ended with fewer than {len(centres)} distinct centres",
            hint="lower k: the data does not hold that many clusters",
        )
    return model


def _fit_on_points(spark: Any, points: np.ndarray, options: dict[str, Any]) -> Any:
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.linalg import Vectors

    frame = spark.createDataFrame([(Vectors.dense([float(v) for v in point]),) for point in points], [FEATURES])
    estimator = KMeans(k=len(points), featuresCol=FEATURES, predictionCol=PREDICTION, initMode="random",
                       maxIter=int(options["maxIter"]), tol=float(options["tol"]), seed=int(options["seed"]))
    return estimator.fit(frame)


def _numbering(model: Any, centres: np.ndarray) -> list[int] | None:
    """For each of the model's clusters, the index of its centre in `centres` (None unless
    the model's centres are exactly `centres`, in some order)."""
    found = [np.asarray(centre, dtype=np.float64) for centre in model.clusterCenters()]
    order = []
    for centre in found:
        matches = [i for i, wanted in enumerate(centres) if np.array_equal(centre, wanted)]
        if not matches:
            return None
        order.append(matches[0])
    return order if sorted(order) == list(range(len(centres))) else None
