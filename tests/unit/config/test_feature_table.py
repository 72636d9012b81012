"""Feature table files: what a user writes in features/NAME.yaml, and the errors they get."""

from datetime import timedelta

import pytest

from brickyard.core.feature_table import parse_duration
from brickyard.errors import BrickyardError, ConfigError
from brickyard.workspace import Workspace


def write(ws: Workspace, name: str, text: str) -> None:
    folder = ws.root / "features"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.yaml").write_text(text)


def test_a_feature_table_file_is_read_with_its_defaults(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    write(ws, "customer_rfm", "keys: customer_id\nevent_time: purchased_at\nttl: 30d\nsource: {table: silver.rfm}\n")
    spec = ws.feature_table("features.customer_rfm")
    assert spec.name == "customer_rfm"
    assert spec.table == "features.customer_rfm"
    assert spec.keys == ("customer_id",)
    assert spec.ttl == timedelta(days=30)
    assert spec.created_time is None
    assert ws.feature_table_names() == ["customer_rfm"]


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("keys: [id]\nevent_time: at\nttl: 30 days\nsource: {table: silver.x}\n", "ttl", "duration"),
        ("keys: [id]\nevent_time: at\nsource: {table: silver.x, sql: q.sql}\n", "source", "exactly one"),
        ("keys: []\nevent_time: at\nsource: {table: silver.x}\n", "keys", "at least 1"),
        ("keys: [id]\nevent_time: at\nsource: {table: silver.x}\nttl_days: 3\n", "ttl_days", "unknown key"),
    ],
)
def test_a_wrong_feature_table_file_names_the_file_line_and_field(tmp_path, text, field, words):
    ws = Workspace.init(tmp_path / "ws")
    write(ws, "rfm", text)
    with pytest.raises(ConfigError) as caught:
        ws.feature_table("rfm")
    assert caught.value.field == field
    assert words in str(caught.value)
    assert "rfm.yaml" in str(caught.value)


def test_an_unknown_feature_table_suggests_the_close_name(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    write(ws, "customer_rfm", "keys: [id]\nevent_time: at\nsource: {table: silver.x}\n")
    with pytest.raises(BrickyardError, match="no feature table 'customer_rmf'") as caught:
        ws.feature_table("customer_rmf")
    assert "customer_rfm" in str(caught.value.hint)


@pytest.mark.parametrize(("value", "seconds"), [("30d", 2592000), ("12h", 43200), ("90m", 5400), (45, 45), ("2w", 1209600)])
def test_durations(value, seconds):
    assert parse_duration(value).total_seconds() == seconds


@pytest.mark.parametrize("value", ["0d", "-1d", "soon", True, "3 fortnights"])
def test_bad_durations_are_refused(value):
    with pytest.raises(ValueError):
        parse_duration(value)
