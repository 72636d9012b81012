"""`train` on the Spark engine: MLlib KMeans logged with `mlflow.spark`, and scikit-learn
learners on rows Spark read. Real Spark (local[2]), real MLflow in the temp workspace.

Cluster shares: both engines start from the same centres and run the same iterations, so
each share must agree within SHARE_TOLERANCE = 0.01 (1 percentage point) — room for a few
boundary rows, as the engines compute distances in different orders and impute medians
differently (exact vs approximate).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from brickyard import Workspace
from brickyard.core.pipeline import PipelineSpec
from brickyard.ml.errors import TrainingDataError
from brickyard.tasks import TaskContext, get_kind

SHARE_TOLERANCE = 0.01
FEATURES = ["trip_distance", "fare_amount", "passenger_count"]
TITANIC_FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
DATA = Path(__file__).resolve().parents[3] / "src" / "brickyard" / "demo" / "data"


def run(ws: Workspace, task: dict[str, Any], engine: str, run_id: str = "20260101-000000-spark") -> TaskContext:
    spec = PipelineSpec.model_validate({"name": "segments", "tasks": [task]})
    kind = get_kind(task["kind"])
    context = TaskContext(ws, spec, spec.tasks[0], run_id, 1, False, logging.getLogger("test.spark"), engine=engine)
    kind.run(kind.Options.model_validate(spec.tasks[0].options), context)
    return context


def blobs(rows: int = 2000, seed: int = 7) -> pd.DataFrame:
    """Four well-separated groups of trips, 40/30/20/10 % of the rows, a few nulls."""
    rng = np.random.default_rng(seed)
    centres = np.array([[1.0, 6.0, 1.0], [5.0, 20.0, 1.0], [15.0, 50.0, 2.0], [3.0, 12.0, 5.0]])
    sizes = [int(rows * share) for share in (0.4, 0.3, 0.2, 0.1)]
    parts = [centre + rng.normal(0, [0.3, 1.0, 0.1], size=(size, 3)) for centre, size in zip(centres, sizes, strict=True)]
    values = np.vstack(parts)
    frame = pd.DataFrame(values, columns=FEATURES)
    frame["passenger_count"] = frame["passenger_count"].round().astype("int64")
    frame.insert(0, "trip_id", np.arange(len(frame), dtype="int64"))
    frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    frame.loc[::97, "fare_amount"] = np.nan
    return frame


@pytest.fixture
def sws(spark_workspace: Workspace, migrated_mlflow_db: Path) -> Workspace:
    shutil.copyfile(migrated_mlflow_db, spark_workspace.root / "mlflow.db")
    spark_workspace.lake.write("silver.taxi_trips", pa.Table.from_pandas(blobs(), preserve_index=False))
    return spark_workspace


SEGMENT = {
    "name": "segment_trips", "kind": "train",
    "query": "SELECT trip_id, trip_distance, fare_amount, passenger_count FROM silver.taxi_trips",
    "features": FEATURES, "estimator": "kmeans", "k": 4, "key": ["trip_id"],
    "profile_table": "gold.taxi_segment_profile", "assignments_table": "gold.taxi_segments",
    "model_name": "taxi_segments",
}


def test_kmeans_on_spark_logs_a_spark_model_and_writes_the_segments(sws: Workspace) -> None:
    import mlflow
    from mlflow.models import Model

    from brickyard.ml import tracking

    context = run(sws, SEGMENT, "spark")
    extra = context.metrics.extra
    assert (extra["model_name"], extra["model_version"], extra["problem"]) == ("taxi_segments", 1, "clustering")
    assert context.metrics.reads == {"silver.taxi_trips": 0}
    assert set(context.metrics.writes) == {"gold.taxi_segments", "gold.taxi_segment_profile"}
    assert context.metrics.rows_in == context.metrics.rows_out == 2000

    client = tracking.connect(sws)
    data = client.get_run(extra["mlflow_run_id"]).data
    assert data.metrics["k"] == 4
    assert 0.5 < data.metrics["silhouette"] <= 1.0
    assert data.params["estimator_class"] == "pyspark.ml.clustering:KMeans"
    assert data.params["engine"] == "spark"
    assert data.tags["brickyard.engine"] == "spark"
    version = client.get_model_version("taxi_segments", "1")
    assert version.tags["brickyard.run_id"] == "20260101-000000-spark"
    path = mlflow.artifacts.download_artifacts(artifact_uri=client.get_model_version_download_uri("taxi_segments", "1"))
    meta = Model.load(path)
    assert "spark" in meta.flavors
    assert meta.signature.inputs.input_names() == FEATURES
    artifacts = {item.path for item in client.list_artifacts(extra["mlflow_run_id"], "segments")}
    assert artifacts == {"segments/profile.csv", "segments/profile.md", "segments/profile.png"}

    assignments = sws.lake.read("gold.taxi_segments")
    assert assignments.column_names == ["trip_id", "cluster"]
    assert assignments.schema.field("cluster").type == pa.int32()
    assert sorted(assignments.column("trip_id").to_pylist()) == list(range(2000))
    profile = sws.lake.read("gold.taxi_segment_profile").to_pandas().sort_values("cluster")
    assert list(profile.columns) == ["cluster", "rows", "share", *[f"{f}_mean" for f in FEATURES], "label"]
    counts = assignments.to_pandas()["cluster"].value_counts().sort_index()
    assert profile["rows"].tolist() == counts.tolist()
    assert profile["share"].sum() == pytest.approx(1.0)
    assert "long trips, high fare, many passengers" in profile["label"].tolist()


def test_cluster_shares_agree_with_the_duckdb_engine(sws: Workspace) -> None:
    spark_run = run(sws, SEGMENT, "spark")
    spark_profile = sws.lake.read("gold.taxi_segment_profile").to_pandas()
    spark_assignments = sws.lake.read("gold.taxi_segments").to_pandas()
    duck_run = run(sws, {**SEGMENT, "model_name": "taxi_segments_duckdb"}, "duckdb")
    duck_profile = sws.lake.read("gold.taxi_segment_profile").to_pandas()
    duck_assignments = sws.lake.read("gold.taxi_segments").to_pandas()

    assert list(spark_profile.columns) == list(duck_profile.columns)
    spark_shares = np.sort(spark_profile["share"].to_numpy())
    duck_shares = np.sort(duck_profile["share"].to_numpy())
    np.testing.assert_allclose(spark_shares, duck_shares, atol=SHARE_TOLERANCE)
    np.testing.assert_allclose(duck_shares, [0.1, 0.2, 0.3, 0.4], atol=SHARE_TOLERANCE)
    # same clusters up to renumbering: the same labels, and each trip's pair of cluster numbers is one-to-one
    assert sorted(spark_profile["label"]) == sorted(duck_profile["label"])
    pairs = spark_assignments.merge(duck_assignments, on="trip_id", suffixes=("_spark", "_duckdb"))
    assert len(pairs) == 2000
    agreeing = pairs.groupby("cluster_spark")["cluster_duckdb"].agg(lambda s: s.value_counts().iloc[0]).sum()
    assert agreeing / len(pairs) >= 1 - SHARE_TOLERANCE
    assert spark_run.metrics.extra["metrics"]["k"] == duck_run.metrics.extra["metrics"]["k"] == 4


def overlapping_trips(rows: int = 6000, seed: int = 11) -> pd.DataFrame:
    """Trips as the demo's are: long-tailed distances, fares that follow them, mostly one
    passenger; no clear clusters, so where KMeans ends depends on where it starts."""
    rng = np.random.default_rng(seed)
    distance = np.round(rng.lognormal(0.6, 0.8, rows), 2)
    fare = np.round(2.5 + 2.6 * distance + rng.normal(0, 1.5, rows).clip(-2, None), 1)
    passengers = rng.choice([1, 1, 1, 1, 1, 2, 2, 3, 5, 6], rows)
    return pd.DataFrame({"trip_id": np.arange(rows, dtype="int64"), "trip_distance": distance, "fare_amount": fare,
                         "passenger_count": passengers.astype("int64")})


def test_spark_draws_the_seed_sample_the_duckdb_engine_draws(sws: Workspace) -> None:
    """The same hashes (Spark's xxhash64, NumPy's copy of it) over nulls, NaN, -0.0,
    integers and repeated rows: the same distinct rows with the same weights, in the same
    order, whatever the order and partitioning of the rows."""
    from brickyard.ml.kmeans_init import distinct_sample
    from brickyard.ml.spark_kmeans import _distinct_sample

    frame = overlapping_trips(3000)
    frame["fare_amount"] = frame["fare_amount"].astype("float64")
    frame.loc[::31, "fare_amount"] = np.nan
    frame.loc[5, "trip_distance"] = -0.0
    frame.loc[6, "trip_distance"] = 0.0
    frame = pd.concat([frame, frame.iloc[:400]], ignore_index=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.set_column(2, "fare_amount", pa.array(frame["fare_amount"].where(frame.index % 62 != 0)))  # nulls and NaN
    spark = sws.spark.spark
    source = spark.createDataFrame(table).repartition(3)
    for size in (50, 100_000):
        ours = distinct_sample(table.to_pandas(), FEATURES, seed=9, size=size)
        theirs = _distinct_sample(source, FEATURES, 9, size)
        np.testing.assert_array_equal(theirs.values, ours.values)
        np.testing.assert_array_equal(theirs.weights, ours.weights)


def test_both_engines_find_the_same_clusters_with_the_same_numbers(sws: Workspace) -> None:
    """On data without clear clusters (where MLlib's k-means|| and scikit-learn's k-means++
    used to end in different optima) both engines start from the same centres and run the
    same Lloyd iterations: the same cluster numbers, shares and centres. Tolerance: shares
    within 0.01 and means within 1 % of the feature's spread, as the issue allows; in this
    data no row differs (a boundary row could only flip on float rounding, as the engines
    compute distances and means in different orders)."""
    sws.lake.write("silver.overlapping", pa.Table.from_pandas(overlapping_trips(), preserve_index=False))
    task = {**SEGMENT, "query": SEGMENT["query"].replace("silver.taxi_trips", "silver.overlapping")}
    profiles, assigned, iterations = {}, {}, {}
    from brickyard.ml import tracking

    for engine in ("duckdb", "spark"):
        context = run(sws, {**task, "model_name": f"segments_{engine}"}, engine)
        profiles[engine] = sws.lake.read("gold.taxi_segment_profile").to_pandas().sort_values("cluster")
        assigned[engine] = sws.lake.read("gold.taxi_segments").to_pandas()
        run_data = tracking.connect(sws).get_run(context.metrics.extra["mlflow_run_id"]).data
        iterations[engine] = run_data.metrics["n_iter"]
    duck, spark = profiles["duckdb"], profiles["spark"]
    assert duck["cluster"].tolist() == spark["cluster"].tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(spark["share"], duck["share"], atol=SHARE_TOLERANCE)
    spread = overlapping_trips()[FEATURES].std().to_numpy()
    for index, name in enumerate(FEATURES):
        np.testing.assert_allclose(spark[f"{name}_mean"], duck[f"{name}_mean"], atol=0.01 * spread[index])
    assert spark["label"].tolist() == duck["label"].tolist()
    pairs = assigned["duckdb"].merge(assigned["spark"], on="trip_id", suffixes=("_duckdb", "_spark"))
    assert len(pairs) == 6000
    assert (pairs["cluster_duckdb"] != pairs["cluster_spark"]).mean() <= SHARE_TOLERANCE
    assert iterations["duckdb"] == iterations["spark"]


def test_kmeans_on_spark_picks_k_from_a_range(sws: Workspace) -> None:
    task = {**SEGMENT, "query": None, "table": "silver.taxi_trips", "k": {"min": 2, "max": 5}, "profile_table": None,
            "assignments_table": None, "key": []}
    task = {key: value for key, value in task.items() if value is not None and value != []}
    context = run(sws, task, "spark")
    from brickyard.ml import tracking

    client = tracking.connect(sws)
    history = client.get_metric_history(context.metrics.extra["mlflow_run_id"], "silhouette_by_k")
    by_k = {m.step: m.value for m in history}
    assert sorted(by_k) == [2, 3, 4, 5]
    # MLlib's silhouette (squared Euclidean) may prefer another k than scikit-learn's would:
    # the best of its own scores wins
    assert context.metrics.extra["metrics"]["k"] == max(by_k, key=lambda k: (by_k[k], -k))
    assert context.metrics.writes == {}


def test_kmeans_on_spark_reports_bad_columns_like_the_duckdb_engine(sws: Workspace) -> None:
    sws.lake.write("silver.named", pa.table({"id": list(range(20)), "x": [float(i) for i in range(20)], "name": ["a"] * 20}))
    task = {"name": "t", "kind": "train", "table": "silver.named", "estimator": "kmeans", "k": 2}
    for engine in ("spark", "duckdb"):
        with pytest.raises(TrainingDataError, match="'name' is not numeric"):
            run(sws, task, engine)
        with pytest.raises(TrainingDataError, match="feature column 'y' does not exist"):
            run(sws, {**task, "features": ["x", "y"]}, engine)


def test_a_scikit_learn_model_trained_on_spark_is_the_duckdb_model(sws: Workspace) -> None:
    """Titanic in two files (two appends): Spark's rows come back in the Delta log's order,
    so the seeded split and the model are the same."""
    import mlflow.sklearn

    titanic = pd.read_csv(DATA / "titanic.csv")
    sws.lake.write("silver.titanic", pa.Table.from_pandas(titanic.iloc[:400], preserve_index=False))
    sws.lake.write("silver.titanic", pa.Table.from_pandas(titanic.iloc[400:], preserve_index=False), mode="append")
    task = {"name": "train", "kind": "train", "table": "silver.titanic", "label": "Survived",
            "features": TITANIC_FEATURES, "estimator": "logistic_regression", "params": {"max_iter": 1000}}
    on_spark = run(sws, {**task, "model_name": "titanic_spark"}, "spark")
    on_duckdb = run(sws, {**task, "model_name": "titanic_duckdb"}, "duckdb")
    assert on_spark.metrics.reads == on_duckdb.metrics.reads == {"silver.titanic": 1}
    assert on_spark.metrics.extra["metrics"] == on_duckdb.metrics.extra["metrics"]
    from brickyard.ml import tracking

    tracking.connect(sws)
    spark_model = mlflow.sklearn.load_model("models:/titanic_spark/1")
    duck_model = mlflow.sklearn.load_model("models:/titanic_duckdb/1")
    X = titanic[TITANIC_FEATURES]
    np.testing.assert_array_equal(spark_model.predict_proba(X), duck_model.predict_proba(X))


def test_a_spark_model_trained_on_integer_columns_serves_json_requests(sws: Workspace) -> None:
    """A Spark INTEGER feature used to give an `integer` signature, and `brickyard serve`
    then refused every JSON request ("Can not safely convert int64 to int32")."""
    import mlflow
    from mlflow import MlflowClient
    from starlette.testclient import TestClient

    from brickyard.serving.app import create_app
    from brickyard.serving.service import ModelRef, ServingService

    frame = blobs().astype({"passenger_count": "int32"})
    sws.lake.write("silver.trips32", pa.Table.from_pandas(frame, preserve_index=False))
    task = {**SEGMENT, "query": SEGMENT["query"].replace("silver.taxi_trips", "silver.trips32"), "model_name": "segments32"}
    for key in ("profile_table", "assignments_table", "key"):
        task.pop(key)
    run(sws, task, "spark")
    mlflow.set_tracking_uri(sws.mlflow_tracking_uri)
    info = mlflow.models.get_model_info("models:/segments32/1")
    assert {c.name: c.type.name for c in info.signature.inputs.inputs}["passenger_count"] == "long"
    # fare_amount held nulls in training (the model imputes them): optional, as on DuckDB
    assert {c.name: c.required for c in info.signature.inputs.inputs} == {
        "trip_distance": True, "fare_amount": False, "passenger_count": True,
    }
    MlflowClient(sws.mlflow_tracking_uri).set_registered_model_alias("segments32", "champion", "1")
    service = ServingService(sws, [ModelRef.parse("segments32")], auth=False)
    with TestClient(create_app(service)) as client:  # type: ignore[arg-type]
        assert service.wait_ready(300), service.status()
        body = {"dataframe_records": [{"trip_distance": 15.0, "fare_amount": 50.0, "passenger_count": 2}]}
        response = client.post("/invocations", json=body)
        no_fare = client.post("/invocations", json={"dataframe_records": [{**body["dataframe_records"][0], "fare_amount": None}]})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0] in (0, 1, 2, 3)
    assert no_fare.status_code == 200, no_fare.text
