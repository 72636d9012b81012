"""Monitoring: model baselines recorded at training, and drift of a window against them.

    >>> import pyarrow as pa
    >>> from brickyard.monitoring import compare, profile
    >>> sketches, rows = profile(pa.table({"x": [float(i) for i in range(100)], "c": ["a", "b"] * 50}), ["x"], ["c"])
    >>> report = compare(sketches, pa.table({"x": [float(i) for i in range(100)], "c": ["a"] * 100}))
    >>> report.drifted_features, report.drift_share
    (['c'], 0.5)

- `sketch`: column sketches (quantile-edge histograms, category counts) and window counters;
- `drift`: the statistics (PSI, KS, chi-square, Jensen-Shannon, null rate, range),
  `Thresholds` / `FeatureRule`, and `compare` (a window, streamed, against sketches);
- `baseline`: the `Baseline` of a model version and its JSON form;
- `store`: `gold.model_baselines` and the MLflow artifact `monitoring/baseline.json`;
- `training`: the `train` kind's hook and `backfill_baseline` for older versions;
- `spec`, `monitor`: the `monitor` kind's options and one run of a monitor (windows of a
  target against the baseline, results to `gold.monitor_<name>`, reports, alerts);
- `windows`, `performance`, `alerts`, `actions`, `report`: windows by time or batch,
  realised and estimated (CBPE) performance, alert rules and breaches, log / signed
  webhook / `run:` actions, the per-window HTML + PNG report;
- `state`, `gauges`: monitors' status and alerts in the state database, and their
  Prometheus gauges (served by `brickyard server` at `/metrics`).

MLflow and the lake are only touched by `store`, `training` and `monitor`; `sketch`, `drift` and
`baseline` need numpy, pyarrow and scipy alone.
"""

from brickyard.monitoring.baseline import PREDICTION, PROBABILITY, Baseline, output_sketches, profile
from brickyard.monitoring.drift import (
    DriftReport,
    FeatureDrift,
    FeatureRule,
    KsResult,
    Statistic,
    Thresholds,
    chi_square,
    compare,
    feature_drift,
    js_distance,
    ks_sketch,
    psi,
)
from brickyard.monitoring.errors import BaselineNotFoundError, MonitoringError, WindowDataError
from brickyard.monitoring.sketch import (
    CategoricalSketch,
    CategoryCounter,
    NumericCounter,
    NumericSketch,
    Sketch,
    categorical_sketch,
    numeric_sketch,
)

__all__ = [
    "PREDICTION",
    "PROBABILITY",
    "Baseline",
    "BaselineNotFoundError",
    "CategoricalSketch",
    "CategoryCounter",
    "DriftReport",
    "FeatureDrift",
    "FeatureRule",
    "KsResult",
    "MonitoringError",
    "NumericCounter",
    "NumericSketch",
    "Sketch",
    "Statistic",
    "Thresholds",
    "WindowDataError",
    "categorical_sketch",
    "chi_square",
    "compare",
    "feature_drift",
    "js_distance",
    "ks_sketch",
    "numeric_sketch",
    "output_sketches",
    "profile",
    "psi",
]
