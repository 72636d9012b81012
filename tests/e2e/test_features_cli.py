"""The offline feature store through the `brickyard` command: a workspace with a feature
table definition and a pipeline (ingest -> features -> train from a training set), then
`brickyard validate`, `run`, `features list` and `features describe`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cli_helpers import brickyard

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FEATURE = """\
description: Visits and spend per customer, every ten days
owner: ds@example.com
keys: [customer_id]
event_time: seen_at
ttl: 30d
source:
  sql: sql/activity.sql
"""
ACTIVITY_SQL = "SELECT customer_id, CAST(seen_at AS TIMESTAMP) AS seen_at, visits, spend FROM bronze.activity\n"
PIPELINE = """\
tasks:
  - {name: land_activity, kind: ingest, source: raw/activity/*.csv, target: bronze.activity}
  - {name: land_snapshots, kind: ingest, source: raw/snapshots/*.csv, target: bronze.snapshots}
  - name: snapshots
    kind: sql
    depends_on: [land_snapshots]
    query: SELECT customer_id, CAST(snapshot_at AS TIMESTAMP) AS snapshot_at, channel, churned FROM bronze.snapshots
    target: silver.snapshots
  - {name: activity, kind: features, table: activity, depends_on: [land_activity]}
  - name: train
    kind: train
    depends_on: [activity, snapshots]
    training_set:
      table: silver.snapshots
      keys: [customer_id]
      timestamp: snapshot_at
      label: churned
      features: [{table: features.activity, columns: [spend, visits]}]
    model_name: churn
"""


def write_inputs(root: Path) -> None:
    start = datetime(2024, 1, 1)
    activity = ["customer_id,seen_at,visits,spend"]
    snapshots = ["customer_id,snapshot_at,channel,churned"]
    for c in range(30):
        for step in range(9):
            activity.append(f"{c},{start + timedelta(days=10 * step)},{step + c % 3},{(c * 7 + step * 13) % 100}")
        for month in range(3):
            at = start + timedelta(days=31 * month + 5)
            snapshots.append(f"{c},{at},{['web', 'shop'][c % 2]},{int((c * 7 + (month * 31 + 5) // 10 * 13) % 100 > 50)}")
    for folder, lines in (("activity", activity), ("snapshots", snapshots)):
        path = root / "lake" / "raw" / folder / "part-1.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_features_pipeline_list_and_describe(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    assert brickyard("init", str(root)).returncode == 0
    assert (root / "features").is_dir()
    (root / "features" / "activity.yaml").write_text(FEATURE, encoding="utf-8")
    (root / "sql" / "activity.sql").write_text(ACTIVITY_SQL, encoding="utf-8")
    (root / "pipelines" / "churn.yaml").write_text(PIPELINE, encoding="utf-8")
    write_inputs(root)

    checked = brickyard("validate", cwd=root)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    listed = brickyard("features", "list", "--format", "json", cwd=root)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [{"name": "activity", "table": "features.activity", "keys": "customer_id",
                                          "rows": None, "latest_event_time": None, "version": None}]

    ran = brickyard("run", "churn", cwd=root)
    assert ran.returncode == 0, ran.stdout + ran.stderr

    listed = json.loads(brickyard("features", "list", "--format", "json", cwd=root).stdout)
    assert listed[0]["rows"] == 270 and listed[0]["version"] == 0
    assert listed[0]["latest_event_time"].startswith("2024-03-21")
    csv_text = brickyard("features", "list", "--format", "csv", cwd=root).stdout
    assert csv_text.splitlines()[0] == "name,table,keys,rows,latest_event_time,version"

    described = brickyard("features", "describe", "activity", "--format", "json", cwd=root)
    assert described.returncode == 0, described.stderr
    document = json.loads(described.stdout)
    assert document["keys"] == ["customer_id"] and document["ttl_seconds"] == 30 * 86400
    assert document["features"] == ["visits", "spend"]
    assert document["freshness_seconds"] > 0
    assert [(m["model"], m["version"], m["table_version"], m["features"]) for m in document["models"]] == [
        ("churn", 1, 0, ["spend", "visits"])
    ]
    shown = brickyard("features", "describe", "features.activity", cwd=root)
    assert shown.returncode == 0, shown.stderr
    for text in ("customer_id", "30d 00:00:00", "freshness", "churn", "event time"):
        assert text in shown.stdout
    assert "Downloading artifacts" not in shown.stderr  # MLflow's progress bar per model read

    missing = brickyard("features", "describe", "activty", cwd=root)
    assert missing.returncode != 0 and "activity" in missing.stderr
