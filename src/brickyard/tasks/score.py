"""The `score` task kind: batch inference with a registered model into a gold Delta table.

```yaml
- name: score_passengers
  kind: score
  model: titanic@champion          # name@alias, or name/version (titanic/3)
  source: {table: silver.passengers}            # a lake table (version: N pins one)
  # source: {database: default, table: passengers}        # a SQL table (config databases)
  # source: {database: default, query: "SELECT * FROM passengers WHERE ..."}
  target: gold.titanic_predictions
  keys: [PassengerId]
  batch_size: 100000               # rows per batch; the source is never read whole
  # features: [Pclass, Sex, ...]   # default: the model's signature (or feature_names_in_)
  # positive_class: 1              # default: the second class of a binary classifier
```

Instead of `source:`, `training_set: {table: gold.customers_today, keys: [customer_id],
timestamp: as_of}` scores entity rows with features looked up as of their timestamps, as
`train` does (docs/features.md); without `features:` the lookups are the ones the model was
trained with (its `feature_store/training_set.json`), at the feature tables' current
versions. The task's engine computes the join (on Spark, the executors); its rows are
collected before scoring (they must fit in memory) and, on Spark, staged like a database
source's.

The target gets `<keys>, prediction, probability, model_name, model_version, scored_at`
and the partition column `score_date` (`probability` only for a model with class
probabilities: a regressor's or a clusterer's would always be null; a target table that
already has the column keeps getting it, null), appended in ONE Delta commit per task run: the
batches stream into a single write, so the whole table is never in memory. The commit
carries the pipeline run id as a Delta application transaction, so a retried attempt of
the same run that finds it committed does not score again, and it carries
`brickyard.run_id` / `brickyard.task` / `brickyard.scored_at` in its commit info, which
is how a downstream `export` finds "the batch this score task wrote in this run".

Lineage: the lake source's version is a read, the target's new version a write.
`metrics.extra`: `model_name`, `model_version`, `model_uri`, `rows_scored`, `scored_at`,
`source`, `batches`.

On `engine: spark` the predictions are computed by Spark's executors (`mapInArrow`, the
model shipped once, `Engine.score_table` in `brickyard.engines.spark.score`) and written by them into the table's
folder, then committed by the driver in the same ONE Delta commit, with the same
application transaction, commit metadata, columns and `score_date` partition; the scores
equal the DuckDB engine's. A lake source is read by the executors. A database source is
read on the driver (no JDBC driver offline), batch by batch into Parquet files staged
under the lake's `staging/<pipeline>/<task>/` and removed after the commit, which the
executors read; `batch_size` is the rows per model call on both engines.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from brickyard.errors import BrickyardError
from brickyard.lake import TableName
from brickyard.lake.datasets import arrow_dataset
from brickyard.ml.spec import TrainingSetSpec
from brickyard.tasks.base import CheckContext, TaskContext, TaskKind, TaskOptions

META_RUN_ID = "brickyard.run_id"
META_PIPELINE = "brickyard.pipeline"
META_TASK = "brickyard.task"
META_SCORED_AT = "brickyard.scored_at"
META_MODEL = "brickyard.model"
PARTITION = "score_date"


class ScoreSource(TaskOptions):
    """A lake table (`table: zone.name`, optionally `version:`), or a SQL database's
    `table:` or `query:` (`database:` names one of the config's `databases`)."""

    table: str | None = None
    version: int | None = Field(default=None, ge=0)
    database: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ScoreSource:
        if self.database is None:
            if self.table is None or self.query is not None:
                raise ValueError("give a lake `table:`, or `database:` with a `table:` or a `query:`")
            _valid(TableName.parse, self.table)
        else:
            if (self.table is None) == (self.query is None):
                raise ValueError("a SQL source needs exactly one of `table:` and `query:`")
            if self.version is not None:
                raise ValueError("`version:` pins a lake table; a SQL source has no versions")
        return self

    @property
    def is_lake(self) -> bool:
        return self.database is None

    def describe(self) -> str:
        if self.is_lake:
            return f"{self.table}" + (f"@{self.version}" if self.version is not None else "")
        return f"{self.database}:{self.table or 'query'}"


class ScoreOptions(TaskOptions):
    """Options of a `score` task (see the module docstring)."""

    model: str
    source: ScoreSource | None = None
    # or entity rows with features looked up as of their timestamps (see `train`); without
    # `features:`, the lookups the model was trained with, at their current versions
    training_set: TrainingSetSpec | None = None
    target: str
    keys: list[str] = Field(min_length=1)
    features: list[str] | None = None
    batch_size: int = Field(default=100_000, ge=1)
    positive_class: str | int | bool | None = None
    mode: Literal["append", "overwrite"] = "append"

    @model_validator(mode="after")
    def _names(self) -> ScoreOptions:
        from brickyard.ml.registry import ModelRef

        _valid(lambda text: ModelRef.parse(text, bare=False), self.model)
        _valid(TableName.parse, self.target)
        if (self.source is None) == (self.training_set is None):
            raise ValueError("give exactly one of source: (the rows to score) or training_set: (entity rows + feature lookups)")
        return self

    def describe(self) -> str:
        """The rows scored, for messages."""
        if self.training_set is not None:
            return f"training set ({self.training_set.table or 'sql'})"
        assert self.source is not None
        return self.source.describe()


def _valid(parse: Any, text: str) -> None:
    """Run a parser in a validator: its BrickyardError becomes pydantic's ValueError."""
    try:
        parse(text)
    except BrickyardError as exc:
        # from None: pydantic shows this ValueError's text, which is the cause's message (noise)
        raise ValueError(str(exc)) from None


class ScoreTask(TaskKind):
    """Scores a lake or SQL table with a registered model into a Delta table."""

    name = "score"
    Options = ScoreOptions
    needs: ClassVar[frozenset[str]] = frozenset()  # runs on every engine

    def check(self, options: ScoreOptions, context: CheckContext) -> list[str]:
        source = options.source
        if source is None:
            from brickyard.tasks.train import training_set_problems

            assert options.training_set is not None
            return training_set_problems(options.training_set, context)
        if source.is_lake:
            table = source.table or ""
            if table not in context.produced_tables and not context.workspace.lake.exists(table):
                return [f"table {table!r} does not exist in the lake and no task of the pipeline writes it"]
        elif source.database not in context.workspace.config.databases:
            return [f"database {source.database!r} is not in brickyard.yaml's databases"]
        return []

    def writes(self, options: ScoreOptions) -> list[str]:
        return [options.target]

    def run(self, options: ScoreOptions, context: TaskContext) -> None:
        from brickyard.ml.scoring import load_model

        lake, engine = context.lake, context.engine
        app_id = f"brickyard/{context.pipeline.name}/{context.task.name}/{context.run_id}"
        if lake.exists(options.target) and lake.delta(options.target).transaction_version(app_id) is not None:
            self._already_done(options, context)
            return
        engine.start()  # an engine that cannot start fails before the model is loaded
        with _model_folder(context, shared=engine.distributed) as folder:
            model = load_model(context.workspace, options.model, positive_class=options.positive_class, download_to=folder)
            if options.features:
                model.features = list(options.features)
            context.log.info("scoring %s with %s version %s", options.describe(), model.name, model.version)
            self._score(options, context, model, app_id)

    def _score(self, options: ScoreOptions, context: TaskContext, model: Any, app_id: str) -> None:
        """Score the source with `model` on the task's engine and record the outcome."""
        import functools
        import uuid

        from brickyard.engines.base import ScoreRequest, ScoringFailedError
        from brickyard.ml.errors import ModelError
        from brickyard.ml.scoring import mllib_model, require_columns, score_batches

        lake, engine, source = context.lake, context.engine, options.source
        scored_at = datetime.now(UTC)
        probability = self._probability(options, context, model)
        table = version = None
        if source is not None and source.is_lake:
            table = source.table or ""
            version = lake.delta(table, version=source.version).version()
            context.record_read(table, version)
        features = model.features
        moment = scored_at.astimezone(UTC)
        request = ScoreRequest(
            target=options.target,
            mode=options.mode,
            partition_by=[PARTITION],
            metadata={
                META_RUN_ID: context.run_id,
                META_PIPELINE: context.pipeline.name,
                META_TASK: context.task.name,
                META_SCORED_AT: scored_at.isoformat(),
                META_MODEL: f"{model.name}/{model.version}",
            },
            transaction=(app_id, 0),
            keys=list(options.keys),
            columns=list(dict.fromkeys([*options.keys, *features])) if features else None,
            batch_size=options.batch_size,
            score=functools.partial(score_batches, model, keys=options.keys, scored_at=scored_at, probability=probability),
            batches=lambda: self._batches(options, context, features, version, model),
            empty_schema=lambda source_schema: self._empty_schema(options, context, source_schema, probability),
            check_columns=lambda columns: require_columns(columns, [*options.keys, *(features or [])]),
            staging=lake.location.uri(
                f"staging/{context.pipeline.name}/{context.task.name}/{context.run_id}-{uuid.uuid4().hex[:8]}"
            ),
            table=table,
            version=version,
            native_model=mllib_model(model),
            constants={
                "model_name": model.name,
                "model_version": model.version,
                "scored_at": moment,
                "score_date": moment.date(),
            },
        )
        try:
            scored = engine.score_table(request)
        except ScoringFailedError as exc:
            raise ModelError(
                f"scoring {options.describe()} with {model.name} version {model.version} failed: {exc.message}",
                hint="check that the source's feature columns have the types the model was trained on",
            ) from (exc.__cause__ or exc)
        if scored.version is None:
            self._already_done(options, context)
            return
        context.record_write(options.target, scored.version)
        context.metrics.rows_in = scored.rows
        context.metrics.rows_out = scored.rows
        context.metrics.extra.update({
            "model_name": model.name,
            "model_version": model.version,
            "model_uri": model.uri,
            "rows_scored": scored.rows,
            "batches": scored.batches,
            "scored_at": scored_at.isoformat(),
            "source": options.describe(),
            "engine": engine.name,
        })
        on = f" on {engine.name.title()}" if engine.distributed else ""
        context.log.info("scored %d rows into %s version %d%s", scored.rows, options.target, scored.version, on)

    # -- helpers ----------------------------------------------------------------------

    def _training_set_batches(self, options: ScoreOptions, context: TaskContext, model_features: list[str] | None,
                              run_id: str | None, model_name: str) -> Iterator[Any]:
        """The training set's rows, joined on the task's engine and collected (the entity
        rows with their features must fit in memory), in batches."""
        from brickyard.ml import training_set
        from brickyard.ml.scoring import require_columns

        assert options.training_set is not None
        spec = training_set.for_scoring(options.training_set, run_id, model_name)
        planned = training_set.score_rows(context.workspace, spec, engine=context.engine)
        result = context.engine.as_of_join(planned.join)
        for table, version in {**result.reads, **{lookup.table: lookup.version for lookup in planned.join.lookups}}.items():
            context.record_read(table, version)
        table = result.table
        if model_features:
            columns = list(dict.fromkeys([*options.keys, *model_features]))
            require_columns(table.column_names, columns)
            table = table.select(columns)
        return _or_empty_batch(iter(table.to_batches(max_chunksize=options.batch_size)), table.schema)

    def _batches(
        self, options: ScoreOptions, context: TaskContext, features: list[str] | None, version: int | None, model: Any
    ) -> Iterator[Any]:
        """The source's rows, batch by batch (a lake source at `version`, recorded as read)."""
        source = options.source
        if source is None:
            return self._training_set_batches(options, context, features, model.run_id, model.name)
        if source is None:
            return self._training_set_batches(options, context, features, getattr(model, "run_id", None), getattr(model, "name", ""))
        columns = list(dict.fromkeys([*options.keys, *features])) if features else None
        if source.is_lake:
            table = source.table or ""
            dataset = arrow_dataset(context.lake.delta(table, version=version))
            if columns:
                from brickyard.ml.scoring import require_columns

                require_columns(dataset.schema.names, columns)
            scanner = dataset.scanner(columns=columns, batch_size=options.batch_size)
            return _or_empty_batch(scanner.to_batches(), scanner.projected_schema)
        from brickyard.stores import Database, read_sql_batches

        database = Database.from_workspace(context.workspace, source.database or "default")
        return read_sql_batches(
            database,
            table=source.table,
            query=source.query,
            columns=columns if source.table else None,
            batch_size=options.batch_size,
        )

    def _probability(self, options: ScoreOptions, context: TaskContext, model: Any) -> bool:
        """Whether the output has a `probability` column: the model gives class
        probabilities, or the target table already has the column (made when every model's
        output had it)."""
        if model.has_proba:
            return True
        if not context.lake.exists(options.target):
            return False
        names = [field.name for field in context.lake.delta(options.target).schema().fields]
        if "probability" in names:
            context.log.info(
                "%s gives no class probabilities; %s has a probability column, so it is written null",
                model.name, options.target,
            )
            return True
        return False

    def _empty_schema(self, options: ScoreOptions, context: TaskContext, source_schema: Any, probability: bool) -> Any:
        import pyarrow as pa

        from brickyard.ml.scoring import output_schema

        if context.lake.exists(options.target):
            return pa.schema(context.lake.delta(options.target).schema().to_arrow())
        keys = [
            source_schema.field(key) if source_schema is not None and key in source_schema.names else pa.field(key, pa.string())
            for key in options.keys
        ]
        return output_schema(keys, pa.float64(), probability=probability)

    def _already_done(self, options: ScoreOptions, context: TaskContext) -> None:
        """A previous attempt of this run committed: report its commit, score nothing."""
        for entry in context.lake.history(options.target, limit=1000):
            if entry.get(META_RUN_ID) == context.run_id and entry.get(META_TASK) == context.task.name:
                version = int(entry["version"])
                rows = int((entry.get("operationMetrics") or {}).get("num_added_rows", 0))
                context.record_write(options.target, version)
                context.metrics.rows_out = rows
                context.metrics.extra.update({"rows_scored": rows, "already_committed": True, "model": entry.get(META_MODEL)})
                context.log.info("run %s already scored into %s version %d", context.run_id, options.target, version)
                return
        context.record_write(options.target, context.lake.version(options.target))
        context.metrics.extra["already_committed"] = True


def _or_empty_batch(batches: Iterator[Any], schema: Any) -> Iterator[Any]:
    """The batches, or one empty batch of `schema` when there are none: an empty source
    table still gives its key columns' types to the scores (as on Spark)."""
    import pyarrow as pa

    empty = True
    for batch in batches:
        empty = False
        yield batch
    if empty:
        yield pa.RecordBatch.from_pylist([], schema=schema)


@contextmanager
def _model_folder(context: TaskContext, *, shared: bool) -> Iterator[str | None]:
    """Where the model is downloaded: with `shared` (a distributed engine), a fresh folder
    under the lake's `staging/<pipeline>/<task>/` (which every node sees), removed
    afterwards; else None (MLflow's own local download)."""
    import os
    import shutil
    import uuid

    if not shared:
        yield None
        return
    folder = context.lake.location.uri(
        f"staging/{context.pipeline.name}/{context.task.name}/{context.run_id}-model-{uuid.uuid4().hex[:8]}"
    )
    os.makedirs(folder)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
