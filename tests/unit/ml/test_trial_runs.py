"""The trials' MLflow runs, written by a process of their own (brickyard.ml.trial_runs)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from brickyard.ml.errors import TuningError
from brickyard.ml.trial_runs import TrialRun, TrialRunWriter


def _run(trial: int, experiment_id: str, status: str = "FINISHED") -> TrialRun:
    return TrialRun(
        trial=trial, experiment_id=experiment_id, name=f"trial-{trial}", tags={"brickyard.trial": str(trial)},
        params={"estimator": "random_forest", "max_depth": "4"}, metrics=[("auc_fold", 0.8, 0), ("auc_fold", 0.9, 1), ("auc", 0.85, 0)],
        end_tags={"brickyard.trial_state": "COMPLETE"}, status=status, start_ms=1_700_000_000_000 + trial,
        end_ms=1_700_000_001_000 + trial,
    )


def test_every_submitted_trial_becomes_a_finished_run_with_its_values(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("trials", artifact_location=str(tmp_path / "artifacts"))
    writer = TrialRunWriter(uri)
    for trial in range(5):
        writer.submit(_run(trial, experiment, "KILLED" if trial == 3 else "FINISHED"))
    run_ids = writer.close()

    assert sorted(run_ids) == [0, 1, 2, 3, 4]
    for trial, run_id in run_ids.items():
        run = client.get_run(run_id)
        assert run.info.run_name == f"trial-{trial}"
        assert run.info.status == ("KILLED" if trial == 3 else "FINISHED")
        assert (run.info.start_time, run.info.end_time) == (1_700_000_000_000 + trial, 1_700_000_001_000 + trial)
        assert run.data.params == {"estimator": "random_forest", "max_depth": "4"}
        assert run.data.metrics == {"auc_fold": 0.9, "auc": 0.85}
        assert [m.value for m in client.get_metric_history(run_id, "auc_fold")] == [0.8, 0.9]
        assert run.data.tags["brickyard.trial"] == str(trial)
        assert run.data.tags["brickyard.trial_state"] == "COMPLETE"


def test_a_run_that_cannot_be_written_fails_close_naming_the_trial(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("trials", artifact_location=str(tmp_path / "artifacts"))
    writer = TrialRunWriter(uri)
    writer.submit(_run(0, experiment))
    writer.submit(_run(1, "424242"))  # no such experiment
    with pytest.raises(TuningError, match="recording trial 1 as an MLflow run failed"):
        writer.close()
    assert len(client.search_runs([experiment])) == 1


def test_a_writer_that_dies_fails_close_instead_of_hanging(tmp_path: Path) -> None:
    writer = TrialRunWriter(f"sqlite:///{tmp_path / 'mlflow.db'}")
    writer._process.kill()
    with pytest.raises(TuningError, match="process writing the trials' MLflow runs ended"):
        writer.close()
