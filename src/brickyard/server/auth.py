"""Bearer-token authentication for the control plane: `Authorization: Bearer bky_...`.

A missing, malformed, unknown or revoked token is a 401 (with `WWW-Authenticate: Bearer`);
a valid token whose role is below the route's is a 403.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from brickyard.runtime.tokens import Role, TokenRecord, TokenStore
from brickyard.server.errors import ApiError

CREATE_HINT = "create one with `brickyard tokens create --role runner` and send `Authorization: Bearer <token>`"


class Auth:
    """Checks the request's token against the workspace's token store."""

    def __init__(self, tokens: TokenStore) -> None:
        self.tokens = tokens

    def require(self, role: Role) -> Callable[[Request], TokenRecord]:
        """A FastAPI dependency that admits tokens of `role` or above and returns the token."""

        def dependency(request: Request) -> TokenRecord:
            record = self.authenticate(request.headers.get("authorization"))
            if not record.allows(role):
                raise ApiError(
                    403,
                    f"token {record.id} has role {record.role.value}; this needs {role.value} or above",
                    hint=f"use a token made with `brickyard tokens create --role {role.value}`",
                )
            request.state.token = record
            return record

        return dependency

    def authenticate(self, header: str | None) -> TokenRecord:
        """The token record named by an Authorization header.

        Raises:
            ApiError: 401, for no header, not a Bearer one, or a token that is not active.
        """
        if not header:
            raise _unauthorized("missing bearer token", CREATE_HINT)
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("the Authorization header must be `Bearer <token>`", CREATE_HINT)
        record = self.tokens.verify(token.strip())
        if record is None:
            raise _unauthorized(
                "invalid or revoked token", "check it with `brickyard tokens list`, or create a new one"
            )
        return record


def _unauthorized(message: str, hint: str) -> ApiError:
    return ApiError(401, message, hint=hint, headers={"WWW-Authenticate": 'Bearer realm="brickyard"'})
