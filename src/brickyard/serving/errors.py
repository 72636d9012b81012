"""Errors of model serving; each knows its HTTP status and MLflow-style error code.

    BrickyardError
    └── ServingError                 500 INTERNAL_ERROR (a bug, never caused by input)
        ├── InvalidInputError        400 BAD_REQUEST: the body, a column, a value (names it)
        │   └── SignatureMismatchError   400 INVALID_PARAMETER_VALUE: a column the signature requires is missing
        ├── PayloadTooLargeError     413 REQUEST_TOO_LARGE: body bytes or rows over the limit
        ├── UnsupportedMediaError    415 BAD_REQUEST: not application/json
        ├── UnauthenticatedError     401 UNAUTHENTICATED: no, unknown or revoked token
        ├── ForbiddenError           403 PERMISSION_DENIED: the token's role is too low
        ├── RateLimitedError         429 REQUEST_LIMIT_EXCEEDED (with retry_after seconds)
        ├── EndpointNotFoundError    404 RESOURCE_DOES_NOT_EXIST
        ├── NotReadyError            503 TEMPORARILY_UNAVAILABLE: the model is still loading
        └── FeatureStoreUnavailableError  503 TEMPORARILY_UNAVAILABLE: the online store cannot be read

A model, alias or version that the registry does not have is `brickyard.ml.errors.
ModelNotFoundError`, as everywhere (`brickyard serve` reports it at start-up).
This package is the only place where errors become HTTP statuses.
"""

from __future__ import annotations

from typing import Any

import orjson

from brickyard.errors import BrickyardError


class ServingError(BrickyardError):
    """Root of serving errors; `status` and `error_code` say how it goes over HTTP."""

    status: int = 500
    error_code: str = "INTERNAL_ERROR"

    def __init__(self, message: str, *, hint: str | None = None, column: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.column = column

    def body(self) -> bytes:
        """The JSON error body (MLflow's scoring server shape, plus `column` when known)."""
        doc: dict[str, Any] = {"error_code": self.error_code, "message": str(self)}
        if self.column is not None:
            doc["column"] = self.column
        return orjson.dumps(doc)

    def headers(self) -> dict[str, str]:
        return {}


class InvalidInputError(ServingError):
    status = 400
    error_code = "BAD_REQUEST"


class SignatureMismatchError(InvalidInputError):
    """The input does not fit the model's signature as a whole (a required column is
    missing): MLflow's scoring server answers these with INVALID_PARAMETER_VALUE."""

    error_code = "INVALID_PARAMETER_VALUE"


class PayloadTooLargeError(ServingError):
    status = 413
    error_code = "REQUEST_TOO_LARGE"


class UnsupportedMediaError(ServingError):
    status = 415
    error_code = "BAD_REQUEST"


class UnauthenticatedError(ServingError):
    status = 401
    error_code = "UNAUTHENTICATED"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="brickyard"'}


class ForbiddenError(ServingError):
    status = 403
    error_code = "PERMISSION_DENIED"


class RateLimitedError(ServingError):
    status = 429
    error_code = "REQUEST_LIMIT_EXCEEDED"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, hint=f"retry after {retry_after} s")
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class EndpointNotFoundError(ServingError):
    status = 404
    error_code = "RESOURCE_DOES_NOT_EXIST"


class NotReadyError(ServingError):
    status = 503
    error_code = "TEMPORARILY_UNAVAILABLE"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class FeatureStoreUnavailableError(ServingError):
    """The online feature store a keys-only request needs cannot be read."""

    status = 503
    error_code = "TEMPORARILY_UNAVAILABLE"
