"""FLAML's side of bench/tuning.py, run in FLAML's own venv (bench/.venvs/flaml).

    bench/.venvs/flaml/bin/python bench/tuning_flaml_side.py DATA_DIR BUDGET OUT_JSON

Reads `frame.csv` and `meta.json` (label, problem, metric, train/test row positions)
from DATA_DIR, runs `flaml.AutoML().fit` on the training rows with `time_budget=BUDGET`,
the same metric, seed 42 and one thread (`n_jobs=1`, as brickyard's trials), and scores the
final model on the test rows. Writes the score, the wall time of `fit` and FLAML's best
estimator and configuration to OUT_JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main(folder: str, budget: str, out: str) -> None:
    from flaml import AutoML
    from sklearn.metrics import mean_squared_error, roc_auc_score

    meta = json.loads(Path(folder, "meta.json").read_text())
    frame = pd.read_csv(Path(folder, "frame.csv"))
    X = frame[meta["features"]]
    for column in X.columns:
        if X[column].dtype == object or str(X[column].dtype).startswith("str"):
            X[column] = X[column].astype("category")
    y = frame[meta["label"]]
    train, test = np.asarray(meta["train"]), np.asarray(meta["test"])
    automl = AutoML()
    started = time.perf_counter()
    automl.fit(
        X.iloc[train], y.iloc[train], task=meta["problem"], metric=meta["metric"], time_budget=float(budget),
        seed=42, n_jobs=1, verbose=0,
    )
    wall = time.perf_counter() - started
    if meta["metric"] == "roc_auc":
        score = float(roc_auc_score(y.iloc[test], automl.predict_proba(X.iloc[test])[:, 1]))
    else:
        score = float(np.sqrt(mean_squared_error(y.iloc[test], automl.predict(X.iloc[test]))))
    import flaml

    Path(out).write_text(json.dumps({
        "score": score, "wall_s": wall, "best": automl.best_estimator, "config": automl.best_config,
        "trials": len(automl.config_history), "version": flaml.__version__,
    }, default=str))


if __name__ == "__main__":
    main(*sys.argv[1:4])
