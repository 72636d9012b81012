"""Tuning: an Optuna study over estimator families, every trial an MLflow child run, the
best configuration refitted and registered as `train` registers a model.

`tune` reads the rows once (the engine's `training_rows`, or a training set), prepares and
splits them as `train` does, and runs trials of an Optuna study (TPE, seeded) stored in
the workspace (`.brickyard/tuning.db`, one study per pipeline and task), so running the
task again resumes the study. A trial draws a family and its parameters, fits the
preprocessing and the estimator on each cross-validation fold of the training split (or
on the training split less a seeded holdout), and scores the metric; after each fold the
pruner may stop it. Each trial is an MLflow child run of the tuning run (params, the
metric and its per-fold values, seconds, CPU-seconds, cost, the state COMPLETE / PRUNED /
FAIL as the tag `brickyard.trial_state`, and a failure's reason as `brickyard.error`).
With `parallel: N`, N processes run trials of the same study.

The tuning run itself holds what a `train` run holds for the best configuration (refitted
on the whole training split, scored on the held-out split: params, metrics, the
`brickyard/train_spec.json` record, the model), so `evaluate`, `promote`, `score`,
`reproduce` and `serve` treat its registered version as any other; plus `tune.*` params,
`best_cv_<metric>`, trial counts, CPU-seconds and cost, and the leaderboard of every trial
of the study as `tune/leaderboard.json` and `tune/leaderboard.csv`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from brickyard.ml import tracking
from brickyard.ml.data import Prepared, load, prepare, split_indices
from brickyard.ml.errors import ModelError, TuningError
from brickyard.ml.search_space import automl_families, describe, space_of, start_point, suggest
from brickyard.ml.spec import Problem, SplitSpec
from brickyard.ml.tune_spec import Space, TuneSpec

if TYPE_CHECKING:
    from collections.abc import Iterator

    import optuna

    from brickyard.engines.base import Engine
    from brickyard.ml.training import Fitted
    from brickyard.ml.trial_runs import TrialRun
    from brickyard.workspace import Workspace

STUDY_DB = Path(".brickyard") / "tuning.db"
LEADERBOARD_JSON = "tune/leaderboard.json"
LEADERBOARD_CSV = "tune/leaderboard.csv"
TAG_PARENT = "mlflow.parentRunId"
TAG_TRIAL = "brickyard.trial"
TAG_TRIAL_STATE = "brickyard.trial_state"
TAG_FAMILY = "brickyard.family"
TAG_STUDY = "brickyard.study"
TAG_ERROR = "brickyard.error"
SETTINGS_ATTR = "brickyard.settings"
DEFAULT_METRIC = {"classification": "roc_auc", "regression": "rmse"}
TUNABLE_METRICS = {
    "classification": ("roc_auc", "accuracy", "f1", "precision", "recall", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}
MLFLOW_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
_NOT_RUN = "queued (a family's first trial) but not run within the budget; the next run of the task runs it"
TRIAL_ATTR = "brickyard"  # a trial's record: family, params, run, seconds, cpu_seconds, error
RUNS_ATTR = "brickyard.mlflow_runs"  # study attributes: per tuning run and process, trial -> MLflow run id
AUTOML_HOLDOUT_ROWS = 100_000  # automl scores trials on a holdout from this many training rows up
STOPPED = "the time budget (timeout:) ran out during the trial"
ENSEMBLE_SHARE = 0.2  # of timeout:, kept for the ensembles when they are on
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """Everything a process needs to run trials of the study (picklable)."""

    storage_url: str
    study_name: str
    data: Prepared
    metric: str
    families: dict[str, Space]
    folds: list[tuple[np.ndarray, np.ndarray]]
    seed: int
    sampler_seed: int
    pruner: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    tags: dict[str, str]
    cpu_hour: float | None


@dataclass
class TuneResult:
    """What `tune` produced: the study's trials, the best one refitted and registered."""

    study_name: str
    metric: str
    direction: str
    trials_before: int
    leaderboard: list[dict[str, Any]]
    best: dict[str, Any]
    fitted: Fitted
    run_id: str
    model_name: str
    model_version: int
    cpu_seconds: float
    cost: float | None
    counts: dict[str, int] = field(default_factory=dict)


Direction = Literal["maximize", "minimize"]


def metric_for(problem: str, metric: str | None) -> tuple[str, Direction]:
    """The metric trials are scored on, and its Optuna direction (`maximize`/`minimize`).

    Raises:
        TuningError: a metric that this problem does not have.
    """
    from brickyard.ml.metrics import GREATER_IS_BETTER

    name = metric or DEFAULT_METRIC[problem]
    if name not in TUNABLE_METRICS.get(problem, ()):
        raise TuningError(
            f"metric {name!r} is not a {problem} metric",
            hint=f"use one of {', '.join(TUNABLE_METRICS.get(problem, ()))}",
        )
    return name, "maximize" if GREATER_IS_BETTER[name] else "minimize"


def tune(
    ws: Workspace,
    spec: TuneSpec,
    *,
    experiment: str,
    model_name: str,
    study_name: str,
    tags: dict[str, str],
    log: logging.Logger | None = None,
    engine: Engine | None = None,
) -> TuneResult:
    """Run the study's trials, refit the best configuration, log and register it.

    Raises:
        TuningError: no trial completed; a resumed study made with other settings.
        TrainingDataError, EstimatorError, LakeError, SqlError: as `train`.
    """
    import mlflow

    from brickyard.ml.training import fit_loaded, log_fitted, model_tags, register, run_name
    from brickyard.ml.tune_ensemble import chosen, try_ensembles

    log = log or _log
    engine = engine or ws.engine
    started, cpu_started = time.perf_counter(), time.process_time()
    loaded = load(ws, spec.data(), engine=engine)
    data = prepare(loaded, label=spec.label, features=spec.features, exclude=spec.exclude, split=spec.split,
                   problem=spec.problem)
    metric, direction = metric_for(data.problem, spec.metric)
    spec = automl_validation(spec, len(data.train_index), log)
    families = _families(spec, data.problem, log)
    folds = validation_folds(data, spec)
    storage_url = f"sqlite:///{(ws.root / STUDY_DB).resolve()}"
    (ws.root / STUDY_DB).parent.mkdir(parents=True, exist_ok=True)
    study = open_study(storage_url, study_name, direction, settings(spec, data, metric), spec.resume, log)
    before = len(study.trials)
    if spec.automl and before == 0:
        for family, space in families.items():  # cheapest first: each family's defaults
            study.enqueue_trial(start_point(family, space, len(families) > 1))
    client = tracking.connect(ws)
    experiment_id = tracking.experiment_id(client, ws, experiment)
    all_tags = {**model_tags(data, tags, "tune", model_name, engine.name), TAG_STUDY: study_name}
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name(all_tags), tags=all_tags) as run:
        mlflow.log_params(_tune_params(spec, metric, families, study_name, before))
        plan = Plan(
            storage_url, study_name, data, metric, families, folds, spec.split.seed, spec.sampler_seed + before,
            spec.pruner, ws.mlflow_tracking_uri, experiment_id, run.info.run_id,
            {key: value for key, value in tags.items() if key.startswith(tracking.TAG_PREFIX)},
            ws.config.pricing.cpu_hour,
        )
        log.info("study %s: %d trials already there; running %s", study_name, before, _budget_text(spec))
        deadline = None if spec.timeout is None else time.time() + spec.timeout
        worker_cpu = run_trials(plan, spec, log, _trials_deadline(spec, deadline), deadline)
        study = _load(plan)
        board = leaderboard(study, metric, direction)
        counts = _counts(board, before)
        _log_counts(log, counts, study_name)
        mlflow.log_metrics({f"trials_{k}": float(v) for k, v in counts.items()})
        if not (board and board[0]["state"] == "COMPLETE"):
            _log_board(board, metric)
            _log_cost(plan, time.process_time() - cpu_started + worker_cpu)
        best = _best(board, counts, spec)
        if spec.ensembles:
            with one_thread():
                tried = try_ensembles(plan, board, direction, spec.ensemble_size, deadline, log)
            board = rank(board + tried, direction)
        best = chosen(board, best, direction)
        _log_board(board, metric)
        cpu_seconds = time.process_time() - cpu_started + worker_cpu
        cost = _log_cost(plan, cpu_seconds)
        with one_thread():
            fitted = fit_loaded(loaded, spec.train_spec(best["family"], best["params"]))
        log.info("best: %s; refitted in %.2f s, held-out %s", _row_text(best), fitted.fit_seconds,
                 _metrics_text(fitted.metrics))
        info, _, _ = log_fitted(ws, fitted, log)
        mlflow.log_metrics({f"best_cv_{metric}": float(best["value"]), "tune_seconds": time.perf_counter() - started})
        mlflow.set_tags({"brickyard.best_trial": _best_tag(best), "brickyard.best_family": best["family"]})
    version = register(info.model_uri, model_name, all_tags)
    log.info("logged MLflow run %s; registered %s version %d", run.info.run_id, model_name, version)
    return TuneResult(study_name, metric, direction, before, board, best, fitted, run.info.run_id, model_name,
                      version, cpu_seconds, cost, counts)


def automl_validation(spec: TuneSpec, rows: int, log: logging.Logger) -> TuneSpec:
    """`spec`, with `validation: holdout` when automl tunes on AUTOML_HOLDOUT_ROWS training
    rows or more and `validation:` was not set (k folds cost k fits per trial)."""
    if not spec.automl or "validation" in spec.model_fields_set or rows < AUTOML_HOLDOUT_ROWS:
        return spec
    log.info("automl: %d training rows, so trials are scored on a %.0f%% holdout instead of %d-fold cv "
             "(set validation: cv to keep cv)", rows, spec.holdout_size * 100, spec.folds)
    return spec.model_copy(update={"validation": "holdout"})


def _log_cost(plan: Plan, cpu_seconds: float) -> float | None:
    """Log the CPU-seconds so far and their cost (`pricing: cpu_hour:`); returns the cost."""
    import mlflow

    cost = None if plan.cpu_hour is None else cpu_seconds / 3600.0 * plan.cpu_hour
    mlflow.log_metrics({"cpu_seconds": cpu_seconds, **({"cost": cost} if cost is not None else {})})
    return cost


def _log_board(board: list[dict[str, Any]], metric: str) -> None:
    import mlflow

    mlflow.log_text(json.dumps(board, indent=2, default=str), LEADERBOARD_JSON)
    mlflow.log_text(leaderboard_csv(board, metric), LEADERBOARD_CSV)


def _families(spec: TuneSpec, problem: Problem, log: logging.Logger | None = None) -> dict[str, Space]:
    if spec.automl:
        families, left_out = automl_families(problem)
        if log is not None:
            log.info("automl (%s): searching %s%s", problem, ", ".join(families),
                     f"; left out: {', '.join(left_out)}" if left_out else "")
        return families
    found = {}
    for family, declared in spec.estimators.items():
        space = space_of(family, declared)
        if space is None:
            raise TuningError(f"estimator {family!r} has no default search space",
                              hint=f"declare one: estimators: {{{family}: {{param: {{int: [1, 10]}}}}}}")
        found[family] = space
    _check_installed(list(found), problem)
    return found


def _check_installed(families: list[str], problem: Problem) -> None:
    """Every family's library imports (else each of its trials would fail alike).

    Raises:
        TuningError: names each family that cannot be imported, why, and how to install it.
    """
    from brickyard.ml.estimators import INSTALL_HINTS, cannot_import, estimator_path

    failures: dict[str, tuple[str, str]] = {}  # family -> (package, why)
    for family in families:
        module = estimator_path(family, problem).split(":")[0]
        why = cannot_import(module)
        if why is not None:
            failures[family] = (module.split(".")[0], why)
    if failures:
        named = "; ".join(f"{family} ({why})" for family, (_, why) in failures.items())
        installs = "; ".join(dict.fromkeys(INSTALL_HINTS.get(package, f"pip install {package}") for package, _ in failures.values()))
        raise TuningError(
            f"estimators: cannot import {named}: every trial of {'it' if len(failures) == 1 else 'them'} would fail",
            hint=f"{installs}; or take {'it' if len(failures) == 1 else 'them'} out of estimators:",
        )


def validation_folds(data: Prepared, spec: TuneSpec) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (fit, validate) row positions of each fold, inside the training split: k seeded
    folds (stratified for classification), or one seeded holdout.

    Raises:
        TuningError: the training split cannot be cut that way.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    rows = data.train_index
    classification = data.problem == "classification"
    if spec.validation == "holdout":
        frame = data.frame.iloc[rows].reset_index(drop=True)
        holdout = SplitSpec(test_size=spec.holdout_size, seed=spec.split.seed, stratify=spec.split.stratify)
        fit_rows, valid_rows = split_indices(frame, data.label, holdout, classification, "the training split")
        return [(rows[fit_rows], rows[valid_rows])]
    splitter = (StratifiedKFold if classification and spec.split.stratify else KFold)(
        n_splits=spec.folds, shuffle=True, random_state=spec.split.seed
    )
    y = data.frame[data.label].iloc[rows].to_numpy() if data.label else None
    try:
        return [(rows[a], rows[b]) for a, b in splitter.split(np.zeros(len(rows)), y)]
    except ValueError as exc:
        raise TuningError(
            f"cannot cut the {len(rows)} training rows into {spec.folds} folds: {exc}",
            hint="lower folds:, or use validation: holdout",
        ) from exc


def settings(spec: TuneSpec, data: Prepared, metric: str) -> dict[str, Any]:
    """What a study's trials depend on; a study is resumed only with the same settings."""
    return {
        "source": spec.data().model_dump(mode="json", exclude_none=True),
        "label": data.label,
        "features": data.features,
        "split": spec.split.model_dump(mode="json"),
        "problem": data.problem,
        "metric": metric,
        "validation": spec.validation,
        "folds": spec.folds if spec.validation == "cv" else None,
        "holdout_size": spec.holdout_size if spec.validation == "holdout" else None,
        "estimators": {family: describe(space) for family, space in _families(spec, data.problem).items()},
    }


def _storage(url: str) -> optuna.storages.RDBStorage:
    """The study's SQLite storage, in WAL mode with `synchronous=NORMAL`: a commit is not
    flushed to disk twice (an Optuna trial makes about ten; a power cut may lose the last
    ones, never corrupt the file), and readers do not block the processes writing."""
    import optuna
    from sqlalchemy import event

    storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})

    def fast_commits(connection: Any, _: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(storage.engine, "connect", fast_commits)
    storage.engine.dispose()  # the connections made so far predate the listener
    return storage


def open_study(
    url: str, name: str, direction: Direction, wanted: dict[str, Any], resume: bool, log: logging.Logger
) -> optuna.Study:
    """The study `name` (created when missing; with `resume` False, deleted first). Trials
    an earlier process left running (it died) are marked failed.

    Raises:
        TuningError: the study exists with other settings.
    """
    import optuna
    from optuna.trial import TrialState

    _optuna_logging()
    storage = _storage(url)
    if not resume:
        try:
            optuna.delete_study(study_name=name, storage=storage)
            log.info("study %s deleted (resume: false); starting it again", name)
        except KeyError:
            pass
    study = optuna.create_study(storage=storage, study_name=name, direction=direction, load_if_exists=True)
    recorded = study.user_attrs.get(SETTINGS_ATTR)
    if recorded is None:
        study.set_user_attr(SETTINGS_ATTR, json.loads(json.dumps(wanted)))
    elif recorded != json.loads(json.dumps(wanted)):
        changed = sorted(key for key in {*recorded, *wanted} if recorded.get(key) != json.loads(json.dumps(wanted.get(key))))
        raise TuningError(
            f"study {name!r} ({STUDY_DB}) has {len(study.trials)} trials made with other settings "
            f"(changed: {', '.join(changed)})",
            hint="set resume: false to start the study again (its trials are deleted), or undo the change",
        )
    for trial in study.get_trials(states=(TrialState.RUNNING,)):
        storage.set_trial_user_attr(trial._trial_id, "error", "left running by a process that is gone")
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        log.warning("study %s: trial %d was left running by an earlier run; marked failed", name, trial.number)
    return study


class _OneLineFailures(logging.Filter):
    """Optuna logs a failed trial as a warning with its whole traceback, then again as
    "failed with value None"; the first line (parameters and error) is kept, alone. The
    error is on the leaderboard (`brickyard tune show`) and the trial's MLflow run too."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        return not record.getMessage().endswith("failed with value None.")


_ONE_LINE_FAILURES = _OneLineFailures()


def _optuna_logging() -> None:
    """Optuna's warnings and errors, each failed trial in one line (`_OneLineFailures`)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for handler in logging.getLogger("optuna").handlers:
        if _ONE_LINE_FAILURES not in handler.filters:
            handler.addFilter(_ONE_LINE_FAILURES)


def _load(plan: Plan, worker: int = 0) -> optuna.Study:
    import optuna
    from optuna.samplers import TPESampler

    _optuna_logging()
    return optuna.load_study(
        study_name=plan.study_name, storage=_storage(plan.storage_url),
        sampler=TPESampler(seed=plan.sampler_seed + worker), pruner=_pruner(plan),
    )


def _pruner(plan: Plan) -> optuna.pruners.BasePruner:
    import optuna

    if plan.pruner == "none" or len(plan.folds) < 2:
        return optuna.pruners.NopPruner()
    if plan.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=len(plan.folds), reduction_factor=2)
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)


def _trials_deadline(spec: TuneSpec, deadline: float | None) -> float | None:
    """When trials stop starting: the timeout's end, less ENSEMBLE_SHARE of it kept for
    the ensembles when they are on."""
    if deadline is None or spec.timeout is None or not spec.ensembles:
        return deadline
    return deadline - spec.timeout * ENSEMBLE_SHARE


def run_trials(
    plan: Plan, spec: TuneSpec, log: logging.Logger, deadline: float | None, stop_at: float | None = None
) -> float:
    """Run this task's trials until `deadline` (epoch seconds; None: the trial count), in
    this process or in `spec.parallel` processes; a trial still running at `stop_at` (the
    end of `timeout:`) stops after its current fold. Returns the CPU-seconds the other
    processes spent on trials."""
    budget = spec.trial_budget
    if spec.parallel == 1:
        run_worker(plan, budget, deadline, 0, log, stop_at)
        return 0.0
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    shares = [None if budget is None else budget // spec.parallel + (i < budget % spec.parallel)
              for i in range(spec.parallel)]
    workers = [(i, share) for i, share in enumerate(shares) if share != 0]
    log.info("running trials in %d processes", len(workers))
    with ProcessPoolExecutor(len(workers), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(run_worker, plan, share, deadline, i, None, stop_at) for i, share in workers]
        try:
            return sum(future.result() for future in futures)
        except Exception as exc:
            raise TuningError(f"a tuning process failed: {exc}", hint="run with parallel: 1 to see the error here") from exc


def run_worker(
    plan: Plan, trials: int | None, deadline: float | None, worker: int, log: logging.Logger | None,
    stop_at: float | None = None,
) -> float:
    """Run up to `trials` trials (None: until `deadline`) of the study, each fit on one
    thread (see `one_thread`), a trial still running at `stop_at` stopped after its current
    fold; returns the CPU-seconds spent."""
    cpu = time.process_time()
    study = _load(plan, worker)
    timeout = None if deadline is None else max(0.001, deadline - time.time())
    callbacks = [_logger(log)] if log is not None else []
    objective = Objective(plan, stop_at)
    try:
        with one_thread():
            study.optimize(objective, n_trials=trials, timeout=timeout, catch=(Exception,), callbacks=callbacks)
    except BaseException:
        objective.abandon()
        raise
    run_ids = objective.close()
    if run_ids:
        study.set_user_attr(f"{RUNS_ATTR}.{plan.parent_run_id}.{worker}", {str(n): run for n, run in run_ids.items()})
    return time.process_time() - cpu


def one_thread() -> Any:
    """A context in which native thread pools (OpenMP, BLAS) use one thread: trials, the
    ensembles and the refit run one fit at a time per process, as LightGBM's `n_jobs: 1`
    does; `parallel: N` is how a study uses more cores. (Left alone, HistGradientBoosting's
    OpenMP threads on a busy machine made a 0.3 s fit take 25 s.)"""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def trial_record(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """A trial's record: its `TRIAL_ATTR` attribute over its other user attributes (a
    study made before that attribute kept them one by one; `error` of a trial found dead)."""
    return {**trial.user_attrs, **trial.user_attrs.get(TRIAL_ATTR, {})}


def _logger(log: logging.Logger) -> Any:
    def report(_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        attrs = trial_record(trial)
        value = "" if trial.value is None else f" {trial.value:.6g}"
        reason = f": {attrs['error']}" if attrs.get("error") else ""
        log.info("trial %d %s %s %s%s (%.2f s)%s", trial.number, trial.state.name, attrs.get("family"),
                 attrs.get("params"), value, attrs.get("seconds", 0.0), reason)

    return report


class Objective:
    """One trial: a family and its parameters drawn, scored on every fold, logged as an
    MLflow child run of the tuning run.

    The trial's MLflow run (params, per-fold and mean metric, timings, state) is handed,
    finished, to a writer process (`brickyard.ml.trial_runs`) that writes it while the
    next trial runs; `close` waits for them, raises the first that failed and answers
    trial number -> MLflow run id. The trial's own record (family, params, run, seconds,
    error) is one Optuna user attribute (`TRIAL_ATTR`). A trial still running at `stop_at`
    (epoch seconds) stops after the fold it is on, as pruned (`stopped` says why): Optuna's
    timeout only stops trials from starting, and one slow trial could outlast the budget
    several times over."""

    def __init__(self, plan: Plan, stop_at: float | None = None) -> None:
        from brickyard.ml.trial_runs import TrialRunWriter

        self.plan = plan
        self.stop_at = stop_at
        self.writer = TrialRunWriter(plan.tracking_uri)

    def close(self) -> dict[int, str]:
        """Wait for the MLflow runs of every trial; trial number -> MLflow run id.

        Raises:
            TuningError: one could not be written (the first is named).
        """
        return self.writer.close()

    def abandon(self) -> None:
        """Stop writing runs (the study itself failed)."""
        self.writer.abandon()

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna

        plan = self.plan
        names = list(plan.families)
        family = trial.suggest_categorical("estimator", names) if len(names) > 1 else names[0]
        started, cpu, start_ms = time.perf_counter(), time.process_time(), int(time.time() * 1000)
        record: dict[str, Any] = {"family": family, "run": plan.tags.get(tracking.TAG_RUN_ID, ""), "params": {}}
        state, values = "COMPLETE", list[float]()
        try:
            params = suggest(trial, family, plan.families[family])
            record["params"] = _plain(params)
            return self._score(trial, record, family, params, values)
        except optuna.TrialPruned:
            state = "PRUNED"
            raise
        except Exception as exc:
            state, record["error"] = "FAIL", _reason(exc)
            raise
        finally:
            record.update(seconds=time.perf_counter() - started, cpu_seconds=time.process_time() - cpu)
            trial.set_user_attr(TRIAL_ATTR, record)
            self.writer.submit(self._run(trial.number, record, family, state, values, start_ms))

    def _score(self, trial: optuna.Trial, record: dict[str, Any], family: str, params: dict[str, Any],
               values: list[float]) -> float:
        import optuna

        plan = self.plan
        prunes = len(plan.folds) > 1 and plan.pruner != "none"
        for step, value in enumerate(fold_scores(plan, family, params)):
            values.append(value)
            if prunes:
                trial.report(float(np.mean(values)), step)
                if trial.should_prune():
                    record["folds_done"] = step + 1
                    raise optuna.TrialPruned(f"pruned after fold {step + 1}")
            if self.stop_at is not None and step + 1 < len(plan.folds) and time.time() >= self.stop_at:
                record.update(folds_done=step + 1, stopped=STOPPED)
                raise optuna.TrialPruned(STOPPED)
        return float(np.mean(values))

    def _run(self, number: int, record: dict[str, Any], family: str, state: str, values: list[float],
             start_ms: int) -> TrialRun:
        """The trial's MLflow run, as the writer process writes it."""
        from brickyard.ml.trial_runs import TrialRun

        plan = self.plan
        metrics = [(f"{plan.metric}_fold", value, step) for step, value in enumerate(values)]
        if state == "COMPLETE":
            metrics.append((plan.metric, float(np.mean(values)), 0))
            if len(values) > 1:
                metrics.append((f"{plan.metric}_std", float(np.std(values)), 0))
        metrics += [("seconds", record["seconds"], 0), ("cpu_seconds", record["cpu_seconds"], 0)]
        if plan.cpu_hour is not None:
            metrics.append(("cost", record["cpu_seconds"] / 3600.0 * plan.cpu_hour, 0))
        reason = record.get("error", "") or record.get("stopped", "")
        return TrialRun(
            trial=number, experiment_id=plan.experiment_id, name=f"trial-{number}",
            tags={**plan.tags, TAG_PARENT: plan.parent_run_id, tracking.TAG_KIND: "tune_trial",
                  TAG_TRIAL: str(number), TAG_FAMILY: family},
            params={"estimator": family, **{key: str(value)[:500] for key, value in record["params"].items()}},
            metrics=metrics,
            end_tags={TAG_TRIAL_STATE: state, **({TAG_ERROR: reason[:5000]} if reason else {})},
            status=MLFLOW_STATUS[state], start_ms=start_ms, end_ms=int(time.time() * 1000),
        )


def fold_scores(plan: Plan, family: str, params: dict[str, Any]) -> Iterator[float]:
    """The metric of `family` with `params` on each validation fold of the plan, fold by
    fold (preprocessing and estimator fitted on the fold's fit rows, as `train` fits).

    Raises:
        TuningError: the estimator gives no value of the metric.
    """
    from brickyard.ml.estimators import build_estimator
    from brickyard.ml.metrics import score
    from brickyard.ml.preprocess import fit_pipeline

    data = plan.data
    X, y = data.X, data.frame[data.label]
    for step, (fit_rows, valid_rows) in enumerate(plan.folds):
        estimator = build_estimator(family, data.problem, dict(params), plan.seed)
        model = fit_pipeline(estimator, X.iloc[fit_rows], y.iloc[fit_rows], data.numeric, data.categorical)
        value = score(model, X.iloc[valid_rows], y.iloc[valid_rows], data.problem).get(plan.metric)
        if value is None or not math.isfinite(value):
            raise TuningError(f"{family} gives no {plan.metric} on fold {step + 1} (got {value})",
                              hint="pick another metric:, or an estimator that predicts probabilities")
        yield value


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    hint = getattr(exc, "hint", None)
    kind = "" if isinstance(exc, ModelError) else f"{type(exc).__name__}: "
    return f"{kind}{text}" + (f" (hint: {hint})" if hint else "")


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value.item() if hasattr(value, "item") else value for key, value in params.items()}


def leaderboard(study: optuna.Study, metric: str, direction: str) -> list[dict[str, Any]]:
    """Every trial of the study, best first: completed by the metric, then pruned, then
    failed (each kind by trial number)."""
    rows = []
    run_ids = trial_run_ids(study)
    for trial in study.trials:
        attrs = trial_record(trial)
        seconds = attrs.get("seconds")
        if seconds is None and trial.datetime_complete and trial.datetime_start:
            seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
        rows.append({
            "trial": trial.number,
            "family": attrs.get("family"),
            "params": attrs.get("params", {}),
            "value": trial.value,
            "metric": metric,
            "state": trial.state.name,
            "seconds": seconds,
            "cpu_seconds": attrs.get("cpu_seconds"),
            "error": attrs.get("error", "") or attrs.get("stopped", "") or (_NOT_RUN if trial.state.name == "WAITING" else ""),
            "mlflow_run_id": attrs.get("mlflow_run_id") or run_ids.get(trial.number, ""),
            "run": attrs.get("run", ""),
            "members": [],
            "chosen": False,
        })
    return rank(rows, direction)


def trial_run_ids(study: optuna.Study) -> dict[int, str]:
    """Trial number -> its MLflow run id, as the tuning processes stored them (`RUNS_ATTR`)."""
    found: dict[int, str] = {}
    for key, value in study.user_attrs.items():
        if key.startswith(RUNS_ATTR + ".") and isinstance(value, dict):
            found.update({int(number): str(run) for number, run in value.items()})
    return found


def rank(rows: list[dict[str, Any]], direction: str) -> list[dict[str, Any]]:
    """`rows` best first (completed by the metric, then pruned, failed and skipped ones,
    each kind by trial number, ensembles last among equals), numbered from 1 in `rank`."""
    order = {"COMPLETE": 0, "PRUNED": 1, "FAIL": 2, "SKIPPED": 3, "WAITING": 4}
    sign = -1.0 if direction == "maximize" else 1.0
    rows = sorted(rows, key=lambda r: (
        order.get(r["state"], 5), sign * r["value"] if r["value"] is not None else 0.0,
        r["trial"] if r["trial"] is not None else math.inf,
    ))
    for number, row in enumerate(rows, start=1):
        row["rank"] = number
    return rows


def leaderboard_csv(rows: list[dict[str, Any]], metric: str) -> str:
    """The leaderboard as CSV (params as JSON text)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rank", "trial", "family", "params", metric, "state", "seconds", "cpu_seconds", "error",
                     "mlflow_run_id", "run", "members", "chosen"])
    for row in rows:
        writer.writerow([row["rank"], "" if row["trial"] is None else row["trial"], row["family"],
                         json.dumps(row["params"], sort_keys=True),
                         "" if row["value"] is None else repr(row["value"]), row["state"],
                         "" if row["seconds"] is None else f"{row['seconds']:.3f}",
                         "" if row["cpu_seconds"] is None else f"{row['cpu_seconds']:.3f}",
                         row["error"], row["mlflow_run_id"], row["run"],
                         " ".join(str(m) for m in row.get("members", [])), str(bool(row.get("chosen")))])
    return out.getvalue()


def _counts(board: list[dict[str, Any]], before: int) -> dict[str, int]:
    board = [row for row in board if row["trial"] is not None]
    now = [row for row in board if row["trial"] >= before and row["state"] != "WAITING"]
    return {
        "run": len(now),
        "complete": sum(row["state"] == "COMPLETE" for row in now),
        "pruned": sum(row["state"] == "PRUNED" for row in now),
        "failed": sum(row["state"] == "FAIL" for row in now),
        "in_study": len(board),
    }


def _log_counts(log: logging.Logger, counts: dict[str, int], study: str) -> None:
    log.info("study %s: %d trials this run (%d complete, %d pruned, %d failed); %d in the study",
             study, counts["run"], counts["complete"], counts["pruned"], counts["failed"], counts["in_study"])


def _best(board: list[dict[str, Any]], counts: dict[str, int], spec: TuneSpec) -> dict[str, Any]:
    """The best completed trial of the study.

    Raises:
        TuningError: none completed.
    """
    if board and board[0]["state"] == "COMPLETE":
        return board[0]
    failed = [row for row in board if row["state"] == "FAIL"]
    first = f"; trial {failed[0]['trial']} failed: {failed[0]['error']}" if failed else ""
    raise TuningError(
        f"no trial completed: {counts['run']} ran within the budget ({_budget_text(spec)}), "
        f"{counts['pruned']} pruned, {counts['failed']} failed{first}",
        hint="raise timeout: or trials:, or fix the failing search space (brickyard tune show RUN lists every trial)",
    )


def _budget_text(spec: TuneSpec) -> str:
    parts = []
    if spec.trial_budget is not None:
        parts.append(f"{spec.trial_budget} trials")
    if spec.timeout is not None:
        parts.append(f"at most {spec.timeout:g} s")
    return " in ".join(parts) + (f", {spec.parallel} processes" if spec.parallel > 1 else "")


def _tune_params(spec: TuneSpec, metric: str, families: dict[str, Space], study: str, before: int) -> dict[str, Any]:
    return {
        "tune.study": study,
        "tune.families": ",".join(families),
        "tune.metric": metric,
        "tune.validation": spec.validation if spec.validation == "holdout" else f"cv{spec.folds}",
        "tune.trials": spec.trial_budget if spec.trial_budget is not None else "",
        "tune.timeout": spec.timeout if spec.timeout is not None else "",
        "tune.parallel": spec.parallel,
        "tune.pruner": spec.pruner,
        "tune.seed": spec.sampler_seed,
        "tune.trials_before": before,
        "tune.space": json.dumps({family: describe(space) for family, space in families.items()})[:6000],
    }


def _row_text(row: dict[str, Any]) -> str:
    what = f"trial {row['trial']}" if row["trial"] is not None else f"ensemble of trials {row['members']}"
    params = "" if row["trial"] is None else f" {row['params']}"
    return f"{what}: {row['family']}{params} {row['metric']}={row['value']:.6g}"


def _best_tag(row: dict[str, Any]) -> str:
    return str(row["trial"]) if row["trial"] is not None else f"{row['family']}:{','.join(map(str, row['members']))}"


def _metrics_text(metrics: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())


def find_tune_run(ws: Workspace, run: str) -> str:
    """The MLflow run id of the tuning run `run` stands for (an MLflow run id, or a
    brickyard run id whose tune task logged it).

    Raises:
        ModelError: no such run, or several tune tasks in that brickyard run.
    """
    import re

    from mlflow.exceptions import MlflowException

    client = tracking.connect(ws)
    if re.fullmatch(r"[0-9a-f]{32}", run):
        try:
            client.get_run(run)
        except MlflowException as exc:
            raise ModelError(f"no MLflow run {run}", hint="pass the brickyard run id (brickyard runs)") from exc
        return run
    experiments = [e.experiment_id for e in client.search_experiments()]
    found = client.search_runs(
        experiments, filter_string=f"tags.`{tracking.TAG_RUN_ID}` = '{run}' and tags.`{tracking.TAG_KIND}` = 'tune'",
    ) if experiments else []
    if not found:
        raise ModelError(f"no tune run was logged by brickyard run {run!r}",
                         hint="pass a brickyard run id (brickyard runs) or an MLflow run id (32 hex digits)")
    if len(found) > 1:
        tasks = ", ".join(f"{r.data.tags.get(tracking.TAG_TASK)} ({r.info.run_id})" for r in found)
        raise ModelError(f"brickyard run {run!r} has several tune runs: {tasks}", hint="pass one MLflow run id")
    return str(found[0].info.run_id)


def load_leaderboard(ws: Workspace, run: str) -> tuple[str, list[dict[str, Any]]]:
    """The MLflow run id and leaderboard of the tuning run `run` (see `find_tune_run`).

    Raises:
        ModelError: no such run, or a run without a leaderboard.
    """
    import mlflow.artifacts

    run_id = find_tune_run(ws, run)
    try:
        board = mlflow.artifacts.load_dict(f"runs:/{run_id}/{LEADERBOARD_JSON}")
    except Exception as exc:  # noqa: BLE001 - MLflow raises several kinds here
        raise ModelError(f"MLflow run {run_id} has no {LEADERBOARD_JSON}: it is not a tune run",
                         hint="pass the run of a `kind: tune` task") from exc
    return run_id, list(board)  # type: ignore[arg-type]
