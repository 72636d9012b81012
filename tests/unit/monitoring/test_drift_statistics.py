"""Drift statistics against independent references: scipy on the raw samples, PSI by hand.

The KS statistic of a window against a baseline sketch is computed at the sketch's edges;
the exact two-sample statistic (scipy.stats.ks_2samp on the raw training rows and the
window) must lie in [statistic, statistic + bound], with bound <= 1/500 + 1/n for a
continuous column; for a discrete column whose window holds only training values it is exact.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import chisquare, ks_2samp, kstwo

from brickyard.monitoring import (
    FeatureRule,
    Thresholds,
    WindowDataError,
    categorical_sketch,
    compare,
    ks_sketch,
    numeric_sketch,
    profile,
)
from brickyard.monitoring.sketch import SKETCH_BINS, counter_for

RNG = np.random.default_rng(7)


def window_sketch(baseline, values):  # noqa: ANN001, ANN201 - test helper
    counter = counter_for(baseline)
    counter.add(pa.array(values))
    return counter.sketch()


def stat(report, feature: str, method: str):  # noqa: ANN001, ANN201
    return next(s for s in report.feature(feature).statistics if s.method == method)


# --- KS -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "window",
    [
        RNG.normal(0, 1, 30_000),  # the same distribution
        RNG.normal(0.05, 1, 30_000),  # a small shift
        RNG.normal(0.5, 1, 30_000),  # a large one
        RNG.normal(0, 1.3, 30_000),  # a wider spread
        RNG.exponential(1, 5_000) - 1,  # another shape, values under the training minimum
    ],
    ids=["same", "small-shift", "large-shift", "wider", "other-shape"],
)
def test_ks_from_the_sketch_brackets_scipy_ks_2samp_on_the_raw_rows(window: np.ndarray) -> None:
    training = RNG.normal(0, 1, 50_000)
    baseline = numeric_sketch(pa.array(training))
    result = ks_sketch(baseline, window_sketch(baseline, window))
    exact = ks_2samp(training, window, method="asymp")

    assert result.statistic <= exact.statistic + 1e-12
    assert exact.statistic <= result.statistic + result.bound + 1e-12
    assert result.bound <= 1 / SKETCH_BINS + 1 / len(training) + 1e-9
    # the p-value is Smirnov's asymptotic one of the statistic: never below scipy's (the
    # statistic is a lower bound), and at most that of statistic + bound above it
    en = round(len(training) * len(window) / (len(training) + len(window)))
    assert exact.pvalue <= result.p_value + 1e-12
    assert result.p_value <= kstwo.sf(max(exact.statistic - result.bound, 0), en) + 1e-12


def test_ks_of_a_discrete_column_equals_scipy_exactly() -> None:
    training = RNG.integers(0, 8, 20_000).astype(float)
    window = RNG.choice(np.arange(8.0), 7_000, p=[0.2, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    baseline = numeric_sketch(pa.array(training))
    result = ks_sketch(baseline, window_sketch(baseline, window))
    exact = ks_2samp(training, window, method="asymp")

    # every window value is an edge (a training value), so the CDFs only step at edges
    assert result.statistic == pytest.approx(exact.statistic, abs=1e-12)
    assert result.p_value == pytest.approx(exact.pvalue, rel=1e-9, abs=1e-300)


@settings(max_examples=60, deadline=None)
@given(
    training=st.lists(st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([0.0, 1.0, 2.5]), min_size=1, max_size=300),
    window=st.lists(st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([0.0, 1.0, 2.5]), min_size=1, max_size=300),
    bins=st.integers(1, 40),
)
def test_ks_bound_holds_for_any_samples_ties_and_bin_counts(training: list[float], window: list[float], bins: int) -> None:
    baseline = numeric_sketch(pa.array(training), bins=bins)
    result = ks_sketch(baseline, window_sketch(baseline, window))
    exact = ks_2samp(training, window).statistic
    assert result.statistic - 1e-9 <= exact <= result.statistic + result.bound + 1e-9


# --- PSI ------------------------------------------------------------------------------------


def brute_force_psi(training: np.ndarray, window: np.ndarray) -> float:
    """PSI written out: bins below the training minimum, [min, q10], (q10, q20], ...,
    (q90, max], above max; shares of zero become 1e-4."""
    present = np.sort(training[~np.isnan(training)])
    n = len(present)
    deciles = sorted({present[math.ceil(n * k / 10) - 1] for k in range(1, 10)})  # inverted-CDF quantiles
    lo, hi = present[0], present[-1]
    inner = [d for d in deciles if lo <= d < hi]
    bounds = [lo, *inner, hi]

    def shares(values: np.ndarray) -> list[float]:
        values = values[~np.isnan(values)]
        counts = [0] * (len(bounds) + 1)
        for x in values:
            if x < lo:
                counts[0] += 1
            elif x > hi:
                counts[-1] += 1
            else:
                for i in range(1, len(bounds)):
                    if x <= bounds[i]:
                        counts[i] += 1
                        break
        return [max(c / len(values), 1e-4) for c in counts]

    total = 0.0
    for e, a in zip(shares(training), shares(window)):
        total += (a - e) * math.log(a / e)
    return total


@pytest.mark.parametrize(
    ("training", "window"),
    [
        (RNG.normal(0, 1, 4_000), RNG.normal(0, 1, 3_000)),
        (RNG.normal(0, 1, 4_000), RNG.normal(0.7, 1.2, 3_000)),
        (RNG.integers(0, 5, 4_000).astype(float), RNG.integers(2, 9, 3_000).astype(float)),
        (np.where(RNG.random(4_000) < 0.2, np.nan, RNG.lognormal(0, 1, 4_000)), RNG.lognormal(0.3, 1, 3_000) - 0.5),
    ],
    ids=["same", "shifted", "discrete", "nulls-and-below-min"],
)
def test_psi_equals_the_formula_written_out(training: np.ndarray, window: np.ndarray) -> None:
    report = compare({"x": numeric_sketch(pa.array(training, from_pandas=True))}, pa.table({"x": window}))
    assert stat(report, "x", "psi").statistic == pytest.approx(brute_force_psi(training, window), rel=1e-9, abs=1e-12)


# --- categorical ----------------------------------------------------------------------------


def test_chi_square_and_js_equal_scipy_on_counts_of_the_raw_values() -> None:
    training = RNG.choice(["a", "b", "c", "d"], 10_000, p=[0.4, 0.3, 0.2, 0.1])
    window = RNG.choice(["a", "b", "c", "d"], 2_000, p=[0.3, 0.3, 0.25, 0.15])
    report = compare({"c": categorical_sketch(pa.array(training))}, pa.table({"c": window}))

    base, current = Counter(training.tolist()), Counter(window.tolist())
    names = sorted(base)
    observed = [current[name] for name in names]
    expected = [base[name] / len(training) * len(window) for name in names]
    reference = chisquare(observed, expected)
    chi = stat(report, "c", "chi_square")
    assert chi.statistic == pytest.approx(reference.statistic, rel=1e-9)
    assert chi.p_value == pytest.approx(reference.pvalue, rel=1e-6)
    assert chi.drifted
    js = stat(report, "c", "js")
    assert js.statistic == pytest.approx(jensenshannon([base[n] for n in names], observed), rel=1e-9)


def test_categories_beyond_the_top_n_share_one_cell() -> None:
    training = np.array([f"v{i % 150}" for i in range(15_000)])  # 150 values, 100 kept by name
    baseline = categorical_sketch(pa.array(training))
    assert len(baseline.counts) == 100 and baseline.other == 5_000 and baseline.distinct == 150
    report = compare({"c": baseline}, pa.table({"c": training[:6_000]}))
    assert report.drifted_features == [] and stat(report, "c", "chi_square").p_value > 0.05


def test_an_unseen_category_is_drift_and_named() -> None:
    baseline = categorical_sketch(pa.array(["S", "C", "Q"] * 100))
    report = compare({"port": baseline}, pa.table({"port": ["S", "C", "Q"] * 30 + ["X"] * 10}))
    chi = stat(report, "port", "chi_square")
    assert chi.statistic == math.inf and chi.p_value == 0.0 and chi.drifted
    assert "'X' (10)" in (chi.note or "")
    assert report.drifted_features == ["port"]


# --- edge cases -----------------------------------------------------------------------------


def test_an_empty_window_tests_nothing_and_says_so() -> None:
    sketches, _ = profile(pa.table({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]}), ["x"], ["c"])
    report = compare(sketches, pa.table({"x": pa.array([], pa.float64()), "c": pa.array([], pa.string())}))
    assert report.rows == 0 and report.drifted_features == [] and report.drift_share is None
    assert report.notes == ["the window has no rows: nothing was tested"]
    assert all(s.statistic is None and s.note == "the window has no rows" for f in report.features for s in f.statistics)


def test_an_all_null_window_column_fails_the_null_rate_check_and_skips_the_rest() -> None:
    sketches, _ = profile(pa.table({"x": [1.0, 2.0, None, 4.0]}), ["x"], [])
    report = compare(sketches, pa.table({"x": pa.array([None] * 50, pa.float64())}))
    null_rate = stat(report, "x", "null_rate")
    assert null_rate.statistic == pytest.approx(0.75) and null_rate.drifted
    assert stat(report, "x", "psi").statistic is None
    assert stat(report, "x", "psi").note == "every value of the window is null"
    assert report.drifted_features == ["x"]


def test_a_column_null_in_every_training_row_is_compared_on_its_null_rate_only() -> None:
    sketches, _ = profile(pa.table({"x": pa.array([None, None], pa.float64())}), ["x"], [])
    report = compare(sketches, pa.table({"x": [1.0, None]}))
    assert stat(report, "x", "ks").note == "the baseline has no values (the column was null in every training row)"
    assert stat(report, "x", "null_rate").statistic == pytest.approx(-0.5)
    assert report.drifted_features == []


def test_a_constant_column_drifts_when_it_moves_either_way() -> None:
    baseline = numeric_sketch(pa.array([5.0] * 1_000))
    same = compare({"k": baseline}, pa.table({"k": [5.0] * 300}))
    assert stat(same, "k", "psi").statistic == 0 and stat(same, "k", "ks").statistic == 0
    for moved in ([4.0] * 300, [6.0] * 300):
        report = compare({"k": baseline}, pa.table({"k": moved}))
        assert report.drifted_features == ["k"]
        assert stat(report, "k", "out_of_range").statistic == 1.0


def test_a_missing_column_and_text_in_a_numeric_column_are_errors_that_name_them() -> None:
    sketches, _ = profile(pa.table({"x": [1.0, 2.0], "y": [1.0, 2.0]}), ["x", "y"], [])
    with pytest.raises(WindowDataError, match="lacks 1 column.*'y'"):
        compare(sketches, pa.table({"x": [1.0]}))
    with pytest.raises(WindowDataError, match="column 'y' should hold numbers"):
        compare(sketches, pa.table({"x": [1.0], "y": ["seven"]}))


def test_window_types_from_an_engine_read_like_the_training_frame() -> None:
    sketches, _ = profile(pa.table({"n": [1.0, 2.0, 3.0], "flag": [True, False, True], "k": [1, 2, 3]}), ["n"], ["flag", "k"])
    window = pa.table({
        "n": pa.array([1, 2, 3], pa.int32()),
        "flag": pa.array([True, False, True]).dictionary_encode(),
        "k": pa.array(["1", "2", "3"], pa.large_string()),
    })
    report = compare(sketches, window)
    assert report.drifted_features == []
    assert stat(report, "flag", "js").statistic == 0 and stat(report, "k", "js").statistic == 0


# --- thresholds and streaming ---------------------------------------------------------------


def test_feature_rules_change_the_method_and_threshold_and_can_leave_a_column_out() -> None:
    training = RNG.normal(0, 1, 20_000)
    window = RNG.normal(0.1, 1, 20_000)  # PSI ~0.01, KS p-value tiny
    sketches = {"a": numeric_sketch(pa.array(training)), "b": numeric_sketch(pa.array(training)), "c": numeric_sketch(pa.array(training))}
    table = pa.table({"a": window, "b": window, "c": window})
    report = compare(sketches, table, rules={"b": FeatureRule(method="ks"), "c": FeatureRule(ignore=True)})
    assert report.drifted_features == ["b"] and report.drift_share == 0.5
    assert "left out by rule (ignore: true): c" in report.notes
    strict = compare(sketches, table, Thresholds(psi=0.001))
    assert strict.drifted_features == ["a", "b", "c"]


def test_a_window_streamed_in_batches_in_threads_counts_what_one_pass_counts() -> None:
    columns = {f"x{i}": RNG.normal(i, 1, 30_000) for i in range(6)}
    columns["c"] = RNG.choice(["a", "b", "c"], 30_000)
    table = pa.table(columns)
    sketches, _ = profile(table.slice(0, 10_000), [f"x{i}" for i in range(6)], ["c"])
    whole = compare(sketches, table, workers=1)
    batches = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=777))
    streamed = compare(sketches, batches, workers=4)
    assert streamed.rows == whole.rows == 30_000
    for one, other in zip(streamed.features, whole.features):
        counted, summed = one.window.to_dict(), other.window.to_dict()
        for moment in ("mean", "std"):  # sums in another order: equal up to rounding
            if moment in counted:
                assert counted.pop(moment) == pytest.approx(summed.pop(moment), rel=1e-12)
        assert counted == summed
    assert [row["statistic"] for row in streamed.rows_out()] == pytest.approx([row["statistic"] for row in whole.rows_out()])
