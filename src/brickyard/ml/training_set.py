"""Training sets: entity rows with feature values looked up as of their timestamps.

`plan` turns a `TrainingSetSpec` into the engine's `AsOfJoin` (every feature table at one
Delta version: the pinned one, or its current one), checking names first: the feature
table definitions, their materialized tables, the columns asked for, the entity source's
key and timestamp columns, and that no two output columns share a name. `load` runs the
join on the task's engine and gives `Loaded` rows whose `reads` hold every table version
read (the entity source's and each feature table's), so `evaluate` and `reproduce`
rebuild exactly the same rows. The rules of the join are in `brickyard.engines.asof`.

`record` is the model's lineage, the MLflow artifact `feature_store/training_set.json`
that `score`, `features describe` and serving read:

    {"entity_keys": [...], "timestamp": "...", "label": "..." | null,
     "lookups": [{"table": "features.NAME", "version": N, "keys": [...],
                  "features": [...], "ttl_seconds": float | null}],
     "request_features": [...]}

`features` of a lookup are the model's columns from that table, in the model's column
order; `request_features` are the model's other columns (from the entity rows, keys
aside), which a request must carry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brickyard.engines.asof import INTERNAL_PREFIX, AsOfJoin, EntitySource, FeatureLookup
from brickyard.errors import BrickyardError, ConfigError, suggest
from brickyard.lake.datasets import arrow_dataset
from brickyard.ml.data import Loaded, _to_pandas
from brickyard.ml.errors import TrainingDataError
from brickyard.ml.spec import TrainingSetSpec

if TYPE_CHECKING:
    from brickyard.engines.base import Engine
    from brickyard.workspace import Workspace

ARTIFACT = "feature_store/training_set.json"


@dataclass(frozen=True)
class Plan:
    """A training set resolved against the lake: the join, and the entity source's columns."""

    join: AsOfJoin
    entity_columns: list[str]

    def offered_features(self, label: str | None) -> list[str]:
        """The columns a model uses by default: the entity rows' own (keys, timestamp and
        label aside), then every looked-up feature."""
        skip = {*self.keys, self.join.timestamp, *([label] if label else [])}
        own = [c for c in self.entity_columns if c not in skip]
        return own + [c for lookup in self.join.lookups for c in lookup.columns]

    @property
    def keys(self) -> list[str]:
        return list(dict.fromkeys(k for lookup in self.join.lookups for k in lookup.keys))


def entity_query(ws: Workspace, spec: TrainingSetSpec) -> tuple[str | None, str | None]:
    """(table, query) of the entity rows: `sql:` is a file when it is one word ending in
    `.sql` (read from the workspace), else the query itself.

    Raises:
        ConfigError: the SQL file does not exist.
    """
    if spec.table is not None:
        return spec.table, None
    text = str(spec.sql).strip()
    if text.endswith(".sql") and not any(ch.isspace() for ch in text):
        path = Path(ws.root) / text
        if not path.is_file():
            raise ConfigError(f"training_set: SQL file {text} not found", hint=f"create {path} or fix training_set.sql")
        return None, path.read_text(encoding="utf-8")
    return None, text


def plan(ws: Workspace, spec: TrainingSetSpec, pinned: Mapping[str, int] | None = None, *, engine: Engine | None = None) -> Plan:
    """The join a training set asks for, every table at one version (see the module doc).

    Raises:
        BrickyardError (ConfigError, TableNotFoundError, TrainingDataError): a name that
        does not resolve, with what there is instead.
    """
    pinned = dict(pinned or {})
    table, query = entity_query(ws, spec)
    source = EntitySource(table=table, version=pinned.get(table) if table else None, query=query, pinned=pinned)
    entity_columns = _entity_columns(ws, table, query, pinned, engine)
    where = f"the training set's entity rows ({source.describe()})"
    for role, column in [*(("key", k) for k in spec.keys), ("timestamp", spec.timestamp), ("label", spec.label)]:
        if column is not None and column not in entity_columns:
            raise TrainingDataError(
                f"{role} column {column!r} is not a column of {where}",
                hint=suggest(column, entity_columns) or f"its columns: {', '.join(entity_columns)}",
            )
    lookups = tuple(_lookup(ws, item.name, item.columns, pinned, spec, entity_columns) for item in spec.features)
    taken: dict[str, str] = {c: "the entity rows" for c in entity_columns}
    for lookup in lookups:
        for column in lookup.columns:
            if column.startswith(INTERNAL_PREFIX):
                raise TrainingDataError(f"column {column!r} of {lookup.table}: names starting {INTERNAL_PREFIX} are reserved")
            if column in taken:
                raise TrainingDataError(
                    f"column {column!r} of {lookup.table} is also a column of {taken[column]}",
                    hint=f"pick the columns to look up: features: [{{table: {lookup.table}, columns: [...]}}]",
                )
            taken[column] = lookup.table
    return Plan(AsOfJoin(source, spec.timestamp, lookups, as_known_at=spec.as_known_at), entity_columns)


def _entity_columns(ws: Workspace, table: str | None, query: str | None, pinned: Mapping[str, int],
                    engine: Engine | None) -> list[str]:
    """The entity source's column names as the engine sees them: on DuckDB a lake table's
    from its Arrow dataset, the very view DuckDB reads (no query bound: that took longer
    than the rest of planning); else as the engine binds the query (and for a table that
    does not resolve, whose error names what there is)."""
    chosen = engine or ws.engine
    if table is not None and chosen.name == "duckdb" and ws.lake.exists(table):
        try:
            return list(arrow_dataset(ws.lake.delta(table, version=pinned.get(table))).schema.names)
        except BrickyardError:
            pass
    probe = f"SELECT * FROM {table}" if table else str(query)
    if table is not None and pinned.get(table) is not None:
        probe = f"SELECT * FROM {table} VERSION AS OF {pinned[table]}"
    return chosen.columns(probe)


def _lookup(ws: Workspace, name: str, columns: Sequence[str] | None, pinned: Mapping[str, int],
            spec: TrainingSetSpec, entity_columns: Sequence[str]) -> FeatureLookup:
    definition = ws.feature_table(name)
    table = definition.table
    if not ws.lake.exists(table):
        raise TrainingDataError(
            f"feature table {table} has not been materialized yet",
            hint=f"run a task `kind: features` with `table: {definition.name}` before this one",
        )
    delta = ws.lake.delta(table, version=pinned.get(table))
    names = [field.name for field in delta.schema().fields]
    offered = [c for c in names if c not in definition.feature_columns_excluded]
    for column in columns or []:
        if column not in offered:
            raise TrainingDataError(
                f"feature column {column!r} is not in {table}",
                hint=suggest(column, offered) or f"its features: {', '.join(offered)}",
            )
    for key in definition.keys:
        if key not in entity_columns:
            raise TrainingDataError(
                f"{table} is keyed by {', '.join(definition.keys)}, but the training set's entity rows have no column {key!r}",
                hint=f"the entity rows' columns: {', '.join(entity_columns)}",
            )
    return FeatureLookup(
        table=table,
        version=delta.version(),
        keys=definition.keys,
        event_time=definition.event_time,
        columns=tuple(columns or offered),
        tie_columns=tuple(offered),
        created_time=definition.created_time,
        ttl_seconds=definition.ttl.total_seconds() if definition.ttl else None,
    )


def load(ws: Workspace, spec: TrainingSetSpec, pinned: Mapping[str, int] | None = None, *, engine: Engine | None = None) -> Loaded:
    """The training set's rows on `engine`, with every table version read and the
    columns it offers as features (`Loaded.features`).

    Raises:
        BrickyardError: as `plan`, and the engine's SqlError.
    """
    planned = plan(ws, spec, pinned, engine=engine)
    result = (engine or ws.engine).as_of_join(planned.join)
    reads = {**result.reads, **{lookup.table: lookup.version for lookup in planned.join.lookups}}
    frame = _to_pandas(result.table)
    return Loaded(frame, reads, "the training set", features=planned.offered_features(spec.label))


def record(ws: Workspace, spec: TrainingSetSpec, reads: Mapping[str, int], model_features: Sequence[str],
           label: str | None = None) -> dict[str, Any]:
    """What `feature_store/training_set.json` holds for a model with `model_features`
    trained on this training set at the table versions `reads` (see the module doc)."""
    lookups = []
    from_tables: set[str] = set()
    for item in spec.features:
        definition = ws.feature_table(item.name)
        table = definition.table
        names = [field.name for field in ws.lake.delta(table, version=reads.get(table)).schema().fields]
        asked = item.columns or [c for c in names if c not in definition.feature_columns_excluded]
        used = [c for c in model_features if c in asked]
        from_tables |= set(asked)
        if used:
            lookups.append({
                "table": table,
                "version": reads.get(table),
                "keys": list(definition.keys),
                "features": used,
                "ttl_seconds": definition.ttl.total_seconds() if definition.ttl else None,
            })
    return {
        "entity_keys": list(spec.keys),
        "timestamp": spec.timestamp,
        "label": label if label is not None else spec.label,
        "lookups": lookups,
        "request_features": [c for c in model_features if c not in from_tables and c not in spec.keys],
    }


def models_using(ws: Workspace, table: str) -> list[dict[str, Any]]:
    """The registered model versions whose training set looked `table` up (from each
    version's `feature_store/training_set.json`), newest first per model: name, version,
    aliases, the Delta version trained on and the features used. A workspace whose MLflow
    store does not exist yet has none (it is not created here)."""
    import mlflow.artifacts

    from brickyard.ml import tracking

    local = tracking._workspace_sqlite(ws, ws.mlflow_tracking_uri)
    if local is not None and not local.exists():
        return []
    client = tracking.connect(ws)
    found = []
    for model in client.search_registered_models():
        aliases: dict[str, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            aliases.setdefault(str(version), []).append(alias)
        for version in sorted(client.search_model_versions(f"name='{model.name}'"), key=lambda v: -int(v.version)):
            try:
                lineage = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/{ARTIFACT}")
            except Exception:  # noqa: BLE001 - a model not trained from a training set has none
                continue
            for lookup in lineage.get("lookups", []):
                if lookup.get("table") == table:
                    found.append({
                        "model": model.name, "version": int(version.version),
                        "aliases": sorted(aliases.get(str(version.version), [])),
                        "table_version": lookup.get("version"), "features": list(lookup.get("features", [])),
                    })
    return found


def lineage_of(run_id: str) -> dict[str, Any] | None:
    """A model run's `feature_store/training_set.json`, or None when it has none (MLflow
    must be connected)."""
    import mlflow.artifacts

    try:
        return dict(mlflow.artifacts.load_dict(f"runs:/{run_id}/{ARTIFACT}"))
    except Exception:  # noqa: BLE001 - MLflow raises several kinds for a missing artifact
        return None


def for_scoring(spec: TrainingSetSpec, run_id: str | None, model: str) -> TrainingSetSpec:
    """The training set a `score` task joins: as given, or, without `features:`, with the
    lookups the model was trained with (its `training_set.json`), at their current versions.

    Raises:
        ConfigError: no `features:` and the model was not trained from a training set.
    """
    if spec.features:
        return spec
    from brickyard.ml.spec import LookupSpec

    lineage = lineage_of(run_id) if run_id else None
    if lineage is None:
        raise ConfigError(
            f"score: training_set has no features: and model {model} was not trained from a training set",
            hint="list the lookups: features: [{table: features.NAME, columns: [...]}]",
        )
    lookups = [LookupSpec(table=item["table"], columns=list(item["features"])) for item in lineage.get("lookups", [])]
    return spec.model_copy(update={"features": lookups})


def score_rows(ws: Workspace, spec: TrainingSetSpec, *, engine: Engine) -> Plan:
    """The join a `score` task runs (every feature table at its current version)."""
    return plan(ws, spec, engine=engine)
