"""The control-plane HTTP server (FastAPI): `create_app(workspace)`; see `server.app`.

The only package besides `serving` that imports FastAPI; the CLI imports it lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brickyard.server.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from brickyard.server.app import create_app

        return create_app
    raise AttributeError(f"module 'brickyard.server' has no attribute {name!r}")
