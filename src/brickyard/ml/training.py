"""Training: fit a model from a `TrainSpec`, and log it to MLflow as a registered version.

`fit` does the work without MLflow (read at pinned versions, check, split, fit, score); it
is what `reproduce` calls again. `train` fits, then logs one MLflow run in the experiment
named after the pipeline:

- params: the data source, label, features, split (`split_seed`, `split_test_size`,
  `split_stratify`), the estimator and its parameters (`model.<name>`);
- metrics: the held-out metrics (see `brickyard.ml.metrics`), `fit_seconds`; for kmeans
  `silhouette`, `inertia`, `k`, and `silhouette_by_k` / `inertia_by_k` with step = k;
- tags: `brickyard.input.<table>` = the Delta version read, `brickyard.run_id`,
  `brickyard.pipeline`, `brickyard.task`, `brickyard.kind`, `brickyard.problem`;
- artifacts: the model (`mlflow.sklearn`, skops format, with its signature inferred on the
  raw input frame, integer columns as `long`, and an input example), `brickyard/train_spec.json` (everything needed to
  train again), and for kmeans `segments/profile.{csv,md,png}`.

The model is registered under the model name, and the version gets the same tags.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brickyard.errors import BrickyardError
from brickyard.ml import tracking
from brickyard.ml.data import Loaded, Prepared, load, prepare, source_text
from brickyard.ml.errors import ModelError, TrainingDataError
from brickyard.ml.spec import KRange, TrainSpec

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from brickyard.engines.base import Engine
    from brickyard.ml.kmeans import KMeansFit
    from brickyard.workspace import Workspace

SPEC_ARTIFACT = "brickyard/train_spec.json"
SIGNATURE_ROWS = 1_000
INPUT_EXAMPLE_ROWS = 5
TIMING_METRICS = frozenset({"fit_seconds"})
TAG_ENGINE = "brickyard.engine"
_log = logging.getLogger(__name__)


@dataclass
class Fitted:
    """A fitted model with the data it came from and its held-out metrics."""

    spec: TrainSpec
    data: Prepared
    model: Pipeline
    metrics: dict[str, float]
    estimator: str
    estimator_params: dict[str, Any]
    fit_seconds: float
    kmeans: KMeansFit | None = None

    def spec_record(self) -> dict[str, Any]:
        """What `brickyard/train_spec.json` holds: the spec plus what was resolved from the data."""
        return {
            "spec": self.spec.model_dump(mode="json"),
            "problem": self.data.problem,
            "label": self.data.label,
            "features": self.data.features,
            "numeric": self.data.numeric,
            "categorical": self.data.categorical,
            "inputs": self.data.reads,
            "estimator": self.estimator,
            "brickyard": _version("brickyard"),
        }


@dataclass
class TrainResult:
    """What `train` produced: the fit, its MLflow run, its registered version, tables written."""

    fitted: Fitted
    run_id: str
    model_name: str
    model_version: int
    writes: dict[str, int] = field(default_factory=dict)
    profile: pd.DataFrame | None = None


def fit(ws: Workspace, spec: TrainSpec, pinned: dict[str, int] | None = None, *, engine: Engine | None = None) -> Fitted:
    """Read, check, split and fit, without MLflow. `pinned` maps tables to Delta versions.

    The rows are read by `engine` (default: the workspace's DuckDB engine; see
    `Engine.training_rows`) and collected to this process; the scikit-learn fit is the same
    single-machine fit on every engine.

    Raises:
        TrainingDataError, EstimatorError, ModelError, LakeError, SqlError,
        SparkUnavailableError.
    """
    return fit_loaded(load(ws, spec.data(), pinned, engine=engine), spec)


def fit_loaded(loaded: Loaded, spec: TrainSpec) -> Fitted:
    """`fit` on rows already read (what `tune` refits its best configuration with).

    Raises:
        TrainingDataError, EstimatorError, ModelError.
    """
    if spec.estimator == "kmeans":
        return _fit_kmeans(loaded, spec)
    from brickyard.ml.estimators import build_estimator, estimator_path, simple_params
    from brickyard.ml.metrics import score
    from brickyard.ml.preprocess import fit_pipeline

    data = prepare(
        loaded, label=spec.label, features=spec.features, exclude=spec.exclude, split=spec.split, problem=spec.problem
    )
    estimator = build_estimator(spec.estimator, data.problem, dict(spec.params), spec.split.seed)
    X_train, y_train = data.train()
    started = time.perf_counter()
    model = _guarded_fit(lambda: fit_pipeline(estimator, X_train, y_train, data.numeric, data.categorical), spec)
    seconds = time.perf_counter() - started
    X_test, y_test = data.test()
    metrics = score(model, X_test, y_test, data.problem)
    return Fitted(
        spec, data, model, metrics, estimator_path(spec.estimator, data.problem), simple_params(estimator), seconds
    )


def _fit_kmeans(loaded: Any, spec: TrainSpec) -> Fitted:
    from brickyard.ml.estimators import simple_params
    from brickyard.ml.kmeans import fit_kmeans

    k, params = kmeans_k(spec)
    data = prepare(loaded, label=None, features=spec.features, exclude=spec.exclude, split=None, problem="clustering")
    if data.categorical:
        raise TrainingDataError(
            f"kmeans clusters numeric features; {', '.join(map(repr, data.categorical))} "
            f"{'is' if len(data.categorical) == 1 else 'are'} not numeric",
            hint="list numeric columns in features:, or derive numbers from them in a sql task",
        )
    smallest = k if isinstance(k, int) else k.min
    if len(data.frame) <= smallest:
        raise TrainingDataError(f"{len(data.frame)} rows cannot make {smallest} clusters")
    result = _guarded_fit(
        lambda: fit_kmeans(
            data.X, data.features, k, seed=spec.split.seed, params=params, silhouette_sample=spec.silhouette_sample
        ),
        spec,
    )
    estimator = result.model.steps[-1][1]
    metrics = {"silhouette": result.silhouette, "inertia": result.inertia, "k": float(result.k)}
    path = f"{type(estimator).__module__.split('._')[0]}:{type(estimator).__name__}"
    return Fitted(spec, data, result.model, metrics, path, simple_params(estimator), result.fit_seconds, result)


def kmeans_k(spec: TrainSpec) -> tuple[int | KRange, dict[str, Any]]:
    """The k (or k range) of a kmeans spec, and its other estimator params.

    Raises:
        TrainingDataError: no k, or k below 2.
    """
    params = dict(spec.params)
    k: Any = spec.k if spec.k is not None else params.pop("k", None)
    params.pop("k", None)
    if isinstance(k, dict):
        k = KRange.model_validate(k)
    if k is None:
        raise TrainingDataError(
            "estimator kmeans needs k", hint="set params: {k: 4}, or k: {min: 2, max: 8} to pick the best k"
        )
    if isinstance(k, int) and k < 2:
        raise TrainingDataError(f"k is {k}; kmeans needs at least 2 clusters")
    return k, params


def _guarded_fit(work: Any, spec: TrainSpec) -> Any:
    try:
        return work()
    except BrickyardError:
        raise
    except (ValueError, TypeError) as exc:
        raise ModelError(
            f"{spec.estimator} failed to fit: {' '.join(str(exc).split())}",
            hint="check params: against the estimator's documentation, and the feature columns",
        ) from exc


def train(
    ws: Workspace,
    spec: TrainSpec,
    *,
    experiment: str,
    model_name: str,
    tags: dict[str, str] | None = None,
    log: logging.Logger | None = None,
    engine: Engine | None = None,
) -> TrainResult:
    """Fit, log one MLflow run, register the model, and write kmeans' gold tables.

    The rows are read by `engine` (default: the workspace's DuckDB engine), and a
    scikit-learn estimator is fitted on them (see `fit`); kmeans on a distributed engine is
    Spark MLlib's, in `brickyard.ml.spark_kmeans`, not this function.

    Raises:
        TrainingDataError, EstimatorError, ModelError, LakeError, SqlError.
    """
    import mlflow

    log = log or _log
    engine = engine or ws.engine
    fitted = fit(ws, spec, engine=engine)
    data = fitted.data
    log.info("fitted %s on %d rows (%s) in %.2f s", fitted.estimator, len(data.frame), data.problem, fitted.fit_seconds)
    client = tracking.connect(ws)
    experiment_id = tracking.experiment_id(client, ws, experiment)
    all_tags = model_tags(fitted.data, tags, "train", model_name, engine.name)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name(all_tags), tags=all_tags) as run:
        info, profile, writes = log_fitted(ws, fitted, log)
    version = register(info.model_uri, model_name, all_tags)
    log.info("logged MLflow run %s; registered %s version %d", run.info.run_id, model_name, version)
    return TrainResult(fitted, run.info.run_id, model_name, version, writes, profile)


def model_tags(data: Prepared, tags: dict[str, str] | None, kind: str, model_name: str, engine: str) -> dict[str, str]:
    """The tags of a model's MLflow run and of its registered version."""
    return {
        **(tags or {}),
        tracking.TAG_KIND: kind,
        "brickyard.problem": data.problem,
        "brickyard.model_name": model_name,
        TAG_ENGINE: engine,
        **{f"{tracking.TAG_INPUT}{table}": str(version) for table, version in data.reads.items()},
    }


def run_name(tags: dict[str, str]) -> str | None:
    """`<task>-<brickyard run id>`, from the tags (None when neither is there)."""
    return "-".join(part for part in (tags.get(tracking.TAG_TASK), tags.get(tracking.TAG_RUN_ID)) if part) or None


def log_fitted(ws: Workspace, fitted: Fitted, log: logging.Logger) -> tuple[Any, pd.DataFrame | None, dict[str, int]]:
    """Log a fitted model into the active MLflow run as `train` does (params, metrics, the
    spec record, a training set's lineage, kmeans' segments, the model); returns the
    logged model's info, kmeans' profile and the tables written."""
    import mlflow

    spec, data = fitted.spec, fitted.data
    writes: dict[str, int] = {}
    profile = None
    mlflow.log_params(_params(fitted))
    mlflow.log_metrics({**fitted.metrics, "fit_seconds": fitted.fit_seconds})
    mlflow.log_dict(fitted.spec_record(), SPEC_ARTIFACT)
    if spec.training_set is not None:
        from brickyard.ml import training_set

        lineage = training_set.record(ws, spec.training_set, data.reads, data.features, data.label)
        mlflow.log_dict(lineage, training_set.ARTIFACT)
    if fitted.kmeans is not None:
        profile, writes = _segments(ws, fitted, log)
    return _log_model(fitted), profile, writes


def _params(fitted: Fitted) -> dict[str, Any]:
    spec, data = fitted.spec, fitted.data
    params: dict[str, Any] = {
        "source": source_text(spec.data()),
        "problem": data.problem,
        "label": data.label or "",
        "features": _short(",".join(data.features)),
        "n_features": len(data.features),
        "estimator": spec.estimator,
        "estimator_class": fitted.estimator,
        "rows": len(data.frame),
    }
    if spec.query:
        params["query"] = _short(" ".join(spec.query.split()))
    if fitted.kmeans is None:
        params.update({
            "split_seed": spec.split.seed,
            "split_test_size": spec.split.test_size,
            "split_stratify": spec.split.stratify,
            "rows_train": len(data.train_index),
            "rows_test": len(data.test_index),
        })
    else:
        km = fitted.kmeans
        params.update({
            "k": km.k,
            "k_tried": ",".join(str(k) for k in km.silhouette_by_k),
            "seed": spec.split.seed,
            "silhouette_sample_size": km.sample_size,
        })
    params.update({f"model.{key}": value for key, value in fitted.estimator_params.items()})
    return params


def _short(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _segments(ws: Workspace, fitted: Fitted, log: logging.Logger) -> tuple[Any, dict[str, int]]:
    """Log per-k scores and the cluster profile; write the profile and assignment tables."""
    import mlflow
    import pyarrow as pa

    from brickyard.ml.kmeans import profile, profile_chart, profile_markdown

    km = fitted.kmeans
    assert km is not None
    spec, data = fitted.spec, fitted.data
    for k, value in km.silhouette_by_k.items():
        mlflow.log_metric("silhouette_by_k", value, step=k)
    for k, value in km.inertia_by_k.items():
        mlflow.log_metric("inertia_by_k", value, step=k)
    mlflow.log_metric("n_iter", km.iterations)
    table = profile(data.X, data.features, km.labels)
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        table.to_csv(base / "profile.csv", index=False)
        (base / "profile.md").write_text(profile_markdown(table), encoding="utf-8")
        profile_chart(table, data.features, str(base / "profile.png"))
        mlflow.log_artifacts(folder, "segments")
    writes: dict[str, int] = {}
    if spec.profile_table:
        writes[spec.profile_table] = ws.lake.write(
            spec.profile_table, pa.Table.from_pandas(table, preserve_index=False), mode="overwrite", evolve_schema=True
        )
    if spec.assignments_table:
        missing = [c for c in spec.key if c not in data.frame.columns]
        if missing:
            from brickyard.errors import suggest

            raise TrainingDataError(
                f"key column {missing[0]!r} does not exist in {source_text(spec.data())}",
                hint=suggest(missing[0], list(data.frame.columns)) or "key: names columns of the input",
            )
        assignments = data.frame[spec.key].copy()
        assignments["cluster"] = km.labels.astype("int32")
        writes[spec.assignments_table] = ws.lake.write(
            spec.assignments_table, pa.Table.from_pandas(assignments, preserve_index=False), mode="overwrite", evolve_schema=True
        )
    for name, version in writes.items():
        log.info("wrote %s version %d", name, version)
    return table, writes


def _log_model(fitted: Fitted) -> Any:
    """Log the fitted pipeline (skops) with its signature, an input example and explicit pip
    requirements (MLflow would otherwise infer them by loading the model in a subprocess);
    the signature's types come from a bounded sample (`signature`)."""
    import mlflow

    X = wide_integers(fitted.data.X)
    serialization, trusted = _serialization(fitted.model)
    return mlflow.sklearn.log_model(
        fitted.model,
        name="model",
        signature=signature(X, fitted.model, fitted.spec.split.seed),
        input_example=X.head(INPUT_EXAMPLE_ROWS),
        serialization_format=serialization,
        skops_trusted_types=trusted,
        pip_requirements=_requirements(fitted, serialization),
    )


def register(model_uri: str, model_name: str, tags: dict[str, str]) -> int:
    """Register a logged model as a new version of `model_name`, with its tags in the same call."""
    import mlflow

    return int(mlflow.register_model(model_uri, model_name, tags=tags).version)


def signature(X: pd.DataFrame, model: Any, seed: int) -> Any:
    """The model's MLflow signature: column types inferred from at most SIGNATURE_ROWS rows
    (MLflow looks at every value of a text column), with each column's `required` from all
    rows: a column with a null anywhere is optional, so serving accepts nulls in it."""
    import warnings

    import pandas as pd
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema

    sample = X if len(X) <= SIGNATURE_ROWS else X.sample(SIGNATURE_ROWS, random_state=seed)
    nulls = X.isna().any()
    if len(sample) < len(X):
        # a row with a value for each column, so no column's type is inferred from nulls alone
        filled = [X[name].first_valid_index() for name in X.columns]
        sample = pd.concat([sample, X.loc[[index for index in dict.fromkeys(filled) if index is not None]]])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ii]nteger column.*")
        inferred = infer_signature(sample, model.predict(sample))
    inputs = Schema([ColSpec(spec.type, spec.name, required=not bool(nulls[spec.name])) for spec in inferred.inputs.inputs])
    return ModelSignature(inputs=inputs, outputs=inferred.outputs)


def wide_integers(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every integer column as 64-bit, so the signature says `long`: a JSON
    client's integers are 64-bit, and MLflow refuses int64 for an `integer` (int32) column
    ("Can not safely convert int64 to int32"), which a DuckDB INTEGER would otherwise give."""
    import numpy as np
    import pandas as pd

    narrow = {}
    for name, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.api.extensions.ExtensionDtype):
            if pd.api.types.is_integer_dtype(dtype) and dtype != pd.Int64Dtype():
                narrow[name] = pd.Int64Dtype()
        elif dtype.kind in "iu" and dtype != np.dtype("int64") and dtype != np.dtype("uint64"):
            narrow[name] = np.dtype("int64")
    return frame.astype(narrow) if narrow else frame


def _serialization(model: Any) -> tuple[str, list[str] | None]:
    """skops (a safe format) trusting the types of the model we just built; cloudpickle
    for models skops cannot write."""
    try:
        import skops.io

        return "skops", list(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    except Exception:  # noqa: BLE001 - any failure means: use the other format
        return "cloudpickle", None


def _requirements(fitted: Fitted, serialization: str) -> list[str]:
    import mlflow.sklearn

    requirements = mlflow.sklearn.get_default_pip_requirements(
        include_cloudpickle=serialization == "cloudpickle", include_skops=serialization == "skops"
    )
    for package in _estimator_packages(fitted):
        # Most packages install under their import name; only others need the (slow) map
        # of every installed distribution's modules.
        distributions = [package] if _version(package) else metadata.packages_distributions().get(package, [])
        for distribution in distributions:
            version = _version(distribution)
            requirement = f"{distribution}=={version}" if version else distribution
            if requirement not in requirements:
                requirements.append(requirement)
    return requirements


def _estimator_packages(fitted: Fitted) -> list[str]:
    """The packages (beyond scikit-learn) the model's estimator comes from: an ensemble's
    members' packages."""
    from brickyard.ml.ensembles import ENSEMBLES, member_estimators
    from brickyard.ml.estimators import estimator_path

    paths = [fitted.estimator]
    if fitted.spec.estimator in ENSEMBLES:
        paths = [estimator_path(name, fitted.data.problem) for name in member_estimators(fitted.spec.params)]
    packages = [path.split(":")[0].split(".")[0] for path in paths]
    return [package for package in dict.fromkeys(packages) if package not in ("sklearn", "brickyard")]


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def load_spec_record(run_id: str) -> dict[str, Any]:
    """The `train_spec.json` of an MLflow run (MLflow must be connected).

    Raises:
        ModelError: the run was not made by a brickyard train task.
    """
    import mlflow.artifacts

    try:
        record = mlflow.artifacts.load_dict(f"runs:/{run_id}/{SPEC_ARTIFACT}")
    except Exception as exc:  # noqa: BLE001 - MLflow raises several kinds here
        raise ModelError(
            f"MLflow run {run_id} has no {SPEC_ARTIFACT}: it was not logged by a brickyard train task",
            hint="reproduce and evaluate work on runs and model versions made by `kind: train`",
        ) from exc
    return dict(record)


def refit_from_record(ws: Workspace, record: dict[str, Any], *, engine: Engine | None = None) -> Fitted:
    """Train again exactly as recorded: same spec, resolved features, pinned table versions,
    rows read by `engine` (a scikit-learn fit; see `fit`)."""
    spec = TrainSpec.model_validate({**record["spec"], "features": record["features"], "exclude": []})
    return fit(ws, spec, pinned={str(k): int(v) for k, v in record.get("inputs", {}).items()}, engine=engine)


def prepared_from_record(ws: Workspace, record: dict[str, Any]) -> Prepared:
    """The data a recorded training used, read at its pinned versions and split the same way."""
    spec = TrainSpec.model_validate({**record["spec"], "features": record["features"], "exclude": []})
    loaded = load(ws, spec.data(), {str(k): int(v) for k, v in record.get("inputs", {}).items()})
    clustering = record["problem"] == "clustering"
    return prepare(
        loaded,
        label=record.get("label"),
        features=list(record["features"]),
        exclude=[],
        split=None if clustering else spec.split,
        problem=record["problem"],
    )

