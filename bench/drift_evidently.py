"""The Evidently side of bench/drift.py: run in Evidently's own venv (bench/.venvs/evidently).

    bench/.venvs/evidently/bin/python bench/drift_evidently.py REFERENCE.parquet CURRENT.parquet --runs 3

Reads both Parquet files with pandas, runs `Report([DataDriftPreset()]).run(current, reference)`
--runs times, and prints one JSON object: the seconds spent importing, loading and in each
run, Evidently's versions, and per column the method, value, threshold and verdict of the
first run. Imports nothing from brickyard.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from importlib import metadata

started = time.perf_counter()
import pandas as pd  # noqa: E402
from evidently import Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

IMPORT_S = time.perf_counter() - started


def verdicts(snapshot: object) -> dict[str, dict[str, object]]:
    """Per column: Evidently's method, value, threshold and whether it calls it drifted."""
    found: dict[str, dict[str, object]] = {}
    for metric in snapshot.dict()["metrics"]:  # type: ignore[attr-defined]
        config = metric["config"]
        if not config.get("type", "").endswith("ValueDrift"):
            continue
        method, threshold, value = config["method"], float(config["threshold"]), float(metric["value"])
        p_value = bool(re.search(r"p[_ -]?value", method, re.I))
        drifted = value < threshold if p_value else value >= threshold
        found[config["column"]] = {"method": method, "value": value, "threshold": threshold, "drifted": drifted}
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("reference")
    parser.add_argument("current")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    loading = time.perf_counter()
    reference = pd.read_parquet(args.reference)
    current = pd.read_parquet(args.current)
    load_s = time.perf_counter() - loading
    runs, first = [], None
    for _ in range(args.runs):
        t0 = time.perf_counter()
        snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
        runs.append(time.perf_counter() - t0)
        if first is None:
            first = verdicts(snapshot)
    json.dump(
        {
            "import_s": IMPORT_S,
            "load_s": load_s,
            "runs_s": runs,
            "verdicts": first,
            "versions": {name: metadata.version(name) for name in ("evidently", "pandas", "numpy", "scipy")},
            "python": sys.version.split()[0],
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
