"""A named SQL database from `brickyard.yaml`: its usable URL, its printable URL, an engine.

>>> db = Database("default", "sqlite:////tmp/warehouse.db")
>>> db.display_url, db.dialect
('sqlite:////tmp/warehouse.db', 'sqlite')
>>> Database("pg", "postgresql+psycopg://app:s3cr3t@db/app").display_url
'postgresql+psycopg://app:***@db/app'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from brickyard.config.models import WorkspaceConfig
from brickyard.config.secrets import mask, resolve
from brickyard.errors import BrickyardError, ConfigError, suggest

if TYPE_CHECKING:
    import sqlalchemy as sa


class WorkspaceLike(Protocol):
    """What `Database.from_workspace` needs of a workspace."""

    config: WorkspaceConfig

    def local_url(self, url: str) -> str: ...

CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class Database:
    """A SQL database: `url` has its secrets resolved (never print it), `display_url`
    is the configured URL with the password masked."""

    name: str
    url: str
    configured_url: str | None = None

    @classmethod
    def from_workspace(cls, workspace: WorkspaceLike, name: str) -> Database:
        """The database called `name` in the workspace's `databases:` (secrets resolved,
        a relative SQLite path made absolute under the workspace).

        Raises:
            ConfigError: no such database, or a `${env:NAME}` in its URL is not set.
        """
        databases = workspace.config.databases
        if name not in databases:
            raise ConfigError(
                f"no database {name!r} in brickyard.yaml",
                hint=suggest(name, databases) or f"databases: {', '.join(sorted(databases)) or 'none'}; add it under `databases:`",
            )
        configured = workspace.local_url(databases[name].url)
        return cls(name, resolve(configured), configured)

    @property
    def display_url(self) -> str:
        return mask(self.configured_url or self.url)

    def redact(self, text: str) -> str:
        """`text` with this database's resolved password (if any) replaced by `***`."""
        password = _password(self.url)
        return mask(text.replace(password, "***") if password else text)

    @property
    def dialect(self) -> str:
        """The SQLAlchemy dialect name: `postgresql`, `sqlite`, `mssql`, ..."""
        return self.url.split(":", 1)[0].split("+", 1)[0]

    @property
    def is_postgres(self) -> bool:
        return self.dialect in ("postgresql", "postgres")

    def engine(self) -> sa.Engine:
        """A new engine without a connection pool: every attempt gets a fresh connection,
        so a connection the server dropped is never reused.

        Raises:
            BrickyardError: the URL is malformed or its driver is not installed.
        """
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        connect_args: dict[str, object] = {}
        if self.is_postgres:
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
        elif self.dialect == "sqlite":
            connect_args["timeout"] = 30
        try:
            return sa.create_engine(self.url, poolclass=NullPool, connect_args=connect_args)
        except ImportError as exc:
            hint = "pip install 'brickyard[postgres]'" if self.is_postgres else f"install the driver for {self.dialect}"
            raise BrickyardError(
                f"database {self.name!r} ({self.display_url}) needs a driver that is not installed: {exc}",
                hint=hint,
            ) from exc
        except Exception as exc:
            raise BrickyardError(
                f"database {self.name!r} has an invalid URL {self.display_url}: {exc}",
                hint="write a SQLAlchemy URL, e.g. postgresql+psycopg://user:${env:PGPASSWORD}@host/db",
            ) from exc


def _password(url: str) -> str | None:
    head, sep, _ = url.partition("@")
    if not sep or "://" not in head:
        return None
    credentials = head.split("://", 1)[1]
    return credentials.split(":", 1)[1] if ":" in credentials else None
