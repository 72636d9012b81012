"""tuning: brickyard's `automl: true` against FLAML at an equal time budget, and the
overhead per trial of the `tune` kind over a plain Optuna loop.

    .venv/bin/python bench/tuning.py [--budget 60] [--datasets titanic,churn,breast_cancer,diabetes]
        [--overhead-trials 30] [--overhead-repeats 3] [--skip-overhead] [--keep]

1. Makes FLAML's own virtual environment, bench/.venvs/flaml (git-ignored), when it is not
   there yet: `python -m venv` and `pip install 'flaml[automl]==2.8.*'` from PyPI (FLAML and
   its XGBoost never enter the project venv).
2. Prepares four real data sets in .bench/tuning/ (CSV, plus the label, problem, metric
   and train/test rows in meta.json): Titanic (the demo's CSV and features), the CDNOW churn
   training set (the demo's `customer_churn` pipeline run in a scratch workspace, then its
   `training_set:` loaded as `train` loads it: monthly snapshots with the RFM features as
   of each), and scikit-learn's bundled breast-cancer and diabetes sets. The train/test
   rows are brickyard's split (`split:` defaults: 20% test, seed 42, stratified for
   classification); both tools search on the train rows only.
3. For each data set, as whole processes: brickyard (bench/tuning_brickyard_side.py:
   `tune` with `automl: true`, `timeout: BUDGET`) and FLAML (bench/tuning_flaml_side.py:
   `AutoML.fit(time_budget=BUDGET, n_jobs=1)`), each scoring its final model on the same
   test rows with the same metric: ROC AUC (classification) or RMSE (regression).
4. Overhead: the same --overhead-trials trials on breast-cancer, run by `tune` and by a
   plain Optuna loop (in memory; and, for reference, with the study in SQLite as tune
   keeps it) (bench/tuning_brickyard_side.py overhead), --overhead-repeats rounds: the median
   round's ratio counts. `--datasets ""` runs the overhead alone.
5. Bars: brickyard's test score within 1% of FLAML's on every data set (AUC >= 0.99 x
   FLAML's, RMSE <= 1.01 x FLAML's), and `tune`'s trial phase per trial < 1.10 x the plain
   loop's. Prints a table, the ratios, the load average and the versions; records nothing
   (bench/RESULTS.md is written by whoever reruns it on a quiet machine). Exits 1 when a bar
   is missed.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, facts_lines, load_average, machine_facts, table, verdict, versions  # noqa: E402

NAME = "tuning"
WORK = REPO / ".bench" / NAME
FLAML_VENV = REPO / "bench" / ".venvs" / "flaml"
FLAML_PYTHON = FLAML_VENV / "bin" / "python"
FLAML_REQUIREMENTS = ["flaml[automl]==2.8.*"]
FLAML_SIDE = REPO / "bench" / "tuning_flaml_side.py"
BRICKYARD_SIDE = REPO / "bench" / "tuning_brickyard_side.py"
DATASETS = ("titanic", "churn", "breast_cancer", "diabetes")
TITANIC_FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
SCORE_BAR = 0.01      # brickyard within 1% of FLAML
OVERHEAD_BAR = 0.10   # tune's trial phase per trial over a plain Optuna loop's


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds each tool gets per data set")
    parser.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated, of {', '.join(DATASETS)}")
    parser.add_argument("--overhead-trials", type=int, default=30)
    parser.add_argument("--overhead-repeats", type=int, default=3, help="rounds of the overhead run; the median counts")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep .bench/tuning/ afterwards")
    return parser.parse_args(argv)


def ensure_flaml_venv() -> Path:
    """FLAML's own venv, made on first use from PyPI; returns its python."""
    if not FLAML_PYTHON.exists():
        print(f"making FLAML's venv in {FLAML_VENV} (pip install {' '.join(FLAML_REQUIREMENTS)}) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(FLAML_VENV)], check=True)
        subprocess.run([str(FLAML_PYTHON), "-m", "pip", "install", "--quiet", *FLAML_REQUIREMENTS], check=True)
    return FLAML_PYTHON


# --- data ----------------------------------------------------------------------------------


def prepare(name: str) -> Path:
    """The data set `name` in .bench/tuning/<name>/ (frame.csv, meta.json)."""
    import pandas as pd

    folder = WORK / name
    folder.mkdir(parents=True, exist_ok=True)
    if name == "titanic":
        frame = pd.read_csv(REPO / "src" / "brickyard" / "demo" / "data" / "titanic.csv")
        label, features, problem = "Survived", TITANIC_FEATURES, "classification"
    elif name == "churn":
        frame, label, features = churn_frame()
        problem = "classification"
    else:
        import sklearn.datasets

        loader = {"breast_cancer": "load_breast_cancer", "diabetes": "load_diabetes"}[name]
        frame = getattr(sklearn.datasets, loader)(as_frame=True).frame.rename(columns=lambda c: c.replace(" ", "_"))
        label, problem = "target", "classification" if name == "breast_cancer" else "regression"
        features = [c for c in frame.columns if c != label]
    frame = frame[[*features, label]].reset_index(drop=True)
    train, test = split_rows(frame, label, problem)
    frame.to_csv(folder / "frame.csv", index=False)
    meta = {"label": label, "features": features, "problem": problem,
            "metric": "roc_auc" if problem == "classification" else "rmse",
            "rows": len(frame), "train": train, "test": test}
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def split_rows(frame: Any, label: str, problem: str) -> tuple[list[int], list[int]]:
    """brickyard's train/test split of the frame (the `split:` defaults)."""
    from brickyard.ml.data import split_indices
    from brickyard.ml.spec import SplitSpec

    train, test = split_indices(frame, label, SplitSpec(), problem == "classification", "the bench data")
    return sorted(int(i) for i in train), sorted(int(i) for i in test)


def churn_frame() -> tuple[Any, str, list[str]]:
    """The CDNOW churn training set as the demo's `customer_churn` pipeline builds it."""
    from brickyard import Workspace
    from brickyard.demo.context import DemoContext
    from brickyard.demo.pipelines import install_workspace_files
    from brickyard.demo.runner import CDNOW
    from brickyard.ml.data import load
    from brickyard.ml.spec import DataSpec
    from brickyard.runtime import PipelineRunner

    ws = Workspace.init(Path(tempfile.mkdtemp(prefix="bench-churn-")) / "ws")
    source = REPO / "src" / "brickyard" / "demo" / "data" / "cdnow_transactions.txt"
    target = Path(ws.lake.location.uri(CDNOW))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    install_workspace_files(DemoContext(ws, rows=0, seed=42, report=_Quiet()))  # type: ignore[arg-type]
    result = PipelineRunner(ws).run("customer_churn", trigger="bench")
    if not result.ok:
        raise RuntimeError(f"customer_churn failed: {result.error}")
    task = ws.pipeline("customer_churn").spec.task("train")
    spec = DataSpec.model_validate({"training_set": task.options["training_set"]})
    loaded = load(ws, spec)
    label = task.options["training_set"]["label"]
    features = [c for c in loaded.frame.columns
                if c != label and c not in ("customer_id", "snapshot_at") and not c.endswith("_at")]
    return loaded.frame, label, features


class _Quiet:
    def __getattr__(self, _: str) -> Any:
        return lambda *args, **kwargs: None


# --- runs ----------------------------------------------------------------------------------


def side(command: list[str], out: Path, timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    found = json.loads(out.read_text())
    found["process_s"] = time.perf_counter() - started
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n for n in args.datasets.split(",") if n]
    flaml = ensure_flaml_venv()
    WORK.mkdir(parents=True, exist_ok=True)
    rows, ok = [], True
    timeout = args.budget * 4 + 300
    for name in names:
        folder = prepare(name)
        meta = json.loads((folder / "meta.json").read_text())
        print(f"{name}: {meta['rows']} rows, {len(meta['features'])} features, {meta['metric']}; "
              f"{args.budget:g} s each ...", flush=True)
        ours = side([sys.executable, str(BRICKYARD_SIDE), "automl", str(folder), str(args.budget),
                     str(folder / "brickyard.json")], folder / "brickyard.json", timeout)
        theirs = side([str(flaml), str(FLAML_SIDE), str(folder), str(args.budget), str(folder / "flaml.json")],
                      folder / "flaml.json", timeout)
        higher = meta["metric"] == "roc_auc"
        ratio = ours["score"] / theirs["score"]
        passed = ratio >= 1 - SCORE_BAR if higher else ratio <= 1 + SCORE_BAR
        ok &= passed
        chosen = ours["best"] + (f" of {ours['members']}" if ours.get("members") else "")
        rows.append([name, meta["rows"], meta["metric"], f"{ours['score']:.4f}", f"{theirs['score']:.4f}",
                     f"{ratio:.4f}", verdict(passed), f"{ours['wall_s']:.1f}", f"{theirs['wall_s']:.1f}",
                     f"{ours['trials']}", f"{theirs['trials']}", chosen, theirs["best"]])
        print(f"  brickyard {ours['score']:.4f} ({chosen}, {ours['trials']} trials), FLAML {theirs['score']:.4f} "
              f"({theirs['best']}, {theirs['trials']} trials); ratio {ratio:.4f} {verdict(passed)}", flush=True)
    print()
    print(f"automl at a {args.budget:g} s budget per data set (test rows: brickyard's split, 20%, seed 42):")
    print(table(["data set", "rows", "metric", "brickyard", "FLAML", "ratio", "bar 1%", "brickyard s", "FLAML s",
                 "brickyard trials", "FLAML trials", "brickyard model", "FLAML model"], rows))
    if not args.skip_overhead:
        folder = WORK / "breast_cancer"
        if not (folder / "meta.json").exists():
            prepare("breast_cancer")
        print(f"\noverhead: {args.overhead_trials} trials (LR, RF, LightGBM, 5 folds, no pruner) on breast_cancer ...",
              flush=True)
        rounds = []
        for _ in range(args.overhead_repeats):
            found = side([sys.executable, str(BRICKYARD_SIDE), "overhead", str(folder), str(args.overhead_trials),
                          str(folder / "overhead.json")], folder / "overhead.json", 3600)
            found["over"] = found["tune_trial_phase_s"] / found["plain_trial_phase_s"] - 1
            found["over_sqlite"] = found["tune_trial_phase_s"] / found["sqlite_trial_phase_s"] - 1
            rounds.append(found)
        n = args.overhead_trials
        print(table(["round", "tune trial phase s", "plain loop s", "plain loop, SQLite study s", "tune whole call s",
                     "over the loop", "over the loop with SQLite"], [
            [str(i + 1), f"{r['tune_trial_phase_s']:.2f}", f"{r['plain_trial_phase_s']:.2f}",
             f"{r['sqlite_trial_phase_s']:.2f}", f"{r['tune_wall_s']:.2f}", f"{r['over']:+.1%}", f"{r['over_sqlite']:+.1%}"]
            for i, r in enumerate(rounds)
        ]))
        middle = sorted(rounds, key=lambda r: r["over"])[len(rounds) // 2]
        over = middle["over"]
        same = all(r["same_configurations"] for r in rounds)
        ok &= over < OVERHEAD_BAR and same
        print(f"per trial (median round): tune {middle['tune_trial_phase_s'] / n:.3f} s, plain loop "
              f"{middle['plain_trial_phase_s'] / n:.3f} s")
        print(f"overhead per trial (median of {len(rounds)} rounds): {over:+.1%} (bar < {OVERHEAD_BAR:.0%}: "
              f"{verdict(over < OVERHEAD_BAR)}); same configurations drawn: {same}; "
              f"same values: {all(r['same_values'] for r in rounds)}")
    print()
    print("\n".join(facts_lines({**machine_facts(), "load average": load_average(),
                                 **versions("scikit-learn", "lightgbm", "optuna", "mlflow"),
                                 "flaml (own venv)": subprocess.run(
                                     [str(flaml), "-c", "import flaml; print(flaml.__version__)"],
                                     capture_output=True, text=True).stdout.strip()})))
    print("command: .venv/bin/python bench/tuning.py " + " ".join(shlex.quote(arg) for arg in sys.argv[1:]))
    if not args.keep:
        shutil.rmtree(WORK, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
