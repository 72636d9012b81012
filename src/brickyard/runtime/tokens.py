"""API tokens: who may call the control plane (and, later, model serving).

A token is `bky_` followed by 32 URL-safe random characters. It is shown once, when it is
created; the state database keeps only its SHA-256, so a copy of the database gives no
working token. Roles are ordered: a `runner` may do what a `reader` may, an `admin` what a
`runner` may.

>>> import tempfile, os
>>> store = TokenStore("sqlite:///" + os.path.join(tempfile.mkdtemp(), "state.db"))
>>> record, token = store.create(Role.RUNNER, name="ci")
>>> store.verify(token).allows(Role.READER)
True
>>> store.revoke(record.id).revoked_at is not None
True
>>> store.verify(token) is None
True
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa

from brickyard.errors import BrickyardError, UsageError, suggest
from brickyard.runtime.db import METADATA, connect

TOKEN_PREFIX = "bky_"

TOKENS = sa.Table(
    "tokens",
    METADATA,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("rate_limit", sa.Float, nullable=True),
)


class Role(str, Enum):
    """What a token may do; each role includes the ones before it."""

    READER = "reader"
    RUNNER = "runner"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    @classmethod
    def parse(cls, value: str | Role) -> Role:
        """The role called `value`.

        Raises:
            UsageError: no such role (with the known ones).
        """
        if isinstance(value, Role):
            return value
        try:
            return cls(value.lower())
        except ValueError:
            names = [role.value for role in cls]
            # from None: the enum's ValueError says less than this error (noise)
            raise UsageError(
                f"unknown role {value!r}", hint=suggest(value, names) or f"roles: {', '.join(names)}"
            ) from None


class TokenNotFoundError(BrickyardError):
    """No token has that id."""


@dataclass(frozen=True)
class TokenRecord:
    """A token as stored: everything but the token itself."""

    id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None
    rate_limit: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, role: Role | str) -> bool:
        """Whether this token's role is `role` or above."""
        return self.role.rank >= Role.parse(role).rank


def hash_token(token: str) -> str:
    """The SHA-256 (hex) under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    """Tokens in the workspace state database (`Workspace.state_url`)."""

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def _engine(self) -> sa.Engine:
        return connect(self.url)

    def create(
        self, role: Role | str, *, name: str = "", rate_limit: float | None = None
    ) -> tuple[TokenRecord, str]:
        """Make a token; returns its record and the token, which is never readable again.

        Raises:
            UsageError: an unknown role, or a rate limit that is not positive.
        """
        if rate_limit is not None and rate_limit <= 0:
            raise UsageError("--rate-limit must be a positive number of requests per second")
        record = TokenRecord(
            id=secrets.token_hex(4),
            name=name,
            role=Role.parse(role),
            created_at=datetime.now(UTC),
            revoked_at=None,
            rate_limit=rate_limit,
        )
        token = TOKEN_PREFIX + secrets.token_urlsafe(24)
        with self._engine.begin() as conn:
            conn.execute(
                TOKENS.insert().values(
                    id=record.id,
                    name=record.name,
                    role=record.role.value,
                    token_hash=hash_token(token),
                    created_at=record.created_at,
                    rate_limit=record.rate_limit,
                )
            )
        return record, token

    def list(self, *, include_revoked: bool = True) -> list[TokenRecord]:
        """Every token, oldest first."""
        query = sa.select(TOKENS).order_by(TOKENS.c.created_at, TOKENS.c.id)
        if not include_revoked:
            query = query.where(TOKENS.c.revoked_at.is_(None))
        with self._engine.connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    def get(self, token_id: str) -> TokenRecord:
        """The token with this id.

        Raises:
            TokenNotFoundError: no such id.
        """
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(TOKENS).where(TOKENS.c.id == token_id)).first()
            if row is None:
                known = [r.id for r in conn.execute(sa.select(TOKENS.c.id))]
                raise TokenNotFoundError(
                    f"no token with id {token_id!r}",
                    hint=suggest(token_id, known) or "run `brickyard tokens list` to see the ids",
                )
        return _record(row)

    def revoke(self, token_id: str) -> TokenRecord:
        """Revoke a token (at once, for every server sharing the state database).
        Revoking a revoked token changes nothing.

        Raises:
            TokenNotFoundError: no such id.
        """
        record = self.get(token_id)
        if record.revoked_at is None:
            with self._engine.begin() as conn:
                conn.execute(
                    TOKENS.update()
                    .where(TOKENS.c.id == token_id, TOKENS.c.revoked_at.is_(None))
                    .values(revoked_at=datetime.now(UTC))
                )
            record = self.get(token_id)
        return record

    def verify(self, token: str) -> TokenRecord | None:
        """The record of an active token; None for an unknown, malformed or revoked one."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        digest = hash_token(token)
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(TOKENS).where(TOKENS.c.token_hash == digest)).first()
        if row is None or not hmac.compare_digest(row.token_hash, digest) or row.revoked_at is not None:
            return None
        return _record(row)


def _record(row: sa.Row[Any]) -> TokenRecord:
    return TokenRecord(
        id=row.id,
        name=row.name or "",
        role=Role(row.role),
        created_at=_aware(row.created_at),
        revoked_at=_aware(row.revoked_at) if row.revoked_at is not None else None,
        rate_limit=row.rate_limit,
    )


def _aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes; they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
