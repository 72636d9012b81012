"""A model version's baseline: what its training data and its predictions looked like.

Recorded once, when the version is trained (`brickyard.monitoring.training`), so a monitor
compares windows with it and never reads the training data again. It holds one sketch per
feature (`brickyard.monitoring.sketch`: a quantile-edge histogram with null count, range
and moments for numbers; top-100 category counts for the rest) and one per model output,
named as the `score` task names its columns: `prediction` (the class, value or cluster) and,
for classifiers with probabilities, `probability` (of the positive class for a binary
classifier, of the predicted class otherwise). Feature sketches describe every row the
training read; prediction sketches describe the held-out test rows (predictions on the rows
a model was fitted on are over-confident), or every row for clustering.

Its JSON form (`to_dict`, `format: 1`) is the MLflow artifact `monitoring/baseline.json` of
the version's run, and each sketch is also a row of the Delta table `gold.model_baselines`
(`brickyard.monitoring.store`):

    {"format": 1, "model_name": "titanic", "model_version": 3, "run_id": "...",
     "created": "2026-12-05T18:00:00+00:00", "problem": "classification",
     "source": "table silver.titanic", "reads": {"silver.titanic": 4}, "rows": 891,
     "prediction_rows": 179, "prediction_source": "held-out test rows",
     "features": {"Age": {"kind": "numeric", "rows": 891, "nulls": 177, "edges": [...],
                          "counts": [...], "psi_edges": [...], "min": 0.42, "max": 80.0, ...},
                  "Sex": {"kind": "categorical", "rows": 891, "nulls": 0,
                          "counts": {"male": 577, "female": 314}, "other": 0, "distinct": 2, ...}},
     "predictions": {"prediction": {...}, "probability": {...}}}
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from brickyard.monitoring.errors import WindowDataError
from brickyard.monitoring.sketch import (
    SKETCH_BINS,
    CategoryCounter,
    NumericCounter,
    Sketch,
    Window,
    as_float,
    categorical_sketch,
    count_window,
    numeric_sketch,
    quantile_edges,
    sketch_from_dict,
)

BASELINE_FORMAT = 1
PREDICTION = "prediction"
PROBABILITY = "probability"


@dataclass
class Baseline:
    """The sketches of a model version's features and outputs (see the module text)."""

    model_name: str
    model_version: int | None
    run_id: str | None
    features: dict[str, Sketch]
    predictions: dict[str, Sketch] = field(default_factory=dict)
    rows: int = 0
    problem: str | None = None
    source: str | None = None
    reads: dict[str, int] = field(default_factory=dict)
    prediction_rows: int = 0
    prediction_source: str | None = None
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def sketches(self, predictions: Mapping[str, str] | None = None) -> dict[str, Sketch]:
        """The feature sketches, plus the output sketches under the window's column names
        (`predictions` maps `prediction`/`probability` to them; default: none), for `compare`."""
        chosen: dict[str, Sketch] = dict(self.features)
        for output, column in (predictions or {}).items():
            if output in self.predictions:
                chosen[column] = self.predictions[output]
        return chosen

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": BASELINE_FORMAT,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "run_id": self.run_id,
            "created": self.created,
            "problem": self.problem,
            "source": self.source,
            "reads": dict(self.reads),
            "rows": self.rows,
            "prediction_rows": self.prediction_rows,
            "prediction_source": self.prediction_source,
            "features": {name: sketch.to_dict() for name, sketch in self.features.items()},
            "predictions": {name: sketch.to_dict() for name, sketch in self.predictions.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Baseline:
        """A baseline from its JSON form.

        Raises:
            ValueError: a format this version does not read.
        """
        if data.get("format") != BASELINE_FORMAT:
            raise ValueError(f"baseline format {data.get('format')!r} is not {BASELINE_FORMAT}")
        return cls(
            model_name=str(data["model_name"]),
            model_version=None if data.get("model_version") is None else int(data["model_version"]),
            run_id=data.get("run_id"),
            features={name: sketch_from_dict(sketch) for name, sketch in data["features"].items()},
            predictions={name: sketch_from_dict(sketch) for name, sketch in data.get("predictions", {}).items()},
            rows=int(data.get("rows", 0)),
            problem=data.get("problem"),
            source=data.get("source"),
            reads={str(k): int(v) for k, v in data.get("reads", {}).items()},
            prediction_rows=int(data.get("prediction_rows", 0)),
            prediction_source=data.get("prediction_source"),
            created=str(data.get("created")),
        )


def profile(
    data: Window,
    numeric: Sequence[str],
    categorical: Sequence[str],
    *,
    edges_from: pa.Table | None = None,
    bins: int = SKETCH_BINS,
    workers: int | None = None,
) -> tuple[dict[str, Sketch], int]:
    """Sketch the columns of `data` (a table, or batches that stream) and return the
    sketches and the rows read.

    The numeric edges are the quantiles of `edges_from` (a sample of the data, for data that
    streams) or, by default, of `data` itself, which must then be a table. Counts, nulls and
    ranges always come from every row of `data`.
    """
    if edges_from is None and isinstance(data, pa.Table):
        return _profile_table(data, numeric, categorical, bins, workers), data.num_rows
    if numeric and not isinstance(edges_from, pa.Table):
        raise TypeError("profile of batches that stream needs edges_from: a table to take the numeric edges from")
    counters: dict[str, NumericCounter | CategoryCounter] = {}
    for name in numeric:
        assert isinstance(edges_from, pa.Table)
        edges, psi_edges = quantile_edges(as_float(edges_from.column(name), name), bins)
        counters[name] = NumericCounter(edges, psi_edges)
    for name in categorical:
        counters[name] = CategoryCounter()
    rows = count_window(data, counters, workers)
    return {name: counters[name].sketch() for name in [*numeric, *categorical]}, rows


def _profile_table(
    data: pa.Table, numeric: Sequence[str], categorical: Sequence[str], bins: int, workers: int | None
) -> dict[str, Sketch]:
    """Every column of a table in memory, in threads: a numeric one sorted once for both its
    edges and its counts."""
    missing = [name for name in [*numeric, *categorical] if name not in data.column_names]
    if missing:
        raise WindowDataError(f"the data lacks column(s) {', '.join(map(repr, missing))}; it has {', '.join(data.column_names)}")

    def one(name: str) -> Sketch:
        if name in numeric:
            return numeric_sketch(data.column(name), bins=bins, column=name)
        return categorical_sketch(data.column(name), column=name)

    names = [*numeric, *categorical]
    workers = max(1, min(workers or os.cpu_count() or 1, len(names) or 1))
    if workers == 1:
        return {name: one(name) for name in names}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="profile") as pool:
        return dict(zip(names, pool.map(one, names)))


def output_sketches(prediction: np.ndarray | Sequence[Any], probability: np.ndarray | None, *, numeric_prediction: bool) -> dict[str, Sketch]:
    """The sketches of a model's outputs: `prediction` (numeric for a regressor, else
    categorical) and `probability` when there is one."""
    columns: dict[str, Any] = {PREDICTION: pa.array(np.asarray(prediction))}
    numeric = [PREDICTION] if numeric_prediction else []
    if probability is not None:
        columns[PROBABILITY] = pa.array(np.asarray(probability, dtype=np.float64))
        numeric.append(PROBABILITY)
    categorical = [] if numeric_prediction else [PREDICTION]
    sketches, _ = profile(pa.table(columns), numeric, categorical, workers=1)
    return sketches
