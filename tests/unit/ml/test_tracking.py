"""A workspace's MLflow store follows the workspace when it is moved or copied."""

from __future__ import annotations

import shutil
from pathlib import Path

from brickyard import Workspace
from brickyard.ml import tracking


def log_note(ws: Workspace) -> str:
    import mlflow

    client = tracking.connect(ws)
    experiment = tracking.experiment_id(client, ws, "notes")
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_text("kept with the workspace", "note.txt")
    return run.info.run_id


def test_a_moved_workspace_finds_its_artifacts(ml_ws: Workspace, tmp_path: Path) -> None:
    run_id = log_note(ml_ws)
    moved = tmp_path / "moved here"  # a space: URIs are quoted
    shutil.move(ml_ws.root, moved)
    ws = Workspace.open(moved)

    relocations = tracking.relocate_artifacts(ws)
    assert [(r.old_root, r.new_root) for r in relocations] == [(ml_ws.root.resolve().as_uri(), moved.resolve().as_uri())]
    assert relocations[0].values >= 2  # the experiment and the run, at least
    assert tracking.relocate_artifacts(ws) == []  # nothing stale any more

    client = tracking.connect(ws)
    run = client.get_run(run_id)
    assert run.info.artifact_uri.startswith((moved / "mlartifacts" / "notes").resolve().as_uri())
    note = client.download_artifacts(run_id, "note.txt", str(tmp_path))
    assert Path(note).read_text() == "kept with the workspace"


def test_a_tracking_store_outside_the_workspace_is_left_alone(ml_ws: Workspace, tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "mlflow.db"
    shared.parent.mkdir()
    shutil.copyfile(ml_ws.root / "mlflow.db", shared)
    config = ml_ws.config_path.read_text().replace("sqlite:///mlflow.db", f"sqlite:///{shared}")
    ml_ws.config_path.write_text(config)
    first = Workspace.open(ml_ws.root)
    log_note(first)
    copy = tmp_path / "copy"
    shutil.copytree(ml_ws.root, copy)
    assert tracking.relocate_artifacts(Workspace.open(copy)) == []  # the first workspace still uses it


def test_a_model_s_versions_are_paged_newest_first_with_aliases_and_metrics(ml_ws: Workspace) -> None:
    from brickyard.ml import registry

    client = tracking.connect(ml_ws)
    experiment = tracking.experiment_id(client, ml_ws, "paging")
    client.create_registered_model("paged")
    for number in range(1, 31):
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "accuracy", number / 100)
        client.create_model_version("paged", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.set_registered_model_alias("paged", "champion", "12")
    first = registry.version_page(client, "paged", limit=25)
    assert [row.version for row in first.rows] == list(range(30, 5, -1))
    assert first.rows[0].metrics == {"accuracy": 0.3}
    assert first.aliases == {"champion": "12"} and [r.aliases for r in first.rows if r.version == 12] == [["champion"]]
    assert isinstance(first.next_page_token, str)
    second = registry.version_page(client, "paged", limit=25, page_token=first.next_page_token)
    assert [row.version for row in second.rows] == [5, 4, 3, 2, 1] and second.next_page_token is None
    assert second.rows[-1].metrics == {"accuracy": 0.01}
