"""The MLflow model registry as brickyard uses it, for training, scoring and serving
alike: model references, versions by number, `latest`, alias, or "the version this pipeline
run trained"; the `champion` / `challenger` aliases; loading a version.

A model reference (`ModelRef`) is `NAME@alias`, `NAME/version` or (where the caller allows
it) a bare `NAME`, meaning the caller's default alias (`brickyard serve`: champion).

A version reference is one of:

- a number (`3`),
- `latest` (the highest version number),
- an alias (`champion`, `challenger`, `previous_champion`, or any other),
- nothing, with a brickyard run id: the newest version whose `brickyard.run_id` tag is that
  run, i.e. the version an upstream train task of the same pipeline run registered. This is
  how `evaluate` and `promote` find their model without the runner passing state.

Every "no such model, version or alias" is a `ModelNotFoundError` (`NoChampionError` for
a missing champion) that names what exists. MLflow is imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from brickyard.errors import UsageError, suggest
from brickyard.ml.errors import ModelError, ModelNotFoundError, NoChampionError
from brickyard.ml.tracking import TAG_RUN_ID

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.models import Model

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous_champion"
_REF_HINT = "write name@alias (titanic@champion) or name/version (titanic/3)"


@dataclass(frozen=True)
class ModelRef:
    """A registered model and which of its versions: ``NAME@alias``, ``NAME/version``, or
    a bare ``NAME`` (alias and version None: the caller's default alias).

    >>> ModelRef.parse("titanic@champion")
    ModelRef(name='titanic', alias='champion', version=None)
    >>> str(ModelRef.parse("titanic/3")), str(ModelRef.parse("titanic"))
    ('titanic/3', 'titanic')
    """

    name: str
    alias: str | None = None
    version: str | None = None

    @classmethod
    def parse(cls, text: str, *, bare: bool = True) -> ModelRef:
        """Parse ``NAME[@alias|/version]``; `bare` False: the alias or version is required.

        Raises:
            UsageError: an empty name or alias, a version that is not a number, a name with
                other characters than letters, digits, '-', '_' and '.', or (`bare` False)
                no alias nor version.
        """
        name, alias, version = text.strip(), None, None
        if "@" in name:
            name, alias = name.split("@", 1)
            if not alias:
                raise UsageError(f"{text!r}: empty alias after '@'", hint="e.g. titanic@champion")
        elif "/" in name:
            name, version = name.rsplit("/", 1)
            if not version.isdigit():
                raise UsageError(f"{text!r}: a version is a number", hint="e.g. titanic/3")
        if not name or not all(ch.isalnum() or ch in "-_." for ch in name):
            raise UsageError(f"{text!r}: a model name is letters, digits, '-', '_' and '.'", hint="e.g. titanic@champion")
        if not bare and alias is None and version is None:
            raise UsageError(f"{text!r} is not a model reference", hint=_REF_HINT)
        return cls(name, alias, version)

    @property
    def selector(self) -> str | None:
        """The version reference for `resolve_version`: the version, else the alias."""
        return self.version if self.version is not None else self.alias

    def __str__(self) -> str:
        return self.name + (f"@{self.alias}" if self.alias else f"/{self.version}" if self.version else "")


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
    except MlflowException as exc:
        names = model_names(client)
        raise ModelNotFoundError(
            f"no registered model {name!r}",
            hint=suggest(name, names)
            or (f"registered models: {', '.join(names)}" if names else "train one with a `kind: train` task first"),
        ) from exc


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
        except MlflowException as exc:
            numbers = [str(mv.version) for mv in versions(client, name)]
            raise ModelNotFoundError(
                f"model {name!r} has no version {text}",
                hint=f"its versions: {', '.join(numbers)}" if numbers else "it has no versions yet",
            ) from exc
    try:
        return client.get_model_version_by_alias(name, text)
    except MlflowException as exc:
        if text == CHAMPION:
            raise NoChampionError(
                f"model {name!r} has no champion version yet",
                hint=f"promote one through the gate: brickyard models promote {name} VERSION",
            ) from exc
        aliases = sorted(require_model(client, name).aliases)
        raise ModelNotFoundError(
            f"model {name!r} has no version or alias {text!r}",
            hint=suggest(text, aliases) or "use a version number, latest, or an alias: " + (", ".join(aliases) or "none yet"),
        ) from exc


@dataclass(frozen=True)
class LoadedVersion:
    """A registered model version loaded from its artifacts: the MLflow pyfunc model (any
    flavor) and, for a scikit-learn model, the estimator itself (`native`)."""

    name: str
    version: str
    run_id: str | None
    pyfunc: Any

    @property
    def metadata(self) -> Model:
        """The version's MLmodel: flavors, signature, input example."""
        return self.pyfunc.metadata

    @property
    def is_sklearn(self) -> bool:
        return "sklearn" in self.metadata.flavors

    @property
    def native(self) -> Any:
        """The scikit-learn estimator for a scikit-learn model (it gives `predict_proba` and
        `classes_`), else the pyfunc model."""
        return self.pyfunc.get_raw_model() if self.is_sklearn else self.pyfunc


def load_version(
    client: MlflowClient, name: str, version: ModelVersion | str, *, download_to: str | None = None
) -> LoadedVersion:
    """Load a version of model `name` (resolved before: see `resolve_version`) from its
    artifacts: the one loader that scoring, evaluation and serving use. MLflow's
    process-wide tracking URI is not touched. Its files are downloaded to `download_to`
    (default: a temporary folder); a Spark MLlib model is read from there by Spark's
    executors, so on a cluster that must be a folder every node sees (and over Spark
    Connect, a folder the server sees: the server reads it).

    Raises:
        ModelError: its files cannot be loaded (missing artifacts, a flavor whose packages
            are not installed, an MLlib model the Connect server cannot read).
    """
    import mlflow.artifacts

    number = str(version if isinstance(version, str) else version.version)
    try:
        found = client.get_model_version(name, number) if isinstance(version, str) else version
        uri = client.get_model_version_download_uri(name, number)
        path = mlflow.artifacts.download_artifacts(artifact_uri=uri, tracking_uri=client.tracking_uri, dst_path=download_to)
        pyfunc = _load_pyfunc(path, f"{name} version {number}")
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(
            f"cannot load model {name} version {number}: {exc}",
            hint="check that its artifacts exist (brickyard models) and that its flavor's packages are installed",
        ) from exc
    return LoadedVersion(name, number, found.run_id, pyfunc)


def _load_pyfunc(path: str, name: str) -> Any:
    """`mlflow.pyfunc.load_model(path)`; a Spark MLlib model while brickyard's Spark session
    is a Spark Connect client is read by the server instead (MLflow's loader needs the JVM)."""
    import mlflow.pyfunc
    from mlflow.models import Model

    from brickyard.engines.spark_connect import current_connect_session

    session = current_connect_session() if "spark" in Model.load(path).flavors else None
    if session is not None:
        from brickyard.ml.spark_connect_model import load_pyfunc_over_connect

        return load_pyfunc_over_connect(path, session, name)
    return mlflow.pyfunc.load_model(path)


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


@dataclass
class VersionPage:
    """One page of a model's versions, newest first, and the token of the next page."""

    rows: list[VersionRow]
    next_page_token: str | None
    aliases: dict[str, str]  # every alias of the model -> its version


def version_page(client: MlflowClient, name: str, *, limit: int = 25, page_token: str | None = None) -> VersionPage:
    """A page of model `name`'s versions, newest first, with aliases, metrics and gate
    decision: the registry pages in SQL (LIMIT/OFFSET) and the metrics of the page's runs
    come from one search, so a model with thousands of versions costs what one page does.

    Raises:
        ModelNotFoundError: no such model.
    """
    model = require_model(client, name)
    by_version: dict[str, list[str]] = {}  # (searched versions carry no aliases)
    for alias, version in model.aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    found = client.search_model_versions(
        f"name = '{_quote(name)}'", max_results=limit, order_by=["version_number DESC"], page_token=page_token or None,
    )
    metrics = runs_metrics(client, [mv.run_id for mv in found if mv.run_id])
    rows = [
        VersionRow(
            name=name, version=int(mv.version), aliases=sorted(by_version.get(str(mv.version), [])),
            created=mv.creation_timestamp / 1000, run_id=mv.run_id, metrics=metrics.get(mv.run_id or "", {}),
            decision=mv.tags.get("brickyard.gate.decision", ""), problem=mv.tags.get("brickyard.problem", ""),
        )
        for mv in found
    ]
    token = found.token.decode("ascii") if isinstance(found.token, bytes) else found.token  # the SQL store's is bytes
    return VersionPage(rows, token or None, {alias: str(v) for alias, v in model.aliases.items()})


def runs_metrics(client: MlflowClient, run_ids: list[str]) -> dict[str, dict[str, float]]:
    """The latest metrics of each of `run_ids` (one search over every experiment)."""
    if not run_ids:
        return {}
    experiments = [e.experiment_id for e in client.search_experiments(max_results=1000)]
    quoted = ", ".join(f"'{_quote(run_id)}'" for run_id in run_ids)
    runs = client.search_runs(experiments, f"attributes.run_id IN ({quoted})", max_results=len(run_ids))
    return {run.info.run_id: dict(run.data.metrics) for run in runs}
