"""Fixtures for serving: a workspace with the Titanic example registered, and served apps.

Training and registering takes seconds, so one workspace (model `titanic`, alias champion)
is shared by the session; tests that move aliases register their own model names in it.
Helpers live in serving_helpers.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from serving_helpers import register_version
from starlette.testclient import TestClient

from brickyard import Workspace
from brickyard.serving.app import create_app
from brickyard.serving.service import ModelRef, ServingService
from titanic_example import RegisteredExample, register_titanic_example


@pytest.fixture(scope="session")
def serving_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A workspace whose registry has `titanic` version 1 as champion."""
    return Workspace.init(tmp_path_factory.mktemp("serving") / "ws")


@pytest.fixture(scope="session")
def titanic(serving_ws: Workspace) -> RegisteredExample:
    return register_titanic_example(serving_ws)


@pytest.fixture
def serve(titanic: RegisteredExample) -> Iterator[Callable[..., TestClient]]:
    """Start an app (lifespan included) for models in a workspace; stopped after the test."""
    clients: list[TestClient] = []

    def start(ws: Workspace, *models: str, auth: bool = False, token_store: Any = None, strict_columns: bool = False) -> TestClient:
        refs = [ModelRef.parse(text) for text in models or ("titanic",)]
        service = ServingService(ws, refs, auth=auth, token_store=token_store, strict_columns=strict_columns)
        client = TestClient(create_app(service))  # type: ignore[arg-type]
        client.__enter__()
        clients.append(client)
        assert service.wait_ready(120), service.status()
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def strong_prior(serving_ws: Workspace, titanic: RegisteredExample) -> RegisteredExample:
    """A second logged model (C=0.01), registered as `titanic_prior` version 1."""
    return register_titanic_example(serving_ws, name="titanic_prior", alias=None, C=0.01)


@pytest.fixture(scope="session")
def ab_model(serving_ws: Workspace, titanic: RegisteredExample, strong_prior: RegisteredExample) -> str:
    """`titanic_ab`: version 1 (C=1) champion, version 2 (C=0.01) challenger."""
    register_version(serving_ws, "titanic_ab", titanic.model_uri, "champion")
    register_version(serving_ws, "titanic_ab", strong_prior.model_uri, "challenger")
    return "titanic_ab"
