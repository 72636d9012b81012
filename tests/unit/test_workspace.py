"""brickyard.Workspace: init, open (upward search, env var), info with masked secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from brickyard import BrickyardError, Workspace, WorkspaceNotFoundError
from brickyard.workspace import FOLDERS, WORKSPACE_ENV


@pytest.fixture(autouse=True)
def no_workspace_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WORKSPACE_ENV, raising=False)


def init(folder: Path, **databases: str) -> Workspace:
    workspace = Workspace.init(folder)
    if databases:
        lines = "".join(f"  {name}:\n    url: '{url}'\n" for name, url in databases.items())
        config = workspace.config_path
        config.write_text(config.read_text().split("databases:")[0] + "databases:\n" + lines)
        workspace = Workspace.open(folder)
    return workspace


def test_init_creates_config_and_folders(tmp_path: Path) -> None:
    workspace = Workspace.init(tmp_path / "My Project")
    root = tmp_path / "My Project"
    assert workspace.root == root
    assert (root / "brickyard.yaml").is_file()
    for folder in FOLDERS:
        assert (root / folder).is_dir(), folder
    assert ".brickyard/" in (root / ".gitignore").read_text()
    assert workspace.config.name == "my_project"
    assert workspace.config.engine == "duckdb"


def test_init_keeps_an_existing_gitignore(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("mine\n")
    Workspace.init(tmp_path)
    assert (tmp_path / ".gitignore").read_text() == "mine\n"


def test_init_with_a_name(tmp_path: Path) -> None:
    assert Workspace.init(tmp_path, name="taxi").config.name == "taxi"


def test_second_init_fails(tmp_path: Path) -> None:
    Workspace.init(tmp_path)
    with pytest.raises(BrickyardError, match="already exists"):
        Workspace.init(tmp_path)


def test_open_finds_the_root_from_a_subfolder(tmp_path: Path) -> None:
    Workspace.init(tmp_path)
    deep = tmp_path / "pipelines" / "daily"
    deep.mkdir()
    assert Workspace.open(deep).root == tmp_path.resolve()


def test_open_without_path_uses_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Workspace.init(tmp_path)
    monkeypatch.chdir(tmp_path / "sql")
    assert Workspace.open().root == tmp_path.resolve()


def test_open_honours_the_workspace_env_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Workspace.init(tmp_path / "ws")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv(WORKSPACE_ENV, str(tmp_path / "ws"))
    assert Workspace.open().root == (tmp_path / "ws").resolve()


def test_explicit_path_wins_over_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Workspace.init(tmp_path / "a")
    Workspace.init(tmp_path / "b")
    monkeypatch.setenv(WORKSPACE_ENV, str(tmp_path / "a"))
    assert Workspace.open(tmp_path / "b").root == (tmp_path / "b").resolve()


def test_open_without_a_workspace_raises_with_init_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WorkspaceNotFoundError) as caught:
        Workspace.open()
    assert "brickyard.yaml" in str(caught.value)
    assert "brickyard init" in caught.value.hint


def test_workspace_sql_reads_a_lake_table(tmp_path: Path) -> None:
    import pyarrow as pa

    workspace = Workspace.init(tmp_path)
    workspace.lake.write("gold.fares", pa.table({"fare": [2.0, 3.0]}))
    assert (tmp_path / "lake" / "gold" / "fares" / "_delta_log").is_dir()
    assert workspace.lake.tables() == ["gold.fares"]
    assert workspace.sql("SELECT sum(fare) FROM gold.fares").fetchall() == [(5.0,)]


def test_info_lists_the_workspace_facts(tmp_path: Path) -> None:
    info = Workspace.init(tmp_path).info()
    root = tmp_path.resolve()
    assert info["workspace"] == str(root)
    assert info["config"] == str(root / "brickyard.yaml")
    assert info["lake_root"] == str(root / "lake")
    assert info["engine"] == "duckdb"
    assert info["mlflow_tracking_uri"] == f"sqlite:///{root / 'mlflow.db'}"
    assert info["mlflow_artifact_location"] == str(root / "mlartifacts")
    assert info["state_database"] == f"sqlite:///{root / '.brickyard' / 'state.db'}"
    assert info["databases"] == {"default": f"sqlite:///{root / 'warehouse.db'}"}
    assert info["versions"]["brickyard"] == "0.1.0"
    assert {"duckdb", "deltalake", "pyarrow"} <= set(info["versions"])


def test_info_masks_a_password_reference(tmp_path: Path) -> None:
    info = init(tmp_path, warehouse="postgresql://app:${env:PG_PASSWORD}@db:5432/app").info()
    assert info["databases"]["warehouse"] == "postgresql://app:***@db:5432/app"


def test_info_masks_a_literal_password(tmp_path: Path) -> None:
    info = init(tmp_path, warehouse="postgresql://app:hunter2@db/app").info()
    assert "hunter2" not in str(info)
    assert info["databases"]["warehouse"] == "postgresql://app:***@db/app"


def test_info_keeps_absolute_and_memory_sqlite_urls(tmp_path: Path) -> None:
    info = init(tmp_path, mem="sqlite:///:memory:", abs="sqlite:////var/data/x.db").info()
    assert info["databases"] == {"mem": "sqlite:///:memory:", "abs": "sqlite:////var/data/x.db"}
