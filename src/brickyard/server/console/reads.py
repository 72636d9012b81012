"""What the console's pages show, read through the workspace's own read functions (lake,
state store, MLflow registry, monitors, feature tables): plain dicts and lists for the
templates, which do no reading of their own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from brickyard.core.quality import QUARANTINE_SUFFIX, REASON_COLUMN
from brickyard.errors import BrickyardError
from brickyard.runtime.records import AttemptRecord, RunRecord
from brickyard.runtime.report import cost
from brickyard.runtime.state import StateStore
from brickyard.workspace import Workspace

PAGE_SIZE = 25
PREVIEW_ROWS = 50
LOG_TAIL_BYTES = 64_000
EXPLAIN_WORDS = ("shap", "fairness", "robustness", "explain")  # artifact paths shown under "SHAP and fairness"
EXPLAIN_METRICS = ("shap_importance.", "fairness.", "demographic_parity", "equalized_odds", "importance_rank_change",
                   "robustness")  # metric names (prefixes) shown there too (brickyard.ml.evaluation)


class NotFoundError(BrickyardError):
    """What a page names does not exist (a monitor, an attempt): the page answers 404."""


@dataclass(frozen=True)
class Page:
    """Where a paged list is: offset, size, total (None when not counted)."""

    offset: int
    size: int
    total: int | None

    @property
    def previous(self) -> int | None:
        return max(self.offset - self.size, 0) if self.offset > 0 else None

    @property
    def next(self) -> int | None:
        if self.total is None or self.offset + self.size < self.total:
            return self.offset + self.size
        return None


# -- tables -----------------------------------------------------------------------------


def tables(ws: Workspace) -> list[dict[str, Any]]:
    """Every lake table with zone, rows, version and last change (quarantine tables apart)."""
    out = []
    for name in ws.lake.tables():
        info = ws.lake.describe(name)
        zone, _, short = name.partition(".")
        out.append({"name": name, "zone": zone, "short": short, "rows": info.rows, "version": info.version,
                    "size_bytes": info.size_bytes, "last_modified": info.last_modified,
                    "quarantine": short.endswith(QUARANTINE_SUFFIX)})
    return out


def table(ws: Workspace, name: str, version: int | None) -> dict[str, Any]:
    """One table: schema, history, a preview at `version` (default latest) and, when it has a
    quarantine table, the quarantined rows per reason (reasons only: never row values).

    Raises:
        TableNotFoundError, LakeError: no such table or version.
    """
    info = ws.lake.describe(name)
    history = ws.lake.history(name, limit=100)
    shown = info.version if version is None else version
    data = ws.lake.dataset(name, version=shown).head(PREVIEW_ROWS)
    quarantine = name + QUARANTINE_SUFFIX
    return {
        "info": info,
        "history": history,
        "version": shown,
        "preview": {"columns": data.column_names, "rows": [list(row.values()) for row in data.to_pylist()]},
        "quarantine_table": quarantine if ws.lake.exists(quarantine) else None,
        "reasons": quarantine_reasons(ws, quarantine) if ws.lake.exists(quarantine) else [],
    }


def quarantine_reasons(ws: Workspace, table_name: str) -> list[tuple[str, int]]:
    """Rows of a quarantine table per reason, most first (reasons withhold PII values)."""
    reasons = ws.lake.read(table_name, columns=[REASON_COLUMN]).group_by(REASON_COLUMN).aggregate([([], "count_all")])
    pairs = zip(reasons.column(REASON_COLUMN).to_pylist(), reasons.column("count_all").to_pylist())
    return sorted(((str(reason), int(count)) for reason, count in pairs), key=lambda p: (-p[1], p[0]))


# -- pipelines and runs -----------------------------------------------------------------


def pipelines(ws: Workspace, store: StateStore) -> list[dict[str, Any]]:
    """Every pipeline with its tasks, schedule and latest run."""
    out: list[dict[str, Any]] = []
    for name in ws.pipeline_names():
        latest = store.list_runs(name, limit=1)
        try:
            spec = ws.pipeline(name).spec
        except BrickyardError as exc:
            out.append({"name": name, "error": exc.message, "latest": latest[0] if latest else None})
            continue
        out.append({"name": name, "description": spec.description, "tasks": len(spec.tasks),
                    "schedule": spec.schedule, "latest": latest[0] if latest else None, "error": None})
    return out


def dag(ws: Workspace, name: str) -> dict[str, Any]:
    """The pipeline's tasks laid out for an SVG drawing: a column per depth, edges from
    each task to the tasks that depend on it."""
    spec = ws.pipeline(name).spec
    depth: dict[str, int] = {}
    for task in spec.order():
        depth[task.name] = 1 + max((depth[d] for d in task.depends_on), default=-1)
    columns: dict[int, list[str]] = {}
    for task_name, level in depth.items():
        columns.setdefault(level, []).append(task_name)
    width, height, gap_x, gap_y = 170, 34, 60, 18
    nodes: dict[str, dict[str, Any]] = {}
    for level, names in columns.items():
        for row, task_name in enumerate(names):
            nodes[task_name] = {"name": task_name, "x": 10 + level * (width + gap_x), "y": 10 + row * (height + gap_y)}
    edges = [
        {"x1": nodes[dep]["x"] + width, "y1": nodes[dep]["y"] + height / 2,
         "x2": nodes[task.name]["x"], "y2": nodes[task.name]["y"] + height / 2}
        for task in spec.tasks for dep in task.depends_on if dep in nodes
    ]
    kinds = {task.name: task.kind for task in spec.tasks}
    return {
        "nodes": [{**node, "kind": kinds[node["name"]]} for node in nodes.values()],
        "edges": edges, "w": width, "h": height,
        "width": 20 + (max(columns, default=0) + 1) * (width + gap_x),
        "height": 20 + max((len(n) for n in columns.values()), default=1) * (height + gap_y),
        "spec": spec,
    }


def runs_page(store: StateStore, pipeline: str | None, offset: int, size: int = PAGE_SIZE) -> tuple[list[RunRecord], Page]:
    """A page of runs, newest first (SQL LIMIT/OFFSET), with the total count."""
    runs = store.list_runs(pipeline, limit=size, offset=offset)
    return runs, Page(offset, size, store.count_runs(pipeline))


def run_detail(ws: Workspace, store: StateStore, run_id: str) -> dict[str, Any]:
    """A run with one line per task (latest attempt, attempts count, CPU-seconds, cost) and
    every attempt.

    Raises:
        RunNotFoundError: no such run.
    """
    run = store.get_run(run_id)
    attempts = store.attempts(run_id)
    rate = ws.config.pricing.cpu_hour
    names = list(run.tasks) + [a.task for a in attempts if a.task not in run.tasks]
    tasks = []
    for name in dict.fromkeys(names):
        tried = [a for a in attempts if a.task == name]
        latest = tried[-1] if tried else None
        cpu = sum(a.cpu_seconds or 0.0 for a in tried) if tried else None
        tasks.append({"name": name, "status": latest.status if latest else "pending",
                      "attempts": sum(1 for a in tried if a.attempt > 0), "latest": latest,
                      "cpu_seconds": cpu, "cost": cost(cpu, rate)})
    total_cpu = sum(a.cpu_seconds or 0.0 for a in attempts)
    return {"run": run, "tasks": tasks, "attempts": attempts, "cpu_seconds": total_cpu,
            "cost": cost(total_cpu, rate), "priced": rate is not None}


def attempt_log(store: StateStore, run_id: str, attempt_id: int) -> tuple[AttemptRecord, str]:
    """An attempt and the end of its log file (the last LOG_TAIL_BYTES).

    Raises:
        RunNotFoundError: no such run; BrickyardError: no such attempt in it.
    """
    found = [a for a in store.attempts(run_id) if a.id == attempt_id]
    if not found:
        raise NotFoundError(f"run {run_id} has no attempt {attempt_id}", hint=f"see /runs/{run_id}")
    attempt = found[0]
    if not attempt.log_path or not Path(attempt.log_path).is_file():
        return attempt, ""
    with open(attempt.log_path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(size - LOG_TAIL_BYTES, 0))
        text = handle.read().decode("utf-8", errors="replace")
    return attempt, ("… (earlier lines cut)\n" if size > LOG_TAIL_BYTES else "") + text


# -- models -----------------------------------------------------------------------------


def models(ws: Workspace) -> list[dict[str, Any]]:
    """Every registered model with its aliases and newest version."""
    from brickyard.ml import tracking

    client = tracking.connect(ws)
    out = []
    for model in client.search_registered_models(max_results=1000):
        newest = max((int(v.version) for v in model.latest_versions or []), default=None)
        out.append({"name": model.name, "aliases": dict(sorted(model.aliases.items())), "newest": newest,
                    "description": model.description or ""})
    return sorted(out, key=lambda m: m["name"])


def model_versions(ws: Workspace, name: str, page_token: str | None) -> dict[str, Any]:
    """A page of a model's versions (MLflow's search paged in SQL).

    Raises:
        ModelNotFoundError: no such model.
    """
    from brickyard.ml import registry, tracking

    client = tracking.connect(ws)
    page = registry.version_page(client, name, limit=PAGE_SIZE, page_token=page_token)
    metric_names = sorted({key for row in page.rows for key in row.metrics})
    return {"name": name, "rows": page.rows, "next": page.next_page_token, "aliases": page.aliases,
            "metric_names": metric_names}


def model_version(ws: Workspace, name: str, version: str) -> dict[str, Any]:
    """One version: aliases, metrics, params, the gate's decision with every rule, and the
    artifacts found on its run (evaluation plots, SHAP, fairness: what exists).

    Raises:
        ModelNotFoundError, ModelError: no such model or version.
    """
    import json

    from brickyard.ml import registry, tracking
    from brickyard.ml.gate import TAG_RULE

    client = tracking.connect(ws)
    mv = registry.resolve_version(client, name, version)
    run = client.get_run(mv.run_id) if mv.run_id else None
    rules = []
    for key, value in sorted(mv.tags.items(), key=lambda kv: _rule_index(kv[0], TAG_RULE)):
        if key.startswith(TAG_RULE):
            try:
                rules.append(json.loads(value))
            except ValueError:
                rules.append({"rule": value})
    artifacts = _artifacts(client, mv.run_id) if mv.run_id else []
    metrics = dict(sorted(run.data.metrics.items())) if run else {}
    explained = [a for a in artifacts if any(word in a["path"].lower() for word in EXPLAIN_WORDS)]
    return {
        "explain": explained,
        "plots": [a for a in artifacts if a["image"] and a not in explained],
        "explain_metrics": {k: v for k, v in metrics.items() if k.startswith(EXPLAIN_METRICS)},
        "name": name, "version": int(mv.version), "run_id": mv.run_id, "created": mv.creation_timestamp / 1000,
        "aliases": sorted(mv.aliases or []),
        "metrics": metrics,
        "params": dict(sorted(run.data.params.items())) if run else {},
        "tags": {k: v for k, v in sorted(mv.tags.items()) if not k.startswith(TAG_RULE)},
        "decision": mv.tags.get("brickyard.gate.decision", ""), "rules": rules,
        "artifacts": artifacts,
        "pipeline_run": (run.data.tags.get("brickyard.run_id") if run else None),
    }


def _rule_index(key: str, prefix: str) -> tuple[int, str]:
    tail = key[len(prefix):] if key.startswith(prefix) else ""
    return (int(tail), key) if tail.isdigit() else (1 << 30, key)


def _artifacts(client: Any, run_id: str, path: str = "", depth: int = 0) -> list[dict[str, Any]]:
    """The run's artifact files (two levels deep), each marked as an image or not."""
    out: list[dict[str, Any]] = []
    for item in client.list_artifacts(run_id, path or None):
        if item.is_dir:
            if depth < 2:
                out += _artifacts(client, run_id, item.path, depth + 1)
        else:
            out.append({"path": item.path, "size": item.file_size, "image": item.path.lower().endswith(".png")})
    return out


def artifact_bytes(ws: Workspace, run_id: str, path: str) -> bytes:
    """One artifact file of an MLflow run.

    Raises:
        BrickyardError: the path leaves the run's artifacts or does not exist.
    """
    import tempfile

    from brickyard.ml import tracking

    if path.startswith("/") or ".." in path.split("/"):
        raise BrickyardError(f"artifact path {path!r} leaves the run's artifacts")
    client = tracking.connect(ws)
    with tempfile.TemporaryDirectory() as folder:
        try:
            local = client.download_artifacts(run_id, path, folder)
        except Exception as exc:
            raise NotFoundError(f"run {run_id} has no artifact {path!r}") from exc
        return Path(local).read_bytes()


def compare(ws: Workspace, name: str, versions: list[str]) -> dict[str, Any]:
    """Several versions side by side: every metric and param of each."""
    shown = [model_version(ws, name, v) for v in versions]
    metrics = sorted({k for v in shown for k in v["metrics"]})
    params = sorted({k for v in shown for k in v["params"]})
    return {"name": name, "versions": shown, "metric_names": metrics, "param_names": params}


# -- endpoints --------------------------------------------------------------------------


def endpoints(ws: Workspace, window: timedelta = timedelta(hours=24)) -> list[dict[str, Any]]:
    """Each configured endpoint: traffic split, shadow/canary, the aliases' versions, and
    from the inference log over `window`: requests per minute, latency percentiles, errors
    and an estimated cost per 1,000 predictions."""
    from brickyard.ml import registry, tracking

    out = []
    client = None
    for name, config in sorted(ws.config.endpoints.items()):
        model = config.model or name
        versions: dict[str, int | None] = {}
        try:
            client = client or tracking.connect(ws)
            for alias in (config.champion, config.challenger):
                try:
                    versions[alias] = int(registry.resolve_version(client, model, alias).version)
                except BrickyardError:
                    versions[alias] = None
        except BrickyardError:
            pass
        split = (100 - config.canary, config.canary) if config.canary else (100.0, 0.0)
        out.append({"name": name, "model": model, "config": config, "versions": versions, "split": split,
                    "mode": "canary" if config.canary else "shadow" if config.shadow else "champion only",
                    "traffic": traffic(ws, config.log_table, name, window) if config.log else None,
                    "window_hours": window.total_seconds() / 3600})
    return out


def traffic(ws: Workspace, log_table: str, endpoint: str, window: timedelta) -> dict[str, Any] | None:
    """Request figures of one endpoint from the inference log over the last `window`."""
    import numpy as np
    import pyarrow.compute as pc

    if not ws.lake.exists(log_table):
        return None
    since = datetime.now(UTC) - window
    data = ws.lake.dataset(log_table).to_table(
        columns=["ts", "variant", "status", "latency_ms", "rows"],
        filter=(pc.field("endpoint") == endpoint) & (pc.field("ts") >= since),
    )
    if data.num_rows == 0:
        return {"requests": 0}
    latency = np.asarray(data.column("latency_ms").to_numpy(zero_copy_only=False), dtype=float)
    status = np.asarray(data.column("status").to_numpy(zero_copy_only=False))
    predictions = int(pc.sum(data.column("rows")).as_py() or 0)
    stamps = data.column("ts").to_pylist()
    minutes = max((max(stamps) - min(stamps)).total_seconds() / 60, 1.0)
    variants: dict[str, int] = {}
    for variant in data.column("variant").to_pylist():
        variants[str(variant)] = variants.get(str(variant), 0) + 1
    busy_seconds = float(latency.sum()) / 1000
    rate = ws.config.pricing.cpu_hour
    per_1k = cost(busy_seconds, rate)
    return {
        "requests": data.num_rows, "per_minute": data.num_rows / minutes, "predictions": predictions,
        "p50": float(np.percentile(latency, 50)), "p95": float(np.percentile(latency, 95)),
        "p99": float(np.percentile(latency, 99)), "errors": int((status >= 400).sum()),
        "error_rate": float((status >= 400).mean()), "variants": variants,
        "cost_per_1k": None if per_1k is None or predictions == 0 else per_1k / predictions * 1000,
    }


# -- monitors ---------------------------------------------------------------------------


def monitors(ws: Workspace) -> list[dict[str, Any]]:
    from brickyard.monitoring.state import MonitorStore

    return MonitorStore(ws.state_url).monitors()


def monitor(ws: Workspace, name: str) -> dict[str, Any]:
    """One monitor: status, latest features, alerts, and the drift statistic of each
    feature per window as SVG polylines.

    Raises:
        BrickyardError: no such monitor.
    """
    from brickyard.monitoring.history import drift_history
    from brickyard.monitoring.state import MonitorStore

    store = MonitorStore(ws.state_url)
    found = [m for m in store.monitors() if m["name"] == name]
    if not found:
        raise NotFoundError(f"no monitor {name!r}", hint="monitors appear after a `kind: monitor` task ran")
    status = found[0]
    history = drift_history(ws, status["results_table"])
    return {"status": status, "features": store.features(name), "alerts": store.alerts(monitor=name, limit=50),
            "history": history, "chart": chart(history)}


def chart(history: list[dict[str, Any]], width: int = 640, height: int = 200) -> dict[str, Any]:
    """Polylines (SVG points) of each feature's drift statistic over the windows."""
    windows = sorted({row["window_start"] for row in history})
    if not windows:
        return {"series": [], "windows": [], "width": width, "height": height}
    values = [row["statistic"] for row in history if row["statistic"] is not None and math.isfinite(row["statistic"])]
    top = max(values + [row["threshold"] or 0 for row in history] + [1e-9])
    x_of = {w: 40 + (i * (width - 60) / max(len(windows) - 1, 1)) for i, w in enumerate(windows)}
    series: dict[str, list[str]] = {}
    thresholds: dict[str, float] = {}
    for row in history:
        if row["statistic"] is None or not math.isfinite(row["statistic"]):
            continue
        y = height - 20 - row["statistic"] / top * (height - 40)
        series.setdefault(row["feature"], []).append(f"{x_of[row['window_start']]:.1f},{y:.1f}")
        if row["threshold"] is not None:
            thresholds[row["feature"]] = height - 20 - row["threshold"] / top * (height - 40)
    palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f", "#be185d"]
    return {
        "series": [{"feature": f, "points": " ".join(p), "color": palette[i % len(palette)]}
                   for i, (f, p) in enumerate(sorted(series.items()))],
        "threshold_y": min(thresholds.values()) if thresholds else None,
        "windows": [(x_of[w], str(w)[:10]) for w in windows], "top": top, "width": width, "height": height,
    }


# -- features ---------------------------------------------------------------------------


def features(ws: Workspace) -> list[dict[str, Any]]:
    """Every feature table: keys, event time, TTL, offline table (rows, version, newest
    change) and the online copy's freshness."""
    from brickyard.features.get import online_status

    out: list[dict[str, Any]] = []
    for name in ws.feature_table_names():
        try:
            spec = ws.feature_table(name)
        except BrickyardError as exc:
            out.append({"name": name, "error": exc.message})
            continue
        offline = ws.lake.describe(spec.table) if ws.lake.exists(spec.table) else None
        out.append({"name": name, "spec": spec, "offline": offline, "online": online_status(ws, name), "error": None})
    return out


# -- SQL --------------------------------------------------------------------------------


def run_sql(ws: Workspace, query: str, limit: int, timeout_seconds: float) -> dict[str, Any]:
    """A read-only query on a fresh DuckDB engine: one SELECT, at most `limit` rows, cut
    off after `timeout_seconds`.

    Raises:
        SqlError: not one SELECT, a failing query, or the timeout.
    """
    engine = ws.engine.fresh()
    try:
        preview = engine.preview_select(query, limit + 1, timeout_seconds=timeout_seconds)
    finally:
        engine.close()
    return {"columns": preview.columns, "types": preview.types, "rows": preview.rows[:limit],
            "more": len(preview.rows) > limit}


# -- lineage ----------------------------------------------------------------------------


def lineage(ws: Workspace, store: StateStore) -> dict[str, Any]:
    """What the workspace records of where things come from, as edges between nodes of
    five stages: raw files (ingest sources) -> tables (tasks' reads and writes of each
    pipeline's latest run) -> training runs -> model versions -> endpoints and monitors."""
    edges: list[tuple[str, str, str]] = []  # (from, to, by)
    for name in ws.pipeline_names():
        try:
            spec = ws.pipeline(name).spec
        except BrickyardError:
            continue
        for task in spec.tasks:
            options = task.options
            source, target = options.get("source"), options.get("target")
            if task.kind == "ingest" and isinstance(source, str) and isinstance(target, str):
                edges.append((f"raw:{source}", f"table:{target}", f"{name}.{task.name}"))
        for run in store.list_runs(name, limit=1):
            for attempt in store.attempts(run.id):
                for read in attempt.reads:
                    for write in attempt.writes:
                        if not write.endswith(QUARANTINE_SUFFIX):
                            edges.append((f"table:{read}", f"table:{write}", f"{name}.{attempt.task}"))
    edges += _model_edges(ws)
    for endpoint, config in sorted(ws.config.endpoints.items()):
        edges.append((f"model:{config.model or endpoint}@{config.champion}", f"endpoint:{endpoint}", "serves"))
    for status in monitors(ws):
        edges.append((f"model:{status['model']}", f"monitor:{status['name']}", "watches"))
        edges.append((f"table:{status['target']}", f"monitor:{status['name']}", "reads"))
    unique = list(dict.fromkeys(edges))
    return {"edges": [{"source": s, "target": t, "by": b} for s, t, b in unique]}


def _model_edges(ws: Workspace) -> list[tuple[str, str, str]]:
    """training run -> model version, and the tables the training task read -> run, for
    the newest versions of each model."""
    from brickyard.ml import registry, tracking

    edges = []
    try:
        client = tracking.connect(ws)
        names = registry.model_names(client)
    except BrickyardError:
        return []
    for name in names:
        page = registry.version_page(client, name, limit=5)
        for row in page.rows:
            node = f"model:{name}/{row.version}"
            if row.run_id:
                run = client.get_run(row.run_id)
                training = f"training:{row.run_id[:8]}"
                edges.append((training, node, run.data.tags.get(tracking.TAG_TASK, "train")))
                for tag, version in sorted(run.data.tags.items()):
                    if tag.startswith(tracking.TAG_INPUT):
                        edges.append((f"table:{tag[len(tracking.TAG_INPUT):]}", training, f"version {version}"))
        for alias, version in sorted(page.aliases.items()):
            edges.append((f"model:{name}/{version}", f"model:{name}@{alias}", "alias"))
    return edges


def trace(edges: list[Mapping[str, str]], node: str) -> set[str]:
    """`node` with everything upstream and downstream of it."""
    seen = {node}
    for forward in (True, False):
        frontier = [node]
        while frontier:
            current = frontier.pop()
            for edge in edges:
                here, there = (edge["source"], edge["target"]) if forward else (edge["target"], edge["source"])
                if here == current and there not in seen:
                    seen.add(there)
                    frontier.append(there)
    return seen


def stage_of(node: str) -> str:
    return node.partition(":")[0]


def grouped(edges: list[Mapping[str, str]]) -> list[tuple[str, list[str]]]:
    """The lineage's nodes per stage, in stage order."""
    order = ["raw", "table", "training", "model", "endpoint", "monitor"]
    nodes: dict[str, list[str]] = {stage: [] for stage in order}
    for edge in edges:
        for node in (edge["source"], edge["target"]):
            stage = stage_of(node)
            if node not in nodes.setdefault(stage, []):
                nodes[stage].append(node)
    return [(stage, sorted(found)) for stage, found in nodes.items() if found]
