"""Segmentation: KMeans on scaled features, k chosen by silhouette, a readable profile.

`fit_kmeans` is the training path of `estimator: kmeans` (and what `bench/kmeans.py`
times): numeric features go through `brickyard.ml.preprocess.fit_numeric` (median impute,
standardize, one pass per column in parallel threads) and scikit-learn's `KMeans` (Lloyd,
`n_init=1`, `copy_x=False` on brickyard's private scaled buffer), or `MiniBatchKMeans` above
`MINIBATCH_ROWS` rows. The initial centres are the rows that seeded k-means++ picks from a
hashed sample of the distinct rows (`brickyard.ml.kmeans_init`), the rows the Spark engine
starts from too, so both engines find the same clusters; `params: {init: k-means++}` (or
`random`) gives scikit-learn's own initialization instead. With a k range every k is fitted and scored by
its silhouette on the same seeded sample of at most `silhouette_sample` rows (exact
silhouette is quadratic in rows); the best k wins, ties going to the smaller k. The seed of
the initialization and of the sample is the train task's `split.seed` (default 42).

Cluster labels. Each cluster is described by the features whose cluster mean sits at
least `LABEL_MIN_Z` standard deviations from the overall mean, strongest first, at most
`LABEL_MAX_PARTS` of them, joined by commas (`"short trips, low fare"`); a cluster close
to the mean everywhere is `"typical"`. The words come from the feature's name: it is split
on `_`, and the first part found in `WORD_PAIRS` picks the (below, above) pair; the other
parts, minus fillers such as `amount` or `count`, name the thing:

| feature           | below mean        | above mean         |
|-------------------|-------------------|--------------------|
| `trip_distance`   | short trips       | long trips         |
| `fare_amount`     | low fare          | high fare          |
| `passenger_count` | few passengers    | many passengers    |
| `age`             | younger           | older              |
| anything else `x` | low x             | high x             |
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from brickyard.ml.spec import KRange

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

MINIBATCH_ROWS = 5_000_000
LABEL_MIN_Z = 0.25
LABEL_MAX_PARTS = 3

# (word below the mean, word above the mean, whether the other name parts are a countable
# noun to pluralise: "short trips" rather than "short trip")
WORD_PAIRS: dict[str, tuple[str, str, bool]] = {
    "distance": ("short", "long", True),
    "duration": ("short", "long", True),
    "length": ("short", "long", True),
    "minutes": ("short", "long", True),
    "seconds": ("short", "long", True),
    "time": ("short", "long", True),
    "fare": ("low", "high", False),
    "price": ("low", "high", False),
    "cost": ("low", "high", False),
    "amount": ("low", "high", False),
    "total": ("low", "high", False),
    "tip": ("low", "high", False),
    "spend": ("low", "high", False),
    "income": ("low", "high", False),
    "revenue": ("low", "high", False),
    "count": ("few", "many", True),
    "number": ("few", "many", True),
    "quantity": ("few", "many", True),
    "passenger": ("few", "many", True),
    "passengers": ("few", "many", True),
    "items": ("few", "many", True),
    "visits": ("few", "many", True),
    "speed": ("slow", "fast", True),
    "age": ("younger", "older", False),
    "frequency": ("rare", "frequent", False),
}
FILLERS = frozenset({"amount", "count", "total", "value", "num", "n", "number", "avg", "mean", "sum"})
_SINGLE_WORDS = frozenset({"age", "frequency"})


@dataclass
class KMeansFit:
    """A fitted segmentation: the model, the chosen k and the scores of each k tried."""

    model: Pipeline
    k: int
    silhouette: float
    inertia: float
    silhouette_by_k: dict[int, float]
    inertia_by_k: dict[int, float]
    sample_size: int
    labels: np.ndarray = field(repr=False)
    scaled: np.ndarray = field(repr=False)
    fit_seconds: float = 0.0
    preprocess_seconds: float = 0.0
    kmeans_seconds: float = 0.0
    silhouette_seconds: float = 0.0
    iterations: int = 0
    initial_centres: np.ndarray | None = field(default=None, repr=False)


def make_kmeans(k: int, rows: int, seed: int, params: dict[str, Any], init: np.ndarray | None = None) -> Any:
    """The scikit-learn estimator for `k` clusters: KMeans (Lloyd, one seeded init), or
    MiniBatchKMeans for inputs above MINIBATCH_ROWS rows; `init`: initial centres, unless
    `params` name an `init`."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    options = {"n_init": 1, "random_state": seed, **params}
    if init is not None and "init" not in params:
        options["init"] = init
    if rows > MINIBATCH_ROWS and not {"algorithm", "tol"} & params.keys():
        options.setdefault("batch_size", 65_536)
        return MiniBatchKMeans(n_clusters=k, **options)
    options.setdefault("algorithm", "lloyd")
    # The scaled rows are brickyard's own buffer, so KMeans may center them in place
    # instead of copying them first (it restores them after the fit).
    options.setdefault("copy_x", False)
    return KMeans(n_clusters=k, **options)


def fit_kmeans(
    X: pd.DataFrame,
    features: list[str],
    k: int | KRange,
    *,
    seed: int = 42,
    params: dict[str, Any] | None = None,
    silhouette_sample: int = 10_000,
) -> KMeansFit:
    """Fit KMeans on the standardized numeric `features` of `X`, for one k or each k of a range.

    `params` go to the scikit-learn estimator (max_iter, tol, ...).

    Raises:
        TrainingDataError: the features hold fewer distinct rows than the smallest k.
    """
    from sklearn.metrics import silhouette_score
    from sklearn.pipeline import Pipeline

    from brickyard.ml.kmeans_init import choose_seeds, distinct_sample
    from brickyard.ml.preprocess import fit_numeric

    params = dict(params or {})
    started = time.perf_counter()
    steps, Z = fit_numeric(X, features)
    preprocess_seconds = time.perf_counter() - started
    ks = [k] if isinstance(k, int) else list(range(k.min, k.max + 1))
    sample = sample_rows(len(Z), silhouette_sample, seed)
    seeds = None if "init" in params else distinct_sample(X, features, seed)
    best: tuple[float, int, Any, np.ndarray] | None = None
    silhouettes: dict[int, float] = {}
    inertias: dict[int, float] = {}
    kmeans_seconds = silhouette_seconds = 0.0
    for candidate in ks:
        if candidate >= len(Z):
            break
        init = None
        if seeds is not None:
            if best is not None and candidate > len(seeds.values):
                break
            assert seeds.positions is not None
            init = Z[seeds.positions[choose_seeds(seeds, candidate, seed)]]
        estimator = make_kmeans(candidate, len(Z), seed, params, init)
        tic = time.perf_counter()
        estimator.fit(Z)
        kmeans_seconds += time.perf_counter() - tic
        labels = estimator.labels_
        sampled = labels[sample]
        tic = time.perf_counter()
        score = float(silhouette_score(Z[sample], sampled)) if len(np.unique(sampled)) > 1 else -1.0
        silhouette_seconds += time.perf_counter() - tic
        silhouettes[candidate] = score
        inertias[candidate] = float(estimator.inertia_)
        if best is None or score > best[0]:
            best = (score, candidate, estimator, labels)
    assert best is not None, "k must be below the number of rows"
    score, chosen, estimator, labels = best
    model = Pipeline([*steps, ("model", estimator)])
    return KMeansFit(
        model=model,
        k=chosen,
        silhouette=score,
        inertia=float(estimator.inertia_),
        silhouette_by_k=silhouettes,
        inertia_by_k=inertias,
        sample_size=len(sample),
        labels=np.asarray(labels),
        scaled=Z,
        fit_seconds=time.perf_counter() - started,
        preprocess_seconds=preprocess_seconds,
        kmeans_seconds=kmeans_seconds,
        silhouette_seconds=silhouette_seconds,
        iterations=int(getattr(estimator, "n_iter_", 0)),
        initial_centres=None if isinstance(estimator.init, str) else np.array(estimator.init),
    )


def sample_rows(rows: int, size: int, seed: int) -> np.ndarray:
    """A seeded sample of row positions, sorted (all rows when there are few)."""
    if rows <= size:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=size, replace=False))


def profile(X: pd.DataFrame, features: list[str], labels: np.ndarray) -> pd.DataFrame:
    """Per cluster: its rows, share of rows, each feature's mean (in the data's units)
    and a readable label. Columns: cluster, rows, share, <feature>_mean..., label."""
    import pandas as pd

    values = X[features].apply(pd.to_numeric, errors="coerce").astype("float64")
    overall_mean = values.mean()
    overall_std = values.std(ddof=0).replace(0.0, np.nan)
    grouped = values.groupby(labels)
    means = grouped.mean()
    counts = grouped.size()
    rows = []
    for cluster in sorted(counts.index):
        z = ((means.loc[cluster] - overall_mean) / overall_std).fillna(0.0)
        row: dict[str, Any] = {
            "cluster": int(cluster),
            "rows": int(counts.loc[cluster]),
            "share": float(counts.loc[cluster]) / len(labels),
        }
        for name in features:
            row[f"{name}_mean"] = float(means.loc[cluster, name])
        row["label"] = cluster_label({name: float(z[name]) for name in features})
        rows.append(row)
    return pd.DataFrame(rows)


def cluster_label(z_scores: dict[str, float]) -> str:
    """A short label from each feature's standardized distance to the overall mean."""
    strong = [(name, z) for name, z in z_scores.items() if abs(z) >= LABEL_MIN_Z]
    strong.sort(key=lambda item: -abs(item[1]))
    parts = [feature_words(name)[1 if z > 0 else 0] for name, z in strong[:LABEL_MAX_PARTS]]
    return ", ".join(parts) if parts else "typical"


def feature_words(name: str) -> tuple[str, str]:
    """The (below mean, above mean) phrases for a feature name; see the module docstring."""
    tokens = [t for t in name.lower().replace("-", "_").split("_") if t]
    for index, token in enumerate(tokens):
        if token in WORD_PAIRS:
            low, high, countable = WORD_PAIRS[token]
            rest = [t for i, t in enumerate(tokens) if i != index and t not in FILLERS]
            if token in _SINGLE_WORDS and not rest:
                return low, high
            noun = " ".join(rest) if rest else token
            if countable and not noun.endswith("s"):
                noun += "s"
            return f"{low} {noun}", f"{high} {noun}"
    readable = name.replace("_", " ")
    return f"low {readable}", f"high {readable}"


def profile_markdown(table: pd.DataFrame) -> str:
    """The profile as a Markdown table."""
    columns = list(table.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for record in table.itertuples(index=False):
        cells = [f"{value:.4g}" if isinstance(value, float) else str(value) for value in record]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def profile_chart(table: pd.DataFrame, features: list[str], path: str) -> None:
    """A PNG: each cluster's share of rows, and its feature means relative to the overall
    mean (in standard deviations of the cluster means, so features of any unit compare)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clusters = [f"{c}: {label}" for c, label in zip(table["cluster"], table["label"], strict=True)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 1.2 + 0.6 * len(table) + 2), constrained_layout=True)
    left.barh(clusters, table["share"], color="#4C72B0")
    left.set_xlabel("share of rows")
    left.invert_yaxis()
    left.set_title("cluster size")
    means = table[[f"{name}_mean" for name in features]].to_numpy(dtype=float)
    weights = table["share"].to_numpy(dtype=float)
    centre = (means * weights[:, None]).sum(axis=0)
    spread = np.sqrt(((means - centre) ** 2 * weights[:, None]).sum(axis=0))
    relative = (means - centre) / np.where(spread > 0, spread, 1.0)
    width = 0.8 / max(len(table), 1)
    positions = np.arange(len(features))
    for index, name in enumerate(clusters):
        right.bar(positions + index * width, relative[index], width, label=name)
    right.set_xticks(positions + width * (len(table) - 1) / 2, features, rotation=20)
    right.axhline(0, color="black", linewidth=0.8)
    right.set_ylabel("cluster mean vs overall (std. units)")
    right.set_title("feature means")
    right.legend(fontsize="small")
    fig.savefig(path, dpi=100)
    plt.close(fig)
