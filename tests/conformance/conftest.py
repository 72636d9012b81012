"""The conformance suite's fixtures: every test here runs once per engine (see
conformance_kit.py for the workspace a test drives)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conformance_kit import ENGINES, Project, assert_no_leaked_views


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def project(engine: str, request: pytest.FixtureRequest) -> Iterator[Project]:
    """An empty workspace on `engine` (Spark: the process's shared local session)."""
    ws = request.getfixturevalue("spark_workspace" if engine == "spark" else "workspace")
    yield Project(ws, engine)
    if engine == "spark":
        assert_no_leaked_views()

