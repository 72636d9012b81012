"""The MLflow model registry as brickyard uses it: versions by number, `latest`, alias, or
"the version this pipeline run trained"; the `champion` / `challenger` aliases.

A version reference is one of:

- a number (`3`),
- `latest` (the highest version number),
- an alias (`champion`, `challenger`, `previous_champion`, or any other),
- nothing, with a brickyard run id: the newest version whose `brickyard.run_id` tag is that
  run, i.e. the version an upstream train task of the same pipeline run registered. This is
  how `evaluate` and `promote` find their model without the runner passing state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from brickyard.errors import suggest
from brickyard.ml.errors import ModelNotFoundError, NoChampionError
from brickyard.ml.tracking import TAG_RUN_ID

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous_champion"


def model_names(client: MlflowClient) -> list[str]:
    """Every registered model's name, sorted."""
    return sorted(model.name for model in client.search_registered_models(max_results=1000))


def require_model(client: MlflowClient, name: str) -> Any:
    """The registered model `name`.

    Raises:
        ModelNotFoundError: no such model (with the closest names).
    """
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException:
        names = model_names(client)
        raise ModelNotFoundError(
            f"no registered model {name!r}",
            hint=suggest(name, names)
            or (f"registered models: {', '.join(names)}" if names else "train one with a `kind: train` task first"),
        ) from None


def versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    """Every version of a model, newest first."""
    found = client.search_model_versions(f"name = '{_quote(name)}'", max_results=10_000)
    return sorted(found, key=lambda mv: int(mv.version), reverse=True)


def resolve_version(
    client: MlflowClient, name: str, ref: int | str | None = None, *, run_id: str | None = None
) -> ModelVersion:
    """Find a version by number, `latest`, alias, or (ref None) the brickyard run that trained it.

    Raises:
        ModelNotFoundError: no such model or version; NoChampionError: no `champion` alias.
    """
    from mlflow.exceptions import MlflowException

    require_model(client, name)
    if ref is None:
        if run_id is None:
            ref = "latest"
        else:
            made = [mv for mv in versions(client, name) if mv.tags.get(TAG_RUN_ID) == run_id]
            if not made:
                raise ModelNotFoundError(
                    f"no version of model {name!r} was trained in run {run_id}",
                    hint="put the train task upstream (depends_on), or set version: (a number, latest, or champion)",
                )
            return made[0]
    text = str(ref).strip()
    if text == "latest":
        found = versions(client, name)
        if not found:
            raise ModelNotFoundError(f"model {name!r} has no versions", hint="train one with a `kind: train` task")
        return found[0]
    if text.isdigit():
        try:
            return client.get_model_version(name, text)
        except MlflowException:
            numbers = [str(mv.version) for mv in versions(client, name)]
            raise ModelNotFoundError(
                f"model {name!r} has no version {text}",
                hint=f"its versions: {', '.join(numbers)}" if numbers else "it has no versions yet",
            ) from None
    try:
        return client.get_model_version_by_alias(name, text)
    except MlflowException:
        if text == CHAMPION:
            raise NoChampionError(
                f"model {name!r} has no champion version yet",
                hint=f"promote one through the gate: brickyard models promote {name} VERSION",
            ) from None
        aliases = sorted(require_model(client, name).aliases)
        raise ModelNotFoundError(
            f"model {name!r} has no version or alias {text!r}",
            hint=suggest(text, aliases) or "use a version number, latest, or an alias: " + (", ".join(aliases) or "none yet"),
        ) from None


def champion(client: MlflowClient, name: str) -> ModelVersion | None:
    """The version aliased `champion`, or None."""
    try:
        return resolve_version(client, name, CHAMPION)
    except NoChampionError:
        return None


def run_metrics(client: MlflowClient, version: ModelVersion) -> dict[str, float]:
    """The latest value of every metric logged on a version's MLflow run."""
    if not version.run_id:
        return {}
    return dict(client.get_run(version.run_id).data.metrics)


@dataclass
class VersionRow:
    """One line of `brickyard models`."""

    name: str
    version: int
    aliases: list[str]
    created: float
    run_id: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    decision: str = ""
    problem: str = ""


def overview(client: MlflowClient, name: str | None = None, limit: int = 5) -> list[VersionRow]:
    """The newest `limit` versions of each model (or of `name`), with aliases and metrics."""
    names = [name] if name else model_names(client)
    rows: list[VersionRow] = []
    for model_name in names:
        model = require_model(client, model_name)
        by_version: dict[str, list[str]] = {}
        for alias, version in model.aliases.items():
            by_version.setdefault(str(version), []).append(alias)
        for mv in versions(client, model_name)[:limit]:
            rows.append(VersionRow(
                name=model_name,
                version=int(mv.version),
                aliases=sorted(by_version.get(str(mv.version), [])),
                created=mv.creation_timestamp / 1000,
                run_id=mv.run_id,
                metrics=run_metrics(client, mv),
                decision=mv.tags.get("brickyard.gate.decision", ""),
                problem=mv.tags.get("brickyard.problem", ""),
            ))
    return rows


def _quote(text: str) -> str:
    return text.replace("'", "''")
