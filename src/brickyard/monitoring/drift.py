"""Drift statistics: a window of rows against a baseline's column sketches.

Per numeric column: PSI and Kolmogorov-Smirnov; per categorical column: chi-square and the
Jensen-Shannon distance; for both, the null rate, and for numbers the share of values
outside the training range. Each gives a `Statistic` with its threshold and verdict; one
method per column decides whether the column drifted (`Thresholds.numeric_method`,
`categorical_method`, or a `FeatureRule`), and the null-rate and range checks can flag it
too. `DriftReport.drift_share` is the share of tested columns that drifted.

How each statistic is computed (scipy where scipy has it):

- PSI: sum((a - e) * ln(a / e)) over the baseline's decile bins plus two open ends (below
  the training minimum, above the maximum); shares of 0 become `PSI_EPSILON` (1e-4).
- KS: the window is counted at the baseline's sketch edges (training quantiles at k/500),
  where the training CDF is exact, so the statistic is the largest gap between the two
  CDFs over the edges. The exact two-sample statistic (scipy.stats.ks_2samp on the raw
  training rows and the window) lies in [statistic, statistic + bound], where bound is the
  largest min(training mass, window mass) of a bin between edges: about 1/500 for a
  continuous column. For a discrete column (at most 500 distinct training values, all of
  them edges) whose window only holds training values, the statistic is exact; the bound,
  which cannot tell, stays conservative. The bound is in the statistic's `note`. The p-value is Smirnov's asymptotic one, as
  ks_2samp(method="asymp"): `scipy.stats.kstwo.sf(D, round(n*m/(n+m)))`.
- chi-square: `scipy.stats.chisquare` of the window's counts per baseline category (its top
  values and one cell for all others) against the baseline's shares times the window's rows
  (goodness of fit to the baseline). A value in a cell the baseline never had (an unseen
  category, when the baseline kept all its categories) makes it infinite, p-value 0.
- Jensen-Shannon: `scipy.spatial.distance.jensenshannon` of the same two distributions
  (natural logarithm, so it lies in [0, sqrt(ln 2)] = [0, 0.833]).

The window streams: Arrow record batches are counted one at a time, the columns of a batch
in parallel threads (numpy and Arrow release the GIL), so memory stays at a batch and the
counts, whatever the window's length.

>>> import pyarrow as pa
>>> from brickyard.monitoring.sketch import numeric_sketch
>>> base = {"x": numeric_sketch(pa.array([float(i) for i in range(1000)]))}
>>> report = compare(base, pa.table({"x": [float(i) + 500 for i in range(1000)]}))
>>> stats = {stat.method: stat.statistic for stat in report.feature("x").statistics}
>>> report.drifted_features, round(stats["ks"], 3), round(stats["psi"], 1), stats["out_of_range"]
(['x'], 0.5, 7.7, 0.5)
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from brickyard.monitoring.sketch import (
    CategoricalSketch,
    NumericSketch,
    Sketch,
    Window,
    count_window,
    counter_for,
)

PSI_EPSILON = 1e-4

Method = Literal["psi", "ks", "chi_square", "js", "null_rate", "out_of_range"]
NumericMethod = Literal["psi", "ks"]
CategoricalMethod = Literal["chi_square", "js"]


class Thresholds(BaseModel):
    """When a statistic says drift. PSI and JS drift above their threshold, p-values below."""

    model_config = ConfigDict(extra="forbid")

    psi: float = Field(default=0.2, ge=0, description="PSI above this is drift")
    ks_p_value: float = Field(default=0.05, gt=0, lt=1, description="a KS p-value below this is drift")
    chi_square_p_value: float = Field(default=0.05, gt=0, lt=1, description="a chi-square p-value below this is drift")
    js: float = Field(default=0.1, ge=0, description="a Jensen-Shannon distance above this is drift")
    null_rate_increase: float = Field(default=0.05, ge=0, le=1, description="the null rate rising by more than this is drift")
    out_of_range_share: float = Field(
        default=0.01, ge=0, le=1, description="more than this share of values outside the training range is drift"
    )
    numeric_method: NumericMethod = Field(default="psi", description="the statistic that decides for numeric columns")
    categorical_method: CategoricalMethod = Field(default="js", description="the statistic that decides for categorical columns")

    def merged(self, rule: FeatureRule | None) -> Thresholds:
        """These thresholds with a feature's own values over them."""
        if rule is None:
            return self
        values = {key: value for key, value in rule.model_dump(exclude={"method", "ignore"}).items() if value is not None}
        if rule.method in ("psi", "ks"):
            values["numeric_method"] = rule.method
        elif rule.method in ("chi_square", "js"):
            values["categorical_method"] = rule.method
        return self.model_copy(update=values)


class FeatureRule(BaseModel):
    """One feature's own thresholds and deciding method (unset fields: the defaults)."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["psi", "ks", "chi_square", "js"] | None = None
    psi: float | None = Field(default=None, ge=0)
    ks_p_value: float | None = Field(default=None, gt=0, lt=1)
    chi_square_p_value: float | None = Field(default=None, gt=0, lt=1)
    js: float | None = Field(default=None, ge=0)
    null_rate_increase: float | None = Field(default=None, ge=0, le=1)
    out_of_range_share: float | None = Field(default=None, ge=0, le=1)
    ignore: bool = False


@dataclass
class Statistic:
    """One method's result for one column. `statistic` and `p_value` are None when the
    method could not be computed (`note` says why)."""

    feature: str
    method: Method
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool
    decisive: bool = False
    note: str | None = None


@dataclass
class FeatureDrift:
    """A column's statistics against its baseline, its window counts and its verdict."""

    feature: str
    kind: str
    statistics: list[Statistic]
    window: Sketch
    baseline: Sketch

    @property
    def decisive(self) -> Statistic:
        return next(stat for stat in self.statistics if stat.decisive)

    @property
    def tested(self) -> bool:
        """Whether the deciding statistic could be computed."""
        return self.decisive.statistic is not None

    @property
    def drifted(self) -> bool:
        return any(stat.drifted for stat in self.statistics if stat.decisive or stat.method in ("null_rate", "out_of_range"))


@dataclass
class DriftReport:
    """A window against a baseline: per column, and the share of columns that drifted."""

    features: list[FeatureDrift]
    rows: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def drifted_features(self) -> list[str]:
        return [feature.feature for feature in self.features if feature.drifted]

    @property
    def tested_features(self) -> list[str]:
        return [feature.feature for feature in self.features if feature.tested or feature.drifted]

    @property
    def drift_share(self) -> float | None:
        """Drifted columns / columns that could be tested; None when none could (an empty window)."""
        tested = self.tested_features
        return len(self.drifted_features) / len(tested) if tested else None

    def feature(self, name: str) -> FeatureDrift:
        return next(feature for feature in self.features if feature.feature == name)

    def rows_out(self) -> list[dict[str, Any]]:
        """One row per column and method: feature, kind, method, statistic, p_value,
        threshold, drifted, decisive, note, and the window's rows and null rate."""
        out = []
        for feature in self.features:
            for stat in feature.statistics:
                out.append({
                    "feature": feature.feature,
                    "kind": feature.kind,
                    "method": stat.method,
                    "statistic": stat.statistic,
                    "p_value": stat.p_value,
                    "threshold": stat.threshold,
                    "drifted": stat.drifted,
                    "decisive": stat.decisive,
                    "note": stat.note,
                    "rows": feature.window.rows,
                    "null_rate": feature.window.null_rate,
                })
        return out


# --- the statistics ------------------------------------------------------------------------


def psi(expected: np.ndarray | list[float], actual: np.ndarray | list[float], epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of two histograms (counts or shares) over the same bins."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    e = np.clip(e / e.sum(), epsilon, None)
    a = np.clip(a / a.sum(), epsilon, None)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass
class KsResult:
    """The KS statistic at the sketch edges, its p-value, and how far the exact one can be above it."""

    statistic: float
    p_value: float
    bound: float


def ks_sketch(baseline: NumericSketch, window: NumericSketch) -> KsResult:
    """Two-sample KS between the training column (its sketch) and a window counted at the
    same edges (see the module text for the approximation and its bound)."""
    from scipy.stats import kstwo

    n, m = baseline.values, window.values
    base_mass = np.asarray(baseline.counts, dtype=np.float64) / n
    window_mass = np.asarray(window.counts, dtype=np.float64) / m
    base_cdf = np.cumsum(base_mass[:-1])
    window_cdf = np.cumsum(window_mass[:-1])
    below = window.below / m  # window values under the training minimum, where the training CDF is 0
    statistic = float(max(np.max(np.abs(base_cdf - window_cdf)), below))
    inner = np.minimum(base_mass[1:-1], window_mass[1:-1])  # the bins between two edges
    bound = float(inner.max()) if inner.size else 0.0
    en = n * m / (n + m)
    p_value = float(np.clip(kstwo.sf(statistic, round(en)), 0.0, 1.0))
    return KsResult(statistic, p_value, bound)


def category_cells(baseline: CategoricalSketch, window: CategoricalSketch) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The cells both sides are counted in (the baseline's categories and one for all other
    values) with the baseline's and the window's counts."""
    names = list(baseline.counts)
    base = np.array([baseline.counts[name] for name in names] + [baseline.other], dtype=np.float64)
    seen = np.array([window.counts.get(name, 0) for name in names], dtype=np.float64)
    rest = window.values - seen.sum()
    return [*names, "(other)"], base, np.concatenate([seen, [rest]])


def chi_square(base_counts: np.ndarray, window_counts: np.ndarray) -> tuple[float, float]:
    """Chi-square goodness of fit of the window's counts to the baseline's shares."""
    from scipy.stats import chisquare

    total = window_counts.sum()
    expected = base_counts / base_counts.sum() * total
    if np.any((expected == 0) & (window_counts > 0)):
        return math.inf, 0.0
    keep = expected > 0
    if keep.sum() < 2:
        return 0.0, 1.0
    result = chisquare(window_counts[keep], expected[keep])
    return float(result.statistic), float(result.pvalue)


def js_distance(base_counts: np.ndarray, window_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (natural log) of two histograms over the same cells."""
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(base_counts, window_counts))


# --- one column ----------------------------------------------------------------------------


def feature_drift(name: str, baseline: Sketch, window: Sketch, thresholds: Thresholds) -> FeatureDrift:
    """All statistics of one column, its window counted against `baseline`."""
    stats = [_null_rate(name, baseline, window, thresholds)]
    if isinstance(baseline, NumericSketch):
        assert isinstance(window, NumericSketch)
        stats = [*_numeric(name, baseline, window, thresholds), *stats, _out_of_range(name, baseline, window, thresholds)]
        return FeatureDrift(name, "numeric", stats, window, baseline)
    assert isinstance(window, CategoricalSketch)
    stats = [*_categorical(name, baseline, window, thresholds), *stats]
    return FeatureDrift(name, "categorical", stats, window, baseline)


def _missing_reason(baseline: Sketch, window: Sketch) -> str | None:
    if window.rows == 0:
        return "the window has no rows"
    if window.values == 0:
        return "every value of the window is null"
    if baseline.values == 0:
        return "the baseline has no values (the column was null in every training row)"
    return None


def _numeric(name: str, baseline: NumericSketch, window: NumericSketch, t: Thresholds) -> list[Statistic]:
    reason = _missing_reason(baseline, window)
    psi_stat = Statistic(name, "psi", None, None, t.psi, False, t.numeric_method == "psi", reason)
    ks_stat = Statistic(name, "ks", None, None, t.ks_p_value, False, t.numeric_method == "ks", reason)
    if reason is None:
        psi_stat.statistic = psi(baseline.psi_counts(), window.psi_counts())
        psi_stat.drifted = psi_stat.statistic > t.psi
        ks = ks_sketch(baseline, window)
        ks_stat.statistic, ks_stat.p_value = ks.statistic, ks.p_value
        ks_stat.drifted = ks.p_value < t.ks_p_value
        ks_stat.note = f"statistic at the baseline's {len(baseline.edges)} quantile edges; exact value at most {ks.bound:.4f} higher"
    return [psi_stat, ks_stat]


def _categorical(name: str, baseline: CategoricalSketch, window: CategoricalSketch, t: Thresholds) -> list[Statistic]:
    reason = _missing_reason(baseline, window)
    chi = Statistic(name, "chi_square", None, None, t.chi_square_p_value, False, t.categorical_method == "chi_square", reason)
    js = Statistic(name, "js", None, None, t.js, False, t.categorical_method == "js", reason)
    if reason is None:
        _, base, current = category_cells(baseline, window)
        chi.statistic, chi.p_value = chi_square(base, current)
        chi.drifted = chi.p_value < t.chi_square_p_value
        js.statistic = js_distance(base, current)
        js.drifted = js.statistic > t.js
        if window.unseen and baseline.other == 0:
            top = sorted(window.unseen.items(), key=lambda item: -item[1])[:5]
            note = f"{sum(window.unseen.values())} values in categories training never saw: " + ", ".join(
                f"{value!r} ({count})" for value, count in top
            )
            chi.note = js.note = note
    return [chi, js]


def _null_rate(name: str, baseline: Sketch, window: Sketch, t: Thresholds) -> Statistic:
    if window.rows == 0:
        return Statistic(name, "null_rate", None, None, t.null_rate_increase, False, note="the window has no rows")
    increase = (window.null_rate or 0.0) - (baseline.null_rate or 0.0)
    note = f"null rate {window.null_rate:.4f} in the window, {baseline.null_rate or 0.0:.4f} in training"
    return Statistic(name, "null_rate", increase, None, t.null_rate_increase, increase > t.null_rate_increase, note=note)


def _out_of_range(name: str, baseline: NumericSketch, window: NumericSketch, t: Thresholds) -> Statistic:
    reason = _missing_reason(baseline, window)
    if reason is not None:
        return Statistic(name, "out_of_range", None, None, t.out_of_range_share, False, note=reason)
    outside = window.below + window.counts[-1]
    share = outside / window.values
    note = f"{outside} values outside the training range [{baseline.min:g}, {baseline.max:g}]" if outside else None
    return Statistic(name, "out_of_range", share, None, t.out_of_range_share, share > t.out_of_range_share, note=note)


# --- a window ------------------------------------------------------------------------------


def compare(
    sketches: Mapping[str, Sketch],
    window: Window,
    thresholds: Thresholds | None = None,
    rules: Mapping[str, FeatureRule] | None = None,
    *,
    workers: int | None = None,
) -> DriftReport:
    """Count `window` (Arrow: a table, a record batch reader or batches) against the
    baseline's column sketches and compute every column's statistics.

    `rules` gives columns their own thresholds or method (`ignore: true` leaves one out).
    Columns are counted in `workers` threads (default: the CPU count).

    Raises:
        WindowDataError: a column of `sketches` is not in the window, or a numeric one
            does not hold numbers.
    """
    started = time.perf_counter()
    thresholds = thresholds or Thresholds()
    rules = dict(rules or {})
    names = [name for name in sketches if not (rules.get(name) and rules[name].ignore)]
    counters = {name: counter_for(sketches[name]) for name in names}
    rows = count_window(window, counters, workers)
    features = [
        feature_drift(name, sketches[name], counters[name].sketch(), thresholds.merged(rules.get(name))) for name in names
    ]
    notes = [] if rows else ["the window has no rows: nothing was tested"]
    ignored = [name for name in sketches if name not in names]
    if ignored:
        notes.append(f"left out by rule (ignore: true): {', '.join(ignored)}")
    return DriftReport(features, rows, time.perf_counter() - started, notes)
