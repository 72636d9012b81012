"""`brickyard init` writes a small commented example pipeline that runs as it is."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import brickyard

pytestmark = pytest.mark.e2e


def test_the_example_pipeline_of_a_new_workspace_runs(tmp_path: Path) -> None:
    created = brickyard("init", str(tmp_path / "fresh"))
    assert created.returncode == 0, created.stderr
    assert "brickyard run example" in created.stdout
    root = tmp_path / "fresh"
    text = (root / "pipelines" / "example.yaml").read_text()
    assert text.count("\n#") + text.startswith("#") >= 5, "the example explains itself in comments"

    validated = brickyard("validate", cwd=root)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    ran = brickyard("run", "example", cwd=root)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    clean = brickyard("sql", "SELECT count(*) AS n, min(amount) AS smallest FROM silver.orders", "-f", "csv", cwd=root)
    assert clean.stdout.splitlines()[1:] == ["5,12.5"], clean.stdout + clean.stderr
    dropped = brickyard("sql", "SELECT order_id, _reason FROM silver.orders__quarantine", "-f", "csv", cwd=root)
    assert dropped.stdout.splitlines()[1:] == ["1004,non_negative_amount"], dropped.stdout + dropped.stderr


def test_no_example_leaves_the_workspace_empty(tmp_path: Path) -> None:
    created = brickyard("init", str(tmp_path / "bare"), "--no-example")
    assert created.returncode == 0, created.stderr
    assert list((tmp_path / "bare" / "pipelines").iterdir()) == []
    assert list((tmp_path / "bare" / "lake" / "raw").iterdir()) == []
