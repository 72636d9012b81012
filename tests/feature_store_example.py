"""A feature table and a model trained from it, for the online-store tests and
bench/online_lookup.py, without the `features` task kind or training sets of `ml/`.

`write_feature_table` writes `features/NAME.yaml` and the Delta table `features.NAME` as the
`features` task would (a few rows per customer at event times before `now`, some older than
the TTL). `as_of` is the brute-force point-in-time lookup (latest row with event time <= T
and > T - TTL, else null). `register_feature_model` trains a scikit-learn pipeline (imputers
handle null features) on a training set built with `as_of`, logs the artifact
`feature_store/training_set.json` of the shared contract on its run, and registers it.
Importable as `feature_store_example` from every test (tests/ is on pytest's path).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from brickyard.workspace import Workspace

KEY = "customer_id"
EVENT = "event_time"
BASE_FEATURES = ["recency_days", "orders", "amount_90d", "segment"]
TTL_DAYS = 30


def numeric_features(count: int) -> list[str]:
    return [f"f{index:02d}" for index in range(count)]


def feature_rows(
    entities: range | list[int], now: datetime, *, features: list[str] | None = None, seed: int = 0, days: tuple[int, ...] = (0, 12, 45)
) -> pa.Table:
    """Rows for each customer at now - (offset + d) days for d in `days`; a random offset
    in [0, 40) puts some customers' latest row beyond the 30-day TTL."""
    import pyarrow as pa

    rng = random.Random(seed)
    names = features or BASE_FEATURES
    columns: dict[str, list[Any]] = {KEY: [], EVENT: [], **{name: [] for name in names}}
    for customer in entities:
        offset = rng.uniform(0, 40)
        for day in days:
            columns[KEY].append(customer)
            columns[EVENT].append(now - timedelta(days=offset + day, seconds=rng.randint(0, 3600)))
            for name in names:
                columns[name].append(_value(name, rng))
    types = {KEY: pa.int64(), EVENT: pa.timestamp("us", tz="UTC"), "orders": pa.int64(), "segment": pa.string()}
    return pa.table({name: pa.array(values, types.get(name, pa.float64())) for name, values in columns.items()})


def _value(name: str, rng: random.Random) -> Any:
    if rng.random() < 0.05:
        return None  # a null feature value, stored and served as null
    if name == "orders":
        return rng.randint(1, 40)
    if name == "segment":
        return rng.choice(["new", "loyal", "lapsed"])
    return round(rng.uniform(0, 500), 3)


def write_feature_table(
    ws: Workspace, rows: pa.Table, *, name: str = "customer_stats", ttl: str = f"{TTL_DAYS}d", mode: str = "append"
) -> int:
    """Write features/NAME.yaml (once) and append (or overwrite) rows to `features.NAME`;
    returns the new Delta version."""
    folder = ws.root / "features"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    if not path.exists():
        path.write_text(
            f"description: test features\nkeys: [{KEY}]\nevent_time: {EVENT}\nttl: {ttl}\nsource:\n  table: silver.{name}\n"
        )
    return ws.lake.write(f"features.{name}", rows, mode=mode)  # type: ignore[arg-type]


def as_of(rows: pa.Table, customer: int, at: datetime, ttl: timedelta | None, features: list[str]) -> dict[str, Any]:
    """Brute force: the latest row of `customer` with event time <= at and > at - ttl; all
    features null when there is none."""
    best = None
    for row in rows.to_pylist():
        if row[KEY] != customer or row[EVENT] > at or (ttl is not None and row[EVENT] <= at - ttl):
            continue
        if best is None or row[EVENT] >= best[EVENT]:
            best = row
    return {name: (best[name] if best is not None else None) for name in features}


@dataclass(frozen=True)
class FeatureModel:
    name: str
    version: str
    run_id: str
    model: Any
    features: list[str]


def register_feature_model(
    ws: Workspace, rows: pa.Table, *, name: str = "churn", table: str = "customer_stats", features: list[str] | None = None,
    version: int = 0, snapshots: int = 3, now: datetime | None = None,
) -> FeatureModel:
    """Train on a brute-force as-of training set (customers x monthly snapshots), log
    feature_store/training_set.json on the run, register `name` with alias champion."""
    import mlflow
    import mlflow.sklearn
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from brickyard.ml.tracking import initialize_store

    names = features or BASE_FEATURES
    ttl = timedelta(days=TTL_DAYS)
    now = now or datetime.now(UTC)
    customers = sorted(set(rows.column(KEY).to_pylist()))
    records = []
    for snapshot in range(snapshots):
        at = now - timedelta(days=30 * (snapshot + 1))
        for customer in customers:
            values = as_of(rows, customer, at, ttl, names)
            records.append({**values, "label": int((customer + snapshot) % 3 == 0)})
    frame = pd.DataFrame.from_records(records)
    x = frame[names]
    numeric = [column for column in names if column != "segment"]
    categorical = [column for column in names if column == "segment"]
    steps = [("numeric", SimpleImputer(strategy="median", keep_empty_features=True), numeric)]
    if categorical:
        steps.append(("categorical", Pipeline([
            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]), categorical))
    pipeline = Pipeline([("preprocess", ColumnTransformer(steps)), ("model", LogisticRegression(max_iter=500))])
    pipeline.fit(x, frame["label"])
    contract = {
        "entity_keys": [KEY], "timestamp": "snapshot_at", "label": "label",
        "lookups": [{"table": f"features.{table}", "version": version, "keys": [KEY], "features": names,
                     "ttl_seconds": ttl.total_seconds()}],
        "request_features": [],
    }
    initialize_store(ws)
    uri = ws.mlflow_tracking_uri
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        experiment = "brickyard-feature-store-example"
        client = MlflowClient(tracking_uri=uri)
        if client.get_experiment_by_name(experiment) is None:
            client.create_experiment(experiment, artifact_location=(ws.root / ws.config.mlflow.artifact_location).as_uri())
        mlflow.set_experiment(experiment)
        with mlflow.start_run() as run:
            signature = infer_signature(x, pipeline.predict(x))
            info = mlflow.sklearn.log_model(
                pipeline, name="model", signature=signature, registered_model_name=name, skops_trusted_types=["numpy.dtype"],
            )
            mlflow.log_text(json.dumps(contract), "feature_store/training_set.json")
        registered = str(info.registered_model_version)
        client.set_registered_model_alias(name, "champion", registered)
    finally:
        mlflow.set_tracking_uri(previous)
    return FeatureModel(name, registered, run.info.run_id, pipeline, names)
