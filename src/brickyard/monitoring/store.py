"""Where baselines live: an MLflow artifact of the version's run and rows of a Delta table.

`save_baseline` writes both: `monitoring/baseline.json` on the run that trained the version,
and one row per feature and per model output in `gold.model_baselines`, merged on
(model_name, model_version, role, column), so saving a version's baseline again replaces its
rows instead of adding more. `load_baseline` reads the table (no MLflow needed) and falls
back to the run's artifact; with neither, `BaselineNotFoundError` says how to get one.

Columns of `gold.model_baselines`: model_name, model_version, run_id, role (`feature` or
`output`), column, kind (`numeric` / `categorical`), rows, nulls, null_rate, min, max, mean,
std, distinct, sketch (the column's sketch as JSON), baseline_info (the baseline's other
fields as JSON: problem, source, reads, rows, prediction rows), created.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from brickyard.monitoring.baseline import Baseline
from brickyard.monitoring.errors import BaselineNotFoundError
from brickyard.monitoring.sketch import CategoricalSketch, NumericSketch, Sketch, sketch_from_dict

if TYPE_CHECKING:
    from brickyard.workspace import Workspace

BASELINE_TABLE = "gold.model_baselines"
BASELINE_ARTIFACT = "monitoring/baseline.json"
BASELINE_KEYS = ("model_name", "model_version", "role", "column")
FEATURE, OUTPUT = "feature", "output"

BASELINE_SCHEMA = pa.schema([
    pa.field("model_name", pa.string(), nullable=False),
    pa.field("model_version", pa.int64(), nullable=False),
    pa.field("run_id", pa.string()),
    pa.field("role", pa.string(), nullable=False),
    pa.field("column", pa.string(), nullable=False),
    pa.field("kind", pa.string()),
    pa.field("rows", pa.int64()),
    pa.field("nulls", pa.int64()),
    pa.field("null_rate", pa.float64()),
    pa.field("min", pa.float64()),
    pa.field("max", pa.float64()),
    pa.field("mean", pa.float64()),
    pa.field("std", pa.float64()),
    pa.field("distinct", pa.int64()),
    pa.field("sketch", pa.string()),
    pa.field("baseline_info", pa.string()),
    pa.field("created", pa.string()),
])


def baseline_rows(baseline: Baseline) -> pa.Table:
    """The baseline as rows of `gold.model_baselines`.

    Raises:
        ValueError: the baseline has no model version (it is not tied to a registered version).
    """
    if baseline.model_version is None:
        raise ValueError("a baseline needs a model version to be stored in " + BASELINE_TABLE)
    info = {key: value for key, value in baseline.to_dict().items() if key not in ("features", "predictions")}
    info["feature_order"] = list(baseline.features)
    info_text = json.dumps(info, sort_keys=True)
    rows = [
        _row(baseline, role, column, sketch, info_text)
        for role, sketches in ((FEATURE, baseline.features), (OUTPUT, baseline.predictions))
        for column, sketch in sketches.items()
    ]
    return pa.Table.from_pylist(rows, schema=BASELINE_SCHEMA)


def _row(baseline: Baseline, role: str, column: str, sketch: Sketch, info: str) -> dict[str, Any]:
    numeric = sketch if isinstance(sketch, NumericSketch) else None
    return {
        "model_name": baseline.model_name,
        "model_version": baseline.model_version,
        "run_id": baseline.run_id,
        "role": role,
        "column": column,
        "kind": sketch.kind,
        "rows": sketch.rows,
        "nulls": sketch.nulls,
        "null_rate": sketch.null_rate,
        "min": numeric.min if numeric else None,
        "max": numeric.max if numeric else None,
        "mean": numeric.mean if numeric else None,
        "std": numeric.std if numeric else None,
        "distinct": sketch.distinct if isinstance(sketch, CategoricalSketch) else None,
        "sketch": json.dumps(sketch.to_dict()),
        "baseline_info": info,
        "created": baseline.created,
    }


def from_rows(rows: pa.Table) -> Baseline:
    """A baseline back from its rows of `gold.model_baselines` (one model version's)."""
    records = rows.to_pylist()
    info = json.loads(records[0]["baseline_info"])
    features: dict[str, Sketch] = {}
    outputs: dict[str, Sketch] = {}
    for record in records:
        target = features if record["role"] == FEATURE else outputs
        target[record["column"]] = sketch_from_dict(json.loads(record["sketch"]))
    order = info.get("feature_order")
    if order:
        features = {name: features[name] for name in order if name in features}
    return Baseline.from_dict({**info, "features": {k: v.to_dict() for k, v in features.items()},
                               "predictions": {k: v.to_dict() for k, v in outputs.items()}})


def save_baseline(ws: Workspace, baseline: Baseline) -> int:
    """Store a model version's baseline: the MLflow artifact on its run (when it has one) and
    its rows in `gold.model_baselines`. Returns the table's new version.

    Raises:
        LakeError: the table cannot be written.
    """
    if baseline.run_id:
        from brickyard.ml import tracking

        tracking.connect(ws).log_dict(baseline.run_id, baseline.to_dict(), BASELINE_ARTIFACT)
    rows = baseline_rows(baseline)
    return ws.lake.merge(BASELINE_TABLE, rows, keys=list(BASELINE_KEYS))


def load_baseline(ws: Workspace, model_name: str, version: int | str, *, run_id: str | None = None) -> Baseline:
    """The baseline of model `model_name` version `version`: from `gold.model_baselines`,
    else from the MLflow artifact of `run_id` (the run that trained the version).

    Raises:
        BaselineNotFoundError: neither has it.
    """
    number = int(version)
    rows = stored_rows(ws, model_name, number)
    if rows is not None and rows.num_rows:
        return from_rows(rows)
    if run_id:
        found = _artifact(ws, run_id)
        if found is not None:
            return found
    raise BaselineNotFoundError(
        f"model {model_name} version {number} has no monitoring baseline (no rows in {BASELINE_TABLE}"
        + (f", no {BASELINE_ARTIFACT} on MLflow run {run_id})" if run_id else ")"),
        hint=f"versions trained by `kind: train` record one; for a version trained before that, compute it from "
        f"the version's recorded training data: brickyard monitor baseline {model_name}/{number}",
    )


def baseline_for(ws: Workspace, ref: str) -> Baseline:
    """The baseline of the version a model reference names (`NAME` = latest, `NAME/3`,
    `NAME@champion`).

    Raises:
        ModelNotFoundError, NoChampionError: the reference names no version.
        BaselineNotFoundError: the version has no baseline.
    """
    from brickyard.ml import registry, tracking

    parsed = registry.ModelRef.parse(ref)
    version = registry.resolve_version(tracking.connect(ws), parsed.name, parsed.selector)
    return load_baseline(ws, parsed.name, int(version.version), run_id=version.run_id)


def stored_rows(ws: Workspace, model_name: str, version: int) -> pa.Table | None:
    """The rows of one model version in `gold.model_baselines` (None: no table yet)."""
    import pyarrow.compute as pc

    if not ws.lake.exists(BASELINE_TABLE):
        return None
    wanted = (pc.field("model_name") == model_name) & (pc.field("model_version") == version)
    return ws.lake.dataset(BASELINE_TABLE).to_table(filter=wanted)


def _artifact(ws: Workspace, run_id: str) -> Baseline | None:
    import mlflow.artifacts

    from brickyard.ml import tracking

    tracking.connect(ws)
    try:
        data = mlflow.artifacts.load_dict(f"runs:/{run_id}/{BASELINE_ARTIFACT}")
    except Exception:  # noqa: BLE001 - MLflow raises several kinds for a missing artifact
        return None
    return Baseline.from_dict(data)
