"""explain: SHAP on 10k rows of a 200-tree random forest, brickyard's evaluate path against a
plain `shap.TreeExplainer` call on the same model and rows.

    .venv/bin/python bench/explain.py [--rows 10000] [--explain-rows N] [--trees 200] [--max-depth 8]
                                      [--n-jobs 0] [--repeats 2] [--plain-rows N] [--record]

1. A seeded table of --rows rows (10 numeric columns, 2 categorical with 4 and 6 values, a
   label from a noisy logistic formula over them) is fitted with brickyard's preprocessing
   (`brickyard.ml.preprocess.fit_pipeline`: impute, scale, one-hot) and a
   `RandomForestClassifier(--trees, max_depth=--max-depth)`, trained on a second draw of
   the same size; the rows explained are the first draw (held out).
2. brickyard: `brickyard.ml.explanations.explain` (what `evaluate` with `explain:` calls):
   the pipeline's transform, brickyard's own exact TreeSHAP (`brickyard.ml.fast_treeshap`,
   numba, --n-jobs threads; 0: one per CPU) over the transformed rows, one-hot values summed
   back into their source columns, the importances. The plots and MLflow logging are left
   out (they do not depend on the rows).
3. plain: `shap.TreeExplainer(forest).shap_values(Z)` on the same transformed rows, in
   this process (shap's tree code is single-threaded). --plain-rows N times it on the
   first N rows only and scales the time linearly to all rows (TreeSHAP's time is linear
   in the rows; the output says so); the difference is then taken over those N rows.
4. Each side runs --repeats times, alternating; the best time of each is shown, with the
   ratio brickyard / plain and the largest difference between their SHAP values. Bar:
   brickyard < 10 s.

The time of TreeSHAP grows with the leaves of the trees: per row, shap's algorithm costs
leaves x depth^2, brickyard's one comparison per split and, per leaf, d table look-ups (d:
the distinct features on the leaf's path; tables of 2^d x d numbers built per leaf, leaves
with d > 12 computed per row in O(d^2)). Depth 6 (about 55 leaves per tree) and depth 8
(about 160) are fast; a forest grown to full depth on 10k rows (over a thousand leaves,
deep paths) is slow on both sides. The first use in a fresh environment compiles numba's
kernels (about 10 s on this 2-core machine, measured with an empty NUMBA_CACHE_DIR; cached
on disk after that) - the best-of-repeats time does not include it. The output says which
forest was measured (depth, leaves per tree) and the machine's cores and load: compare
like with like. --record replaces the "explain" section of bench/RESULTS.md with this run's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from common import (  # noqa: E402
    facts_lines,
    load_average,
    machine_facts,
    record_section,
    table,
    today,
    verdict,
    versions,
)

NAME = "explain"
BAR_SECONDS = 10.0
NUMERIC = [f"x{i}" for i in range(10)]
CATEGORICAL = ["colour", "region"]


def make_rows(rows: int, seed: int):  # noqa: ANN201 - pandas is imported late
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=rows) for name in NUMERIC})
    frame.loc[rng.random(rows) < 0.05, "x3"] = np.nan
    frame["colour"] = rng.choice(["red", "green", "blue", "grey"], rows)
    frame["region"] = rng.choice([f"r{i}" for i in range(6)], rows)
    logit = (
        1.2 * frame.x0.fillna(0) - 0.8 * frame.x1 + 0.5 * frame.x2 * frame.x4 + 0.6 * np.sin(3 * frame.x5)
        + np.where(frame.colour == "red", 0.9, 0.0) - np.where(frame.region == "r2", 0.7, 0.0)
    )
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--explain-rows", type=int, default=0, help="rows explained (0: --rows)")
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--max-depth", type=int, default=8, help="0: grow the trees to full depth")
    parser.add_argument("--n-jobs", type=int, default=0, help="brickyard's processes (0: one per CPU)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--plain-rows", type=int, default=0, help="time plain shap on this many rows, scaled to all (0: all)"
    )
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()

    import shap
    from sklearn.ensemble import RandomForestClassifier

    from brickyard.ml import explanations
    from brickyard.ml.preprocess import fit_pipeline
    from brickyard.ml.spec import ExplainSpec

    load_before = load_average()
    X_train, y_train = make_rows(args.rows, seed=1)
    X, _ = make_rows(args.explain_rows or args.rows, seed=2)
    started = time.perf_counter()
    forest = RandomForestClassifier(
        n_estimators=args.trees, max_depth=args.max_depth or None, n_jobs=-1, random_state=0
    )
    model = fit_pipeline(forest, X_train, y_train, NUMERIC, CATEGORICAL)
    fit_s = time.perf_counter() - started
    leaves = float(np.mean([tree.get_n_leaves() for tree in model[-1].estimators_]))
    depth = float(np.mean([tree.get_depth() for tree in model[-1].estimators_]))
    spec = ExplainSpec(max_rows=len(X), n_jobs=args.n_jobs, plots=False)

    brickyard_s: list[float] = []
    plain_s: list[float] = []
    ours = theirs = None
    for _ in range(args.repeats):
        started = time.perf_counter()
        ours = explanations.explain(model, X, "classification", spec)
        ours.importance()
        brickyard_s.append(time.perf_counter() - started)
        plain_rows = min(args.plain_rows or len(X), len(X))
        started = time.perf_counter()
        Z = model[:-1].transform(X.iloc[:plain_rows])
        theirs = np.asarray(shap.TreeExplainer(model[-1]).shap_values(Z))
        plain_s.append((time.perf_counter() - started) * len(X) / plain_rows)
    assert ours is not None and theirs is not None
    difference = float(np.abs(ours.values[: len(theirs), :, 0] - theirs[:, :, 1]).max())
    best_ours, best_plain = min(brickyard_s), min(plain_s)

    facts = {
        "date": today(),
        **machine_facts(),
        "load before / after": f"{load_before} / {load_average()}",
        **versions("shap", "scikit-learn", "numpy"),
        "forest": f"{args.trees} trees, max_depth {args.max_depth or 'none'} (mean depth {depth:.1f}, "
        f"{leaves:.0f} leaves per tree), fitted in {fit_s:.1f} s on {args.rows} rows",
        "rows explained": f"{ours.rows_explained} x {len(ours.columns)} transformed columns "
        f"({len(ours.importance())} source columns)",
        "brickyard threads": str(args.n_jobs or "one per CPU"),
        "plain shap timed on": f"{plain_rows} rows, scaled linearly to {len(X)}"
        if plain_rows < len(X)
        else "all rows",
    }
    rows = [
        ["brickyard explain (evaluate's path)", f"{best_ours:.2f}", ", ".join(f"{s:.2f}" for s in brickyard_s)],
        ["plain shap.TreeExplainer", f"{best_plain:.2f}", ", ".join(f"{s:.2f}" for s in plain_s)],
    ]
    lines = [
        *facts_lines(facts),
        "",
        table(["side", "best s", "runs s"], rows),
        "",
        f"ratio brickyard / plain: {best_ours / best_plain:.2f}",
        f"largest |difference| of the SHAP values (over {len(theirs)} rows): {difference:.2e}",
        f"bar: brickyard < {BAR_SECONDS:g} s: {verdict(best_ours < BAR_SECONDS)} ({best_ours:.2f} s)",
    ]
    print("\n".join(lines))
    if args.record:
        markdown = [
            f"## {NAME}",
            "",
            "`python bench/explain.py " + " ".join(sys.argv[1:]).replace("--record", "").strip() + "`",
            "",
            *(f"- {line}" for line in facts_lines(facts)),
            "",
            table(["side", "best s", "runs s"], rows, markdown=True),
            "",
            f"ratio brickyard / plain: {best_ours / best_plain:.2f}; largest |difference| {difference:.2e}; "
            f"bar brickyard < {BAR_SECONDS:g} s: {verdict(best_ours < BAR_SECONDS)}",
        ]
        print(f"recorded in {record_section(NAME, chr(10).join(markdown))}")


if __name__ == "__main__":
    main()
