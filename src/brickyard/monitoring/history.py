"""A monitor's results over time: the decisive drift statistic of each feature per window,
read from its results table (what the console charts).

>>> drift_history.__name__
'drift_history'
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from brickyard.monitoring.report import DATASET, PERFORMANCE

if TYPE_CHECKING:
    from brickyard.workspace import Workspace

COLUMNS = ["window_start", "window_end", "feature", "method", "statistic", "threshold", "drifted", "decisive"]


def drift_history(ws: Workspace, results_table: str) -> list[dict[str, Any]]:
    """One row per window and feature: the decisive method's statistic, threshold and
    verdict, oldest window first; [] when the monitor has written no results yet."""
    if not ws.lake.exists(results_table):
        return []
    rows = ws.lake.read(results_table, columns=COLUMNS).to_pylist()
    out = [
        {"window_start": row["window_start"], "window_end": row["window_end"], "feature": row["feature"],
         "method": row["method"], "statistic": _finite(row["statistic"]), "threshold": _finite(row["threshold"]),
         "drifted": bool(row["drifted"])}
        for row in rows
        if row["decisive"] and row["feature"] not in (DATASET, PERFORMANCE)
    ]
    return sorted(out, key=lambda row: (row["window_start"], row["feature"]))


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
