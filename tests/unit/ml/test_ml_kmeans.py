"""Segmentation: kmeans with a fixed k and a k range, the profile table, labels, fast preprocessing."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pytest
from ml_helpers import run_task

from brickyard import Workspace
from brickyard.ml import tracking
from brickyard.ml.errors import TrainingDataError
from brickyard.ml.kmeans import cluster_label, feature_words, fit_kmeans, profile
from brickyard.ml.kmeans_init import distinct_sample, feature_columns, row_hashes
from brickyard.ml.preprocess import fit_numeric, median

FEATURES = ["trip_distance", "fare_amount", "passenger_count"]


def trips(rows: int = 3000, seed: int = 7) -> pd.DataFrame:
    """Three well-separated kinds of taxi trips (short/cheap, long/expensive, groups)."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 3, rows)
    distance = np.where(kind == 1, rng.normal(15, 2, rows), rng.normal(1.5, 0.4, rows))
    fare = np.where(kind == 1, rng.normal(50, 5, rows), rng.normal(8, 1.5, rows))
    passengers = np.where(kind == 2, rng.integers(4, 7, rows), 1)
    frame = pd.DataFrame({
        "trip_id": np.arange(rows), "trip_distance": distance.round(2), "fare_amount": fare.round(2),
        "passenger_count": passengers,
    })
    frame.loc[::97, "fare_amount"] = np.nan
    return frame


def segment_task(**overrides: object) -> dict[str, object]:
    task = {
        "name": "segment", "kind": "train", "table": "silver.trips", "estimator": "kmeans",
        "features": FEATURES, "profile_table": "gold.trip_segment_profile",
        "assignments_table": "gold.trip_segments", "key": ["trip_id"], "model_name": "trip_segments",
    }
    task.update(overrides)
    return task


@pytest.fixture
def trips_ws(ml_ws: Workspace) -> Workspace:
    ml_ws.lake.write("silver.trips", pa.Table.from_pandas(trips(), preserve_index=False))
    return ml_ws


def test_fixed_k_writes_profile_and_assignments_and_logs_artifacts(trips_ws: Workspace) -> None:
    pipeline = {"name": "taxi", "tasks": [segment_task(params={"k": 3, "max_iter": 50})]}
    context = run_task(trips_ws, pipeline, "segment")

    extra = context.metrics.extra
    assert extra["model_name"] == "trip_segments" and extra["metrics"]["k"] == 3
    assert context.metrics.writes == {"gold.trip_segment_profile": 0, "gold.trip_segments": 0, "gold.model_baselines": 0}
    profile_table = trips_ws.lake.read("gold.trip_segment_profile").to_pandas()
    assert list(profile_table.columns) == [
        "cluster", "rows", "share", "trip_distance_mean", "fare_amount_mean", "passenger_count_mean", "label",
    ]
    assert math.isclose(profile_table["share"].sum(), 1.0)
    assert profile_table["rows"].sum() == 3000
    labels = set(profile_table["label"])
    assert any("long trips" in label and "high fare" in label for label in labels), labels
    assert any("many passengers" in label for label in labels), labels
    assignments = trips_ws.lake.read("gold.trip_segments").to_pandas()
    assert list(assignments.columns) == ["trip_id", "cluster"] and len(assignments) == 3000
    assert set(assignments["cluster"]) == {0, 1, 2}

    client = tracking.connect(trips_ws)
    run = client.get_run(extra["mlflow_run_id"])
    assert run.data.params["silhouette_sample_size"] == "3000" and run.data.params["k"] == "3"
    assert run.data.metrics["silhouette"] > 0.5
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id, "segments")}
    assert artifacts == {"segments/profile.csv", "segments/profile.md", "segments/profile.png"}
    assert run.data.params["model.n_init"] == "1"


def test_k_range_logs_each_k_and_picks_the_best_silhouette(trips_ws: Workspace) -> None:
    pipeline = {"name": "taxi", "tasks": [segment_task(k={"min": 2, "max": 5}, silhouette_sample=1000)]}
    context = run_task(trips_ws, pipeline, "segment")

    client = tracking.connect(trips_ws)
    run_id = context.metrics.extra["mlflow_run_id"]
    history = client.get_metric_history(run_id, "silhouette_by_k")
    by_k = {m.step: m.value for m in history}
    assert sorted(by_k) == [2, 3, 4, 5]
    best = max(by_k, key=lambda k: by_k[k])
    assert best == 3
    run = client.get_run(run_id)
    assert run.data.metrics["k"] == best and run.data.metrics["silhouette"] == by_k[best]
    assert run.data.params["silhouette_sample_size"] == "1000"
    assert len(client.get_metric_history(run_id, "inertia_by_k")) == 4
    profile_table = trips_ws.lake.read("gold.trip_segment_profile").to_pandas()
    assert len(profile_table) == 3 and math.isclose(profile_table["share"].sum(), 1.0)


def test_fit_kmeans_matches_scikit_learn_on_standardized_data() -> None:
    """From brickyard's initial centres (the rows seeded k-means++ picks from the hashed
    sample) it is scikit-learn's KMeans; with `init: k-means++`, scikit-learn's own start."""
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    frame = trips(2000).fillna({"fare_amount": 8.0})
    scaled = StandardScaler().fit_transform(frame[FEATURES])
    fitted = fit_kmeans(frame, FEATURES, 3, seed=1, params={"max_iter": 20, "tol": 0.0})
    assert fitted.initial_centres is not None and fitted.initial_centres.shape == (3, 3)
    # the initial centres are rows of the data, standardized
    assert all(np.isclose(scaled, centre, atol=1e-9).all(axis=1).any() for centre in fitted.initial_centres)
    reference = KMeans(3, init=fitted.initial_centres, n_init=1, max_iter=20, tol=0.0).fit(scaled)
    assert np.array_equal(fitted.labels, reference.labels_)
    assert math.isclose(fitted.inertia, reference.inertia_, rel_tol=1e-9)
    assert np.array_equal(fitted.model.predict(frame[FEATURES]), reference.labels_)

    own = fit_kmeans(frame, FEATURES, 3, seed=1, params={"max_iter": 20, "tol": 0.0, "init": "k-means++"})
    reference = KMeans(3, n_init=1, max_iter=20, tol=0.0, random_state=1).fit(scaled)
    assert own.initial_centres is None
    assert np.array_equal(own.labels, reference.labels_)


def test_the_seed_sample_does_not_depend_on_row_order_and_counts_repeated_rows() -> None:
    """The distinct rows with the smallest hashes, each weighted by its rows: the same in
    any row order, and what counting every distinct row would give."""
    frame = trips(3000)
    frame["passenger_count"] = frame["passenger_count"].astype("Int64")
    frame.loc[::50, "passenger_count"] = pd.NA
    frame = pd.concat([frame, frame.iloc[:500], frame.iloc[:100]], ignore_index=True)  # repeated rows
    for size in (10, 700, 100_000):
        sample = distinct_sample(frame, FEATURES, seed=3, size=size)
        shuffled = distinct_sample(frame.sample(frac=1.0, random_state=5), FEATURES, seed=3, size=size)
        np.testing.assert_array_equal(sample.values, shuffled.values)
        np.testing.assert_array_equal(sample.weights, shuffled.weights)
        hashes = row_hashes(feature_columns(frame, FEATURES), 3)
        distinct, counts = np.unique(hashes, return_counts=True)
        assert len(sample.values) == min(size, len(distinct))
        np.testing.assert_array_equal(sample.weights, counts[:size])
        assert sample.positions is not None
        np.testing.assert_array_equal(hashes[sample.positions], distinct[:size])


def test_fewer_distinct_rows_than_clusters_is_a_training_data_error() -> None:
    frame = pd.DataFrame({"trip_distance": [1.0, 2.0] * 10, "fare_amount": [5.0, 9.0] * 10, "passenger_count": [1] * 20})
    with pytest.raises(TrainingDataError, match="only 2 distinct rows; kmeans cannot make 3 clusters"):
        fit_kmeans(frame, FEATURES, 3)


def test_fast_numeric_preprocessing_equals_scikit_learn_fit() -> None:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    frame = trips(5001)
    frame["constant"] = 3.0
    columns = [*FEATURES, "constant"]
    steps, transformed = fit_numeric(frame, columns)
    reference = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]).fit(frame[columns])
    np.testing.assert_array_equal(steps[1][1].statistics_, reference[0].statistics_)
    np.testing.assert_allclose(steps[2][1].scale_, reference[1].scale_, rtol=1e-12)
    np.testing.assert_allclose(transformed, reference.transform(frame[columns]), atol=1e-12)
    np.testing.assert_allclose(Pipeline(steps).transform(frame.head(50)), transformed[:50], atol=1e-12)
    assert transformed.flags.c_contiguous
    values = np.random.default_rng(3).normal(size=1000)
    assert median(values) == np.median(values) and median(values[:999]) == np.median(values[:999])


def test_labels_come_from_feature_names() -> None:
    assert feature_words("trip_distance") == ("short trips", "long trips")
    assert feature_words("fare_amount") == ("low fare", "high fare")
    assert feature_words("passenger_count") == ("few passengers", "many passengers")
    assert feature_words("Age") == ("younger", "older")
    assert feature_words("x1") == ("low x1", "high x1")
    assert cluster_label({"trip_distance": -0.9, "fare_amount": -0.6, "passenger_count": 0.1}) == "short trips, low fare"
    assert cluster_label({"trip_distance": 0.05, "fare_amount": -0.1}) == "typical"


def test_profile_shares_means_and_labels() -> None:
    frame = pd.DataFrame({"trip_distance": [1.0, 1.2, 10.0, 12.0], "fare_amount": [5.0, 30.0, 40.0, 44.0]})
    table = profile(frame, ["trip_distance", "fare_amount"], np.array([0, 0, 1, 1]))
    assert table["share"].tolist() == [0.5, 0.5]
    assert table["trip_distance_mean"].tolist() == [1.1, 11.0]
    assert table["label"].tolist() == ["short trips, low fare", "long trips, high fare"]


def test_evaluate_a_segmentation_model_and_check_the_task(trips_ws: Workspace) -> None:
    from brickyard.core.pipeline import PipelineSpec
    from brickyard.tasks import CheckContext, get_kind

    pipeline = {"name": "taxi", "tasks": [
        segment_task(params={"k": 3}),
        {"name": "evaluate", "kind": "evaluate", "depends_on": ["segment"]},
    ]}
    trained = run_task(trips_ws, pipeline, "segment")
    evaluated = run_task(trips_ws, pipeline, "evaluate")
    metrics = evaluated.metrics.extra["metrics"]
    assert evaluated.metrics.extra["model_name"] == "trip_segments"
    assert metrics["silhouette"] == pytest.approx(trained.metrics.extra["metrics"]["silhouette"], abs=1e-9)
    assert metrics["inertia"] == pytest.approx(trained.metrics.extra["metrics"]["inertia"], rel=1e-9)

    kind = get_kind("train")
    spec = PipelineSpec.model_validate(pipeline)
    options = kind.Options.model_validate(spec.task("segment").options)
    assert kind.writes(options) == ["gold.trip_segment_profile", "gold.trip_segments"]
    check = CheckContext(trips_ws, spec, frozenset())
    assert kind.check(options, check) == []
    missing = kind.Options.model_validate({**spec.task("segment").options, "table": "silver.nope"})
    assert "does not exist" in kind.check(missing, check)[0]


def test_fast_preprocessing_handles_every_numeric_dtype() -> None:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(5)
    rows = 250_001  # above the threshold for threads; odd, so the median is one value
    frame = pd.DataFrame({
        "f64": rng.normal(10, 3, rows),
        "f32": rng.normal(0, 1, rows).astype("float32"),
        "i32": rng.integers(1, 7, rows).astype("int32"),
        "wide": rng.integers(-(10**12), 10**12, rows),
        "nullable": pd.array(np.where(rng.random(rows) < 0.1, None, rng.integers(0, 50, rows)), dtype="Int64"),
        "holes": np.where(rng.random(rows) < 0.2, np.nan, rng.gamma(2.0, 2.0, rows)),
    })
    before = frame.copy()
    steps, transformed = fit_numeric(frame, list(frame.columns))
    pd.testing.assert_frame_equal(frame, before)  # the caller's frame is left alone
    reference = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    expected = reference.fit_transform(frame.astype({"nullable": "float64"}))
    np.testing.assert_array_equal(steps[1][1].statistics_, reference[0].statistics_)
    np.testing.assert_allclose(transformed, expected, atol=1e-9)
    even = pd.DataFrame({"i": rng.integers(0, 4, 300_000)})
    assert fit_numeric(even, ["i"])[0][1][1].statistics_[0] == np.median(even["i"])


def serve_one(ws: Workspace, model: str, body: dict[str, object]) -> tuple[int, dict[str, object], str]:
    """POST one request to `brickyard serve`'s app for `model` (in process, no auth)."""
    from starlette.testclient import TestClient

    from brickyard.serving.app import create_app
    from brickyard.serving.service import ModelRef, ServingService

    service = ServingService(ws, [ModelRef.parse(model)], auth=False)
    with TestClient(create_app(service)) as client:  # type: ignore[arg-type]
        assert service.wait_ready(120), service.status()
        response = client.post("/invocations", json=body)
        path = service.status()["endpoints"][model.split("@")[0].split("/")[0]]["champion"]["path"]
        return response.status_code, response.json(), path


def test_a_model_trained_on_duckdb_integer_columns_serves_json_requests(trips_ws: Workspace) -> None:
    """A DuckDB INTEGER (int32) feature used to give an `integer` signature, and every JSON
    request then failed: "Can not safely convert int64 to int32"."""
    import mlflow
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    from brickyard.serving.registry import PyfuncPredictor, Registry
    from brickyard.serving.schema import parse_body

    frame = trips().astype({"passenger_count": "int32"})
    trips_ws.lake.write("silver.trips32", pa.Table.from_pandas(frame, preserve_index=False))
    assert trips_ws.lake.read("silver.trips32").schema.field("passenger_count").type == pa.int32()
    run_task(trips_ws, {"name": "taxi", "tasks": [segment_task(table="silver.trips32", params={"k": 3})]}, "segment")
    client = tracking.connect(trips_ws)
    info = mlflow.models.get_model_info("models:/trip_segments/1")
    assert {c.name: c.type.name for c in info.signature.inputs.inputs}["passenger_count"] == "long"
    client.set_registered_model_alias("trip_segments", "champion", "1")
    body = {"dataframe_records": [{"trip_distance": 15.0, "fare_amount": 50.0, "passenger_count": 1}]}
    status, answer, _ = serve_one(trips_ws, "trip_segments", body)
    assert status == 200 and answer["predictions"][0] in (0, 1, 2)

    # A model logged before: its signature says `integer`; serving converts to it.
    model = mlflow.sklearn.load_model("models:/trip_segments/1")
    with mlflow.start_run():
        old = mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(frame[FEATURES]), registered_model_name="old_segments",
            skops_trusted_types=["numpy.dtype"],
        )
    assert {c.name: c.type.name for c in old.signature.inputs.inputs}["passenger_count"] == "integer"
    client.set_registered_model_alias("old_segments", "champion", "1")
    status, answer, _ = serve_one(trips_ws, "old_segments", body)
    assert status == 200, answer
    loaded = Registry(trips_ws.mlflow_tracking_uri).load("old_segments", "1")
    pyfunc = PyfuncPredictor(mlflow.pyfunc.load_model(old.model_uri))
    batch = loaded.schema.batch(parse_body(orjson.dumps({"dataframe_records": [body["dataframe_records"][0]] * 3})))  # type: ignore[index, union-attr]
    assert batch.columns["passenger_count"].dtype == np.int32
    assert list(pyfunc.predict(batch)) == [answer["predictions"][0]] * 3  # the MLflow model takes it too
