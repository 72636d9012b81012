"""The ensembles `tune` tries after its trials (`ensemble: true`, on with `automl: true`).

The members are the top `ensemble_size` completed trials of the study with distinct
configurations (family and params), best first. Two ensembles of them are scored on the
same folds (cross-validation or holdout) and metric as the trials: `voting` (soft voting
of the members' probabilities for classification, the mean of their predictions for
regression) and `stacking` (a logistic regression / ridge over the members' out-of-fold
outputs, `cv: 3` inside each fold). Each is an MLflow child run of the tuning run (kind
`tune_ensemble`) and a leaderboard row (`trial` empty, `family` voting/stacking, `members`
the trial numbers).

With `timeout:`, trials stop at 80% of it and the ensembles use the rest: before each,
its cost is estimated from its members' trial seconds (voting: their sum; stacking: four
times that), and an ensemble that would not finish in the time left is not scored; its row
says `SKIPPED` and why. An ensemble becomes the tune's result only when its score is
strictly better than the best trial's; the chosen row has `chosen: true`.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import numpy as np

from brickyard.ml import tracking
from brickyard.ml.tuning import MLFLOW_STATUS, TAG_ERROR, TAG_FAMILY, TAG_PARENT, TAG_TRIAL_STATE, Plan, fold_scores

STACKING_CV = 3
COST_FACTOR = {"voting": 1.0, "stacking": STACKING_CV + 1.0}


def top_members(board: list[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    """The best `size` completed trials with distinct configurations, best first."""
    seen: set[str] = set()
    members = []
    for row in board:
        if row["state"] != "COMPLETE" or row["trial"] is None:
            continue
        key = json.dumps([row["family"], row["params"]], sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            members.append(row)
        if len(members) == size:
            break
    return members


def try_ensembles(
    plan: Plan, board: list[dict[str, Any]], direction: str, size: int, deadline: float | None, log: logging.Logger
) -> list[dict[str, Any]]:
    """Leaderboard rows of the voting and stacking ensembles of the top trials (scored,
    failed or skipped)."""
    members = top_members(board, size)
    if len(members) < 2:
        reason = f"{len(members)} distinct completed trial(s); an ensemble needs 2"
        log.warning("ensembles skipped: %s", reason)
        return [_row(plan, name, members, "SKIPPED", None, 0.0, 0.0, reason, "") for name in COST_FACTOR]
    client = tracking.client_for(plan.tracking_uri)
    rows = []
    for name, factor in COST_FACTOR.items():
        estimate = factor * sum(float(m["seconds"] or 0.0) for m in members)
        left = None if deadline is None else deadline - time.time()
        if left is not None and estimate > left:
            reason = f"estimated {estimate:.1f} s (from its members' trials) over the {max(left, 0.0):.1f} s left of timeout:"
            log.warning("%s ensemble skipped: %s", name, reason)
            rows.append(_row(plan, name, members, "SKIPPED", None, 0.0, 0.0, reason, ""))
            continue
        rows.append(_score(plan, client, name, members, log))
    return rows


def params_of(name: str, members: list[dict[str, Any]]) -> dict[str, Any]:
    """The `voting` / `stacking` estimator params of these trials."""
    params: dict[str, Any] = {"members": [{"estimator": m["family"], "params": dict(m["params"])} for m in members]}
    if name == "stacking":
        params["cv"] = STACKING_CV
    return params


def _score(plan: Plan, client: Any, name: str, members: list[dict[str, Any]], log: logging.Logger) -> dict[str, Any]:
    from mlflow.entities import Metric, Param, RunTag

    from brickyard.ml.tuning import _reason

    numbers = [m["trial"] for m in members]
    run_id = client.create_run(
        plan.experiment_id, run_name=f"ensemble-{name}",
        tags={**plan.tags, TAG_PARENT: plan.parent_run_id, tracking.TAG_KIND: "tune_ensemble", TAG_FAMILY: name},
    ).info.run_id
    client.log_batch(run_id, params=[Param("estimator", name), Param("members", ",".join(map(str, numbers)))])
    started, cpu = time.perf_counter(), time.process_time()
    value, state, reason = None, "COMPLETE", ""
    try:
        values = []
        for step, found in enumerate(fold_scores(plan, name, params_of(name, members))):
            values.append(found)
            client.log_metric(run_id, f"{plan.metric}_fold", found, step=step)
        value = float(np.mean(values))
    except Exception as exc:  # noqa: BLE001 - a failed ensemble is reported, the tune goes on
        state, reason = "FAIL", _reason(exc)
        log.warning("%s ensemble of trials %s failed: %s", name, numbers, reason)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    now = int(time.time() * 1000)
    metrics = [Metric("seconds", seconds, now, 0), Metric("cpu_seconds", cpu_seconds, now, 0)]
    if value is not None:
        metrics.append(Metric(plan.metric, value, now, 0))
        log.info("%s ensemble of trials %s: %s=%.6g (%.2f s)", name, numbers, plan.metric, value, seconds)
    if plan.cpu_hour is not None:
        metrics.append(Metric("cost", cpu_seconds / 3600.0 * plan.cpu_hour, now, 0))
    tags = [RunTag(TAG_TRIAL_STATE, state), *([RunTag(TAG_ERROR, reason[:5000])] if reason else [])]
    client.log_batch(run_id, metrics=metrics, tags=tags)
    client.set_terminated(run_id, MLFLOW_STATUS[state])
    return _row(plan, name, members, state, value, seconds, cpu_seconds, reason, run_id)


def _row(
    plan: Plan, name: str, members: list[dict[str, Any]], state: str, value: float | None, seconds: float,
    cpu_seconds: float, error: str, run_id: str,
) -> dict[str, Any]:
    return {
        "trial": None, "family": name, "params": params_of(name, members), "value": value, "metric": plan.metric,
        "state": state, "seconds": seconds, "cpu_seconds": cpu_seconds, "error": error, "mlflow_run_id": run_id,
        "run": plan.tags.get(tracking.TAG_RUN_ID, ""), "members": [m["trial"] for m in members], "chosen": False,
    }


def chosen(board: list[dict[str, Any]], best_trial: dict[str, Any], direction: str) -> dict[str, Any]:
    """The tune's result: the best completed ensemble when it scores strictly better than
    `best_trial`, else `best_trial`; marked `chosen` in the board."""
    better = max if direction == "maximize" else min
    ensembles = [row for row in board if row["trial"] is None and row["state"] == "COMPLETE"]
    result = best_trial
    if ensembles:
        top = better(ensembles, key=lambda row: row["value"])
        if top["value"] != best_trial["value"] and better(top["value"], best_trial["value"]) == top["value"]:
            result = top
    result["chosen"] = True
    return result
