"""Train again from a run's record and check the metrics come out the same.

`RUN_ID` is either an MLflow run id (32 hex digits; the run of one train task) or a brickyard
pipeline run id (`20261123-101500-ab12cd`; every train task of that run, found by the
`brickyard.run_id` tag). The retraining reads each input table at the Delta version the run
pinned (`brickyard.input.<table>` tags, and the spec in `brickyard/train_spec.json`), uses
the same features, split and parameters, and logs nothing. It runs on the engine the run
recorded (`brickyard.engine`): a Spark MLlib KMeans is fitted again with MLlib on the
workspace's Spark, a scikit-learn model trained on rows Spark read gets its rows from Spark. Metrics match when they agree
within `TOLERANCE` (absolute, or relative for large values such as inertia).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from brickyard.ml import spark_kmeans, tracking
from brickyard.ml.errors import ModelError
from brickyard.ml.training import TAG_ENGINE, TIMING_METRICS, load_spec_record, refit_from_record

if TYPE_CHECKING:
    from brickyard.workspace import Workspace

TOLERANCE = 1e-9
_MLFLOW_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class MetricCheck:
    metric: str
    logged: float | None
    reproduced: float | None

    @property
    def difference(self) -> float | None:
        if self.logged is None or self.reproduced is None:
            return None
        return abs(self.logged - self.reproduced)

    @property
    def matches(self) -> bool:
        if self.logged is None or self.reproduced is None:
            return False
        return math.isclose(self.logged, self.reproduced, rel_tol=TOLERANCE, abs_tol=TOLERANCE)


@dataclass
class Reproduction:
    """One train run retrained."""

    mlflow_run_id: str
    task: str
    inputs: dict[str, int]
    checks: list[MetricCheck] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return bool(self.checks) and all(check.matches for check in self.checks)


def find_train_runs(ws: Workspace, run_id: str) -> list[str]:
    """The MLflow run ids of the train runs `run_id` stands for.

    Raises:
        ModelError: no such run.
    """
    from mlflow.exceptions import MlflowException

    client = tracking.connect(ws)
    if _MLFLOW_RUN_ID.match(run_id):
        try:
            client.get_run(run_id)
        except MlflowException as exc:
            raise ModelError(f"no MLflow run {run_id}", hint="list runs with `brickyard mlflow-ui`") from exc
        return [run_id]
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = [
        found
        for kind in ("train", "tune")  # a tune run holds its refitted best model as a train run does
        for found in client.search_runs(
            experiments,
            filter_string=f"tags.`{tracking.TAG_RUN_ID}` = '{run_id}' and tags.`{tracking.TAG_KIND}` = '{kind}'",
            max_results=1000,
        )
    ] if experiments else []
    if not runs:
        raise ModelError(
            f"no train run was logged by brickyard run {run_id!r}",
            hint="pass a brickyard run id (brickyard runs) or an MLflow run id (32 hex digits)",
        )
    return [run.info.run_id for run in sorted(runs, key=lambda r: r.info.start_time)]


def reproduce(ws: Workspace, run_id: str) -> list[Reproduction]:
    """Retrain every train run `run_id` stands for and compare the metrics.

    Raises:
        ModelError: no such run; LakeError: a pinned table version is gone (vacuumed).
    """
    client = tracking.connect(ws)
    results = []
    for mlflow_run_id in find_train_runs(ws, run_id):
        run = client.get_run(mlflow_run_id)
        record = load_spec_record(mlflow_run_id)
        engine = run.data.tags.get(TAG_ENGINE) or str(record.get("engine", "duckdb"))
        metrics, reads = _refit(ws, record, engine)
        logged = run.data.metrics
        names = sorted(name for name in metrics if name not in TIMING_METRICS)
        checks = [MetricCheck(name, logged.get(name), metrics.get(name)) for name in names]
        results.append(Reproduction(mlflow_run_id, run.data.tags.get(tracking.TAG_TASK, ""), reads, checks))
    return results


def _refit(ws: Workspace, record: dict[str, Any], engine: str) -> tuple[dict[str, float], dict[str, int]]:
    """The metrics and the table versions read of training again as `record` says, on `engine`."""
    on = ws.engine_named(engine)
    if on.distributed and record.get("estimator") == spark_kmeans.ESTIMATOR:
        return spark_kmeans.refit_from_record(ws, record, engine=on)
    fitted = refit_from_record(ws, record, engine=on)
    return dict(fitted.metrics), dict(fitted.data.reads)
