"""Model serving: `brickyard serve`, MLflow-compatible scoring endpoints with a fast path.

>>> from brickyard.serving import ModelRef
>>> ModelRef.parse("titanic@challenger")
ModelRef(name='titanic', alias='challenger', version=None)

In Python (what the CLI does, minus uvicorn)::

    from brickyard import Workspace
    from brickyard.serving import ModelRef, ServingService, create_app
    app = create_app(ServingService(Workspace.open("."), [ModelRef.parse("titanic")], auth=False))

Names are imported on first use: FastAPI, MLflow and scikit-learn load only when serving.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brickyard.serving.app import create_app
    from brickyard.serving.errors import ModelNotFoundError, ServingError
    from brickyard.serving.hint import demo_hint
    from brickyard.serving.server import ServeSpec, bind_socket, run
    from brickyard.serving.service import ModelRef, ServingService

__all__ = [
    "ModelNotFoundError",
    "ModelRef",
    "ServeSpec",
    "ServingError",
    "ServingService",
    "bind_socket",
    "create_app",
    "demo_hint",
    "run",
]

_LAZY = {
    "create_app": "app",
    "ModelNotFoundError": "errors",
    "ServingError": "errors",
    "demo_hint": "hint",
    "ServeSpec": "server",
    "bind_socket": "server",
    "run": "server",
    "ModelRef": "service",
    "ServingService": "service",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"brickyard.serving.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'brickyard.serving' has no attribute {name!r}")
