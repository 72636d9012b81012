"""Windows by time and by batch; performance estimated from calibrated scores."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from brickyard.monitoring.performance import drops, estimated_metrics, realised_metrics
from brickyard.monitoring.windows import batch_windows, floor, time_windows


def test_windows_of_each_unit_and_the_open_one() -> None:
    plan = time_windows(datetime(2026, 1, 30, 10), datetime(2026, 3, 2), "month", now=datetime(2026, 3, 5))
    assert [str(w) for w in plan.due] == ["2026-01", "2026-02"]
    assert str(plan.open) == "2026-03"
    assert floor(datetime(2026, 1, 8, 13), "week") == datetime(2026, 1, 5)  # Monday
    hours = time_windows(datetime(2026, 1, 1, 0, 5), datetime(2026, 1, 1, 2, 59), "hour", now=datetime(2026, 1, 1, 3))
    assert [w.start.hour for w in hours.due] == [0, 1, 2] and hours.open is None


def test_windows_done_before_are_not_due_again() -> None:
    done = [datetime(2026, 1, 1), datetime(2026, 1, 2)]
    plan = time_windows(datetime(2026, 1, 1), datetime(2026, 1, 4, 5), "day", now=datetime(2026, 1, 9), done=done)
    assert [str(w) for w in plan.due] == ["2026-01-03", "2026-01-04"] and plan.done == 2
    batches = batch_windows([(2, datetime(2026, 1, 3)), (0, datetime(2026, 1, 1)), (1, datetime(2026, 1, 2))], done=[0])
    assert [(w.version, w.start.day, w.end.day) for w in batches.due] == [(1, 1, 2), (2, 2, 3)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_estimate_matches_the_realised_metrics_where_the_model_is_calibrated(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 2, 20_000)
    y = (rng.random(p.size) < p).astype(int)  # calibrated: a row scored p is positive with probability p
    predicted = (p >= 0.5).astype(int)
    realised = realised_metrics("classification", y, predicted, p)
    estimate = estimated_metrics(p)
    assert estimate["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=0.01)
    assert estimate["roc_auc"] == pytest.approx(realised["roc_auc"], abs=0.01)
    assert estimate["accuracy"] == pytest.approx(realised["accuracy"], abs=0.01)


def test_the_estimate_is_wrong_where_the_model_is_not_calibrated() -> None:
    """What the estimate rests on: an overconfident model's estimate is far too good."""
    rng = np.random.default_rng(3)
    p = rng.beta(2, 2, 20_000)
    y = (rng.random(p.size) < p).astype(int)
    overconfident = np.clip((p - 0.5) * 3 + 0.5, 0, 1)
    realised = realised_metrics("classification", y, (overconfident >= 0.5).astype(int), overconfident)
    assert estimated_metrics(overconfident)["accuracy"] > realised["accuracy"] + 0.1


def test_drops_are_positive_when_worse() -> None:
    assert drops({"roc_auc": 0.80, "rmse": 3.0, "fit_seconds": 9.0}, {"roc_auc": 0.86, "rmse": 2.5, "fit_seconds": 1.0}) == \
        pytest.approx({"roc_auc": 0.06, "rmse": 0.5})
