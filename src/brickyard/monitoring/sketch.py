"""Column sketches: what a baseline keeps of a training column, and what a window adds up.

A numeric column becomes a fixed-edge histogram whose edges are the training quantiles at
k/`SKETCH_BINS` (k = 0..SKETCH_BINS, duplicates dropped, so the training minimum and maximum
are edges), with open ends below the first edge and above the last. Bin i holds the values
x with edges[i-1] < x <= edges[i] (bin 0: x <= edges[0]; the last bin: x > edges[-1]), so
the training CDF is known exactly at every edge. The PSI edges are the training deciles,
a subset of the edges, so one count per window gives both PSI and KS. Nulls (and NaN) are
counted apart; min, max, mean and standard deviation ride along.

A categorical column becomes counts of its `TOP_CATEGORIES` most frequent values (as text,
through Arrow's cast, so training frames and windows spell values alike: `true`, `3`,
`1.5`), the count of all other values, and the number of distinct values.

A window is counted against the baseline's edges and categories batch by batch
(`NumericCounter`, `CategoryCounter`), so it never has to fit in memory.

>>> import pyarrow as pa
>>> sketch = numeric_sketch(pa.array([1.0, 2.0, 3.0, None]), bins=2)
>>> sketch.edges, sketch.counts, sketch.nulls
([1.0, 2.0, 3.0], [1, 1, 1, 0], 1)
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from brickyard.monitoring.errors import WindowDataError

SKETCH_BINS = 500
PSI_BINS = 10
TOP_CATEGORIES = 100
UNSEEN_KEPT = 10_000  # distinct values outside the baseline a window counter keeps by name

Kind = Literal["numeric", "categorical"]
Window: TypeAlias = pa.Table | pa.RecordBatchReader | pa.RecordBatch | Iterable[pa.RecordBatch]
BATCH_ROWS = 65_536


@dataclass
class NumericSketch:
    """A numeric column: counts between fixed edges, nulls, range and moments."""

    rows: int
    nulls: int
    edges: list[float]
    counts: list[int]
    psi_edges: list[float]
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    below: int = 0  # values below the first edge (for a baseline, none: its minimum is the first edge)
    kind: Kind = "numeric"

    @property
    def values(self) -> int:
        """Rows with a value (not null, not NaN)."""
        return self.rows - self.nulls

    @property
    def null_rate(self) -> float | None:
        return self.nulls / self.rows if self.rows else None

    def cdf(self) -> np.ndarray:
        """The share of values <= each edge."""
        counts = np.asarray(self.counts[:-1], dtype=np.float64)
        return np.cumsum(counts) / self.values if self.values else np.zeros(len(self.edges))

    def psi_counts(self) -> np.ndarray:
        """Counts in the PSI bins: below the baseline's minimum, [minimum, first PSI edge],
        the bins between the PSI edges (open below, closed above), up to the baseline's
        maximum, and above it. A baseline has none in the first and last."""
        if not self.edges:
            return np.zeros(0, dtype=np.int64)
        cumulative = np.concatenate([[0], np.cumsum(self.counts)])
        inner = [edge for edge in self.psi_edges if self.edges[0] <= edge < self.edges[-1]]
        cuts = np.searchsorted(self.edges, inner) + 1  # bins up to and including each PSI edge
        bounds = np.concatenate([[0], cuts, [len(self.counts) - 1, len(self.counts)]]).astype(np.int64)
        counts = np.diff(cumulative[bounds]).astype(np.int64)
        return np.concatenate([[self.below], [counts[0] - self.below], counts[1:]])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CategoricalSketch:
    """A categorical column: counts of its top values, all other values, nulls."""

    rows: int
    nulls: int
    counts: dict[str, int]
    other: int = 0
    distinct: int = 0
    unseen: dict[str, int] = field(default_factory=dict)
    kind: Kind = "categorical"

    @property
    def values(self) -> int:
        return self.rows - self.nulls

    @property
    def null_rate(self) -> float | None:
        return self.nulls / self.rows if self.rows else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Sketch = NumericSketch | CategoricalSketch


def sketch_from_dict(data: dict[str, Any]) -> Sketch:
    """A sketch from its `to_dict` form (as stored in baseline.json and gold.model_baselines)."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind == "numeric":
        return NumericSketch(**data)
    if kind == "categorical":
        return CategoricalSketch(**data)
    raise ValueError(f"unknown sketch kind {kind!r}")


def as_float(values: pa.Array | pa.ChunkedArray, column: str = "?") -> np.ndarray:
    """A numeric column as float64 with NaN for nulls.

    Raises:
        WindowDataError: the values are not numbers.
    """
    if pa.types.is_dictionary(values.type):
        values = pc.cast(values, values.type.value_type)
    if pa.types.is_boolean(values.type) or pa.types.is_decimal(values.type) or not pa.types.is_floating(values.type):
        try:
            values = pc.cast(values, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise WindowDataError(
                f"column {column!r} should hold numbers (it is numeric in the baseline) but holds {values.type}: "
                f"{str(exc).splitlines()[0]}",
                hint="cast it in the monitor's query, or retrain so the baseline sees the column's new type",
            ) from exc
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)


def as_text(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A categorical column as text, spelled as Arrow casts it."""
    if pa.types.is_dictionary(values.type):
        values = pc.cast(values, values.type.value_type)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())
    return values


def present_values(values: np.ndarray) -> tuple[np.ndarray, int]:
    """The values that are not NaN (null), and how many were."""
    missing = np.isnan(values)
    nulls = int(np.count_nonzero(missing))
    return (values[~missing] if nulls else values), nulls


def sorted_edges(ordered: np.ndarray, bins: int = SKETCH_BINS, psi_bins: int = PSI_BINS) -> tuple[list[float], list[float]]:
    """The sketch edges (quantiles at k/bins for k = 0..bins, unique) and the PSI edges (the
    interior quantiles at k/psi_bins) of sorted non-null values. A quantile at p is the
    smallest value with at least p of the values at or below it (numpy's `inverted_cdf`),
    computed in integers so that p = 3/10 is exactly 3/10: always a data value."""
    n = ordered.size
    if n == 0:
        return [], []
    edge_ranks = sorted({max((n * k + bins - 1) // bins - 1, 0) for k in range(bins + 1)})
    psi_ranks = sorted({(n * k + psi_bins - 1) // psi_bins - 1 for k in range(1, psi_bins)})
    edges = np.unique(ordered[edge_ranks])
    psi = np.unique(ordered[psi_ranks])
    return [float(x) for x in edges], [float(x) for x in psi]


def quantile_edges(values: np.ndarray, bins: int = SKETCH_BINS, psi_bins: int = PSI_BINS) -> tuple[list[float], list[float]]:
    """`sorted_edges` of any float64 values (NaN for nulls)."""
    present, _ = present_values(values)
    return sorted_edges(np.sort(present), bins, psi_bins)


class NumericCounter:
    """Counts a numeric column between fixed edges, batch by batch.

    A batch is sorted and the edges are looked up in it (cheaper than looking every value
    up among the edges: a sort is cache-friendly, a binary search per value is not).
    """

    def __init__(self, edges: list[float], psi_edges: list[float]) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        self.psi_edges = list(psi_edges)
        self.counts = np.zeros(len(edges) + 1, dtype=np.int64)
        self.rows = 0
        self.nulls = 0
        self.min = np.inf
        self.max = -np.inf
        self.total = 0.0
        self.total_squares = 0.0
        self.below = 0

    def add_values(self, values: np.ndarray) -> None:
        """Add float64 values (NaN for nulls)."""
        present, nulls = present_values(values)
        self.add_sorted(np.sort(present), nulls)

    def add_sorted(self, ordered: np.ndarray, nulls: int = 0) -> None:
        """Add sorted non-null values and a count of nulls."""
        self.rows += ordered.size + nulls
        self.nulls += nulls
        if ordered.size == 0:
            return
        at_or_below = np.searchsorted(ordered, self.edges, side="right")
        self.counts += np.diff(at_or_below, prepend=0, append=ordered.size)
        if self.edges.size:
            self.below += int(np.searchsorted(ordered, self.edges[0], side="left"))
        self.min = min(self.min, float(ordered[0]))
        self.max = max(self.max, float(ordered[-1]))
        self.total += float(ordered.sum())
        self.total_squares += float(np.square(ordered).sum())  # not np.dot: BLAS threads stall on a busy machine

    def add(self, values: pa.Array | pa.ChunkedArray, column: str = "?") -> None:
        self.add_values(as_float(values, column))

    def sketch(self) -> NumericSketch:
        present = self.rows - self.nulls
        mean = self.total / present if present else None
        std = None
        if present and mean is not None:
            std = float(np.sqrt(max(self.total_squares / present - mean * mean, 0.0)))
        return NumericSketch(
            rows=self.rows,
            nulls=self.nulls,
            edges=[float(x) for x in self.edges],
            counts=[int(x) for x in self.counts],
            psi_edges=self.psi_edges,
            min=float(self.min) if present else None,
            max=float(self.max) if present else None,
            mean=mean,
            std=std,
            below=self.below,
        )


class CategoryCounter:
    """Counts a categorical column's values, batch by batch.

    With `known` (the baseline's top categories) and `other_known` False (the baseline had
    no values beyond them), values outside `known` are unseen: the first `UNSEEN_KEPT`
    distinct ones are kept by name, the rest only counted.
    """

    def __init__(self, known: list[str] | None = None) -> None:
        self.known = None if known is None else set(known)
        self.counts: Counter[str] = Counter()
        self.overflow = 0
        self.rows = 0
        self.nulls = 0

    def add(self, values: pa.Array | pa.ChunkedArray, column: str = "?") -> None:
        self.rows += len(values)
        self.nulls += values.null_count
        if values.null_count == len(values):
            return
        text = as_text(values)
        tallies = pc.value_counts(text)
        names = tallies.field("values").to_pylist()
        numbers = tallies.field("counts").to_pylist()
        for name, number in zip(names, numbers):
            if name is None:
                continue
            if name in self.counts or self.known is None or name in self.known or len(self.counts) < UNSEEN_KEPT + len(self.known):
                self.counts[name] += number
            else:
                self.overflow += number

    def sketch(self, top: int | None = TOP_CATEGORIES) -> CategoricalSketch:
        """The counts: with `known`, those categories (zeros included) and the rest as
        `other` (by name in `unseen`); without, the `top` most frequent and the rest as `other`."""
        if self.known is not None:
            counts = {name: int(self.counts.get(name, 0)) for name in sorted(self.known)}
            unseen = {name: int(n) for name, n in self.counts.items() if name not in self.known}
            other = sum(unseen.values()) + self.overflow
            return CategoricalSketch(self.rows, self.nulls, counts, other, len(self.counts) + (1 if self.overflow else 0), unseen)
        ranked = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
        kept = ranked if top is None else ranked[:top]
        other = sum(n for _, n in ranked[len(kept):])
        return CategoricalSketch(self.rows, self.nulls, {k: int(n) for k, n in kept}, int(other), len(ranked))


def numeric_sketch(values: pa.Array | pa.ChunkedArray | np.ndarray, *, bins: int = SKETCH_BINS, column: str = "?") -> NumericSketch:
    """The baseline sketch of a numeric column held in memory (edges from its own quantiles)."""
    floats = values if isinstance(values, np.ndarray) else as_float(values, column)
    present, nulls = present_values(np.asarray(floats, dtype=np.float64))
    ordered = np.sort(present)
    counter = NumericCounter(*sorted_edges(ordered, bins))
    counter.add_sorted(ordered, nulls)
    return counter.sketch()


def categorical_sketch(values: pa.Array | pa.ChunkedArray, *, top: int = TOP_CATEGORIES, column: str = "?") -> CategoricalSketch:
    """The baseline sketch of a categorical column held in memory."""
    counter = CategoryCounter()
    counter.add(values, column)
    return counter.sketch(top)


def counter_for(baseline: Sketch) -> NumericCounter | CategoryCounter:
    """A window counter that counts against a baseline sketch's edges or categories."""
    if isinstance(baseline, NumericSketch):
        return NumericCounter(baseline.edges, baseline.psi_edges)
    return CategoryCounter(list(baseline.counts))


def _batches(window: Window) -> tuple[pa.Schema | None, Iterator[pa.RecordBatch]]:
    if isinstance(window, pa.Table):
        return window.schema, iter(window.to_batches(max_chunksize=BATCH_ROWS))
    if isinstance(window, pa.RecordBatch):
        return window.schema, iter([window])
    if isinstance(window, pa.RecordBatchReader):
        return window.schema, iter(window)
    return None, iter(window)


def _check_columns(schema: pa.Schema, names: Iterable[str]) -> None:
    missing = [name for name in names if name not in schema.names]
    if missing:
        raise WindowDataError(
            f"the window lacks {len(missing)} column(s) of the baseline: {', '.join(map(repr, missing))}; "
            f"it has {', '.join(schema.names)}",
            hint="select the model's features in the monitor's query, or ignore a column with a feature rule (ignore: true)",
        )


def count_window(window: Window, counters: Mapping[str, NumericCounter | CategoryCounter], workers: int | None) -> int:
    """Feed every batch of `window` to the counters (columns in `workers` threads); the rows counted.

    Raises:
        WindowDataError: a counter's column is not in the window.
    """
    schema, batches = _batches(window)
    if schema is not None:
        _check_columns(schema, counters)
    workers = max(1, min(workers or os.cpu_count() or 1, len(counters) or 1))
    rows = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="drift") as pool:
        for batch in batches:
            if schema is None:
                schema = batch.schema
                _check_columns(schema, counters)
            rows += batch.num_rows
            if workers == 1:
                for name, counter in counters.items():
                    counter.add(batch.column(name), name)
                continue
            futures = [pool.submit(counter.add, batch.column(name), name) for name, counter in counters.items()]
            for future in futures:
                future.result()
    return rows
