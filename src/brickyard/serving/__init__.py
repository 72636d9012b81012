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
    from brickyard.ml.errors import ModelNotFoundError
    from brickyard.ml.registry import ModelRef
    from brickyard.serving.app import create_app
    from brickyard.serving.errors import ServingError
    from brickyard.serving.hint import demo_hint
    from brickyard.serving.server import ServeSpec, bind_socket, run
    from brickyard.serving.service import ServingService

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
    "create_app": "serving.app",
    "ModelNotFoundError": "ml.errors",
    "ServingError": "serving.errors",
    "demo_hint": "serving.hint",
    "ServeSpec": "serving.server",
    "bind_socket": "serving.server",
    "run": "serving.server",
    "ModelRef": "ml.registry",
    "ServingService": "serving.service",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"brickyard.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'brickyard.serving' has no attribute {name!r}")
