"""The errors of monitoring (under `BrickyardError`).

    MonitoringError               a monitor cannot compare a window with its baseline
    ├── BaselineNotFoundError     the model version has no baseline (trained before baselines existed?)
    └── WindowDataError           a window column cannot be read as the baseline expects
"""

from __future__ import annotations

from brickyard.errors import BrickyardError


class MonitoringError(BrickyardError):
    """A monitor cannot compare a window with its baseline."""


class BaselineNotFoundError(MonitoringError):
    """The model version has no baseline in gold.model_baselines nor as an MLflow artifact."""

    transient = False


class WindowDataError(MonitoringError):
    """A column of the window cannot be read as its baseline expects (text in a numeric column)."""

    transient = False
