"""The demo's `customer_churn` pipeline on the real CDNOW log, checked against pandas.

The pipeline runs once, as the demo runs it, in a fresh workspace; every number it
produces is recomputed here from the raw file by brute force (plain loops over one
customer's purchases, no window functions): the row count of every table, the RFM
features of a sample of customers (the edge cases: same-day purchases, identical lines,
gaps of 29/30/89/90 days, free purchases, the busiest customers), the label of their
monthly snapshots, and the features each snapshot was joined with.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from brickyard import Workspace
from brickyard.demo.context import DemoContext
from brickyard.demo.feature_store import run_customer_churn
from brickyard.demo.pipelines import install_workspace_files
from brickyard.demo.runner import CDNOW

pytestmark = pytest.mark.slow

RAW_ROWS = 69_659
CUSTOMERS = 23_570
HORIZON = timedelta(days=90)
TTL: timedelta | None = None  # features/customer_rfm.yaml sets none
FEATURES = ("recency_days", "tenure_days", "frequency", "purchase_days", "cds_total",
            "monetary_total", "monetary_mean", "amount_30d", "amount_90d")
# same-day purchases (2, 398), identical lines (398, 499), gaps of 29 (111), 30 (25), 89 (51),
# 90 (161) and 91 days (343), free purchases (455, 713), the three busiest customers
EDGE_CUSTOMERS = (1, 2, 3, 25, 51, 111, 161, 343, 398, 455, 499, 713, 7592, 7983, 14048)


class Recorder:
    """A demo reporter that keeps what it was told."""

    def __init__(self) -> None:
        self.said: list[str] = []

    def step(self, title: str) -> None:
        self.said.append(title)

    def say(self, text: str) -> None:
        self.said.append(text)

    def table(self, columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.said.append(" | ".join(map(str, columns)))


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    """The shipped file, read by pandas on its own terms (whitespace-separated)."""
    with resources.as_file(resources.files("brickyard.demo") / "data" / "cdnow_transactions.txt") as path:
        frame = pd.read_csv(path, sep=r"\s+", dtype={"customer_id": "int64", "date": "str"})
    frame["day"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Recorder]:
    """A workspace with the demo's files where `customer_churn` ran as the demo runs it."""
    workspace = Workspace.init(tmp_path_factory.mktemp("churn") / "ws")
    target = Path(workspace.lake.location.uri(CDNOW))
    target.parent.mkdir(parents=True)
    with resources.as_file(resources.files("brickyard.demo") / "data" / "cdnow_transactions.txt") as source:
        shutil.copyfile(source, target)
    recorder = Recorder()
    context = DemoContext(workspace, rows=0, seed=0, report=recorder)
    install_workspace_files(context)
    run_customer_churn(context)
    return workspace, recorder


def table(workspace: Workspace, query: str) -> pd.DataFrame:
    return workspace.sql(query).to_arrow_table().to_pandas()


def training_rows(workspace: Workspace) -> pd.DataFrame:
    """The training set the `train` task of customer_churn built, rebuilt at the table
    versions its model recorded (as `evaluate` rebuilds it)."""
    from brickyard.ml import training_set
    from brickyard.ml.spec import TrainSpec

    spec = workspace.pipeline("customer_churn").spec.task("train")
    options = TrainSpec.model_validate({k: v for k, v in spec.options.items() if k in TrainSpec.model_fields})
    assert options.training_set is not None
    lineage = model_lineage(workspace)
    pinned = {lookup["table"]: lookup["version"] for lookup in lineage["lookups"]}
    return training_set.load(workspace, options.training_set, pinned).frame


def model_lineage(workspace: Workspace) -> dict[str, Any]:
    """The champion's feature_store/training_set.json."""
    import mlflow

    from brickyard.ml.registry import champion
    from brickyard.ml.tracking import connect

    client = connect(workspace)
    version = champion(client, "churn")
    assert version is not None and version.run_id is not None
    return dict(mlflow.artifacts.load_dict(client.get_run(version.run_id).info.artifact_uri + "/feature_store/training_set.json"))


def brute_force_features(purchases: pd.DataFrame) -> list[dict[str, Any]]:
    """One customer's features as of each purchase day, by looping over their purchases."""
    rows = []
    for day in sorted(purchases["day"].unique()):
        so_far = purchases[purchases["day"] <= day]
        earlier_days = sorted(purchases.loc[purchases["day"] < day, "day"].unique())
        total = float(so_far["dollar_value"].sum())
        rows.append({
            "purchased_at": pd.Timestamp(day).to_pydatetime(),
            "recency_days": (day - earlier_days[-1]).days if earlier_days else None,
            "tenure_days": (day - purchases["day"].min()).days,
            "frequency": len(so_far),
            "purchase_days": so_far["day"].nunique(),
            "cds_total": int(so_far["number_of_cds"].sum()),
            "monetary_total": total,
            "monetary_mean": total / len(so_far),
            "amount_30d": float(so_far.loc[so_far["day"] > day - timedelta(days=30), "dollar_value"].sum()),
            "amount_90d": float(so_far.loc[so_far["day"] > day - timedelta(days=90), "dollar_value"].sum()),
        })
    return rows


@dataclass(frozen=True)
class Calendar:
    """The month ends of the months the log has purchases in, and its last day."""

    month_ends: list[datetime]
    end: datetime

    @classmethod
    def of(cls, raw: pd.DataFrame) -> Calendar:
        days = {pd.Timestamp(day) for day in raw["day"].unique()}
        return cls(sorted({(day + pd.offsets.MonthEnd(0)).to_pydatetime() for day in days}), raw["day"].max().to_pydatetime())

    def snapshot_times(self, first_day: datetime) -> list[datetime]:
        """A customer's labelled snapshots: month ends from their first purchase on, while
        the 90 days after them lie within the log."""
        return [m for m in self.month_ends if m >= first_day and m + HORIZON <= self.end]


def same(left: Any, right: Any) -> bool:
    """`right` (stored) is `left` (exact), or `left` rounded to cents."""
    if left is None or (isinstance(left, float) and math.isnan(left)):
        return right is None or (isinstance(right, float) and math.isnan(right))
    if isinstance(left, float) or isinstance(right, float):
        return right is not None and abs(float(left) - float(right)) < 0.005 + 1e-9
    return bool(left == right)


def sample_customers(raw: pd.DataFrame) -> list[int]:
    seeded = raw["customer_id"].drop_duplicates().sample(60, random_state=7).tolist()
    return sorted(set(EDGE_CUSTOMERS) | set(seeded))


def test_every_table_has_the_rows_pandas_counts(demo: tuple[Workspace, Recorder], raw: pd.DataFrame) -> None:
    workspace, _ = demo
    assert len(raw) == RAW_ROWS and raw["customer_id"].nunique() == CUSTOMERS
    lake = workspace.lake
    assert lake.describe("bronze.cdnow_transactions").rows == RAW_ROWS
    assert lake.describe("silver.transactions").rows == RAW_ROWS
    assert not lake.exists("silver.transactions__quarantine") or lake.describe("silver.transactions__quarantine").rows == 0
    assert lake.describe("features.customer_rfm").rows == len(raw.groupby(["customer_id", "day"]))
    first_days = raw.groupby("customer_id")["day"].min()
    calendar = Calendar.of(raw)
    expected_snapshots = sum(len(calendar.snapshot_times(day.to_pydatetime())) for day in first_days)
    assert lake.describe("gold.churn_snapshots").rows == expected_snapshots
    assert len(training_rows(workspace)) == expected_snapshots


def test_silver_holds_each_purchase_as_the_raw_file_says(demo: tuple[Workspace, Recorder], raw: pd.DataFrame) -> None:
    workspace, _ = demo
    silver = table(workspace, "SELECT customer_id, purchased_at, cds, amount FROM silver.transactions")
    key = ["customer_id", "purchased_at", "cds", "amount"]
    ours = silver.sort_values(key).reset_index(drop=True)
    theirs = raw.rename(columns={"day": "purchased_at", "number_of_cds": "cds", "dollar_value": "amount"})[key]
    theirs = theirs.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, theirs, check_dtype=False)
    assert table(workspace, "SELECT count(DISTINCT transaction_id) AS n FROM silver.transactions")["n"][0] == RAW_ROWS


def test_rfm_features_match_a_brute_force_computation(demo: tuple[Workspace, Recorder], raw: pd.DataFrame) -> None:
    workspace, _ = demo
    customers = sample_customers(raw)
    stored = table(
        workspace,
        f"SELECT * FROM features.customer_rfm WHERE customer_id IN ({', '.join(map(str, customers))}) "
        "ORDER BY customer_id, purchased_at",
    )
    compared = 0
    for customer in customers:
        expected = brute_force_features(raw[raw["customer_id"] == customer])
        got = stored[stored["customer_id"] == customer].to_dict("records")
        assert len(got) == len(expected), customer
        for want, have in zip(expected, got, strict=True):
            assert have["purchased_at"] == want["purchased_at"], (customer, have, want)
            for name in FEATURES:
                value = have[name]
                assert same(want[name], None if pd.isna(value) else value), (customer, want["purchased_at"], name, have[name], want[name])
            compared += 1
    assert compared > 300


def test_snapshot_labels_and_their_features_match_a_brute_force_computation(
    demo: tuple[Workspace, Recorder], raw: pd.DataFrame
) -> None:
    workspace, _ = demo
    customers = sample_customers(raw)
    rows = training_rows(workspace)
    rows = rows[rows["customer_id"].isin(customers)].sort_values(["customer_id", "snapshot_at"])
    labels = {True: 0, False: 0}
    calendar = Calendar.of(raw)
    for customer in customers:
        purchases = raw[raw["customer_id"] == customer]
        features = brute_force_features(purchases)
        days = [d.to_pydatetime() for d in purchases["day"]]
        times = calendar.snapshot_times(min(days))
        got = rows[rows["customer_id"] == customer].to_dict("records")
        assert [r["snapshot_at"].to_pydatetime() for r in got] == times, customer
        for snapshot, have in zip(times, got, strict=True):
            churned = not any(snapshot < day <= snapshot + HORIZON for day in days)
            assert have["churned"] == int(churned), (customer, snapshot)
            labels[churned] += 1
            live = [f for f in features if f["purchased_at"] <= snapshot and (TTL is None or f["purchased_at"] > snapshot - TTL)]
            want = live[-1] if live else dict.fromkeys(FEATURES)
            for name in FEATURES:
                value = have[name]
                assert same(want[name], None if pd.isna(value) else value), (customer, snapshot, name, value, want[name])
    assert labels[True] > 0 and labels[False] > 0  # both labels were checked


def test_no_snapshot_is_labelled_past_the_end_of_the_log(demo: tuple[Workspace, Recorder], raw: pd.DataFrame) -> None:
    workspace, _ = demo
    latest = table(workspace, "SELECT max(snapshot_at) AS latest FROM gold.churn_snapshots")["latest"][0]
    assert latest + HORIZON <= raw["day"].max()
    assert latest == datetime(1998, 3, 31)  # April's month end + 90 days is past 1998-06-30


def test_the_demo_reports_the_feature_store_section(demo: tuple[Workspace, Recorder], raw: pd.DataFrame) -> None:
    workspace, recorder = demo
    said = "\n".join(recorder.said)
    features = len(raw.groupby(["customer_id", "day"]))
    assert f"features.customer_rfm: {features:,} rows" in said, said
    snapshots = workspace.lake.describe("gold.churn_snapshots").rows
    share = table(workspace, "SELECT avg(churned) AS share FROM gold.churn_snapshots")["share"][0]
    assert f"training set: {snapshots:,} monthly snapshots of {CUSTOMERS:,} customers" in said, said
    assert f"{share:.1%} labelled churned" in said, said
    assert "model churn version 1: held-out roc_auc 0." in said, said
    assert "gate: promoted" in said, said
    assert "brickyard features get customer_rfm 3  ->  {\"status\": \"live\"" in said, said


def test_the_model_records_its_features_and_serves_from_keys_alone(demo: tuple[Workspace, Recorder]) -> None:
    workspace, _ = demo
    lineage = model_lineage(workspace)
    assert lineage["entity_keys"] == ["customer_id"] and lineage["timestamp"] == "snapshot_at"
    assert lineage["label"] == "churned" and lineage["request_features"] == []
    [lookup] = lineage["lookups"]
    assert lookup["table"] == "features.customer_rfm" and sorted(lookup["features"]) == sorted(FEATURES)
    assert lookup["version"] == workspace.lake.describe("features.customer_rfm").version


def test_the_champion_answers_a_known_customer_and_says_why_it_refuses_an_unknown_one(demo: tuple[Workspace, Recorder]) -> None:
    """Served by `customer_id` alone: a customer in the log gets a prediction; one with no
    features online is a 400 that names the key and the feature table (the model's
    signature requires its integer features: it used to say only "column 'tenure_days':
    null in row 0", a column the request never sent)."""
    from starlette.testclient import TestClient

    from brickyard.serving.app import create_app
    from brickyard.serving.service import ModelRef, ServingService

    workspace, _ = demo
    service = ServingService(workspace, [ModelRef.parse("churn@champion")], auth=False)
    with TestClient(create_app(service)) as client:  # type: ignore[arg-type]
        assert service.wait_ready(120), service.status()
        known = client.post("/invocations", json={"dataframe_records": [{"customer_id": 3}]})
        assert known.status_code == 200 and known.json()["predictions"][0] in (0, 1)
        unknown = client.post("/invocations", json={"dataframe_records": [{"customer_id": 3}, {"customer_id": 99_999_999}]})
        assert unknown.status_code == 400
        body = unknown.json()
        assert body["column"] == "customer_id"
        assert body["message"].startswith("row 1: customer_id 99999999 has no live features in features.customer_rfm")


def test_the_online_store_holds_each_customers_latest_features(demo: tuple[Workspace, Recorder], raw: pd.DataFrame) -> None:
    from brickyard.features.get import get_online

    workspace, _ = demo
    customers = sample_customers(raw)
    found = get_online(workspace, "customer_rfm", [str(c) for c in customers])
    for customer, values in zip(customers, found, strict=True):
        want = brute_force_features(raw[raw["customer_id"] == customer])[-1]
        assert values.status == "live", customer
        assert values.event_time is not None and values.event_time.replace(tzinfo=None) == want["purchased_at"], customer
        assert values.values is not None
        for name in FEATURES:
            assert same(want[name], values.values[name]), (customer, name, values.values[name], want[name])
