"""brickyard.config: loading brickyard.yaml with errors that point at file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from brickyard.config import load_config, mask, resolve
from brickyard.config.secrets import redacted
from brickyard.engines.registry import engine_names
from brickyard.errors import ConfigError


def write_config(folder: Path, text: str, *, lake: bool = True) -> Path:
    if lake:
        (folder / "lake").mkdir(exist_ok=True)
    path = folder / "brickyard.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value


def test_valid_file_loads_with_defaults(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "name: demo\n"))
    assert config.name == "demo"
    assert config.engine == "duckdb"
    assert config.lake.root == "lake"
    assert config.lake.storage_options == {}
    assert config.duckdb.threads is None
    assert config.mlflow.tracking_uri == "sqlite:///mlflow.db"
    assert config.state.url == "sqlite:///.brickyard/state.db"
    assert config.databases["default"].url == "sqlite:///warehouse.db"


def test_empty_file_loads_all_defaults(tmp_path: Path) -> None:
    assert load_config(write_config(tmp_path, "")).name == "brickyard"


def test_unknown_top_level_key_names_file_line_field_and_suggestion(tmp_path: Path) -> None:
    path = write_config(tmp_path, "name: demo\nengin: duckdb\n")
    error = config_error(path)
    text = str(error)
    assert str(path) in text
    assert f"{path}:2" in text
    assert "engin" in text
    assert "unknown key" in text
    assert "did you mean engine" in text
    assert (error.file, error.line, error.field) == (str(path), 2, "engin")


def test_unknown_nested_key_names_dotted_field_and_its_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, "name: demo\n\nlake:\n  root: lake\n  rot: x\n")
    error = config_error(path)
    assert error.line == 5
    assert error.field == "lake.rot"
    assert f"{path}:5: lake.rot" in str(error)
    assert "did you mean root?" in str(error)


def test_wrong_type_names_line_and_field(tmp_path: Path) -> None:
    path = write_config(tmp_path, "name: demo\nduckdb:\n  threads: many\n")
    error = config_error(path)
    assert error.line == 3
    assert error.field == "duckdb.threads"
    assert f"{path}:3: duckdb.threads" in str(error)
    assert "many" in str(error)


def test_unknown_engine_names_allowed_values(tmp_path: Path) -> None:
    path = write_config(tmp_path, "engine: postgres\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, engines=engine_names())
    error = caught.value
    assert error.line == 1
    assert error.field == "engine"
    assert "duckdb" in str(error) and "spark" in str(error)
    assert "postgres" in str(error)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, "name: demo\nlake:\n  root: [lake\nengine: duckdb\n")
    error = config_error(path)
    assert "not valid YAML" in str(error)
    assert error.line is not None and error.line >= 3
    assert f"{path}:{error.line}" in str(error)


def test_invalid_yaml_bad_indentation_names_the_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, "name: demo\nengine: duckdb\n  threads: 2\n")
    error = config_error(path)
    assert "not valid YAML" in str(error)
    assert error.line == 3


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "brickyard.yaml"
    error = config_error(path)
    assert str(path) in str(error)
    assert "not found" in str(error)


def test_missing_local_lake_folder_names_lake_root_and_its_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, "name: demo\nlake:\n  root: nowhere\n", lake=False)
    error = config_error(path)
    assert error.field == "lake.root"
    assert error.line == 3
    assert f"{path}:3: lake.root" in str(error)
    assert "nowhere" in str(error)


def test_absolute_lake_root_that_exists_loads(tmp_path: Path) -> None:
    lake = tmp_path / "elsewhere"
    lake.mkdir()
    config = load_config(write_config(tmp_path, f"lake:\n  root: {lake}\n", lake=False))
    assert config.lake.root == str(lake)


def test_remote_lake_root_is_not_checked_on_disk(tmp_path: Path) -> None:
    text = "lake:\n  root: abfs://lake@acct.dfs.core.windows.net/by\n"
    config = load_config(write_config(tmp_path, text, lake=False))
    assert config.lake.root.startswith("abfs://")


def test_literal_credential_in_storage_options_is_rejected(tmp_path: Path) -> None:
    text = "lake:\n  root: lake\n  storage_options:\n    account_name: acct\n    account_key: abc\n"
    path = write_config(tmp_path, text)
    error = config_error(path)
    assert error.field == "lake.storage_options"
    assert error.line == 3
    assert "account_key" in str(error)
    assert "${env:" in str(error)
    assert "abc" not in str(error) and "'account_key': '***'" in str(error)


def test_env_reference_credential_in_storage_options_is_accepted(tmp_path: Path) -> None:
    text = "lake:\n  root: lake\n  storage_options:\n    account_key: ${env:AZURE_KEY}\n"
    config = load_config(write_config(tmp_path, text))
    assert config.lake.storage_options == {"account_key": "${env:AZURE_KEY}"}


def test_resolve_replaces_env_references() -> None:
    assert resolve("key=${env:MY_KEY}", {"MY_KEY": "s3cr3t"}) == "key=s3cr3t"


def test_resolve_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRICKYARD_TEST_SECRET", "hunter2")
    assert resolve("${env:BRICKYARD_TEST_SECRET}") == "hunter2"


def test_resolve_unset_variable_raises_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRICKYARD_UNSET_VAR", raising=False)
    with pytest.raises(ConfigError) as caught:
        resolve("${env:BRICKYARD_UNSET_VAR}")
    assert "BRICKYARD_UNSET_VAR" in str(caught.value)
    assert "export BRICKYARD_UNSET_VAR" in str(caught.value)


def test_mask_hides_url_password() -> None:
    masked = mask("postgresql://app:hunter2@db:5432/app")
    assert "hunter2" not in masked
    assert masked == "postgresql://app:***@db:5432/app"


def test_mask_hides_env_references() -> None:
    assert mask("postgresql://app:${env:PG_PASSWORD}@db/app") == "postgresql://app:***@db/app"
    assert mask("token=${env:TOKEN}") == "token=***"


def test_mask_leaves_urls_without_password_alone() -> None:
    assert mask("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"
    assert mask("postgresql://app@db/app") == "postgresql://app@db/app"


def test_a_workspace_refuses_an_engine_the_registry_does_not_name(tmp_path: Path) -> None:
    from brickyard import Workspace

    write_config(tmp_path, "engine: sparc\n")
    with pytest.raises(ConfigError) as caught:
        Workspace.open(tmp_path)
    assert caught.value.line == 1 and caught.value.field == "engine"
    assert "'sparc'" in str(caught.value) and "duckdb, spark" in str(caught.value)


def test_online_store_defaults_to_a_sqlite_file_in_the_workspace(tmp_path: Path) -> None:
    assert load_config(write_config(tmp_path, "name: demo\n")).online_store == "sqlite:///.brickyard/online.db"
    assert load_config(write_config(tmp_path, "online_store: redis://127.0.0.1:6379/0\n")).online_store.startswith("redis://")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis//localhost:6379", "is not an online store URL"),
        ("redis://localhost:port/0", "needs a host and a numeric port"),
        ("redis://localhost:6379/zero", "the database 'zero' is not a number"),
        ("redis://:hunter2@localhost:6379/0", "holds a literal password"),
        ("sqlite:///", "names no file"),
    ],
)
def test_a_bad_online_store_url_is_located(tmp_path: Path, url: str, says: str) -> None:
    path = write_config(tmp_path, f"name: demo\nonline_store: {url}\n")
    error = config_error(path)
    assert says in str(error)
    assert (error.file, error.line, error.field) == (str(path), 2, "online_store")


def test_a_redis_password_may_be_a_reference(tmp_path: Path) -> None:
    url = "redis://:${env:REDIS_PASSWORD}@localhost:6379/0"
    assert load_config(write_config(tmp_path, f"online_store: \"{url}\"\n")).online_store == url


def test_a_config_error_never_shows_a_credential(tmp_path: Path) -> None:
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    text = f"lake:\n  root: lake\n  storage_options:\n    account_name: acct\n    account_key: '{key}'\n    sas_token: sv=2024&sig=abc\n"
    error = config_error(write_config(tmp_path, text))
    assert key not in str(error) and "sig=abc" not in str(error)
    assert "'account_name': 'acct'" in str(error)


def test_redacted_masks_credential_fields_and_url_passwords_and_keeps_the_rest() -> None:
    shown = redacted({
        "url": "postgresql://app:pw@db/app", "password": "hunter2", "api_key": "k", "keys": ["customer_id"],
        "webhook": {"url": "http://h/", "secret": "plain"}, "token": "${env:TOKEN}", "rows": 3,
    })
    assert shown == {
        "url": "postgresql://app:***@db/app", "password": "***", "api_key": "***", "keys": ["customer_id"],
        "webhook": {"url": "http://h/", "secret": "***"}, "token": "***", "rows": 3,
    }
