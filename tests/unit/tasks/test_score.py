"""The `score` and `export` task kinds: a real Titanic model from a real MLflow registry,
scoring a lake table and SQLite tables into a gold Delta table, then exporting the batch
into SQLite exactly once. (PostgreSQL and crash tests: tests/unit/stores/.)"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from brickyard import BrickyardError, Workspace
from brickyard.core.pipeline import PipelineSpec
from brickyard.ml.errors import ModelError, NoChampionError
from brickyard.tasks import get_kind
from brickyard.tasks.base import CheckContext, TaskContext
from brickyard.tasks.export import ExportOptions
from brickyard.tasks.score import ScoreOptions

DATA = Path(__file__).resolve().parents[3] / "src" / "brickyard" / "demo" / "data" / "titanic.csv"
FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A workspace whose MLflow holds `titanic` (champion = version 1) and `untrained`
    (a version, no champion): logistic regressions fitted on the real Titanic data; and
    `fare` (champion): a linear regression of the fare."""
    import mlflow
    import skops.io
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from brickyard.ml import tracking

    ws = Workspace.init(tmp_path_factory.mktemp("registry") / "ws")
    frame = pd.read_csv(DATA)
    X, y = frame[FEATURES], frame["Survived"]
    prep = ColumnTransformer([
        ("num", SimpleImputer(strategy="median"), ["Pclass", "Age", "SibSp", "Parch", "Fare"]),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), ["Sex", "Embarked"]),
    ])
    model = Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=2000))]).fit(X, y)
    client = tracking.connect(ws)
    experiment = tracking.experiment_id(client, ws, "titanic")
    for name in ("titanic", "untrained"):
        with mlflow.start_run(experiment_id=experiment):
            mlflow.sklearn.log_model(
                model, name="model", signature=infer_signature(X, model.predict(X)), registered_model_name=name,
                serialization_format="skops", pip_requirements=["scikit-learn", "skops"],
                skops_trusted_types=list(skops.io.get_untrusted_types(data=skops.io.dumps(model))),
            )
    client.set_registered_model_alias("titanic", "champion", "1")
    fare_features = [name for name in FEATURES if name != "Fare"]
    fare_prep = ColumnTransformer([
        ("num", SimpleImputer(strategy="median"), ["Pclass", "Age", "SibSp", "Parch"]),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), ["Sex", "Embarked"]),
    ])
    fare = Pipeline([("prep", fare_prep), ("model", LinearRegression())]).fit(frame[fare_features], frame["Fare"])
    with mlflow.start_run(experiment_id=experiment):
        mlflow.sklearn.log_model(
            fare, name="model", signature=infer_signature(frame[fare_features], fare.predict(frame[fare_features])),
            registered_model_name="fare", serialization_format="skops", pip_requirements=["scikit-learn", "skops"],
            skops_trusted_types=list(skops.io.get_untrusted_types(data=skops.io.dumps(fare))),
        )
    client.set_registered_model_alias("fare", "champion", "1")
    return ws


@pytest.fixture
def ws(registry: Workspace, tmp_path: Path) -> Workspace:
    """A fresh workspace (lake, warehouse.db) that shares the registry's MLflow."""
    fresh = Workspace.init(tmp_path / "ws")
    text = fresh.config_path.read_text()
    text = text.replace("tracking_uri: sqlite:///mlflow.db", f"tracking_uri: {registry.mlflow_tracking_uri}")
    text = text.replace("artifact_location: mlartifacts", f"artifact_location: {registry.root / 'mlartifacts'}")
    fresh.config_path.write_text(text)
    workspace = Workspace.open(fresh.root)
    workspace.lake.write("silver.passengers", pa.Table.from_pandas(pd.read_csv(DATA), preserve_index=False))
    with sa.create_engine(workspace.local_url("sqlite:///warehouse.db")).begin() as conn:
        pd.read_csv(DATA).to_sql("passengers", conn, index=False)
    return workspace


SCORE = {
    "name": "score_passengers", "kind": "score", "model": "titanic@champion",
    "source": {"table": "silver.passengers"}, "target": "gold.titanic_predictions",
    "keys": ["PassengerId"], "batch_size": 100,
}
EXPORT = {
    "name": "export_predictions", "kind": "export", "depends_on": ["score_passengers"],
    "source": {"task": "score_passengers"}, "table": "titanic_predictions", "keys": ["PassengerId"],
    "mode": "upsert", "batch_rows": 200,
}


def run(ws: Workspace, tasks: list[dict[str, Any]], name: str, run_id: str = "20261123-100000-aaaaaa") -> TaskContext:
    """Run one task of a pipeline made of `tasks`, as the runner would; returns its context."""
    pipeline = PipelineSpec.model_validate({"name": "titanic", "tasks": tasks})
    task = pipeline.task(name)
    kind = get_kind(task.kind)
    context = TaskContext(ws, pipeline, task, run_id, 1, False, logging.getLogger(f"test.{name}"))
    kind.run(kind.Options.model_validate(task.options), context)
    return context


def warehouse(ws: Workspace, sql: str) -> list[tuple[Any, ...]]:
    with sa.create_engine(ws.local_url("sqlite:///warehouse.db")).connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(sql))]


def test_scoring_a_lake_table_is_one_commit_of_streamed_batches(ws: Workspace) -> None:
    context = run(ws, [SCORE], "score_passengers")
    predictions = ws.lake.read("gold.titanic_predictions")
    assert predictions.num_rows == 891
    assert sorted(predictions.column("PassengerId").to_pylist()) == list(range(1, 892))
    assert set(predictions.column_names) == {
        "PassengerId", "prediction", "probability", "model_name", "model_version", "scored_at", "score_date"
    }
    assert ws.lake.describe("gold.titanic_predictions").partition_columns == ["score_date"]
    assert ws.lake.version("gold.titanic_predictions") == 0  # 9 batches, one commit
    assert len(set(predictions.column("scored_at").to_pylist())) == 1
    assert context.metrics.reads == {"silver.passengers": 0}
    assert context.metrics.writes == {"gold.titanic_predictions": 0}
    extra = context.metrics.extra
    assert (extra["model_name"], extra["model_version"], extra["rows_scored"], extra["batches"]) == ("titanic", "1", 891, 9)
    assert context.metrics.rows_out == 891
    survived = pd.read_csv(DATA).set_index("PassengerId")["Survived"]
    frame = predictions.to_pandas().set_index("PassengerId")
    assert (frame["prediction"] == survived.loc[frame.index]).mean() > 0.75
    assert frame["probability"].between(0, 1).all()


FARE = {**SCORE, "model": "fare@champion", "target": "gold.fare_predictions"}
FARE_COLUMNS = ["PassengerId", "prediction", "model_name", "model_version", "scored_at", "score_date"]


def test_a_regressors_scores_have_no_probability_column(ws: Workspace) -> None:
    """It was always null: a column a reader must learn to ignore."""
    run(ws, [FARE], "score_passengers")
    predictions = ws.lake.read("gold.fare_predictions")
    assert predictions.column_names == FARE_COLUMNS and predictions.num_rows == 891
    assert pa.types.is_floating(predictions.schema.field("prediction").type)


def test_a_regressor_keeps_filling_a_probability_column_its_table_already_has(ws: Workspace) -> None:
    """A table made when every output had `probability` keeps it (null), so appends still commit."""
    old = pa.table({
        "PassengerId": pa.array([0], pa.int64()), "prediction": [1.5], "probability": pa.array([None], pa.float64()),
        "model_name": ["fare"], "model_version": ["1"], "scored_at": pa.array([0], pa.timestamp("us", tz="UTC")),
        "score_date": pa.array([0], pa.date32()),
    })
    ws.lake.write("gold.fare_predictions", old, partition_by=["score_date"])
    run(ws, [FARE], "score_passengers")
    predictions = ws.lake.read("gold.fare_predictions")
    assert predictions.num_rows == 892 and predictions.column("probability").null_count == 892


def test_a_retried_attempt_of_the_same_run_does_not_score_again(ws: Workspace) -> None:
    run(ws, [SCORE], "score_passengers", run_id="run-a")
    again = run(ws, [SCORE], "score_passengers", run_id="run-a")
    assert ws.lake.version("gold.titanic_predictions") == 0
    assert again.metrics.extra["already_committed"] is True
    assert again.metrics.writes == {"gold.titanic_predictions": 0}
    assert again.metrics.rows_out == 891
    run(ws, [SCORE], "score_passengers", run_id="run-b")
    assert ws.lake.version("gold.titanic_predictions") == 1
    assert ws.lake.read("gold.titanic_predictions").num_rows == 2 * 891


@pytest.mark.parametrize(
    "source",
    [{"database": "default", "table": "passengers"}, {"database": "default", "query": "SELECT * FROM passengers WHERE Sex = 'female'"}],
    ids=["table", "query"],
)
def test_scoring_a_sql_source_gives_the_same_predictions(ws: Workspace, source: dict[str, str]) -> None:
    run(ws, [{**SCORE, "target": "gold.from_lake"}], "score_passengers", run_id="lake")
    context = run(ws, [{**SCORE, "source": source, "target": "gold.from_sql"}], "score_passengers", run_id="sql")
    from_lake = ws.lake.read("gold.from_lake").to_pandas().set_index("PassengerId").sort_index()
    from_sql = ws.lake.read("gold.from_sql").to_pandas().set_index("PassengerId").sort_index()
    expected_rows = 891 if "table" in source else 314
    assert len(from_sql) == expected_rows == context.metrics.extra["rows_scored"]
    assert context.metrics.reads == {}
    assert context.metrics.extra["source"].startswith("default:")
    pd.testing.assert_series_equal(from_sql["probability"], from_lake.loc[from_sql.index, "probability"])


def test_a_model_without_champion_fails_clearly(ws: Workspace) -> None:
    with pytest.raises(NoChampionError) as caught:
        run(ws, [{**SCORE, "model": "untrained@champion"}], "score_passengers")
    assert str(caught.value) == (
        "model untrained has no champion (hint: run the untrained pipeline or `brickyard models promote`)"
    )
    assert not ws.lake.exists("gold.titanic_predictions")


def test_missing_columns_fail_before_anything_is_written(ws: Workspace) -> None:
    ws.lake.write("silver.partial", pa.table({"PassengerId": [1], "Pclass": [3]}))
    with pytest.raises(BrickyardError, match="no column.s. Sex, Age, SibSp, Parch, Fare, Embarked"):
        run(ws, [{**SCORE, "source": {"table": "silver.partial"}}], "score_passengers")
    assert not ws.lake.exists("gold.titanic_predictions")


def test_an_error_in_a_later_batch_commits_nothing(ws: Workspace) -> None:
    with sa.create_engine(ws.local_url("sqlite:///warehouse.db")).begin() as conn:
        conn.execute(sa.text("UPDATE passengers SET Age = 'unknown' WHERE PassengerId = 850"))  # in batch 9 of 9
    with pytest.raises(ModelError, match="scoring default:passengers with titanic version 1 failed: .*unknown"):
        run(ws, [{**SCORE, "source": {"database": "default", "table": "passengers"}}], "score_passengers")
    assert not ws.lake.exists("gold.titanic_predictions")


def test_score_then_export_loads_the_batch_once_and_upserts_later_runs(ws: Workspace) -> None:
    tasks = [SCORE, EXPORT]
    run(ws, tasks, "score_passengers", run_id="r1")
    first = run(ws, tasks, "export_predictions", run_id="r1")
    extra = first.metrics.extra
    assert (extra["loaded"], extra["rows_loaded"], extra["mode"], extra["table"]) == (True, 891, "upsert", "titanic_predictions")
    assert first.metrics.reads == {"gold.titanic_predictions": 0}
    assert warehouse(ws, "SELECT COUNT(*), COUNT(DISTINCT PassengerId) FROM titanic_predictions") == [(891, 891)]
    again = run(ws, tasks, "export_predictions", run_id="r1")
    assert (again.metrics.extra["loaded"], again.metrics.extra["batch_id"]) == (False, extra["batch_id"])
    run(ws, tasks, "score_passengers", run_id="r2")
    second = run(ws, tasks, "export_predictions", run_id="r2")
    assert second.metrics.extra["loaded"] and second.metrics.extra["rows_loaded"] == 891
    assert second.metrics.reads == {"gold.titanic_predictions": 1}
    assert warehouse(ws, "SELECT COUNT(*), COUNT(DISTINCT PassengerId) FROM titanic_predictions") == [(891, 891)]
    assert warehouse(ws, "SELECT COUNT(*) FROM brickyard_export_batches") == [(2,)]
    scored = ws.lake.read("gold.titanic_predictions").to_pandas()
    latest = scored[scored["scored_at"] == scored["scored_at"].max()].set_index("PassengerId")
    sql = pd.DataFrame(warehouse(ws, "SELECT PassengerId, probability FROM titanic_predictions"), columns=["PassengerId", "p"])
    sql = sql.set_index("PassengerId").sort_index()
    pd.testing.assert_series_equal(sql["p"], latest.loc[sql.index, "probability"], check_names=False)
    assert not any((ws.root / "lake" / "staging").rglob("*.parquet"))  # staged files are removed after the load


def test_the_pipeline_runner_runs_score_then_export_from_yaml(ws: Workspace) -> None:
    from brickyard.runtime.runner import PipelineRunner
    from brickyard.runtime.state import StateStore

    (ws.root / "pipelines" / "titanic.yaml").write_text("""
tasks:
  - name: score_passengers
    kind: score
    model: titanic@champion
    source: {database: default, table: passengers}
    target: gold.titanic_predictions
    keys: [PassengerId]
  - name: export_predictions
    kind: export
    depends_on: [score_passengers]
    source: {task: score_passengers}
    table: titanic_predictions
    keys: [PassengerId]
    mode: upsert
""")
    result = PipelineRunner(ws).run("titanic")
    assert result.status == "succeeded", result.error
    attempts = {a.task: a for a in StateStore(ws.state_url).attempts(result.run_id)}
    assert attempts["score_passengers"].writes == {"gold.titanic_predictions": 0}
    assert attempts["export_predictions"].reads == {"gold.titanic_predictions": 0}
    assert attempts["export_predictions"].metrics["rows_loaded"] == 891
    assert warehouse(ws, "SELECT COUNT(*) FROM titanic_predictions") == [(891,)]


def test_export_of_a_table_version_append_and_replace(ws: Workspace) -> None:
    ws.lake.write("gold.scores", pa.table({"id": [1, 2, 3], "score": [0.1, 0.2, 0.3]}))
    ws.lake.write("gold.scores", pa.table({"id": [4], "score": [0.4]}))
    export = {"name": "export_scores", "kind": "export", "source": {"table": "gold.scores", "version": 0}, "table": "scores"}
    context = run(ws, [export], "export_scores")
    assert context.metrics.reads == {"gold.scores": 0} and context.metrics.extra["rows_loaded"] == 3
    run(ws, [{**export, "source": "gold.scores"}], "export_scores")  # latest = version 1: 4 rows appended
    assert warehouse(ws, "SELECT COUNT(*) FROM scores") == [(7,)]
    skipped = run(ws, [{**export, "source": "gold.scores", "mode": "replace"}], "export_scores")
    assert skipped.metrics.extra["loaded"] is False  # version 1 is the same batch, whatever the mode
    ws.lake.write("gold.scores", pa.table({"id": [5], "score": [0.5]}))
    run(ws, [{**export, "source": "gold.scores", "mode": "replace"}], "export_scores")
    assert warehouse(ws, "SELECT id FROM scores ORDER BY id") == [(1,), (2,), (3,), (4,), (5,)]


def test_export_from_a_score_task_that_wrote_nothing_in_this_run_fails_clearly(ws: Workspace) -> None:
    with pytest.raises(BrickyardError, match="score task 'score_passengers' wrote nothing to gold.titanic_predictions"):
        run(ws, [SCORE, EXPORT], "export_predictions", run_id="never-scored")


def test_options_are_validated() -> None:
    with pytest.raises(ValidationError, match="is not a model reference"):
        ScoreOptions.model_validate(_options(SCORE, model="titanic"))
    with pytest.raises(ValidationError, match="exactly one of"):
        ScoreOptions.model_validate(_options(SCORE, source={"database": "default", "table": "t", "query": "SELECT 1"}))
    with pytest.raises(ValidationError, match="no versions"):
        ScoreOptions.model_validate(_options(SCORE, source={"database": "default", "table": "t", "version": 3}))
    with pytest.raises(ValidationError, match="keys"):
        ExportOptions.model_validate(_options(EXPORT, keys=[]))
    with pytest.raises(ValidationError, match="extra"):
        ExportOptions.model_validate(_options(EXPORT, colour="blue"))
    assert ExportOptions.model_validate(_options(EXPORT, source="gold.x")).source.table == "gold.x"


def test_check_reports_missing_tables_databases_and_source_tasks(ws: Workspace) -> None:
    pipeline = PipelineSpec.model_validate({"name": "titanic", "tasks": [SCORE, EXPORT]})
    check = CheckContext(ws, pipeline, frozenset())
    score = ScoreOptions.model_validate(_options(SCORE, source={"table": "silver.nope"}))
    assert get_kind("score").check(score, check) == [
        "table 'silver.nope' does not exist in the lake and no task of the pipeline writes it"
    ]
    export = ExportOptions.model_validate(_options(EXPORT, database="warehouse", source={"task": "nope"}))
    assert get_kind("export").check(export, check) == [
        "database 'warehouse' is not in brickyard.yaml's databases",
        "source task 'nope' is not a task of this pipeline",
    ]
    assert get_kind("score").writes(ScoreOptions.model_validate(_options(SCORE))) == ["gold.titanic_predictions"]


def _options(task: dict[str, Any], **changes: Any) -> dict[str, Any]:
    common = {"name", "kind", "depends_on"}
    return {key: value for key, value in {**task, **changes}.items() if key not in common}
