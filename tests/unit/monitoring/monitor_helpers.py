"""A workspace with the Titanic model trained by a real `train` task (its baseline recorded
at training time), and scored batches by day, some shifted."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from brickyard import Workspace
from brickyard.runtime.records import RunStatus
from brickyard.runtime.runner import PipelineRunner
from brickyard.runtime.state import StateStore
from titanic_example import FEATURES, TARGET, titanic_frame

SHIFTED = ("Age", "Fare")
UNSHIFTED = tuple(f for f in FEATURES if f not in SHIFTED)
FIRST_DAY = datetime(2026, 11, 1)

TRAIN = f"""
tasks:
  - name: train
    kind: train
    table: silver.titanic
    label: {TARGET}
    features: [{", ".join(FEATURES)}]
    estimator: logistic_regression
    params: {{max_iter: 1000}}
    split: {{test_size: 0.2, seed: 42, stratify: true}}
    model_name: titanic
  - name: promote
    kind: promote
    depends_on: [train]
    rules: ["accuracy >= 0.7", "roc_auc >= champion.roc_auc + 0.01"]
"""

WATCH = """
tasks:
  - name: watch_titanic
    kind: monitor
    model: titanic@champion
    target: {{table: gold.titanic_scored}}
    time_column: scored_at
    window: day
    drift_share: 0.2
    labels: {{table: gold.titanic_outcomes, key: [request_id], label: Survived}}
    alerts:
      - name: inputs_drifted
        when: drift_share > 0.2
        consecutive: 2
        actions: [log, {{webhook: {{url: "{url}", secret: "${{env:MONITOR_HOOK_SECRET}}"}}}}, {{run: train_titanic}}]
      - name: auc_dropped
        when: auc_drop > 0.2
        actions: [log]
"""


def trained_workspace(root: Path) -> Workspace:
    """A workspace whose `titanic` model version 1 is champion, trained by `train_titanic`."""
    ws = Workspace.init(root)
    ws.lake.write("silver.titanic", pa.Table.from_pandas(titanic_frame(), preserve_index=False))
    (ws.root / "pipelines" / "train_titanic.yaml").write_text(TRAIN)
    result = PipelineRunner(ws).run("train_titanic")
    assert result.ok, result.error
    return ws


def write_watch(ws: Workspace, url: str) -> None:
    (ws.root / "pipelines" / "watch.yaml").write_text(WATCH.format(url=url))


def score_day(ws: Workspace, day: int, *, shifted: bool, rows: int = 300, labels: bool = False) -> pd.DataFrame:
    """Score `rows` passengers on day `day` (1 = FIRST_DAY) with the champion and append
    them, with their inputs, to gold.titanic_scored; with `labels`, their outcomes arrive
    in gold.titanic_outcomes. Shifted days have older passengers and dearer fares."""
    from brickyard.ml.scoring import load_model

    frame = titanic_frame().sample(rows, random_state=day)
    if shifted:
        frame = frame.assign(Age=frame["Age"] + 25, Fare=frame["Fare"] * 4 + 30)
    model = load_model(ws, "titanic@champion")
    prediction, probability = model.predict(frame[FEATURES])
    start = FIRST_DAY + timedelta(days=day - 1)
    minutes = np.random.default_rng(day).integers(0, 24 * 60, len(frame))
    scored = frame[FEATURES].assign(
        request_id=[f"d{day}-{n}" for n in range(len(frame))],
        prediction=prediction,
        probability=probability,
        scored_at=[start + timedelta(minutes=int(m)) for m in minutes],
    )
    ws.lake.write("gold.titanic_scored", pa.Table.from_pandas(scored, preserve_index=False))
    if labels:
        outcomes = pd.DataFrame({"request_id": scored["request_id"], TARGET: frame[TARGET].to_numpy()})
        ws.lake.write("gold.titanic_outcomes", pa.Table.from_pandas(outcomes, preserve_index=False))
    return scored


def wait_for_run(ws: Workspace, run_id: str, timeout: float = 240.0) -> str:
    store = StateStore(ws.state_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = store.get_run(run_id).status
        if status not in (RunStatus.QUEUED, RunStatus.RUNNING):
            return str(status)
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} still {store.get_run(run_id).status} after {timeout} s")
