"""Bad input: each a clear BrickyardError that says what to do; and `reproduce`."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pytest
from ml_helpers import run_task, titanic_pipeline, train_task

from brickyard import BrickyardError, ConfigError, Workspace
from brickyard.ml import registry, tracking
from brickyard.ml.errors import EstimatorError, ModelNotFoundError, NoChampionError, TrainingDataError
from brickyard.ml.reproduce import reproduce
from brickyard.ml.spec import TrainSpec
from brickyard.ml.training import fit


def test_a_label_with_one_class(ml_ws: Workspace) -> None:
    ml_ws.lake.write("silver.survivors", ml_ws.sql("SELECT * FROM silver.titanic WHERE Survived = 1").to_arrow_table())
    with pytest.raises(TrainingDataError) as caught:
        fit(ml_ws, TrainSpec(table="silver.survivors", label="Survived", features=["Fare"]))
    assert "has one class (1)" in str(caught.value) and "at least two" in str(caught.value)
    assert caught.value.hint


def test_a_feature_that_does_not_exist_names_close_columns(ml_ws: Workspace) -> None:
    with pytest.raises(TrainingDataError) as caught:
        fit(ml_ws, TrainSpec(table="silver.titanic", label="Survived", features=["Pclass", "Fair"]))
    assert "feature column 'Fair' does not exist in table silver.titanic" in str(caught.value)
    assert "did you mean Fare" in str(caught.value)


def test_a_label_that_does_not_exist(ml_ws: Workspace) -> None:
    with pytest.raises(TrainingDataError, match="label column 'survived' does not exist.*did you mean Survived"):
        fit(ml_ws, TrainSpec(table="silver.titanic", label="survived", features=["Fare"]))


def test_an_all_null_column(ml_ws: Workspace) -> None:
    ml_ws.lake.write(
        "silver.titanic_blank",
        ml_ws.sql("SELECT Survived, Fare, CAST(NULL AS DOUBLE) AS Bonus FROM silver.titanic").to_arrow_table(),
    )
    with pytest.raises(TrainingDataError) as caught:
        fit(ml_ws, TrainSpec(table="silver.titanic_blank", label="Survived"))
    assert "feature column 'Bonus' is null in every row" in str(caught.value)
    assert "exclude" in str(caught.value)


def test_a_table_too_small_to_split(ml_ws: Workspace) -> None:
    ml_ws.lake.write("silver.tiny", ml_ws.sql("SELECT * FROM silver.titanic LIMIT 6").to_arrow_table())
    with pytest.raises(TrainingDataError, match="has 6 usable rows; training needs at least 10 to split off a test set"):
        fit(ml_ws, TrainSpec(table="silver.tiny", label="Survived", features=["Fare"]))
    eleven_and_one = (
        "(SELECT * FROM silver.titanic WHERE Survived = 0 LIMIT 11) "
        "UNION ALL (SELECT * FROM silver.titanic WHERE Survived = 1 LIMIT 1)"
    )
    ml_ws.lake.write("silver.small", ml_ws.sql(eleven_and_one).to_arrow_table())
    with pytest.raises(TrainingDataError, match="cannot split 12 rows"):
        fit(ml_ws, TrainSpec(table="silver.small", label="Survived", features=["Fare"], split={"test_size": 0.1}))


def test_unknown_estimator_and_bad_params(ml_ws: Workspace) -> None:
    with pytest.raises(EstimatorError, match="did you mean random_forest"):
        fit(ml_ws, TrainSpec(table="silver.titanic", label="Survived", features=["Fare"], estimator="random_forrest"))
    with pytest.raises(EstimatorError, match="cannot import 'nowhere'"):
        fit(ml_ws, TrainSpec(table="silver.titanic", label="Survived", features=["Fare"], estimator="nowhere:Model"))
    with pytest.raises(BrickyardError, match=r"\(LogisticRegression\) takes no parameter 'nope'"):
        fit(ml_ws, TrainSpec(table="silver.titanic", label="Survived", features=["Fare"], params={"nope": 1}))
    with pytest.raises(BrickyardError, match="did you mean max_iter"):
        fit(ml_ws, TrainSpec(table="silver.titanic", label="Survived", features=["Fare"], params={"max_iters": 1}))


def test_gradient_boosting_says_it_is_hist_gradient_boosting(ml_ws: Workspace) -> None:
    """`n_estimators` is the classic GradientBoosting's param; the error says which class
    gradient_boosting is, what counts its trees, and how to get the classic one."""
    spec = TrainSpec(table="silver.titanic", label="Survived", features=["Fare"], estimator="gradient_boosting", params={"n_estimators": 50})
    with pytest.raises(EstimatorError) as caught:
        fit(ml_ws, spec)
    hint = caught.value.hint or ""
    assert "HistGradientBoostingClassifier" in hint and "max_iter" in hint
    assert "sklearn.ensemble:GradientBoostingClassifier" in hint


def test_kmeans_without_k_or_on_text(ml_ws: Workspace) -> None:
    with pytest.raises(TrainingDataError, match="needs k"):
        fit(ml_ws, TrainSpec(table="silver.titanic", estimator="kmeans", features=["Fare", "Age"]))
    with pytest.raises(TrainingDataError, match="'Sex' is not numeric"):
        fit(ml_ws, TrainSpec(table="silver.titanic", estimator="kmeans", features=["Fare", "Sex"], params={"k": 3}))


def test_invalid_options_are_config_errors_with_the_field(ml_ws: Workspace) -> None:
    from brickyard.core.files import load_pipeline
    from brickyard.tasks.train import TrainOptions

    path = ml_ws.root / "pipelines" / "broken.yaml"
    path.write_text("tasks:\n  - name: train\n    kind: train\n    table: silver.titanic\n    estimator: logistic_regression\n")
    pipeline = load_pipeline(path)
    with pytest.raises(ConfigError, match="needs a label"):
        pipeline.parse_options(pipeline.spec.tasks[0], TrainOptions)


def test_a_model_with_no_champion_and_a_model_that_does_not_exist(ml_ws: Workspace) -> None:
    run_task(ml_ws, titanic_pipeline(train_task(features=["Fare"])), "train")
    client = tracking.connect(ml_ws)
    with pytest.raises(NoChampionError) as caught:
        registry.resolve_version(client, "titanic", "champion")
    assert "brickyard models promote titanic VERSION" in str(caught.value)
    with pytest.raises(ModelNotFoundError, match="did you mean titanic"):
        registry.resolve_version(client, "titanik", "latest")
    with pytest.raises(ModelNotFoundError, match="has no version 7"):
        registry.resolve_version(client, "titanic", 7)


def test_reproduce_retrains_from_pinned_versions_and_matches(ml_ws: Workspace) -> None:
    spec = titanic_pipeline(
        train_task(estimator="random_forest", params={"n_estimators": 25}),
        {"name": "segment", "kind": "train", "table": "silver.titanic", "estimator": "kmeans",
         "features": ["Age", "Fare"], "k": {"min": 2, "max": 4}, "model_name": "titanic_segments"},
    )
    run_id = "20260101-000000-cafe01"
    trained = run_task(ml_ws, spec, "train", run_id=run_id)
    run_task(ml_ws, spec, "segment", run_id=run_id)
    # the table moves on; reproduce must read the pinned version 0
    ml_ws.lake.write("silver.titanic", ml_ws.lake.read("silver.titanic").slice(0, 400), mode="overwrite")

    results = reproduce(ml_ws, run_id)
    assert [r.task for r in results] == ["train", "segment"]
    assert all(r.matches for r in results) and all(r.inputs == {"silver.titanic": 0} for r in results)
    assert {c.metric for c in results[1].checks} == {"inertia", "k", "silhouette"}

    by_mlflow_id = reproduce(ml_ws, trained.metrics.extra["mlflow_run_id"])
    assert len(by_mlflow_id) == 1 and by_mlflow_id[0].matches

    client = tracking.connect(ml_ws)
    client.log_metric(trained.metrics.extra["mlflow_run_id"], "accuracy", 0.5)
    tampered = reproduce(ml_ws, trained.metrics.extra["mlflow_run_id"])[0]
    assert not tampered.matches
    assert [c.metric for c in tampered.checks if not c.matches] == ["accuracy"]
    with pytest.raises(BrickyardError, match="no train run was logged by brickyard run"):
        reproduce(ml_ws, "20990101-000000-ffffff")


def test_reproduce_says_when_a_pinned_version_is_gone(ml_ws: Workspace) -> None:
    spec = titanic_pipeline(train_task(features=["Fare"], table="silver.gone"))
    ml_ws.lake.write("silver.gone", ml_ws.lake.read("silver.titanic"))
    ml_ws.lake.write("silver.gone", ml_ws.lake.read("silver.titanic"), mode="overwrite")
    trained = run_task(ml_ws, spec, "train")  # pins version 1
    shutil.rmtree(ml_ws.root / "lake" / "silver" / "gone")  # history lost: only a new version 0
    ml_ws.lake.write("silver.gone", pa.table({"Fare": [1.0], "Survived": [1]}))
    with pytest.raises(BrickyardError, match="has no version 1"):
        reproduce(ml_ws, trained.metrics.extra["mlflow_run_id"])
