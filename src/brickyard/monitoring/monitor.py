"""Running a monitor: each new window of the target against the model version's baseline.

One run of a monitor:

1. resolves the model version (an alias is read now: a new champion brings its own
   baseline and evaluation metrics for the windows computed from then on);
2. plans the windows: those already in `gold.monitor_<name>` are not computed again (rows
   that arrive late in such a window are not looked at), the window still open waits;
3. reads each due window through the task's engine (a batch window: the files its Delta
   commit added, through the lake on either engine), compares it with the baseline
   (`brickyard.monitoring.drift.compare`), measures performance against labels, or
   estimates it from the scores while no labels have arrived;
4. appends every window's rows to `gold.monitor_<name>` in ONE Delta commit, under an
   application transaction (`brickyard/monitor/<name>/<window>`, the newest window
   computed), made only when none of its windows landed meanwhile (checked at commit
   time; otherwise planned again without them), so a retried or concurrent run never
   writes a window twice;
5. logs each window's report (report.html, drift.png) to an MLflow run of the experiment
   `monitor_<name>`, saves the monitor's status for `brickyard monitors` and the gauges,
   and evaluates the alert rules over every window in the table (see `alerts`), acting
   once per breach.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from brickyard.errors import BrickyardError
from brickyard.monitoring.actions import Launch, act
from brickyard.monitoring.alerts import breaches, describe
from brickyard.monitoring.performance import ESTIMATED, Performance, drops, estimated_metrics, realised_metrics
from brickyard.monitoring.report import DATASET, PERFORMANCE, write_report
from brickyard.monitoring.spec import MonitorSpec, results_table
from brickyard.monitoring.state import MonitorStore
from brickyard.monitoring.windows import TimeUnit, Window, WindowPlan, batch_windows, naive_utc, time_windows

if TYPE_CHECKING:
    import pandas as pd

    from brickyard.engines.base import Engine
    from brickyard.workspace import Workspace

TAG_MONITOR = "brickyard.monitor"
COMMIT_ATTEMPTS = 5
RESULT_SCHEMA = pa.schema([
    ("window_start", pa.timestamp("us")),
    ("window_end", pa.timestamp("us")),
    ("batch_version", pa.int64()),
    ("model_version", pa.string()),
    ("feature", pa.string()),
    ("kind", pa.string()),
    ("method", pa.string()),
    ("statistic", pa.float64()),
    ("p_value", pa.float64()),
    ("threshold", pa.float64()),
    ("drifted", pa.bool_()),
    ("decisive", pa.bool_()),
    ("rows", pa.int64()),
    ("null_rate", pa.float64()),
    ("estimated", pa.bool_()),
    ("reference", pa.float64()),
    ("note", pa.string()),
    ("run_id", pa.string()),
    ("computed_at", pa.timestamp("us")),
])


class MonitorError(BrickyardError):
    """A monitor cannot run as written (a missing column, an unreadable target)."""

    transient = False


@dataclass
class ModelFacts:
    """The model version a run compares with: its baseline, evaluation metrics, problem."""

    name: str
    version: str
    reference: dict[str, float]
    problem: str | None
    baseline: Any

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version}"


@dataclass
class WindowResult:
    """One computed window: its rows for the results table and its summary values."""

    window: Window
    rows: list[dict[str, Any]]
    values: dict[str, Any]
    drifted_features: list[str]
    estimated: bool


@dataclass
class MonitorOutcome:
    """What a monitor run did (the task's metrics and log say it)."""

    name: str
    table: str
    model: str
    plan: WindowPlan
    computed: list[WindowResult] = field(default_factory=list)
    table_version: int | None = None
    mlflow_run_id: str | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.name, "results_table": self.table, "model": self.model,
            "windows_computed": [str(w.window) for w in self.computed],
            "windows_done_before": self.plan.done, "windows_empty": self.plan.empty,
            "rows_without_time": self.plan.untimed, "late_rows": sum(self.plan.late.values()),
            "open_window": str(self.plan.open) if self.plan.open else None,
            "drifted": {str(w.window): w.drifted_features for w in self.computed},
            "drift_share": {str(w.window): w.values.get("drift_share") for w in self.computed},
            "alerts": self.alerts, "mlflow_run_id": self.mlflow_run_id, "notes": self.notes,
        }


class Monitor:
    """One monitor of a workspace: `run()` computes its new windows and acts on alerts."""

    def __init__(
        self,
        ws: Workspace,
        engine: Engine,
        spec: MonitorSpec,
        name: str,
        *,
        pipeline: str,
        task: str,
        run_id: str,
        log: logging.Logger,
        launch: Launch | None = None,
        now: datetime | None = None,
        full_refresh: bool = False,
    ) -> None:
        self.ws, self.engine, self.spec, self.name = ws, engine, spec, name
        self.pipeline, self.task, self.run_id, self.log, self.launch = pipeline, task, run_id, log, launch
        self.now = naive_utc(now or datetime.now().astimezone())
        self.table = results_table(name)
        self.store = MonitorStore(ws.state_url)
        self.full_refresh = full_refresh  # every window computed again, the table replaced

    # -- the run ------------------------------------------------------------------------

    def run(self) -> MonitorOutcome:
        """Compute the due windows, append them, report, and evaluate the alerts.

        Raises:
            BrickyardError: no such model version or baseline, a target or column missing.
        """
        model = self._model()
        plan = self._plan()
        outcome = MonitorOutcome(self.name, self.table, model.label, plan)
        self.log.info(
            "monitor %s: %d window(s) due, %d computed before%s", self.name, len(plan.due), plan.done,
            f", {plan.open} still open (computed once it closes)" if plan.open else "",
        )
        labels = self._labels() if self.spec.labels is not None else None
        computed_at = self.now
        for window in plan.due:
            data = self._window_data(window)
            if data.num_rows == 0:
                plan.empty += 1
                self.log.info("window %s: no rows, nothing to compare", window)
                continue
            outcome.computed.append(self._compare(window, data, model, labels, computed_at))
        if plan.empty:
            outcome.notes.append(f"{plan.empty} window(s) without rows were skipped")
        if plan.untimed:
            outcome.notes.append(f"{plan.untimed} row(s) of the target have no {self.spec.time_column}: in no window")
        if plan.late:
            late = ", ".join(f"{Window(start, start, unit=self.spec.window)} +{rows}" for start, rows in sorted(plan.late.items()))
            outcome.notes.append(f"{sum(plan.late.values())} row(s) arrived after their window was computed "
                                 f"({late}): not compared (windows are computed once)")
        for note in outcome.notes:
            self.log.warning("monitor %s: %s", self.name, note)
        if outcome.computed:
            outcome.table_version = self._append(outcome.computed)
        if outcome.computed:
            outcome.mlflow_run_id = self._log_reports(outcome.computed, model)
        summaries = self._summaries()
        self._save_status(outcome, model, summaries)
        outcome.alerts = self._alerts(summaries)
        return outcome

    # -- the model ----------------------------------------------------------------------

    def _model(self) -> ModelFacts:
        from brickyard.ml.registry import CHAMPION, ModelRef, resolve_version, run_metrics
        from brickyard.ml.tracking import connect
        from brickyard.monitoring.store import load_baseline

        ref = ModelRef.parse(self.spec.model)
        client = connect(self.ws)
        version = resolve_version(client, ref.name, ref.selector or CHAMPION)
        reference = run_metrics(client, version)
        tags = client.get_run(version.run_id).data.tags if version.run_id else {}
        problem = self.spec.problem or tags.get("brickyard.problem")
        baseline = load_baseline(self.ws, ref.name, str(version.version), run_id=version.run_id)
        return ModelFacts(ref.name, str(version.version), reference, problem, baseline)

    # -- windows ------------------------------------------------------------------------

    def _done(self, column: str) -> list[Any]:
        """The windows (starts, or batch versions) the results table already holds."""
        lake = self.ws.lake
        if self.full_refresh or not lake.exists(self.table):
            return []
        found = lake.read(self.table, columns=[column]).column(column).drop_null().unique().to_pylist()
        return list(found)

    def _plan(self) -> WindowPlan:
        if self.spec.window == "batch":
            table = self.spec.target.table or ""
            commits = [(int(entry["version"]), entry["timestamp"]) for entry in self.ws.lake.history(table)]
            return batch_windows(commits, done=self._done("batch_version"))
        column = self._quoted(self.spec.time_column or "")
        unit: TimeUnit = self.spec.window  # not batch: checked above
        counts = self._fetch(
            f"SELECT date_trunc('{unit}', CAST({column} AS TIMESTAMP)) AS window_start, count(*) AS n "
            f"FROM ({self.spec.target.query()}) AS target GROUP BY 1", "the target's rows per window"
        )
        found: dict[datetime, int] = {}
        untimed = 0
        for start, count in zip(counts.column("window_start").to_pylist(), counts.column("n").to_pylist()):
            if start is None:
                untimed += int(count)
            else:
                found[naive_utc(start)] = int(count)
        if not found:
            self.log.info("the target %s has no rows with a time yet", self.spec.target.describe())
            return WindowPlan(untimed=untimed)
        recorded = self._recorded_rows()
        plan = time_windows(min(found), max(found), unit, now=self.now, done=recorded)
        plan.empty = sum(1 for window in plan.due if window.start not in found)
        plan.due = [window for window in plan.due if window.start in found]
        plan.untimed = untimed
        plan.late = {start: found[start] - rows for start, rows in recorded.items() if found.get(start, 0) > rows}
        return plan

    def _recorded_rows(self) -> dict[datetime, int]:
        """The rows each window already in the results table had when it was computed."""
        lake = self.ws.lake
        if self.full_refresh or not lake.exists(self.table):
            return {}
        frame = lake.read(self.table, columns=["window_start", "feature", "method", "rows"]).to_pandas()
        frame = frame[(frame["feature"] == DATASET) & (frame["method"] == "drift_share")]
        return {_as_datetime(row.window_start): int(row.rows) for row in frame.itertuples()}

    def _window_data(self, window: Window) -> pa.Table:
        if window.version is not None:
            from brickyard.errors import LakeError

            table = self.spec.target.table or ""
            since = window.version - 1 if window.version > 0 else None
            try:
                added, _ = self.ws.lake.added_since(table, since, until=window.version)
            except LakeError as exc:
                raise MonitorError(
                    f"monitor {self.name}: batch {window.version} of {table} cannot be read as the rows it added: {exc}",
                    hint="`window: batch` needs an append-only target; use a time window for a table that is rewritten",
                ) from exc
            return added.to_table()
        column = self._quoted(self.spec.time_column or "")
        return self._fetch(
            f"SELECT * FROM ({self.spec.target.query()}) AS target WHERE CAST({column} AS TIMESTAMP) >= "
            f"TIMESTAMP '{window.start:%Y-%m-%d %H:%M:%S}' AND CAST({column} AS TIMESTAMP) < "
            f"TIMESTAMP '{window.end:%Y-%m-%d %H:%M:%S}'",
            f"window {window}",
        )

    def _fetch(self, query: str, what: str) -> pa.Table:
        try:
            return self.engine.fetch(query)
        except BrickyardError as exc:
            raise MonitorError(
                f"monitor {self.name}: reading {what} of {self.spec.target.describe()} failed: {exc}",
                hint="check the target's table or sql and its time_column",
            ) from exc

    @staticmethod
    def _quoted(column: str) -> str:
        return '"' + column.replace('"', '""') + '"'

    # -- one window -----------------------------------------------------------------------

    def _compare(
        self, window: Window, data: pa.Table, model: ModelFacts, labels: pd.DataFrame | None, computed_at: datetime
    ) -> WindowResult:
        from brickyard.monitoring.drift import compare

        sketches = self._sketches(model, data)
        report = compare(sketches, data.select(list(sketches)), self.spec.thresholds, self.spec.per_feature)
        common = {
            "window_start": window.start, "window_end": window.end, "batch_version": window.version,
            "model_version": model.version, "estimated": False, "reference": None, "run_id": self.run_id,
            "computed_at": computed_at,
        }
        rows = [{**common, **row} for row in report.rows_out()]
        outputs = {self.spec.prediction, self.spec.probability or ""}
        tested = [name for name in report.tested_features if name not in outputs]
        drifted = [name for name in report.drifted_features if name not in outputs]
        share = len(drifted) / len(tested) if tested else None  # of the inputs; outputs drift on their own
        dataset: dict[str, Any] = {"drift_share": share, "rows": float(data.num_rows), "drifted_features": float(len(drifted))}
        for output in sorted(outputs & set(report.tested_features)):
            dataset[f"{output}_drifted"] = 1.0 if output in report.drifted_features else 0.0
        dataset_row = {**common, "feature": DATASET, "kind": "dataset", "decisive": False, "rows": data.num_rows,
                       "p_value": None, "threshold": None, "drifted": False, "note": None}
        rows.append({**dataset_row, "method": "drift_share", "statistic": share, "threshold": self.spec.drift_share,
                     "drifted": share is not None and share > self.spec.drift_share,
                     "note": ", ".join(drifted) or "; ".join(report.notes) or None})
        rows += [{**dataset_row, "method": method, "statistic": value, "drifted": method.endswith("_drifted") and value > 0}
                 for method, value in dataset.items() if method != "drift_share"]
        performance = self._performance(data, model, labels)
        rows += self._performance_rows(performance, common, data.num_rows)
        values = {**dataset, **performance.values()}
        self.log.info(
            "window %s: %d rows, drift share %s, drifted: %s%s%s", window, data.num_rows,
            "n/a" if share is None else f"{share:.2f}", ", ".join(drifted) or "none",
            "".join(f", {name} drifted" for name in sorted(outputs & set(report.drifted_features))),
            "".join(f", {k} {v:.3f}" for k, v in performance.metrics.items())
            + (" (estimated)" if performance.estimated else ""),
        )
        return WindowResult(window, rows, values, report.drifted_features, performance.estimated)

    def _sketches(self, model: ModelFacts, data: pa.Table) -> dict[str, Any]:
        """The baseline sketches this window is compared with: the features (`features:`,
        default all of the baseline's), and the model's outputs where the target has them."""
        features = dict(model.baseline.features)
        wanted = list(self.spec.features or features)
        unknown = [name for name in wanted if name not in features]
        if unknown:
            raise MonitorError(
                f"monitor {self.name}: {', '.join(unknown)} not in the baseline of {model.label}",
                hint=f"its baseline has: {', '.join(features)}",
            )
        missing = [name for name in wanted if name not in data.column_names]
        if missing:
            raise MonitorError(
                f"monitor {self.name}: the target {self.spec.target.describe()} lacks column(s) {', '.join(missing)} "
                f"of {model.label}'s baseline",
                hint="select the model's input columns in the target (sql: can join them to the predictions), "
                "or list the ones to watch in `features:`",
            )
        outputs = {output: column for output, column in (("prediction", self.spec.prediction),
                                                         ("probability", self.spec.probability))
                   if column and column in data.column_names and column not in wanted}
        chosen = model.baseline.sketches(outputs)
        return {name: chosen[name] for name in [*wanted, *outputs.values()] if name in chosen}

    # -- performance ----------------------------------------------------------------------

    def _labels(self) -> pd.DataFrame:
        spec = self.spec.labels
        assert spec is not None
        columns = [*spec.key, spec.label, *([spec.time_column] if spec.time_column else [])]
        query = f"SELECT {', '.join(self._quoted(c) for c in columns)} FROM ({spec.query()}) AS labels"
        try:
            return self.engine.fetch(query).to_pandas()
        except BrickyardError as exc:
            raise MonitorError(f"monitor {self.name}: reading the labels ({spec.describe()}) failed: {exc}",
                               hint="check labels: table or sql, key, label and time_column") from exc

    def _performance(self, data: pa.Table, model: ModelFacts, labels: pd.DataFrame | None) -> Performance:
        spec = self.spec
        names = data.column_names
        performance = Performance(reference=dict(model.reference))
        if spec.prediction not in names:
            return performance
        wanted = {spec.prediction, spec.probability or "", spec.time_column or "", *(spec.labels.key if spec.labels else [])}
        frame = data.select([c for c in names if c in wanted]).to_pandas()
        probability = frame[spec.probability].to_numpy(dtype=float) if spec.probability in frame else None
        problem = model.problem or ("classification" if probability is not None else None)
        if problem == "classification" and probability is not None:
            performance.estimate = estimated_metrics(probability)
        if labels is not None and spec.labels is not None:
            joined = self._join_labels(frame, labels)
            labelled = joined[joined["__label__"].notna()]
            performance.labelled_rows = len(labelled)
            if len(labelled) >= spec.labels.min_rows and problem is not None:
                proba = labelled[spec.probability].to_numpy(dtype=float) if probability is not None else None
                performance.realised = realised_metrics(
                    problem, labelled["__label__"].to_numpy(), labelled[spec.prediction].to_numpy(), proba,
                    spec.positive_class,
                )
        performance.drops = drops(performance.metrics, model.reference)
        return performance

    def _join_labels(self, frame: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
        spec = self.spec.labels
        assert spec is not None
        missing = [k for k in spec.key if k not in frame.columns]
        if missing:
            raise MonitorError(f"monitor {self.name}: the target lacks the label key column(s) {', '.join(missing)}",
                               hint="the target must carry the key the labels are joined on (a request id or entity key)")
        right = labels.rename(columns={spec.label: "__label__"})
        if spec.time_column and self.spec.time_column and self.spec.time_column in frame:
            right = right.rename(columns={spec.time_column: "__label_time__"})
            left = frame.reset_index(names="__row__")
            joined = left.merge(right, on=list(spec.key), how="left")
            late_enough = joined["__label_time__"].isna() | (
                _naive(joined["__label_time__"]) >= _naive(joined[self.spec.time_column])
            )
            joined = joined[late_enough & joined["__label__"].notna()].sort_values("__label_time__")
            first = joined.drop_duplicates("__row__").set_index("__row__")
            return left.set_index("__row__").join(first[["__label__"]], how="left")
        right = right.drop_duplicates(list(spec.key), keep="last")
        return frame.merge(right[[*spec.key, "__label__"]], on=list(spec.key), how="left")

    def _performance_rows(self, performance: Performance, common: Mapping[str, Any], rows: int) -> list[dict[str, Any]]:
        base = {**common, "feature": PERFORMANCE, "kind": "performance", "p_value": None, "decisive": False,
                "rows": rows, "threshold": None, "drifted": False, "reference": None}
        labelled = f"{performance.labelled_rows} labelled rows"
        out = [{**base, "method": name, "statistic": value, "reference": performance.reference.get(name),
                "estimated": False, "note": labelled} for name, value in performance.realised.items()]
        out += [{**base, "method": name, "statistic": value, "reference": performance.reference.get(name),
                 "estimated": True, "note": "estimated from the scores (CBPE)"} for name, value in performance.estimate.items()]
        out += [{**base, "method": f"{name}_drop", "statistic": drop, "threshold": self.spec.max_drop,
                 "drifted": drop > self.spec.max_drop, "estimated": performance.estimated,
                 "note": "positive: worse than at evaluation" + (" (estimated)" if performance.estimated else "")}
                for name, drop in performance.drops.items()]
        if performance.labelled_rows is not None:
            out.append({**base, "method": "labelled_rows", "statistic": float(performance.labelled_rows),
                        "estimated": False, "note": None})
        return out

    # -- writing ------------------------------------------------------------------------

    def _append(self, computed: list[WindowResult]) -> int | None:
        """Append the windows' rows in one commit; windows another run of this monitor
        committed meanwhile are left out (and dropped from `computed`). The table's
        version, or None when every window was written by another run."""
        from brickyard.errors import CommitConflictError

        column = "batch_version" if self.spec.window == "batch" else "window_start"
        app_id = f"brickyard/monitor/{self.name}/{self.spec.window}"
        if self.full_refresh:
            app_id += f"/refresh/{self.run_id}"

        def ours(done: Sequence[Any]) -> list[WindowResult]:
            return [w for w in computed if _key(w.window, column) not in set(done)]

        class Overlap(Exception):
            """Another run committed some of these windows since they were planned."""

        for _ in range(COMMIT_ATTEMPTS):
            pending = computed if self.full_refresh else ours(self._done(column))
            if len(pending) < len(computed):
                self.log.info("another run of monitor %s wrote window(s) %s meanwhile: not written again", self.name,
                              ", ".join(str(w.window) for w in computed if w not in pending))
                computed[:] = pending
            if not computed:
                return None
            rows = [row for result in computed for row in result.rows]
            table = pa.Table.from_pylist([{name: row.get(name) for name in RESULT_SCHEMA.names} for row in rows],
                                         schema=RESULT_SCHEMA)
            newest = computed[-1].window
            mark = newest.version if newest.version is not None else int(newest.start.timestamp())

            def still_ours() -> None:  # at commit time: nothing of ours landed since
                if not self.full_refresh and len(ours(self._done(column))) < len(computed):
                    raise Overlap

            try:
                version = self.ws.lake.write(
                    self.table, table, transaction=(app_id, mark), mode="overwrite" if self.full_refresh else "append",
                    metadata={"brickyard.run_id": self.run_id, "brickyard.monitor": self.name},
                    before_commit=still_ours,
                )
            except (Overlap, CommitConflictError):
                continue  # plan the write again on the table as it is now
            self.log.info("appended %d row(s) for %d window(s) to %s (version %d)", table.num_rows, len(computed),
                          self.table, version)
            return version
        raise MonitorError(f"monitor {self.name}: could not append to {self.table}: other writers kept committing",
                           hint="run the monitor again")

    def _log_reports(self, computed: Sequence[WindowResult], model: ModelFacts) -> str | None:
        from brickyard.ml.tracking import connect, experiment_id

        client = connect(self.ws)
        experiment = experiment_id(client, self.ws, f"monitor_{self.name}")
        run = client.create_run(experiment, tags={
            TAG_MONITOR: self.name, "brickyard.run_id": self.run_id, "brickyard.pipeline": self.pipeline,
            "brickyard.task": self.task, "mlflow.runName": f"{self.name} {self.run_id}",
        })
        with tempfile.TemporaryDirectory(prefix="brickyard-monitor-") as temp:
            for result in computed:
                summary = {"model": model.label, "rows": int(result.values.get("rows") or 0),
                           "drift share": result.values.get("drift_share"),
                           "drifted features": ", ".join(result.drifted_features) or "none",
                           "performance": "estimated (no labels yet)" if result.estimated else "from labels"}
                folder = Path(temp) / result.window.slug
                write_report(folder, monitor=self.name, window=str(result.window), model=model.label,
                             summary=summary, rows=result.rows)
                client.log_artifacts(run.info.run_id, str(folder), f"windows/{result.window.slug}")
                share = result.values.get("drift_share")
                if share is not None:
                    client.log_metric(run.info.run_id, "drift_share", float(share),
                                      timestamp=int(result.window.start.timestamp() * 1000))
        client.set_terminated(run.info.run_id)
        return str(run.info.run_id)

    # -- status and alerts ----------------------------------------------------------------

    def _summaries(self) -> list[tuple[Window, dict[str, Any], bool]]:
        """Every window in the results table, oldest first, with the values alert rules
        compare and whether its performance values are estimates."""
        lake = self.ws.lake
        if not lake.exists(self.table):
            return []
        frame = lake.read(self.table, columns=["window_start", "window_end", "batch_version", "feature", "method",
                                               "statistic", "estimated"]).to_pandas()
        frame = frame[frame["feature"].isin([DATASET, PERFORMANCE])]
        found = []
        for (start, end), group in frame.groupby(["window_start", "window_end"], sort=True):
            values: dict[str, Any] = {}
            for row in group.sort_values("estimated", ascending=False).itertuples():  # realised last: it wins
                value = None if row.statistic != row.statistic else float(row.statistic)
                if row.estimated and str(row.feature) == PERFORMANCE and not str(row.method).endswith("_drop"):
                    values[f"estimated_{row.method}"] = value
                values[str(row.method)] = value
            realised = group[(group["feature"] == PERFORMANCE) & ~group["estimated"].astype(bool)
                             & ~group["method"].isin(["labelled_rows"])]
            estimated = realised.empty and bool(group["estimated"].astype(bool).any())
            version = group["batch_version"].dropna()
            window = Window(_as_datetime(start), _as_datetime(end),
                            int(version.iloc[0]) if len(version) else None, unit=str(self.spec.window))
            found.append((window, values, estimated))
        return found

    def _save_status(self, outcome: MonitorOutcome, model: ModelFacts, summaries: Sequence[tuple[Window, dict[str, Any], bool]]) -> None:
        last = summaries[-1] if summaries else None
        features: list[dict[str, Any]] = []
        latest = outcome.computed[-1] if outcome.computed else None
        if latest is not None:
            features = [
                {"feature": row["feature"], "method": row["method"], "statistic": _finite(row.get("statistic")),
                 "p_value": _finite(row.get("p_value")), "threshold": row.get("threshold"), "drifted": bool(row["drifted"]),
                 "window_start": row["window_start"], "window_end": row["window_end"]}
                for row in latest.rows if row.get("decisive")
            ]
        values = last[1] if last else {}
        share = values.get("drift_share")
        status = "no data" if last is None else ("drift" if share is not None and share > self.spec.drift_share else "ok")
        drifted = latest.drifted_features if latest is not None else self._previous_drifted()
        self.store.save_status(self.name, {
            "pipeline": self.pipeline, "task": self.task, "model": self.spec.model, "model_version": model.version,
            "target": self.spec.target.describe(), "results_table": self.table, "window_by": self.spec.window,
            "status": status, "windows": len(summaries),
            "last_window_start": last[0].start if last else None, "last_window_end": last[0].end if last else None,
            "last_rows": int(values["rows"]) if values.get("rows") is not None else None,
            "drift_share": share, "drifted_features": drifted,
            "performance": {k: v for k, v in values.items() if k not in ("drift_share", "rows", "drifted_features")}
            | ({"estimated": True} if last and last[2] else {}),
            "run_id": self.run_id,
        }, features)

    def _previous_drifted(self) -> list[str]:
        previous = [m for m in self.store.monitors() if m["name"] == self.name]
        return list(previous[0]["drifted_features"]) if previous else []

    def _alerts(self, summaries: Sequence[tuple[Window, dict[str, Any], bool]]) -> list[dict[str, Any]]:
        fired: list[dict[str, Any]] = []
        windows = [(window.start, values) for window, values, _ in summaries]
        ends = {window.start: window.end for window, _, _ in summaries}
        estimated = {window.start: flag for window, _, flag in summaries}
        rules = {rule.key: rule for rule in self.spec.alerts}
        for rule in self.spec.alerts:
            for breach in breaches(rule, windows, ends):
                guess = rule.metric.startswith("estimated_") or (
                    estimated.get(breach.fired, False) and rule.metric.removesuffix("_drop") in ESTIMATED
                )
                alert = self.store.add_alert({
                    "monitor": self.name, "rule": rule.key, "condition": rule.when, "metric": rule.metric,
                    "value": breach.value, "estimated": guess, "breach_start": breach.start,
                    "window_start": breach.fired, "window_end": breach.fired_end,
                    "message": describe(breach, self.name, estimated=guess), "run_id": self.run_id,
                })
                if alert is None:
                    continue  # this breach alerted before
                fired.append(self._act(alert, rules))
        for alert in self.store.pending_alerts(self.name):  # recorded by a run that stopped before acting
            if alert.id not in {f["id"] for f in fired} and alert.rule in rules:
                fired.append(self._act(alert, rules))
        return fired

    def _act(self, alert: Any, rules: Mapping[str, Any]) -> dict[str, Any]:
        outcomes, started = act(alert, rules[alert.rule].actions, log=self.log, launch=self.launch)
        done = self.store.finish_alert(alert.id, outcomes, started_run=started)
        return {"id": done.id, "rule": done.rule, "message": done.message, "status": done.status,
                "started_run": done.started_run}


def _key(window: Window, column: str) -> Any:
    """A window as the results table's `column` holds it (its start, or batch version)."""
    return window.version if column == "batch_version" else window.start


def _naive(series: pd.Series) -> pd.Series:
    import pandas as pd

    values = pd.to_datetime(series)
    return values.dt.tz_convert("UTC").dt.tz_localize(None) if values.dt.tz is not None else values


def _as_datetime(value: Any) -> datetime:
    stamp = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    return naive_utc(stamp)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if np.isfinite(number) else None
