"""The Workspace facade: everything the CLI does, as a Python API.

>>> import tempfile
>>> ws = Workspace.init(tempfile.mkdtemp())
>>> ws.sql("SELECT 40 + 2 AS answer").fetchall()
[(42,)]
>>> ws.lake.tables()
[]
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

from brickyard.config import CONFIG_FILE, WorkspaceConfig, load_config, mask
from brickyard.core.contract import Contract
from brickyard.core.feature_table import FeatureTableSpec
from brickyard.core.files import PipelineFile, load_contract, load_feature_table, load_pipeline
from brickyard.engines.base import Engine
from brickyard.engines.duckdb.engine import DuckDBEngine, Relation
from brickyard.engines.registry import DEFAULT_ENGINE, engine_class, engine_names
from brickyard.engines.spark.engine import SparkEngine
from brickyard.engines.spark_session import spark_version
from brickyard.errors import BrickyardError, ConfigError, WorkspaceNotFoundError, suggest
from brickyard.lake import Lake, LakeLocation

WORKSPACE_ENV = "BRICKYARD_WORKSPACE"
FOLDERS = ("pipelines", "sql", "contracts", "features", "lake/raw", "lake/bronze", "lake/silver", "lake/gold", ".brickyard")
DEPENDENCIES = ("duckdb", "deltalake", "pyarrow", "pandas", "pydantic", "typer", "mlflow", "scikit-learn", "pyspark")

CONFIG_TEMPLATE = """\
# brickyard workspace: https://github.com/brickyard (see docs/architecture.md)
name: {name}

# The lake: a folder relative to this file, or an abfs:// URL such as
#   root: abfs://lake@myaccount.dfs.core.windows.net/brickyard
#   storage_options: {{account_key: "${{env:AZURE_STORAGE_KEY}}"}}
lake:
  root: lake

# duckdb (embedded, default) or spark
engine: duckdb

mlflow:
  tracking_uri: sqlite:///mlflow.db
  artifact_location: mlartifacts

state:
  url: sqlite:///.brickyard/state.db

# What one CPU-hour costs you (any currency; this is an example rate: set yours).
# `brickyard run-show` prices each run's CPU-seconds with it.
pricing:
  cpu_hour: 0.05

# Named SQL databases (SQLAlchemy URLs); write passwords as ${{env:NAME}}.
databases:
  default:
    url: sqlite:///warehouse.db

# OpenTelemetry traces of runs and serving requests: off unless set (docs/observability.md).
#   tracing: {{exporter: otlp, endpoint: "http://127.0.0.1:4318"}}
# The objectives `brickyard slo` checks (these are the defaults):
#   slos: {{window: 7d, serving_p95_ms: 100, availability: 0.999, feature_freshness_seconds: 86400, training_seconds: 3600}}
"""

GITIGNORE = "lake/\n.brickyard/\nmlflow.db\nmlartifacts/\nwarehouse.db\n"

EXAMPLE_CSV_PATH = "raw/example/orders.csv"  # under the lake root
EXAMPLE_CSV = """\
order_id,ordered_at,customer,amount
1001,2024-03-01,Ada,25.00
1002,2024-03-01,Grace,12.50
1003,2024-03-02,Linus,40.00
1004,2024-03-02,Ada,-5.00
1005,2024-03-03,Barbara,18.75
1006,2024-03-03,Grace,31.20
"""
EXAMPLE_PIPELINE = """\
# An example pipeline: raw CSV -> bronze -> silver. Run it, then look at what it made:
#   brickyard run example
#   brickyard tables
#   brickyard sql "SELECT * FROM silver.orders"
#   brickyard sql "SELECT * FROM silver.orders__quarantine"
# Every field of every task kind: `brickyard schema --format markdown` (docs/pipelines.md).
# Completion in your editor: `brickyard schema > brickyard.schema.json`, then point the
# YAML extension at it for pipelines/*.yaml. Check all pipelines: `brickyard validate`.
description: Orders from a raw CSV file to a cleaned silver table.
tasks:
  # Land the raw CSV files in a Delta table. Each file is loaded once: add a file to
  # lake/raw/example/ and run again, and only the new file is read.
  - name: ingest_orders
    kind: ingest
    source: raw/example/*.csv
    target: bronze.orders

  # Clean the rows with SQL (DuckDB's dialect; tables are zone.name). A row that breaks
  # an expectation with `action: drop` goes to silver.orders__quarantine with the reason
  # (here, order 1004 and its negative amount); `fail` would stop the run instead.
  - name: clean_orders
    kind: sql
    depends_on: [ingest_orders]
    query: |
      SELECT order_id, CAST(ordered_at AS DATE) AS order_date, lower(customer) AS customer, amount
      FROM bronze.orders
    target: silver.orders
    expectations:
      - {sql: "amount >= 0", name: non_negative_amount, action: drop}
"""


class Workspace:
    """A brickyard workspace: its folder, its config, its lake and engines."""

    def __init__(self, root: Path, config: WorkspaceConfig) -> None:
        self.root = root
        self.config = config

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None) -> Workspace:
        """Open the workspace at `path`, or the one found from `$BRICKYARD_WORKSPACE` or the
        current folder upwards.

        Raises:
            WorkspaceNotFoundError: no `brickyard.yaml` was found.
            ConfigError: the config is invalid.
        """
        start = Path(path or os.environ.get(WORKSPACE_ENV) or Path.cwd()).resolve()
        root = find_root(start)
        return cls(root, load_config(root / CONFIG_FILE, engines=engine_names()))

    @classmethod
    def init(cls, folder: str | os.PathLike[str], name: str | None = None, *, example: bool = False) -> Workspace:
        """Create a workspace (config and folders) and open it; with `example`, also a
        commented example pipeline (`pipelines/example.yaml`) and the raw CSV it reads.

        Raises:
            BrickyardError: the folder already holds a workspace.
        """
        root = Path(folder).resolve()
        config_path = root / CONFIG_FILE
        if config_path.exists():
            raise BrickyardError(
                f"{config_path} already exists", hint="open it with --workspace, or pick another folder"
            )
        for sub in FOLDERS:
            (root / sub).mkdir(parents=True, exist_ok=True)
        workspace_name = name or re.sub(r"[^a-z0-9_]+", "_", root.name.lower()).strip("_") or "brickyard"
        config_path.write_text(CONFIG_TEMPLATE.format(name=workspace_name), encoding="utf-8")
        gitignore = root / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text(GITIGNORE, encoding="utf-8")
        workspace = cls.open(root)
        if example:
            workspace._write_example()
        return workspace

    def _write_example(self) -> None:
        """The example pipeline and its raw CSV (the lake of a new workspace is local)."""
        csv_path = Path(self.lake.location.uri(EXAMPLE_CSV_PATH))
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        csv_path.write_text(EXAMPLE_CSV, encoding="utf-8")
        (self.root / "pipelines" / "example.yaml").write_text(EXAMPLE_PIPELINE, encoding="utf-8")

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @cached_property
    def lake(self) -> Lake:
        """The workspace's lake."""
        lake = self.config.lake
        return Lake(LakeLocation.from_config(lake.root, lake.storage_options, self.root))

    @cached_property
    def _engines(self) -> dict[str, Engine]:
        return {}

    def engine_named(self, name: str) -> Engine:
        """The engine called `name` (see `brickyard.engines.registry`), set up from the
        config section of the same name; one per workspace object, started on first use.

        Raises:
            UnknownEngineError: no engine has that name.
        """
        engines = self._engines
        if name not in engines:
            engines[name] = engine_class(name)(self.lake, getattr(self.config, name, None))
        return engines[name]

    @property
    def engine(self) -> DuckDBEngine:
        """The SQL engine (DuckDB) for interactive queries."""
        engine = self.engine_named(DEFAULT_ENGINE)
        assert isinstance(engine, DuckDBEngine)
        return engine

    @property
    def spark(self) -> SparkEngine:
        """The Spark engine (`spark:` in the config); Spark itself starts on first query."""
        engine = self.engine_named("spark")
        assert isinstance(engine, SparkEngine)
        return engine

    def sql(self, query: str) -> Relation:
        """Run SQL over the lake; returns the result of the last statement.

        Raises:
            SqlError, TableNotFoundError, DataFileNotFoundError.
        """
        return self.engine.query(query)

    def pipeline_names(self) -> list[str]:
        """The pipelines defined in `pipelines/*.yaml`, sorted."""
        folder = self.root / "pipelines"
        return sorted(path.stem for path in folder.glob("*.yaml")) if folder.is_dir() else []

    def pipeline(self, name: str) -> PipelineFile:
        """Load `pipelines/NAME.yaml`.

        Raises:
            BrickyardError: no such pipeline (with close names); ConfigError: it is invalid.
        """
        path = self.root / "pipelines" / f"{name}.yaml"
        if not path.is_file():
            names = self.pipeline_names()
            raise BrickyardError(
                f"no pipeline {name!r} in {path.parent}",
                hint=suggest(name, names) or (f"pipelines: {', '.join(names)}" if names else "create pipelines/NAME.yaml"),
            )
        return load_pipeline(path)

    def feature_table_names(self) -> list[str]:
        """The feature tables defined in `features/*.yaml`, sorted."""
        folder = self.root / "features"
        return sorted(path.stem for path in folder.glob("*.yaml")) if folder.is_dir() else []

    def feature_table(self, name: str) -> FeatureTableSpec:
        """Load `features/NAME.yaml` (NAME may be given as `features.NAME`).

        Raises:
            BrickyardError: no such feature table (with close names); ConfigError: it is invalid.
        """
        name = name.removeprefix("features.")
        path = self.root / "features" / f"{name}.yaml"
        if not path.is_file():
            names = self.feature_table_names()
            raise BrickyardError(
                f"no feature table {name!r} in {path.parent}",
                hint=suggest(name, names) or (f"feature tables: {', '.join(names)}" if names else "create features/NAME.yaml"),
            )
        return load_feature_table(path)

    def contract(self, reference: str) -> Contract:
        """Load a contract by path (relative to the workspace) or by table name
        (`contracts/<zone>.<name>.yaml`).

        Raises:
            ConfigError: the file is missing or invalid.
        """
        path = self.root / reference if reference.endswith((".yaml", ".yml")) else self.root / "contracts" / f"{reference}.yaml"
        if not path.is_file():
            raise ConfigError(f"contract file {path} not found", hint="contracts live in contracts/, e.g. contracts/bronze.trips.yaml")
        return load_contract(path)

    def local_url(self, url: str) -> str:
        """A SQLAlchemy URL with a relative SQLite path made absolute under the workspace."""
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
            return prefix + str(self.root / url[len(prefix) :])
        return url

    @property
    def mlflow_tracking_uri(self) -> str:
        return self.local_url(self.config.mlflow.tracking_uri)

    @property
    def state_url(self) -> str:
        return self.local_url(self.config.state.url)

    def info(self) -> dict[str, Any]:
        """Facts about the workspace for `brickyard info` (credentials masked)."""
        return {
            "workspace": str(self.root),
            "config": str(self.config_path),
            "lake_root": self.lake.location.root,
            "engine": self.config.engine,
            **(
                {"spark_remote": self.config.spark.remote}
                if self.config.spark.remote
                else {"spark_master": self.config.spark.master}
            ),
            "spark_version": spark_version() or "pyspark not installed",
            "mlflow_tracking_uri": mask(self.mlflow_tracking_uri),
            "mlflow_artifact_location": str(self.root / self.config.mlflow.artifact_location),
            "state_database": mask(self.state_url),
            "databases": {
                name: mask(self.local_url(database.url))
                for name, database in self.config.databases.items()
            },
            "versions": versions(),
        }


def find_root(start: Path) -> Path:
    """The nearest folder at or above `start` holding `brickyard.yaml`."""
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise WorkspaceNotFoundError(
        f"no {CONFIG_FILE} in {start} or any folder above it",
        hint="run `brickyard init` to create a workspace, or pass --workspace DIR",
    )


def versions() -> dict[str, str]:
    """Installed versions of brickyard and its main dependencies (without importing them)."""
    found = {}
    for package in ("brickyard", *DEPENDENCIES):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found
