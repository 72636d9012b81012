"""brickyard's side of bench/tuning.py, run in the project venv.

    .venv/bin/python bench/tuning_brickyard_side.py automl DATA_DIR BUDGET OUT_JSON
    .venv/bin/python bench/tuning_brickyard_side.py overhead DATA_DIR TRIALS OUT_JSON

`automl`: a fresh workspace with DATA_DIR's frame as the lake table `bench.data`, then the
`tune` kind's code (`brickyard.ml.tuning.tune`) with `automl: true` and `timeout: BUDGET`
(trials and ensembles share it; the refit of the result and its registration come after,
as FLAML's final retrain does); the score is the registered model's held-out metric, on
the same test rows as FLAML's (checked). Writes the score, the wall time of `tune`, the
trial counts and the chosen model.

`overhead`: the same TRIALS trials (logistic regression, random forest and LightGBM in their
default spaces, 5 folds, no pruner, TPE seeded alike, so the same configurations are drawn:
checked) run twice: by `tune` (SQLite study, every trial an MLflow child run) and by a plain
Optuna loop (in-memory study, the same fits: brickyard's preprocessing and estimators
on one native thread, nothing logged), and once more with the study in an SQLite file as tune keeps it (to
show what the storage costs). The trial phase's wall time is taken from each study's trial timestamps
(first start to last completion).
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FAMILIES = ("logistic_regression", "random_forest", "lightgbm")


def workspace(folder: str) -> tuple[Any, dict[str, Any]]:
    from brickyard import Workspace
    from brickyard.ml import tracking

    meta = json.loads(Path(folder, "meta.json").read_text())
    ws = Workspace.init(Path(tempfile.mkdtemp(prefix="bench-tuning-")) / "ws")
    ws.lake.write("bench.data", pd.read_csv(Path(folder, "frame.csv")))
    tracking.connect(ws).search_experiments()  # MLflow's database made before the clock starts
    return ws, meta


def run_tune(ws: Any, meta: dict[str, Any], **options: Any) -> tuple[Any, float]:
    from brickyard.ml.tune_spec import TuneSpec
    from brickyard.ml.tuning import tune

    spec = TuneSpec.model_validate({"table": "bench.data", "label": meta["label"], "features": meta["features"],
                                    "problem": meta["problem"], "metric": meta["metric"], **options})
    started = time.perf_counter()
    result = tune(ws, spec, experiment="bench", model_name="bench", study_name="bench.tune",
                  tags={}, log=logging.getLogger("bench"))
    return result, time.perf_counter() - started


def automl(folder: str, budget: str, out: str) -> None:
    ws, meta = workspace(folder)
    result, wall = run_tune(ws, meta, automl=True, timeout=float(budget))
    assert sorted(result.fitted.data.test_index.tolist()) == sorted(meta["test"]), "not FLAML's test rows"
    best = result.best
    Path(out).write_text(json.dumps({
        "score": result.fitted.metrics[meta["metric"]], "wall_s": wall, "best": best["family"],
        "members": best.get("members"), "cv": best["value"], "trials": result.counts["run"],
        "complete": result.counts["complete"], "pruned": result.counts["pruned"],
    }, default=str))


def overhead(folder: str, trials: str, out: str) -> None:
    ws, meta = workspace(folder)
    n = int(trials)
    estimators: dict[str, None] = dict.fromkeys(FAMILIES)
    result, tune_wall = run_tune(ws, meta, estimators=estimators, trials=n, pruner="none", folds=5)
    import optuna

    from brickyard.ml.tuning import STUDY_DB

    tuned = optuna.load_study(study_name="bench.tune", storage=f"sqlite:///{ws.root / STUDY_DB}")
    plain, plain_wall = plain_loop(result, n)
    stored, stored_wall = plain_loop(result, n, storage=f"sqlite:///{ws.root / 'plain.db'}")
    Path(out).write_text(json.dumps({
        "trials": n,
        "tune_trial_phase_s": phase_seconds(tuned.trials), "plain_trial_phase_s": phase_seconds(plain.trials),
        "sqlite_trial_phase_s": phase_seconds(stored.trials),
        "tune_wall_s": tune_wall, "plain_wall_s": plain_wall, "sqlite_wall_s": stored_wall,
        "same_configurations": [t.params for t in tuned.trials] == [t.params for t in plain.trials],
        "same_values": bool(np.allclose([t.value for t in tuned.trials], [t.value for t in plain.trials])),
    }))


def phase_seconds(trials: list[Any]) -> float:
    return (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()


def plain_loop(result: Any, n: int, storage: str | None = None) -> tuple[Any, float]:
    """The same trials as a plain Optuna loop: an in-memory study (or `storage`: an SQLite
    file set up as tune's), same sampler seed, the same fits on the same folds, nothing recorded."""
    import optuna

    from brickyard.ml.estimators import build_estimator
    from brickyard.ml.metrics import score
    from brickyard.ml.preprocess import fit_pipeline
    from brickyard.ml.search_space import DEFAULT_SPACES, suggest
    from brickyard.ml.tune_spec import TuneSpec
    from brickyard.ml.tuning import one_thread, validation_folds

    data = result.fitted.data
    spec = TuneSpec.model_validate({"table": "bench.data", "label": data.label, "estimators": dict.fromkeys(FAMILIES),
                                    "folds": 5})
    folds = validation_folds(data, spec)
    X, y = data.X, data.frame[data.label]
    metric = result.metric

    def objective(trial: optuna.Trial) -> float:
        family = trial.suggest_categorical("estimator", list(FAMILIES))
        params = suggest(trial, family, DEFAULT_SPACES[family])
        values = []
        for fit_rows, valid_rows in folds:
            estimator = build_estimator(family, data.problem, dict(params), 42)
            model = fit_pipeline(estimator, X.iloc[fit_rows], y.iloc[fit_rows], data.numeric, data.categorical)
            values.append(score(model, X.iloc[valid_rows], y.iloc[valid_rows], data.problem)[metric])
        return float(np.mean(values))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from brickyard.ml.tuning import _storage

    study = optuna.create_study(direction=result.direction, sampler=optuna.samplers.TPESampler(seed=42),
                                storage=None if storage is None else _storage(storage))
    started = time.perf_counter()
    with one_thread():  # as tune's trials: native thread pools at one thread
        study.optimize(objective, n_trials=n)
    return study, time.perf_counter() - started


if __name__ == "__main__":
    {"automl": automl, "overhead": overhead}[sys.argv[1]](*sys.argv[2:5])
