"""The monitor gives the same results on both engines: the windows are read through the
task's engine (Spark's executors compute them), compared in the driver."""

from __future__ import annotations

import pytest
from monitor_helpers import SHIFTED, TRAIN, score_day

from brickyard import Workspace
from brickyard.runtime.runner import PipelineRunner

WATCH = """
tasks:
  - name: watch
    kind: monitor
    monitor: {name}
    model: titanic/1
    target: {{sql: "SELECT * FROM gold.titanic_scored WHERE Pclass IS NOT NULL"}}
    time_column: scored_at
    window: day
    labels: {{table: gold.titanic_outcomes, key: [request_id], label: Survived}}
"""
COLUMNS = ["window_start", "feature", "method", "statistic", "p_value", "drifted", "estimated"]


@pytest.mark.spark
@pytest.mark.slow
def test_the_monitor_gives_the_same_results_on_spark_as_on_duckdb(spark_workspace: Workspace) -> None:
    import pyarrow as pa

    from titanic_example import titanic_frame

    ws = spark_workspace
    ws.lake.write("silver.titanic", pa.Table.from_pandas(titanic_frame(), preserve_index=False))
    (ws.root / "pipelines" / "train_titanic.yaml").write_text(TRAIN)
    assert PipelineRunner(ws).run("train_titanic", engine="duckdb").ok
    score_day(ws, 1, shifted=False, labels=True)
    score_day(ws, 2, shifted=True)
    for engine in ("duckdb", "spark"):
        (ws.root / "pipelines" / f"watch_{engine}.yaml").write_text(WATCH.format(name=f"on_{engine}"))
        result = PipelineRunner(ws).run(f"watch_{engine}", engine=engine)
        assert result.ok, result.error

    def rows(engine: str):
        frame = ws.lake.read(f"gold.monitor_on_{engine}").to_pandas()[COLUMNS]
        return frame.sort_values(COLUMNS[:3]).reset_index(drop=True)

    duck, spark = rows("duckdb"), rows("spark")
    assert len(duck) == len(spark) > 0
    assert duck[["window_start", "feature", "method", "drifted", "estimated"]].equals(
        spark[["window_start", "feature", "method", "drifted", "estimated"]]
    )
    assert duck["statistic"].fillna(-1).to_numpy() == pytest.approx(spark["statistic"].fillna(-1).to_numpy(), rel=1e-9)
    drifted = set(spark[spark["drifted"] & (spark["window_start"].dt.day == 2) & spark["feature"].isin(SHIFTED)]["feature"])
    assert drifted == set(SHIFTED)
