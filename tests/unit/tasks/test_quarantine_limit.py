"""Quarantine is never silent: every kind that quarantines (ingest, sql, expect) records,
per attempt, how many rows it moved to which quarantine table, at which version, and the
top reasons among THOSE rows; `max_quarantined` (a share below 1, or a count) fails the
task past it with nothing committed. Real DuckDB and Delta tables."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest
from pydantic import ValidationError

from brickyard import Workspace
from brickyard.core.pipeline import PipelineSpec
from brickyard.core.quality import QuarantineLimitError
from brickyard.errors import ConfigError
from brickyard.runtime.plan import make_plan
from brickyard.tasks import get_kind
from brickyard.tasks.base import TaskContext
from brickyard.tasks.expect import ExpectOptions
from brickyard.tasks.ingest import IngestOptions
from brickyard.tasks.sql_task import SqlOptions

if TYPE_CHECKING:
    from conftest import Lakehouse

TRIPS = pa.table(
    {
        "trip_id": list(range(1, 11)),
        "fare": [10.0, -2.0, 7.5, None, 3.0, -1.0, 4.0, 5.0, 6.0, None],
    }
)
RULES = [
    {"sql": "fare IS NULL OR fare >= 0", "name": "fare_not_negative", "action": "drop"},
    {"sql": "fare IS NOT NULL", "name": "fare_present", "action": "drop"},
]
CSV = "trip_id,fare\n1,10\n2,-2\n3,7.5\n4,\n5,3\n6,-1\n7,4\n8,5\n9,6\n10,\n"
CONTRACT = """\
table: bronze.trips
columns:
  - {name: trip_id, type: bigint}
  - {name: fare, type: double}
expectations:
  - {sql: "fare IS NULL OR fare >= 0", name: fare_not_negative, action: drop}
  - {sql: "fare IS NOT NULL", name: fare_present, action: drop}
"""


def sql_task(**fields: Any) -> dict[str, Any]:
    return {"name": "clean", "kind": "sql", "target": "silver.trips",
            "query": "SELECT * FROM bronze.trips", "expectations": RULES, **fields}


# -- the option ----------------------------------------------------------------------------


@pytest.mark.parametrize("model", [SqlOptions, IngestOptions, ExpectOptions])
def test_max_quarantined_is_a_share_below_one_or_a_whole_count(model: type[Any]) -> None:
    base = {
        SqlOptions: {"target": "silver.t", "query": "SELECT 1"},
        IngestOptions: {"target": "bronze.t", "source": "raw/a.csv"},
        ExpectOptions: {"table": "silver.t"},
    }[model]
    assert model.model_validate(base).max_quarantined is None
    share = model.model_validate({**base, "max_quarantined": 0.01}).max_quarantined
    count = model.model_validate({**base, "max_quarantined": 5}).max_quarantined
    assert (share, type(share)) == (0.01, float) and (count, type(count)) == (5, int)
    assert model.model_validate({**base, "max_quarantined": 0}).max_quarantined == 0
    for wrong in (1.0, 1.5, -0.1, -3, True, "1%", "5", [1]):
        with pytest.raises(ValidationError, match="max_quarantined"):
            model.model_validate({**base, "max_quarantined": wrong})


def test_a_bad_max_quarantined_is_a_config_error_naming_file_line_and_field(workspace: Workspace) -> None:
    (workspace.root / "pipelines" / "p.yaml").write_text(
        "tasks:\n"
        "  - name: clean\n"
        "    kind: sql\n"
        "    query: SELECT 1 AS x\n"
        "    target: silver.x\n"
        "    max_quarantined: 2.5\n"
    )
    with pytest.raises(ConfigError) as caught:
        make_plan(workspace, "p")
    text = str(caught.value)
    assert "p.yaml:6" in text and "tasks[0] (clean).max_quarantined" in text
    assert "a share below 1 (0.01 = 1%) or a whole number of rows" in text
    (workspace.root / "pipelines" / "q.yaml").write_text(
        "tasks:\n  - {name: py, kind: python, function: 'x:y', max_quarantined: 0.1}\n"
    )
    with pytest.raises(ConfigError, match=r"max_quarantined: unknown key"):
        make_plan(workspace, "q")


# -- sql -----------------------------------------------------------------------------------


def test_sql_records_the_rows_table_version_and_top_reasons_of_this_run_only(house: Lakehouse) -> None:
    house.lake.write("bronze.trips", TRIPS)
    first = house.run(sql_task(), run_id="r1")
    assert first.metrics.quarantined_rows == 4
    [note] = first.metrics.quarantine.values()
    assert note.table == "silver.trips__quarantine" and note.rows == 4 and note.versions == [0]
    assert note.reasons == [("fare_not_negative", 2), ("fare_present", 2)]

    # A second run quarantines one other row: its summary counts that row, not the table's.
    house.lake.write("bronze.trips", pa.table({"trip_id": [11, 12], "fare": [None, 1.0]}), mode="overwrite")
    second = house.run(sql_task(), run_id="r2")
    assert house.count("silver.trips__quarantine") == 1  # an overwrite rebuilds its quarantine
    assert second.metrics.quarantine["silver.trips__quarantine"].reasons == [("fare_present", 1)]
    appended = house.run(sql_task(mode="append"), run_id="r3")
    assert house.count("silver.trips__quarantine") == 2
    note = appended.metrics.quarantine["silver.trips__quarantine"]
    assert (note.rows, note.versions, note.reasons) == (1, [2], [("fare_present", 1)])


def test_sql_without_bad_rows_records_zero_and_without_rules_records_nothing(house: Lakehouse) -> None:
    house.lake.write("bronze.trips", TRIPS)
    clean = house.run(sql_task(query="SELECT * FROM bronze.trips WHERE fare > 0"))
    assert clean.metrics.quarantined_rows == 0 and clean.metrics.quarantine == {}
    plain = house.run({"name": "copy", "kind": "sql", "target": "silver.copy", "query": "SELECT * FROM bronze.trips"})
    assert plain.metrics.quarantined_rows is None


@pytest.mark.parametrize("mode", ["overwrite", "append", "merge"])
def test_sql_past_a_share_fails_before_committing_anything(house: Lakehouse, mode: str) -> None:
    house.lake.write("bronze.trips", TRIPS)
    keys = {"keys": ["trip_id"]} if mode == "merge" else {}
    house.run(sql_task(query="SELECT * FROM bronze.trips WHERE trip_id <= 3", mode=mode, **keys))
    before = (house.lake.version("silver.trips"), house.lake.version("silver.trips__quarantine"))

    with pytest.raises(QuarantineLimitError) as caught:
        house.run(sql_task(mode=mode, max_quarantined=0.3, **keys))
    message = str(caught.value)
    assert "4 of 10 rows (40%) of silver.trips would be quarantined" in message
    assert "past max_quarantined 0.3 (30%)" in message
    assert "nothing was written to silver.trips or silver.trips__quarantine" in message
    assert "(top reasons: fare_not_negative (2), fare_present (2))" in message
    assert "raise max_quarantined" in message
    after = (house.lake.version("silver.trips"), house.lake.version("silver.trips__quarantine"))
    assert after == before
    assert sorted(house.table("silver.trips").column("trip_id").to_pylist()) == [1, 3]

    passed = house.run(sql_task(mode=mode, max_quarantined=0.4, **keys))  # at the limit: fine
    assert passed.metrics.quarantined_rows == 4


def test_sql_past_a_count_fails_and_a_count_of_zero_allows_none(house: Lakehouse) -> None:
    house.lake.write("bronze.trips", TRIPS)
    with pytest.raises(QuarantineLimitError, match=r"4 of 10 rows \(40%\).*past max_quarantined 3 rows"):
        house.run(sql_task(max_quarantined=3))
    assert not house.lake.exists("silver.trips")
    with pytest.raises(QuarantineLimitError, match=r"past max_quarantined 0 rows"):
        house.run(sql_task(query="SELECT * FROM bronze.trips WHERE trip_id = 2", max_quarantined=0))
    assert house.run(sql_task(max_quarantined=4)).metrics.quarantined_rows == 4
    assert house.run(sql_task(query="SELECT * FROM bronze.trips WHERE trip_id = 1", max_quarantined=0)).metrics.quarantined_rows == 0


# -- ingest --------------------------------------------------------------------------------


def test_ingest_past_the_limit_loads_nothing_and_the_files_wait_for_the_next_run(house: Lakehouse) -> None:
    house.raw("raw/trips/a.csv", CSV)
    house.file("contracts/bronze.trips.yaml", CONTRACT)
    task = {"name": "load", "kind": "ingest", "source": "raw/trips/*.csv", "target": "bronze.trips",
            "contract": "contracts/bronze.trips.yaml"}

    with pytest.raises(QuarantineLimitError, match=r"4 of 10 rows \(40%\) of bronze.trips would be quarantined, past max_quarantined 0.1 \(10%\)"):
        house.run({**task, "max_quarantined": 0.1})
    assert not house.lake.exists("bronze.trips") and not house.lake.exists("bronze.trips__quarantine")

    loaded = house.run({**task, "max_quarantined": 0.5}, run_id="r2")
    assert house.count("bronze.trips") == 6 and house.count("bronze.trips__quarantine") == 4
    note = loaded.metrics.quarantine["bronze.trips__quarantine"]
    assert (note.rows, note.versions, note.reasons) == (4, [0], [("fare_not_negative", 2), ("fare_present", 2)])
    assert loaded.metrics.quarantined_rows == 4

    nothing_new = house.run({**task, "max_quarantined": 0.5})
    assert nothing_new.metrics.quarantined_rows == 0 and nothing_new.metrics.quarantine == {}


# -- expect --------------------------------------------------------------------------------


def test_expect_past_the_limit_leaves_the_table_and_its_quarantine_as_they_were(house: Lakehouse) -> None:
    house.lake.write("silver.trips", TRIPS)
    task = {"name": "check", "kind": "expect", "table": "silver.trips", "expectations": RULES}
    with pytest.raises(QuarantineLimitError, match=r"4 of 10 rows \(40%\) of silver.trips.*past max_quarantined 2 rows"):
        house.run({**task, "max_quarantined": 2})
    assert house.lake.version("silver.trips") == 0 and not house.lake.exists("silver.trips__quarantine")

    checked = house.run({**task, "max_quarantined": 0.5})
    assert house.count("silver.trips") == 6
    note = checked.metrics.quarantine["silver.trips__quarantine"]
    assert (note.rows, note.versions, note.reasons) == (4, [0], [("fare_not_negative", 2), ("fare_present", 2)])
    again = house.run({**task, "max_quarantined": 0})  # nothing left to drop
    assert again.metrics.quarantined_rows == 0


def test_reasons_are_counted_by_their_text_and_ties_sorted_by_it(house: Lakehouse) -> None:
    rows = pa.table({"trip_id": list(range(8)), "fare": [-1.0, -1.0, -1.0, None, None, -5.0, None, 1.0]})
    house.lake.write("bronze.trips", rows)
    context = house.run(sql_task(expectations=[
        {"sql": "fare IS NULL OR fare >= 0", "name": "negative", "action": "drop"},
        {"sql": "fare IS NULL OR fare > -2", "name": "very_negative", "action": "drop"},
        {"sql": "fare IS NOT NULL", "name": "missing", "action": "drop"},
    ]))
    note = context.metrics.quarantine["silver.trips__quarantine"]
    assert note.rows == 7
    assert note.reasons == [("missing", 3), ("negative", 3), ("negative; very_negative", 1)]


# -- Spark ---------------------------------------------------------------------------------


def run_on_spark(ws: Workspace, task: dict[str, Any], run_id: str) -> TaskContext:
    spec = PipelineSpec.model_validate({"name": "p", "tasks": [task]})
    kind = get_kind(spec.tasks[0].kind)
    context = TaskContext(ws, spec, spec.tasks[0], run_id, 1, False, logging.getLogger("test.spark"),
                          engine="spark")
    kind.run(kind.Options.model_validate(spec.tasks[0].options), context)
    return context


def test_on_spark_each_kind_stops_past_the_limit_and_reports_as_on_duckdb(spark_workspace: Workspace) -> None:
    """The same messages and notes as the DuckDB tests above assert, for each kind."""
    ws = spark_workspace
    ws.lake.write("bronze.trips", TRIPS)
    ws.lake.write("silver.checked", TRIPS)
    raw = Path(ws.lake.location.uri("raw/trips"))
    raw.mkdir(parents=True)
    (raw / "a.csv").write_text(CSV)
    (ws.root / "contracts" / "bronze.loaded.yaml").write_text(CONTRACT.replace("bronze.trips", "bronze.loaded"))
    tasks = {
        "silver.trips": sql_task(),
        "silver.checked": {"name": "check", "kind": "expect", "table": "silver.checked", "expectations": RULES},
        "bronze.loaded": {"name": "load", "kind": "ingest", "source": "raw/trips/*.csv", "target": "bronze.loaded",
                          "contract": "contracts/bronze.loaded.yaml"},
    }
    for target, task in tasks.items():
        versions = {t: ws.lake.version(t) if ws.lake.exists(t) else None for t in (target, target + "__quarantine")}
        with pytest.raises(QuarantineLimitError) as caught:
            run_on_spark(ws, {**task, "max_quarantined": 0.25}, "r1")
        assert str(caught.value).startswith(
            f"4 of 10 rows (40%) of {target} would be quarantined, past max_quarantined 0.25 (25%); "
            f"nothing was written to {target} or {target}__quarantine "
            "(top reasons: fare_not_negative (2), fare_present (2))"
        ), target
        assert {t: ws.lake.version(t) if ws.lake.exists(t) else None for t in versions} == versions, target

        landed = run_on_spark(ws, {**task, "max_quarantined": 4}, "r2")
        note = landed.metrics.quarantine[target + "__quarantine"]
        assert (landed.metrics.quarantined_rows, note.rows, note.reasons) == (
            4, 4, [("fare_not_negative", 2), ("fare_present", 2)]
        ), target
        assert note.versions == [ws.lake.version(target + "__quarantine")]
