"""Export staging on Azure storage (Azurite): the manifest is one PUT, and an empty or
truncated manifest left by a crash counts as not written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from brickyard.stores import Database, batch_id_for, export_table, stage
from brickyard.stores.sql_export import LEDGER_TABLE
from brickyard.stores.staging import MANIFEST, load

pytestmark = pytest.mark.azurite

ROWS = pa.table({"id": list(range(1, 51)), "score": [i / 50 for i in range(1, 51)]})


def count(db: Database, sql: str) -> Any:
    engine = db.engine()
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def test_a_staging_on_abfs_is_complete_and_reused(abfs_workspace) -> None:
    location = abfs_workspace.lake.location
    staged = stage(location, "staging/p/t/b1", ROWS.to_reader(max_chunksize=20), rows_per_file=30)
    assert (staged.rows, len(staged.files), staged.notes) == (50, 2, ())
    assert location.filesystem.exists(location.fs_path(f"staging/p/t/b1/{MANIFEST}"))
    assert stage(location, "staging/p/t/b1", pa.table({"id": [9]}).to_reader()).files == staged.files
    assert sum(batch.num_rows for batch in staged.batches(100)) == 50


@pytest.mark.parametrize("left_behind", [b"", b'{"files": ["ab'], ids=["empty", "truncated"])
def test_an_unreadable_manifest_on_abfs_is_not_a_staging_and_the_export_loads_once(
    abfs_workspace, tmp_path: Path, left_behind: bytes
) -> None:
    lake = abfs_workspace.lake
    db = Database("default", f"sqlite:///{tmp_path}/warehouse.db")
    lake.write("gold.scores", ROWS)
    prefix = f"staging/p/export/{batch_id_for('gold.scores', 0, 'scores')}"
    lake.location.filesystem.pipe_file(lake.location.fs_path(f"{prefix}/{MANIFEST}"), left_behind)
    assert load(lake.location, prefix) is None

    result = export_table(lake, db, "gold.scores", target="scores", staging="staging/p/export")

    assert (result.loaded, result.rows) == (True, 50)
    assert "unreadable" in result.notes[0]
    assert count(db, "SELECT COUNT(DISTINCT id) FROM scores") == count(db, "SELECT COUNT(*) FROM scores") == 50
    assert export_table(lake, db, "gold.scores", target="scores", staging="staging/p/export").loaded is False
    assert count(db, f"SELECT COUNT(*) FROM {LEDGER_TABLE}") == 1
