"""Segmentation on the Spark engine: Spark MLlib's KMeans, logged with `mlflow.spark`.

`train_kmeans` is `estimator: kmeans` when the task runs on Spark. It does what the DuckDB
path (`brickyard.ml.kmeans`) does, with Spark's executors doing the work: the fit is the
engine's (`Engine.fit_kmeans`, in `brickyard.engines.spark.kmeans`); this module builds its
request, logs the result to MLflow and registers the model:

- rows: the table (at its version) or the query, read by Spark; the same column checks
  (missing, dates or times, not numeric, all null, fewer than 10 rows, no more rows than k);
- features: each cast to double, median-imputed (`Imputer`, Spark's approximate median,
  relative error 0.001), assembled and standardized (`StandardScaler` with mean and
  standard deviation: Spark divides by the sample deviation, scikit-learn by the
  population one, a factor that is the same for every feature, so the clusters are the
  same);
- KMeans: the DuckDB path's clusters. The initial centres are the rows k-means++ picks
  (seeded with the task's `split.seed`) from the hashed sample of distinct rows of
  `brickyard.ml.kmeans_init`, drawn by Spark with the same hashes; Lloyd's iterations run
  as one Spark aggregate each with scikit-learn's stopping rule (`maxIter` 300,
  `tol` 1e-4 relative to the features' mean variance; no row changed cluster also stops);
  the model is an MLlib `KMeansModel` with those centres, numbered as the DuckDB path
  numbers them. `params:` take `maxIter`/`max_iter` and `tol`; naming any other of
  MLlib's (`initMode`/`init`, `initSteps`, `distanceMeasure`, ...) runs MLlib's own
  KMeans (k-means|| seeded with `split.seed`) instead, without that parity;
- k: one k, or each k of `k: {min, max}`, the best silhouette winning (ties to the smaller
  k). The silhouette is MLlib's `ClusteringEvaluator` over every row (its silhouette uses
  squared Euclidean distances, so its value differs from scikit-learn's, which is computed
  on a sample with Euclidean distances);
- MLflow: the same params, metrics (`silhouette`, `inertia` = MLlib's training cost, `k`,
  `silhouette_by_k`, `inertia_by_k`, `n_iter`, `fit_seconds`), tags (plus
  `brickyard.engine: spark`), `brickyard/train_spec.json` and `segments/profile.*`; the
  model is the fitted `PipelineModel` (cast, impute, assemble, scale, KMeans; output
  column `prediction`) logged with `mlflow.spark` and registered under the model name;
- tables: `assignments_table` (`key` columns and `cluster`, int) written by the executors,
  never collected; `profile_table` (cluster, rows, share, `<feature>_mean`, label: the
  same columns and labels as the DuckDB path) from a k-row aggregate.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brickyard.ml.data import MIN_ROWS, source_text
from brickyard.ml.errors import ModelError
from brickyard.ml.spec import TrainSpec

if TYPE_CHECKING:
    import pandas as pd

    from brickyard.engines.base import Engine, FittedKMeans
    from brickyard.ml.kmeans_init import SeedSample
    from brickyard.workspace import Workspace

ESTIMATOR = "pyspark.ml.clustering:KMeans"
PREDICTION = "prediction"
_log = logging.getLogger(__name__)


@dataclass
class SparkKMeansResult:
    """What `train_kmeans` produced (the train task reports it like a `TrainResult`)."""

    run_id: str
    model_name: str
    model_version: int
    rows: int
    features: list[str]
    reads: dict[str, int]
    metrics: dict[str, float]
    k: int
    silhouette_by_k: dict[int, float]
    inertia_by_k: dict[int, float]
    fit_seconds: float
    profile: pd.DataFrame
    writes: dict[str, int] = field(default_factory=dict)
    problem: str = "clustering"


def train_kmeans(
    ws: Workspace,
    spec: TrainSpec,
    *,
    experiment: str,
    model_name: str,
    tags: dict[str, str] | None = None,
    log: logging.Logger | None = None,
    engine: Engine | None = None,
) -> SparkKMeansResult:
    """Fit KMeans on `engine` (default the workspace's Spark engine) with
    `Engine.fit_kmeans`, log one MLflow run, register the model, write the tables.

    Raises:
        SparkUnavailableError, TrainingDataError, ModelError, LakeError, SqlError.
    """
    import mlflow
    import pyarrow as pa

    from brickyard.ml import tracking
    from brickyard.ml.training import SPEC_ARTIFACT, TAG_ENGINE, _short, _version, register

    log = log or _log
    engine = engine or ws.spark
    fitted = engine.fit_kmeans(_request(spec, log, pinned={}, keys=bool(spec.assignments_table)))
    try:
        features, rows, reads = fitted.features, fitted.rows, fitted.reads
        profile = _profile(fitted)
        client = tracking.connect(ws)
        experiment_id = tracking.experiment_id(client, ws, experiment)
        all_tags = {
            **(tags or {}),
            tracking.TAG_KIND: "train",
            "brickyard.problem": "clustering",
            "brickyard.model_name": model_name,
            TAG_ENGINE: engine.name,
            **{f"{tracking.TAG_INPUT}{table}": str(version) for table, version in reads.items()},
        }
        run_name = "-".join(part for part in (all_tags.get(tracking.TAG_TASK), all_tags.get(tracking.TAG_RUN_ID)) if part)
        metrics = {"silhouette": fitted.silhouette, "inertia": fitted.inertia, "k": float(fitted.k)}
        writes: dict[str, int] = {}
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name or None, tags=all_tags) as run:
            run_params: dict[str, Any] = {
                "source": source_text(spec.data()),
                "problem": "clustering",
                "label": "",
                "features": _short(",".join(features)),
                "n_features": len(features),
                "estimator": spec.estimator,
                "estimator_class": fitted.estimator,
                "rows": rows,
                "engine": engine.name,
                "k": fitted.k,
                "k_tried": ",".join(str(value) for value in fitted.silhouette_by_k),
                "seed": spec.split.seed,
                "silhouette_sample_size": rows,
                **{f"model.{key}": value for key, value in fitted.params.items()},
            }
            if spec.query:
                run_params["query"] = _short(" ".join(spec.query.split()))
            mlflow.log_params(run_params)
            mlflow.log_metrics({**metrics, "fit_seconds": fitted.seconds})
            for value_k, value in fitted.silhouette_by_k.items():
                mlflow.log_metric("silhouette_by_k", value, step=value_k)
            for value_k, value in fitted.inertia_by_k.items():
                mlflow.log_metric("inertia_by_k", value, step=value_k)
            mlflow.log_metric("n_iter", fitted.iterations)
            mlflow.log_dict(
                {
                    "spec": spec.model_dump(mode="json"),
                    "problem": "clustering",
                    "label": None,
                    "features": features,
                    "numeric": features,
                    "categorical": [],
                    "inputs": reads,
                    "estimator": fitted.estimator,
                    "engine": engine.name,
                    "brickyard": _version("brickyard"),
                },
                SPEC_ARTIFACT,
            )
            _log_profile(profile, features)
            writes = fitted.write_tables(
                profile=pa.Table.from_pandas(profile, preserve_index=False) if spec.profile_table else None,
                profile_table=spec.profile_table,
                assignments_table=spec.assignments_table,
                key=spec.key,
            )
            info = _log_model(fitted)
            check_logged_files(info.model_uri, model_name)
        version = register(info.model_uri, model_name, all_tags)
        for name, table_version in writes.items():
            log.info("wrote %s version %d", name, table_version)
        log.info("logged MLflow run %s; registered %s version %d", run.info.run_id, model_name, version)
        return SparkKMeansResult(
            run_id=run.info.run_id,
            model_name=model_name,
            model_version=version,
            rows=rows,
            features=features,
            reads=reads,
            metrics=metrics,
            k=fitted.k,
            silhouette_by_k=fitted.silhouette_by_k,
            inertia_by_k=fitted.inertia_by_k,
            fit_seconds=fitted.seconds,
            profile=profile,
            writes=writes,
        )
    finally:
        fitted.close()


def refit_from_record(
    ws: Workspace, record: dict[str, Any], engine: Engine | None = None
) -> tuple[dict[str, float], dict[str, int]]:
    """Fit again on `engine` (default the workspace's Spark engine), logging nothing, as the
    `train_spec.json` record of a `train_kmeans` run says (its spec, features and pinned
    table versions): the metrics `train_kmeans` logs (`silhouette`, `inertia`, `k`) and the
    table versions read.

    Raises:
        SparkUnavailableError, TrainingDataError, ModelError, LakeError, SqlError.
    """
    spec = TrainSpec.model_validate({**record["spec"], "features": record["features"], "exclude": []})
    pinned = {str(table): int(version) for table, version in record.get("inputs", {}).items()}
    fitted = (engine or ws.spark).fit_kmeans(_request(spec, _log, pinned=pinned, keys=False))
    try:
        return {"silhouette": fitted.silhouette, "inertia": fitted.inertia, "k": float(fitted.k)}, fitted.reads
    finally:
        fitted.close()


def _request(spec: TrainSpec, log: logging.Logger, *, pinned: dict[str, int], keys: bool) -> Any:
    """The engine's `KMeansRequest` for a train spec (`keys`: keep the key columns for the
    assignments)."""
    from brickyard.engines.base import KMeansRequest
    from brickyard.ml.kmeans_init import SAMPLE_SIZE, SeedSample, choose_seeds
    from brickyard.ml.training import kmeans_k

    k, params = kmeans_k(spec)
    seed = spec.split.seed
    data = spec.data()

    def seeds(values: np.ndarray, weights: np.ndarray, count: int) -> np.ndarray:
        return choose_seeds(SeedSample(values=values, weights=weights), count, seed)

    return KMeansRequest(
        table=data.table,
        query=data.query,
        version=data.version,
        pinned=pinned,
        features=spec.features,
        exclude=list(spec.exclude),
        key=list(spec.key) if keys else [],
        ks=[k] if isinstance(k, int) else list(range(k.min, k.max + 1)),
        params=params,
        seed=seed,
        seeds=seeds,
        sample_size=SAMPLE_SIZE,
        min_rows=MIN_ROWS,
        source=source_text(data),
        log=log,
    )


def _distinct_sample(frame: Any, features: list[str], seed: int, size: int | None = None) -> SeedSample:
    """`brickyard.ml.kmeans_init.distinct_sample` drawn by Spark from a DataFrame (the
    engine's `distinct_sample`)."""
    from brickyard.engines.spark.kmeans import distinct_sample
    from brickyard.ml.kmeans_init import SAMPLE_SIZE, SeedSample

    values, weights = distinct_sample(frame, features, seed, size or SAMPLE_SIZE)
    return SeedSample(values=values, weights=weights)


def _profile(fitted: FittedKMeans) -> pd.DataFrame:
    """`brickyard.ml.kmeans.profile` from the engine's per-cluster aggregates."""
    import pandas as pd

    from brickyard.ml.kmeans import cluster_label

    stats = fitted.cluster_stats()
    table = []
    for cluster, rows, means in stats.clusters:
        row: dict[str, Any] = {"cluster": cluster, "rows": rows, "share": float(rows) / fitted.rows}
        z_scores = {}
        for index, name in enumerate(fitted.features):
            mean = means[index]
            row[f"{name}_mean"] = float(mean) if mean is not None else float("nan")
            centre, spread = stats.mean[index], stats.std[index]
            z_scores[name] = (float(mean) - centre) / spread if mean is not None and centre is not None and spread else 0.0
        row["label"] = cluster_label(z_scores)
        table.append(row)
    return pd.DataFrame(table)


def _log_profile(table: pd.DataFrame, features: list[str]) -> None:
    import mlflow

    from brickyard.ml.kmeans import profile_chart, profile_markdown

    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        table.to_csv(base / "profile.csv", index=False)
        (base / "profile.md").write_text(profile_markdown(table), encoding="utf-8")
        profile_chart(table, features, str(base / "profile.png"))
        mlflow.log_artifacts(folder, "segments")


def _log_model(fitted: FittedKMeans) -> Any:
    """Log the engine's model with `mlflow.spark` (its signature: the raw feature columns in,
    optional where training held nulls, as MLflow infers on the DuckDB engine; the cluster
    out); `brickyard.ml.training.register` registers it. MLlib saves a model from the
    executors; MLflow has them save it under the fit's dfs tmpdir and copies it from there,
    so that folder must be one the driver and every executor see (the lake), not a node's
    /tmp. Over Spark Connect (a staging folder given) through
    `brickyard.ml.spark_connect_model`, as mlflow.spark's copy needs the JVM."""
    import mlflow.spark
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    dfs_tmpdir, staging_root = fitted.model_folders()
    signature = ModelSignature(
        inputs=Schema([
            ColSpec(fitted.feature_types[name], name, required=name not in fitted.nullable) for name in fitted.features
        ]),
        outputs=Schema([ColSpec("integer", PREDICTION)]),
    )
    if staging_root is not None:
        from brickyard.ml.spark_connect_model import log_spark_model_over_connect

        return log_spark_model_over_connect(
            fitted.model,
            artifact_path="model",
            signature=signature,
            pip_requirements=mlflow.spark.get_default_pip_requirements(),
            staging_root=staging_root,
        )
    return mlflow.spark.log_model(
        fitted.model,
        artifact_path="model",
        signature=signature,
        pip_requirements=mlflow.spark.get_default_pip_requirements(),
        dfs_tmpdir=dfs_tmpdir,
    )


def check_logged_files(model_uri: str, model_name: str) -> None:
    """Refuse to register an MLlib model whose saved stages came back without their files
    (executors that wrote the model where the driver could not read it).

    Raises:
        ModelError: a stage's metadata or the pipeline's is missing or empty.
    """
    import mlflow.artifacts

    with tempfile.TemporaryDirectory() as folder:
        root = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=folder)) / "sparkml"
        folders = [root, *sorted((root / "stages").glob("*"))]
        empty = [
            str(path.relative_to(root.parent)) for path in folders
            if not any(part.stat().st_size for part in (path / "metadata").glob("part-*"))
        ]
    if empty or len(folders) < 2:
        raise ModelError(
            f"the MLlib model {model_name} was saved without its files ({', '.join(empty) or 'no stages'}); "
            "nothing was registered",
            hint="the executors wrote it where the driver cannot read it: the lake must be at the same path "
            "on every node (docs/scaling.md)",
        )
