"""API tokens: hashed at rest, revocable, ordered roles, and the `brickyard tokens` commands."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from brickyard.cli.app import app
from brickyard.errors import UsageError
from brickyard.runtime.tokens import TOKENS, Role, TokenNotFoundError, TokenStore, hash_token


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(f"sqlite:///{tmp_path}/state.db")


def test_token_is_shown_once_and_stored_only_as_its_hash(store: TokenStore, tmp_path: Path) -> None:
    record, token = store.create(Role.RUNNER, name="ci")
    assert re.fullmatch(r"bky_[A-Za-z0-9_-]{32}", token)
    assert store.verify(token) == record
    raw = (tmp_path / "state.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("state.db-*"))
    assert token.encode() not in raw and token[4:].encode() not in raw
    with sqlite3.connect(tmp_path / "state.db") as conn:
        (stored,) = conn.execute("SELECT token_hash FROM tokens").fetchone()
    assert stored == hash_token(token) and len(stored) == 64
    assert not hasattr(record, "token")


def test_each_token_is_different_and_unknown_tokens_fail(store: TokenStore) -> None:
    tokens = {store.create("reader")[1] for _ in range(20)}
    assert len(tokens) == 20
    assert store.verify("bky_" + "x" * 32) is None
    assert store.verify("not-a-token") is None
    assert store.verify("") is None
    assert store.verify("bky_" + "y" * 1000) is None


def test_revoked_token_stops_working_and_revoke_is_idempotent(store: TokenStore) -> None:
    record, token = store.create("admin")
    other, other_token = store.create("runner")
    revoked = store.revoke(record.id)
    assert revoked.revoked_at is not None and not revoked.active
    assert store.verify(token) is None
    assert store.verify(other_token) == other
    assert store.revoke(record.id).revoked_at == revoked.revoked_at
    assert [r.id for r in store.list(include_revoked=False)] == [other.id]
    assert {r.id for r in store.list()} == {record.id, other.id}


def test_unknown_id_suggests_close_ids(store: TokenStore) -> None:
    record, _ = store.create("reader")
    with pytest.raises(TokenNotFoundError) as caught:
        store.revoke(record.id[:-1] + ("0" if record.id[-1] != "0" else "1"))
    assert record.id in (caught.value.hint or "")


def test_roles_are_ordered_reader_runner_admin(store: TokenStore) -> None:
    reader, runner, admin = (store.create(role)[0] for role in ("reader", "runner", "admin"))
    assert [reader.allows(r) for r in Role] == [True, False, False]
    assert [runner.allows(r) for r in Role] == [True, True, False]
    assert [admin.allows(r) for r in Role] == [True, True, True]
    with pytest.raises(UsageError, match="unknown role 'runer'.*did you mean runner"):
        Role.parse("runer")


def test_rate_limit_and_name_are_kept(store: TokenStore) -> None:
    record, token = store.create("reader", name="dashboard", rate_limit=25)
    assert store.verify(token).rate_limit == 25.0  # type: ignore[union-attr]
    assert store.get(record.id).name == "dashboard"
    with pytest.raises(UsageError, match="positive"):
        store.create("reader", rate_limit=0)


def test_table_lives_in_the_shared_state_database(store: TokenStore) -> None:
    store.create("reader")
    engine = sa.create_engine(store.url)
    assert "tokens" in sa.inspect(engine).get_table_names()
    assert {c.name for c in TOKENS.columns} >= {"id", "name", "role", "created_at", "revoked_at", "rate_limit"}


def test_cli_create_prints_only_the_token_on_stdout_then_list_and_revoke(workspace) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    root = str(workspace.root)
    created = runner.invoke(app, ["tokens", "create", "--role", "runner", "--name", "ci", "--rate-limit", "5", "-w", root])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert re.fullmatch(r"bky_[A-Za-z0-9_-]{32}", token)
    assert "shown only this once" in created.stderr
    record = TokenStore(workspace.state_url).verify(token)
    assert record is not None and record.role is Role.RUNNER and record.rate_limit == 5

    listed = runner.invoke(app, ["tokens", "list", "-w", root], env={"COLUMNS": "200"})
    assert listed.exit_code == 0
    assert record.id in listed.stdout and "runner" in listed.stdout and "ci" in listed.stdout
    assert token not in listed.stdout and token[4:12] not in listed.stdout

    revoked = runner.invoke(app, ["tokens", "revoke", record.id, "-w", root])
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    assert TokenStore(workspace.state_url).verify(token) is None
    again = runner.invoke(app, ["tokens", "revoke", record.id, "-w", root])
    assert "already revoked" in again.stdout

    bad_role = runner.invoke(app, ["tokens", "create", "--role", "boss", "-w", root])
    assert bad_role.exit_code == 2
