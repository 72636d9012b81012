"""A staged export batch whose manifest a crash left empty, truncated or half-written.

The manifest marks a staging as complete; one that cannot be read is treated as never
written: the next export stages the rows afresh, says so, and loads them exactly once.
(The same on Azure storage: tests/azure/test_abfs_staging.py.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from brickyard import Workspace
from brickyard.lake import Lake, LakeLocation
from brickyard.stores import Database, batch_id_for, export_table, stage
from brickyard.stores.sql_export import LEDGER_TABLE
from brickyard.stores.staging import MANIFEST, load

ROWS = pa.table({"id": list(range(1, 101)), "score": [i / 100 for i in range(1, 101)]})


def scalar(db: Database, sql: str) -> Any:
    engine = db.engine()
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def manifest_of(location: LakeLocation, prefix: str) -> Path:
    return Path(location.root) / prefix / MANIFEST


@pytest.mark.parametrize("left_behind", [b"", b'{"files": ["0a1b/part-00000.parquet"], "ro', b"\x00" * 4096],
                         ids=["empty", "truncated", "zeroed"])
def test_an_unreadable_manifest_is_not_a_staging_and_the_export_loads_once(
    tmp_path: Path, left_behind: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    lake = Lake(LakeLocation(str(tmp_path / "lake")))
    db = Database("default", f"sqlite:///{tmp_path}/warehouse.db")
    lake.write("gold.scores", ROWS)
    prefix = f"staging/p/export/{batch_id_for('gold.scores', 0, 'scores')}"
    manifest = manifest_of(lake.location, prefix)
    manifest.parent.mkdir(parents=True)
    manifest.write_bytes(left_behind)  # what a crash in the middle of the old in-place write left

    assert load(lake.location, prefix) is None
    with caplog.at_level("WARNING", logger="brickyard.export"):
        result = export_table(lake, db, "gold.scores", target="scores", staging="staging/p/export")

    assert (result.loaded, result.rows) == (True, 100)
    assert result.notes and "unreadable" in result.notes[0] and MANIFEST in result.notes[0]
    assert any("staged afresh" in record.getMessage() for record in caplog.records)
    assert scalar(db, "SELECT COUNT(*) FROM scores") == 100
    assert scalar(db, "SELECT COUNT(DISTINCT id) FROM scores") == 100
    again = export_table(lake, db, "gold.scores", target="scores", staging="staging/p/export")
    assert (again.loaded, again.rows) == (False, 0)
    assert scalar(db, f"SELECT COUNT(*) FROM {LEDGER_TABLE}") == 1
    assert not manifest.parent.exists()  # the staging is removed after the load


def test_a_manifest_naming_files_that_are_gone_is_not_a_staging(tmp_path: Path) -> None:
    location = LakeLocation(str(tmp_path / "lake"))
    staged = stage(location, "staging/p/t/b1", ROWS.to_reader())
    (Path(location.root) / "staging/p/t/b1" / staged.files[0]).unlink()
    assert load(location, "staging/p/t/b1") is None
    again = stage(location, "staging/p/t/b1", ROWS.to_reader())
    assert again.rows == 100 and again.files != staged.files and again.notes
    reloaded = load(location, "staging/p/t/b1")
    assert reloaded is not None and (reloaded.files, reloaded.rows, reloaded.notes) == (again.files, 100, ())


CRASH_IN_MANIFEST_WRITE = """
import json, os, sys
import pyarrow as pa
from brickyard.lake import LakeLocation
from brickyard.stores import staging

real_dumps = json.dumps
def dumps_then_die(*args, **kwargs):
    os._exit(9)  # killed while the manifest is being written
staging.json.dumps = dumps_then_die
staging.stage(LakeLocation(sys.argv[1]), sys.argv[2], pa.table({"id": list(range(1, 101))}).to_reader())
"""


def test_a_process_killed_while_writing_the_manifest_leaves_no_manifest(tmp_path: Path) -> None:
    """A real process dies in the middle of writing the manifest; a second export of the
    same batch succeeds and loads every row once."""
    lake = Lake(LakeLocation(str(tmp_path / "lake")))
    db = Database("default", f"sqlite:///{tmp_path}/warehouse.db")
    lake.write("gold.scores", ROWS.select(["id"]))
    prefix = f"staging/p/export/{batch_id_for('gold.scores', 0, 'scores')}"
    crashed = subprocess.run([sys.executable, "-c", textwrap.dedent(CRASH_IN_MANIFEST_WRITE), lake.location.root, prefix],
                             capture_output=True, text=True)
    assert crashed.returncode == 9, crashed.stderr
    assert any((Path(lake.location.root) / prefix).rglob("*.parquet"))  # the rows were staged, then the crash
    manifest = manifest_of(lake.location, prefix)
    assert not manifest.exists() or json.loads(manifest.read_bytes())  # never a partial manifest

    result = export_table(lake, db, "gold.scores", target="scores", staging="staging/p/export")
    assert (result.loaded, result.rows) == (True, 100)
    assert scalar(db, "SELECT COUNT(*) FROM scores") == 100


def test_a_pipeline_run_after_a_crash_left_an_empty_manifest_succeeds_and_exports_once(tmp_path: Path) -> None:
    from brickyard.runtime.runner import PipelineRunner
    from brickyard.runtime.state import StateStore

    ws = Workspace.init(tmp_path / "ws")
    ws.lake.write("gold.scores", ROWS)
    (ws.root / "pipelines" / "nightly.yaml").write_text(
        "tasks:\n"
        "  - {name: export_scores, kind: export, source: gold.scores, table: scores, keys: [id], mode: upsert}\n"
    )
    batch = batch_id_for("gold.scores", 0, "scores")
    manifest = manifest_of(ws.lake.location, f"staging/nightly/export_scores/{batch}")
    manifest.parent.mkdir(parents=True)
    manifest.write_bytes(b"")

    result = PipelineRunner(ws).run("nightly")

    assert result.status == "succeeded", result.error
    attempt = StateStore(ws.state_url).attempts(result.run_id)[-1]
    assert attempt.metrics["rows_loaded"] == 100 and attempt.metrics["loaded"] is True
    assert "unreadable" in attempt.metrics["staging_notes"][0]
    db = Database.from_workspace(ws, "default")
    assert scalar(db, "SELECT COUNT(*) FROM scores") == 100
    assert scalar(db, f"SELECT COUNT(*) FROM {LEDGER_TABLE}") == 1
    assert PipelineRunner(ws).run("nightly").status == "succeeded"  # and again: skipped, nothing doubled
    assert scalar(db, "SELECT COUNT(*) FROM scores") == 100
