"""The prose of the pipeline reference (`docs/pipelines.md`, `brickyard schema`).

The structure (fields, types, defaults, required) comes from the models; this module holds
what models cannot say: a sentence per field, a summary and an example per kind. Keys are
`kind.field` for a kind's own options, `pipeline.field` and `task.field` for the fields
every pipeline and task has, and `Model.field` for nested models. A test checks that every
field has a description here (or in its model) and that every example is valid.
"""

from __future__ import annotations

from brickyard.engines.registry import engine_names

_ENGINES = " or ".join(f"`{name}`" for name in engine_names())  # `duckdb` or `spark`

PIPELINE_INTRO = """\
A pipeline is a YAML file `pipelines/NAME.yaml` in the workspace: a list of tasks, each of
a kind below, that run in the order their `depends_on` gives. `brickyard run NAME` runs it,
`brickyard validate` checks every pipeline without running it (file, line and field of
each problem), `brickyard server` fires its `schedule` and `trigger`."""

KIND_SUMMARIES: dict[str, str] = {
    "ingest": "Raw files in the lake (CSV, JSON lines, Parquet) into a Delta table, incrementally: "
    "each file is loaded once; rows that break the contract go to `<target>__quarantine`.",
    "sql": "A SELECT over the lake's tables and raw files (DuckDB's dialect), written to a Delta table "
    "(overwrite, append or merge), with expectations checked before anything lands.",
    "expect": "Check a table against expectations (a contract's and inline ones): warn, quarantine "
    "the rows that break one (`drop`), or fail the run.",
    "python": "Call a function of your own code with the task's context (`main(context, **args)`).",
    "features": "Materialize feature tables (`features/NAME.yaml`) as Delta tables `features.NAME`: a table "
    "source incrementally by its version, a SQL source replaced; rows with a null key or time to the quarantine.",
    "train": "Fit a model on a lake table, a query or a training set (features looked up as of each row's "
    "timestamp), track it in MLflow and register a new version.",
    "tune": "Search estimator families and their parameters with an Optuna study (TPE; cross-validation "
    "or a holdout; a trial or time budget; parallel processes), every trial an MLflow child run; the study "
    "resumes on the next run, and the best configuration is refitted and registered as `train` registers "
    "a model. See docs/tuning.md.",
    "evaluate": "Held-out metrics and plots (ROC, precision-recall, confusion matrix) for a registered "
    "model version, logged on its MLflow run; with options, SHAP explanations, fairness by sensitive "
    "features and a robustness check (docs/explainability.md).",
    "promote": "The gate: check a model version against rules; pass makes it `champion`, fail `challenger`.",
    "score": "Batch inference with a registered model into a gold Delta table, from a lake table, "
    "a SQL database, or a training set (the model's features looked up as of each row's timestamp).",
    "export": "Copy a lake table version (or the batch a score task wrote) into a SQL database table, "
    "exactly once.",
    "materialize": "Push the latest row per entity of a feature table (`features.NAME`) to the online store "
    "(SQLite or Redis), incrementally from the Delta version last materialized.",
    "monitor": "Compare each new window of a target (the inference log, a scoring table, any table) with "
    "the model version's training baseline: drift per feature, performance (realised from labels, else "
    "estimated), results appended to `gold.monitor_<name>`, alerts with actions. See docs/monitoring.md.",
}

EXAMPLES: dict[str, str] = {
    "features": """\
- name: customer_features
  kind: features
  depends_on: [clean_orders]
  table: customer_rfm
""",
    "ingest": """\
- name: ingest_trips
  kind: ingest
  source: raw/taxi/*.csv
  target: bronze.taxi_trips
  contract: contracts/bronze.taxi_trips.yaml
  options: {delimiter: ",", header: true}
""",
    "sql": """\
- name: clean_trips
  kind: sql
  depends_on: [ingest_trips]
  sql: sql/silver_taxi_trips.sql
  target: silver.taxi_trips
  mode: merge
  keys: [trip_id]
  incremental: true
  expectations:
    - {sql: "fare_amount >= 0", name: non_negative_fare, action: drop}
""",
    "expect": """\
- name: check_trips
  kind: expect
  depends_on: [clean_trips]
  table: silver.taxi_trips
  expectations:
    - {unique: [trip_id], action: fail}
    - {accepted_values: {column: payment_type, values: [1, 2, 3, 4, 5, 6]}, action: warn}
    - {range: {column: trip_distance, min: 0, max: 500}, action: drop}
""",
    "python": """\
- name: notify
  kind: python
  function: jobs.alerts:main
  args: {channel: data-team}
""",
    "train": """\
- name: train
  kind: train
  table: silver.titanic
  label: Survived
  features: [Pclass, Sex, Age, SibSp, Parch, Fare, Embarked]
  split: {test_size: 0.2, seed: 42, stratify: true}
  estimator: logistic_regression
  params: {C: 1.0}
  model_name: titanic
""",
    "tune": """\
- name: tune
  kind: tune
  table: silver.titanic
  label: Survived
  features: [Pclass, Sex, Age, SibSp, Parch, Fare, Embarked]
  estimators:
    logistic_regression:
    random_forest: {max_depth: {int: [2, 12]}}
    lightgbm: {learning_rate: {float: [0.01, 0.3], log: true}}
  metric: roc_auc
  trials: 30
  timeout: 120
  validation: cv
  folds: 5
  parallel: 2
  model_name: titanic
""",
    "evaluate": """\
- name: evaluate
  kind: evaluate
  depends_on: [train]
  explain: true                  # SHAP (docs/explainability.md)
  sensitive_features: [Sex]      # fairness by group
  robustness: {noise: 0.1, missing: 0.1}
""",
    "promote": """\
- name: promote
  kind: promote
  depends_on: [evaluate]
  rules:
    - "roc_auc >= champion.roc_auc + 0.01"
    - "accuracy >= 0.75"
""",
    "score": """\
- name: score_passengers
  kind: score
  model: titanic@champion
  source: {database: default, table: passengers}
  target: gold.titanic_predictions
  keys: [PassengerId]
""",
    "export": """\
- name: export_predictions
  kind: export
  depends_on: [score_passengers]
  source: {task: score_passengers}
  database: default
  table: titanic_predictions
  keys: [PassengerId]
  mode: upsert
""",
    "materialize": """\
- name: push_rfm
  kind: materialize
  table: customer_rfm
""",
    "monitor": """\
- name: watch_titanic
  kind: monitor
  model: titanic@champion
  target: {table: gold.titanic_scored}
  time_column: scored_at
  window: day
  per_feature: {Fare: {psi: 0.1}}
  labels: {table: gold.titanic_outcomes, key: [request_id], label: Survived}
  alerts:
    - {when: drift_share > 0.3, consecutive: 2, actions: [log, {run: titanic}]}
    - {when: auc_drop > 0.05, actions: [{webhook: {url: "https://hooks.example.com/ml", secret: "${env:HOOK_SECRET}"}}]}
""",
}

# What a nested model is, for models without a docstring of their own.
MODEL_SUMMARIES: dict[str, str] = {
    "LogAction": "Log the alert at a level (`log` alone: a warning).",
    "WebhookAction": "POST the alert as JSON to a URL, HMAC-SHA256 signed.",
    "RunAction": "Start a run of a pipeline (trigger `monitor`, the alert as its reason).",
    "RangeCheck": "The `range` check of an expectation.",
    "AcceptedValues": "The `accepted_values` check of an expectation.",
}

# The shapes a nested model takes, one YAML line each (each line is checked by a test).
SHAPES: dict[str, str] = {
    "FileArrival": """\
trigger: {file_arrival: raw/taxi/}
trigger: {file_arrival: "raw/taxi/*.csv", poll_seconds: 10, debounce_seconds: 5}
""",
    "RetryPolicy": """\
retries: {count: 3, backoff_seconds: 5, max_backoff_seconds: 60}
""",
    "Expectation": """\
expectations: [{not_null: trip_id, action: fail}]
expectations: [{unique: [vendor_id, pickup_at], action: warn}]
expectations: [{range: {column: fare_amount, min: 0}, action: drop}]
expectations: [{accepted_values: {column: payment_type, values: [1, 2, 3]}, action: warn}]
expectations: [{sql: "dropoff_at >= pickup_at", name: ends_after_start, action: drop}]
""",
    "KRange": """\
k: {min: 2, max: 8}
""",
    "TrainingSetSpec": """\
training_set: {table: gold.churn_snapshots, keys: [customer_id], timestamp: snapshot_at, label: churned, features: [{table: features.customer_rfm}]}
training_set: {sql: sql/snapshots.sql, keys: [customer_id], timestamp: snapshot_at, features: [{table: features.customer_rfm, columns: [recency_days, frequency]}], as_known_at: true}
""",
    "LookupSpec": """\
features: [{table: features.customer_rfm}]
features: [{table: features.customer_rfm, columns: [recency_days, monetary]}]
""",
    "ScoreSource": """\
source: {table: silver.passengers}
source: {table: silver.passengers, version: 3}
source: {database: default, table: passengers}
source: {database: default, query: "SELECT * FROM passengers WHERE Pclass = 1"}
""",
    "SourceSpec": """\
target: {table: gold.titanic_scored}
target: {sql: "SELECT s.*, p.prediction FROM silver.requests s JOIN gold.predictions p USING (request_id)"}
""",
    "AlertRule": """\
alerts: [{when: drift_share > 0.3}]
alerts: [{name: drifted, when: drift_share > 0.3, consecutive: 2, actions: [log, {run: retrain}]}]
alerts: [{when: auc_drop > 0.05, actions: [{log: error}, {webhook: {url: "https://hooks.example.com/x", secret: "${env:HOOK_SECRET}"}}]}]
""",
    "ExportSource": """\
source: {task: score_passengers}
source: {table: gold.titanic_predictions, version: 12}
source: gold.titanic_predictions
""",
}

# Fields a model accepts in a shorter form than its type says (a before-validator widens
# them); the JSON Schema accepts the short form too. A test checks each is really accepted.
SHORTHANDS: dict[str, str] = {
    "task.depends_on": "one name",
    "ingest.partition_by": "one column",
    "sql.keys": "one column",
    "sql.partition_by": "one column",
    "sql.incremental": "one table",
    "export.source": "a table name, short for `{table: NAME}`",
    "evaluate.sensitive_features": "one column",
}

# Sections a boolean also turns on (`true`: every default) or off (`false`).
SWITCHES: dict[str, str] = {
    "evaluate.explain": "`true` for the defaults",
    "evaluate.robustness": "`true` for the defaults",
}

QUARANTINE_LIMIT = (
    "At most this many quarantined rows: a share of the rows checked (below 1: `0.01` = 1%) "
    "or a count (a whole number); past it the task fails with nothing written (default: no limit)."
)

DESCRIPTIONS: dict[str, str] = {
    # the pipeline file
    "pipeline.name": "The pipeline's name; it must equal the file's name, which is its default.",
    "pipeline.description": "What the pipeline is for (shown by tools, never used).",
    "pipeline.schedule": "A cron expression (`0 6 * * *`): `brickyard server` starts a run at those times.",
    "pipeline.trigger": "Start a run when new files land under a lake path (`brickyard server` watches it).",
    "pipeline.max_active_runs": "At most this many runs of the pipeline at once; later ones wait, queued.",
    "pipeline.engine": f"{_ENGINES}: the engine of every task (default: `engine:` of brickyard.yaml).",
    "pipeline.tasks": "The tasks, each of a kind below.",
    "FileArrival.file_arrival": "The lake path (a folder or a glob) to watch, such as `raw/taxi/`.",
    "FileArrival.poll_seconds": "How often to look for new files.",
    "FileArrival.debounce_seconds": "Wait until no new file arrived for this long, so a batch of files starts one run.",
    # every task
    "task.name": "The task's name, unique in the pipeline (lower case, digits, `_`).",
    "task.kind": "The task kind: one of the sections below.",
    "task.depends_on": "Tasks that must succeed first; a failed one skips this task.",
    "task.retries": "Retries of an attempt that failed with a transient error (I/O or connection error, commit conflict, locked database, timeout), with exponential backoff; a terminal error (SQL syntax, missing table or column, bad option) is not retried.",
    "task.timeout_seconds": "Fail an attempt that runs longer (then retry, if retries are left).",
    "task.engine": f"{_ENGINES} for this task alone (default: the pipeline's).",
    "RetryPolicy.count": "How many times a failed attempt is tried again.",
    "RetryPolicy.backoff_seconds": "Wait before the first retry; it doubles for each next one.",
    "RetryPolicy.max_backoff_seconds": "The longest wait between two attempts.",
    # ingest
    "ingest.max_quarantined": QUARANTINE_LIMIT,
    "ingest.source": "A lake path or glob of raw files, such as `raw/taxi/*.csv`.",
    "ingest.format": "`csv`, `json` (JSON lines) or `parquet` (default: from the files' extension).",
    "ingest.target": "The Delta table to append to, `zone.name`.",
    "ingest.contract": "A contract file (`contracts/...yaml`) or a table name: column types, "
    "required columns, expectations, PII.",
    "ingest.options": "How to read CSV files (JSON lines and Parquet need none).",
    "ingest.partition_by": "Columns to partition the target by.",
    "ingest.changed_files": "A loaded file that changed since: `ignore` it (with a warning) or `reload` it "
    "(its rows are appended again).",
    "ReaderOptions.delimiter": "The field separator (default `,`; a tab for `.tsv` files).",
    "ReaderOptions.header": "Whether the first line names the columns.",
    "ReaderOptions.quote": 'The quote character (default `"`).',
    "ReaderOptions.escape": 'The escape character inside quoted values (default `"`: a quote in a value is doubled).',
    "ReaderOptions.null_strings": "Values read as NULL, such as `[NA, \"\"]`.",
    "ReaderOptions.encoding": "The files' text encoding (default UTF-8).",
    "ReaderOptions.max_line_size": "The longest line allowed, in bytes (default: DuckDB's, 2,000,000).",
    # sql
    "sql.max_quarantined": QUARANTINE_LIMIT,
    "sql.query": "The SELECT, inline (give `query` or `sql`).",
    "sql.sql": "A file holding the SELECT, such as `sql/silver_trips.sql` (give `query` or `sql`).",
    "sql.target": "The Delta table to write, `zone.name`.",
    "sql.mode": "`overwrite` the table, `append` the rows, or `merge` them on `keys`.",
    "sql.keys": "The columns that identify a row (`merge` only).",
    "sql.partition_by": "Columns to partition the target by.",
    "sql.incremental": "`true`: read only the rows added to the source tables since the last run "
    "(modes append and merge); a list: only those tables that way, the others whole.",
    "sql.contract": "A contract whose expectations the rows must meet before they are written.",
    "sql.expectations": "Expectations the rows must meet before they are written (with the contract's).",
    # expectations (sql, expect)
    "Expectation.name": "A name for reports and quarantine reasons (default: made from the check).",
    "Expectation.action": "When rows break it: `warn` (count and log), `drop` (to the quarantine table) "
    "or `fail` (stop, nothing written).",
    "Expectation.not_null": "A column that must have a value.",
    "Expectation.unique": "Columns whose values together must be unique.",
    "Expectation.range": "A column whose values must lie within `min` and `max` (inclusive).",
    "Expectation.accepted_values": "A column whose values must be among `values`.",
    "Expectation.sql": "A SQL condition every row must meet, such as `fare_amount >= 0`.",
    "RangeCheck.column": "The column checked.",
    "RangeCheck.min": "The smallest value allowed (none: no lower bound).",
    "RangeCheck.max": "The largest value allowed (none: no upper bound).",
    "AcceptedValues.column": "The column checked.",
    "AcceptedValues.values": "The values allowed.",
    # expect
    "expect.max_quarantined": QUARANTINE_LIMIT,
    "expect.table": "The table to check, `zone.name`.",
    "expect.contract": "A contract to check the table against (default: the table's own "
    "`contracts/<table>.yaml` when no inline expectations are given).",
    "expect.expectations": "Expectations to check (with the contract's).",
    # python
    "python.function": "`package.module:function`; the workspace folder is on the import path.",
    "python.args": "Keyword arguments of the call.",
    # features
    "features.max_quarantined": QUARANTINE_LIMIT,
    "features.table": "The feature table to materialize: `features/NAME.yaml` (NAME or `features.NAME`).",
    "features.tables": "Several feature tables, materialized in this order (instead of `table`).",
    # train
    "train.table": "The lake table of training rows (give `table`, `query` or `training_set`).",
    "train.training_set": "Entity rows with feature values looked up as of each row's timestamp (see "
    "docs/features.md): the latest feature row at or before it, within the table's TTL, else null; no row dropped.",
    "TrainingSetSpec.table": "The lake table of entity rows (give `table` or `sql`).",
    "TrainingSetSpec.sql": "A SQL file (`sql/NAME.sql`) or a query giving the entity rows.",
    "TrainingSetSpec.keys": "The entity key columns (the feature tables' keys must be among the entity columns).",
    "TrainingSetSpec.timestamp": "The column holding each entity row's time: features are looked up as of it.",
    "TrainingSetSpec.label": "The column to predict (train; the same as the task's `label`).",
    "TrainingSetSpec.features": "The lookups: `{table: features.NAME, columns: [...]}` (default columns: all "
    "of the table's features). In `score`, default: the lookups the model was trained with.",
    "TrainingSetSpec.as_known_at": "Use a feature row only if its created time is also at or before the "
    "timestamp (tables that declare `created_time`).",
    "LookupSpec.table": "The feature table, `features.NAME`.",
    "LookupSpec.columns": "The feature columns to join (default: every feature column of the table).",
    "train.version": "Pin the table's version (default: its latest, recorded for `brickyard reproduce`).",
    "train.query": "SQL giving the training rows, instead of `table` (pin versions with `VERSION AS OF`).",
    "train.label": "The column to predict (none for `kmeans`).",
    "train.features": "The input columns (default: every column but the label and `exclude`).",
    "train.exclude": "Columns left out of the default features (ids, for instance).",
    "train.split": "The held-out split, seeded, so that `evaluate` and `reproduce` rebuild it.",
    "train.estimator": "An estimator name (see Estimators below) or an import path `package.module:Class`.",
    "train.params": "The estimator's parameters, such as `{C: 1.0}`.",
    "train.problem": "`classification`, `regression` or `clustering` (default: from the estimator and the "
    "label's values).",
    "train.model_name": "The registered model's name (default: the pipeline's name).",
    "train.k": "`kmeans`: the number of clusters, or `{min, max}` to keep the k with the best silhouette.",
    "train.silhouette_sample": "`kmeans`: rows sampled (seeded) to compute the silhouette.",
    "train.profile_table": "`kmeans`: a table to write each cluster's profile (size, means, a label) to.",
    "train.assignments_table": "`kmeans`: a table to write each row's cluster to (needs `key`).",
    "train.key": "`kmeans`: the columns that identify a row in `assignments_table`.",
    "tune.table": "The lake table of training rows (give `table`, `query` or `training_set`), as for `train`.",
    "tune.version": "Pin the table's version (default: its latest).",
    "tune.query": "SQL giving the training rows, instead of `table`.",
    "tune.training_set": "Entity rows with feature values looked up as of each row's timestamp, as for `train`.",
    "tune.label": "The column to predict.",
    "tune.features": "The input columns (default: every column but the label and `exclude`).",
    "tune.exclude": "Columns left out of the default features.",
    "tune.split": "The held-out split: trials see only its training part; the refitted best is scored on the rest.",
    "tune.problem": "`classification` or `regression` (default: from the label).",
    "tune.model_name": "The registered model's name (default: the pipeline's name).",
    "tune.estimators": "The families searched, each with its search space (`{param: {int: [lo, hi]}}`, "
    "`{float: [lo, hi], log: true}`, `{choice: [...]}` or a fixed value); a family with no space gets its "
    "default one (docs/tuning.md); not with `automl`.",
    "tune.automl": "Pick the families and their spaces by problem type (classification: logistic regression, "
    "LightGBM, XGBoost when installed, gradient boosting, extra trees, random forest; regression: ridge, "
    "elastic net and the same trees), each family's defaults first; turns `ensemble` on (docs/tuning.md).",
    "tune.ensemble": "After the trials, score a voting and a stacking ensemble of the top trials on the same "
    "folds; one becomes the result only when it scores better (default: on with `automl`, else off).",
    "tune.ensemble_size": "How many of the top distinct trials the ensembles take.",
    "tune.metric": "The metric trials are scored on (default `roc_auc` for classification, `rmse` for "
    "regression); its direction follows from it.",
    "tune.trials": "How many trials this run adds to the study (default 20 when no `timeout` is set).",
    "tune.timeout": "Seconds after which no new trial starts; a running trial stops after the fold it is on.",
    "tune.validation": "`cv`: k folds of the training split; `holdout`: one seeded part of it.",
    "tune.folds": "`cv`: the number of folds (stratified for classification when `split.stratify`).",
    "tune.holdout_size": "`holdout`: the share of the training split trials are scored on.",
    "tune.pruner": "Stops unpromising trials between folds: `median`, `hyperband` or `none`.",
    "tune.parallel": "Processes running trials of the study at once.",
    "tune.seed": "The seed of the TPE sampler (default: the split's seed), offset by the trials already run.",
    "tune.resume": "Add to the study of an earlier run (`false`: delete it and start again).",
    "Dimension.int_range": "`int: [low, high]`: whole numbers (with `step`, `log`).",
    "Dimension.float_range": "`float: [low, high]`: real numbers (with `step`, or `log: true`).",
    "Dimension.choice": "`choice: [a, b, ...]`: one of these values.",
    "Dimension.log": "Draw on a log scale (a low bound above 0).",
    "Dimension.step": "Draw on a grid of this step.",
    "SplitSpec.test_size": "The share of rows held out for evaluation.",
    "SplitSpec.seed": "The seed of the split (and of estimators that take `random_state`).",
    "SplitSpec.stratify": "Keep the label's class shares in both parts (classification).",
    "KRange.min": "The smallest k tried.",
    "KRange.max": "The largest k tried.",
    # evaluate, promote
    "evaluate.model": "The registered model (default: the `model_name` of the train task upstream, "
    "or the pipeline's name).",
    "evaluate.version": "A version number, `latest`, or an alias such as `champion` (default: the version "
    "this run trained).",
    "evaluate.explain": "SHAP explanations of the held-out rows (`true` for the defaults); mean |SHAP| per "
    "feature logged as `shap_importance.<feature>`, with `importance_rank_change` against the champion. "
    "See docs/explainability.md.",
    "evaluate.sensitive_features": "Columns of the training rows whose groups are compared (Fairlearn "
    "MetricFrame: selection rate, accuracy, recall; `demographic_parity_difference`, "
    "`equalized_odds_difference`); binary classifiers only.",
    "evaluate.fairness": "The bootstrap of the fairness numbers' confidence intervals (needs `sensitive_features`).",
    "evaluate.robustness": "The metric's drop under noise and missing values (`true` for the defaults), "
    "logged as `robustness_drop`.",
    "ExplainSpec.explainer": "`auto` (tree for tree models, linear for linear ones, else permutation), or one of them.",
    "ExplainSpec.max_rows": "Held-out rows explained at most (a seeded sample when there are more).",
    "ExplainSpec.background_rows": "Reference rows of the linear and permutation explainers.",
    "ExplainSpec.budget_seconds": "The permutation explainer stops after this; the rows explained by then are kept "
    "(and the output says so).",
    "ExplainSpec.n_jobs": "Processes sharing the rows of the tree explainer (0: one per CPU).",
    "ExplainSpec.seed": "The seed of the row samples.",
    "ExplainSpec.plots": "Log `shap_summary.png` and `shap_importance.png`.",
    "FairnessSpec.bootstrap": "Bootstrap resamples of the held-out rows (0: no intervals).",
    "FairnessSpec.confidence": "The confidence of the percentile intervals.",
    "FairnessSpec.seed": "The seed of the resamples.",
    "RobustnessSpec.metric": "The metric whose drop is measured (default: roc_auc, or accuracy without "
    "probabilities; r2 for regression).",
    "RobustnessSpec.noise": "Gaussian noise added to numeric features, in standard deviations of each column.",
    "RobustnessSpec.missing": "The share of the cells of every feature set to null.",
    "RobustnessSpec.repeats": "Perturbed copies measured (the drop is their mean).",
    "RobustnessSpec.seed": "The seed of the first copy (the next ones add 1).",
    "promote.model": "The registered model (default: as for `evaluate`).",
    "promote.version": "The version to gate (default: the version this run trained).",
    "promote.rules": "Gate rules, each `metric >= number` or `metric >= champion.metric + number` "
    "(see Metrics and gate rules below).",
    "promote.fail_on_reject": "Whether a rejected version fails the task (and the run).",
    # score
    "score.model": "`name@alias` (such as `titanic@champion`) or `name/version` (`titanic/3`).",
    "score.source": "The rows to score: a lake table, or a SQL database's table or query.",
    "score.training_set": "Instead of `source`: entity rows with features looked up as of their timestamps, "
    "as in `train` (without `features:`, the lookups the model was trained with, at their current versions).",
    "score.target": "The Delta table the predictions are appended to, `zone.name`.",
    "score.keys": "The columns that identify a row, copied beside each prediction.",
    "score.features": "The model's input columns (default: the model's signature).",
    "score.batch_size": "Rows per batch: the source is never read whole.",
    "score.positive_class": "The class whose probability is written (default: the second class of a "
    "binary classifier).",
    "score.mode": "`append` to the target, or `overwrite` it.",
    "ScoreSource.table": "A lake table `zone.name`, or, with `database`, a SQL table.",
    "ScoreSource.version": "Pin the lake table's version.",
    "ScoreSource.database": "A name under `databases:` in brickyard.yaml: read from that SQL database.",
    "ScoreSource.query": "With `database`: a SELECT giving the rows.",
    # export
    "export.source": "What to export: a lake table (at a version) or the batch an upstream score task wrote.",
    "export.database": "A name under `databases:` in brickyard.yaml.",
    "export.table": "The SQL table (`schema.table` allowed); created when missing.",
    "export.keys": "The columns that identify a row (`upsert`; the primary key of a table it creates).",
    "export.mode": "`append` the rows, `replace` the table's rows, or `upsert` on `keys` (one transaction each).",
    "export.batch_rows": "Rows per COPY chunk or insert batch.",
    "export.attempts": "Load attempts on transient database errors.",
    "export.backoff_seconds": "Wait before the second attempt; it doubles for each next one.",
    "export.keep_staging": "Keep the Parquet files staged in the lake after the load.",
    "export.dedupe": "`upsert` only: when a key repeats in the batch, keep its latest row (by `latest_by`) "
    "instead of failing.",
    "Dedupe.latest_by": "The column that orders a key's rows; the row with its greatest value is kept.",
    "ExportSource.table": "A lake table `zone.name`.",
    "ExportSource.version": "Pin the table's version (default: its latest).",
    "ExportSource.task": "An upstream score task: the batch it wrote in this run.",
    "materialize.table": "The feature table (`features/NAME.yaml`, the Delta table `features.NAME`) to push online.",
    "materialize.full": "Read the whole table instead of the versions added since the last materialization.",
    # monitor
    "monitor.model": "`name@alias`, `name/version`, or a bare `name` (its champion); an alias is read at "
    "each run, and the version's baseline and evaluation metrics are the reference.",
    "monitor.target": "The rows to watch: a lake table or a query with the model's input columns, a time "
    "column, and (for performance) the prediction, probability and label key columns.",
    "monitor.time_column": "The target's time of each row; windows are cut on it (not needed for `window: batch`).",
    "monitor.window": "`hour`, `day`, `week` (from Monday) or `month` (UTC), or `batch`: one window per "
    "Delta version of the target table. A window is computed once, when it has closed.",
    "monitor.features": "The features to watch (default: every feature of the baseline).",
    "monitor.thresholds": "When a statistic says drift, for every feature (PSI, KS, chi-square, JS, "
    "null rate, range).",
    "monitor.per_feature": "A feature's own thresholds or deciding method, or `ignore: true`.",
    "monitor.drift_share": "The dataset drifted when more than this share of the features did.",
    "monitor.prediction": "The target's column with the model's prediction (for performance and "
    "prediction drift; none there: left out).",
    "monitor.probability": "The target's column with the positive class's probability (for the estimate "
    "and AUC; none there: left out).",
    "monitor.problem": "`classification` or `regression` (default: what the version's training recorded).",
    "monitor.positive_class": "The positive class of a binary classifier (default: the second in sorted order).",
    "monitor.labels": "Where labels arrive, joined to the predictions by key; windows without enough "
    "labels get an estimate from the scores instead.",
    "monitor.alerts": "Rules on each window's summary (`drift_share > 0.3`, `auc_drop > 0.05`) with "
    "their actions; one alert per breach.",
    "SourceSpec.table": "A lake table `zone.name`.",
    "SourceSpec.sql": "A SELECT in DuckDB's dialect (translated on Spark).",
    "LabelsSpec.table": "A lake table `zone.name` with the labels.",
    "LabelsSpec.sql": "A SELECT giving the labels.",
    "LabelsSpec.key": "The columns joining a label to its prediction (a request id or the entity key).",
    "LabelsSpec.label": "The column with the true outcome.",
    "LabelsSpec.time_column": "When the label was observed: it counts only for predictions made at or before it.",
    "AlertRule.name": "The rule's name in alerts (default: its condition).",
    "AlertRule.when": "`metric op number`: `drift_share`, `rows`, `drifted_features`, `<metric>`, "
    "`<metric>_drop` (`auc` is `roc_auc`), `estimated_<metric>`, `labelled_rows`, `prediction_drifted`.",
    "AlertRule.consecutive": "Windows in a row the condition must hold before it alerts.",
    "AlertRule.actions": "What to do, in order: `log`, `{webhook: ...}`, `{run: PIPELINE}`.",
    "LogAction.log": "The level: `warning`, `error` or `info`.",
    "WebhookAction.webhook": "Where to POST and how to sign.",
    "RunAction.run": "The pipeline to start.",
    "FeatureRule.method": "The statistic that decides for this feature.",
    "FeatureRule.psi": "PSI above this is drift.",
    "FeatureRule.ks_p_value": "A KS p-value below this is drift.",
    "FeatureRule.chi_square_p_value": "A chi-square p-value below this is drift.",
    "FeatureRule.js": "A Jensen-Shannon distance above this is drift.",
    "FeatureRule.null_rate_increase": "The null rate rising by more than this is drift.",
    "FeatureRule.out_of_range_share": "More than this share of values outside the training range is drift.",
    "FeatureRule.ignore": "Leave the feature out.",
}

# The metrics a train/evaluate run logs, by problem; any metric logged on the version's
# MLflow run can be named in a gate rule.
METRIC_PROBLEMS: dict[str, str] = {
    "accuracy": "classification",
    "precision": "classification",
    "recall": "classification",
    "f1": "classification",
    "roc_auc": "classification",
    "log_loss": "classification",
    "rmse": "regression",
    "mae": "regression",
    "r2": "regression",
    "silhouette": "clustering",
    "inertia": "clustering",
}
OTHER_METRICS = (
    "`fit_seconds` (every model), and for `kmeans` `k` and `n_iter`; the evaluate task's options add "
    "`demographic_parity_difference`, `equalized_odds_difference` (`sensitive_features:`; lower is better), "
    "`robustness_drop` (`robustness:`; lower is better) and `importance_rank_change` (`explain:`; 0 to 1, "
    "lower is steadier; measured by the gate against the current champion), see docs/explainability.md"
)
