"""`validate_workspace`: every problem of every pipeline and contract, located."""

from __future__ import annotations

from pathlib import Path

import pytest
from kinds_for_tests import register_probe, write_pipeline

from brickyard import Workspace
from brickyard.runtime.validate import Problem, validate_workspace


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    register_probe(monkeypatch)
    return Workspace.init(tmp_path / "ws")


def test_a_valid_workspace_has_no_problems_and_upstream_tables_count_as_existing(ws: Workspace) -> None:
    write_pipeline(ws, "bronze", "tasks:\n  - {name: land, kind: probe, writes: {bronze.trips: 0}}\n")
    write_pipeline(ws, "silver", "tasks:\n  - {name: clean, kind: probe, needs_table: bronze.trips}\n")
    (ws.root / "contracts" / "bronze.trips.yaml").write_text(
        "table: bronze.trips\ncolumns:\n  - {name: id, type: bigint}\n  - {name: fare, type: 'decimal(10,2)'}\n"
        "keys: [id]\nexpectations:\n  - {not_null: fare, action: drop}\n"
    )
    assert validate_workspace(ws) == []


def test_every_problem_is_listed_with_its_file_and_line(ws: Workspace) -> None:
    write_pipeline(ws, "alpha", """\
description: several problems at once
tasks:
  - name: extract
    kind: probe
  - name: extract
    kind: probe
  - name: load
    kind: prob
  - name: report
    kind: probe
    depends_on: [extrct]
  - name: shape
    kind: probe
    colour: blue
  - name: check
    kind: probe
    problems: ["sql/report.sql does not exist"]
    needs_table: silver.nothing
""")
    write_pipeline(ws, "beta", """\
tasks:
  - {name: a, kind: probe, depends_on: [b]}
  - {name: b, kind: probe, depends_on: [a]}
""")
    write_pipeline(ws, "gamma", "tasks:\n  - {name: A, kind: probe}\nschedul: daily\n")
    write_pipeline(ws, "delta", "tasks: [\n")
    (ws.root / "contracts" / "silver.trips.yaml").write_text("""\
table: silver.trips
columns:
  - {name: id, type: bigint}
  - {name: fare, type: moneyy}
keys: [idd]
expectations:
  - {not_null: fair}
  - {range: {column: fare, min: 0}, action: explode}
""")
    problems = [str(problem) for problem in validate_workspace(ws)]
    assert problems == [
        "contracts/silver.trips.yaml:8: expectations.1.action: Input should be 'warn', 'drop' or 'fail' (got 'explode')",
        "pipelines/alpha.yaml:5: task name 'extract' is used more than once",
        problems[2],
        "pipelines/alpha.yaml:11: task 'report' depends on unknown task 'extrct' (hint: did you mean extract?)",
        "pipelines/alpha.yaml:14: tasks[4] (shape).colour: unknown key (hint: known keys here: burn_cpu, connection_reset, "
        "depends_on, engine, fail, fail_attempts, kind, name, needs_table, problems, reads, retries, rows_in, "
        "rows_out, sleep, timeout_seconds, transient, writes)",
        "pipelines/alpha.yaml:15: task 'check': sql/report.sql does not exist",
        "pipelines/alpha.yaml:15: task 'check': table 'silver.nothing' does not exist and no task writes it",
        "pipelines/beta.yaml:2: tasks depend on each other in a cycle: a -> b -> a",
        "pipelines/delta.yaml:2: not valid YAML: expected the node content, but found '<stream end>'",
        "pipelines/gamma.yaml:2: tasks.0.name: String should match pattern '^[a-z_][a-z0-9_]*$' (got 'A')",
        "pipelines/gamma.yaml:3: schedul: unknown key (hint: did you mean schedule?)",
    ]
    assert problems[2].startswith("pipelines/alpha.yaml:8: unknown task kind 'prob' (hint: did you mean probe")


def test_contract_semantics_are_checked_once_the_schema_holds(ws: Workspace) -> None:
    (ws.root / "contracts" / "silver.trips.yaml").write_text("""\
table: raw.trips
columns:
  - {name: id, type: bigint}
  - {name: fare, type: moneyy}
keys: [idd]
expectations:
  - {not_null: fair}
""")
    problems = [str(problem) for problem in validate_workspace(ws)]
    assert problems[0].startswith("contracts/silver.trips.yaml:1: 'raw.trips': the raw zone holds files")
    assert problems[1].startswith("contracts/silver.trips.yaml:4: column 'fare': unknown type 'moneyy'")
    assert problems[2] == (
        "contracts/silver.trips.yaml:5: key names column 'idd', which the contract does not declare"
        " (hint: did you mean id?)"
    )
    assert problems[3].startswith("contracts/silver.trips.yaml:7: expectation not_null(fair) names column 'fair'")
    assert len(problems) == 4


def test_problems_print_as_file_line_message() -> None:
    assert str(Problem("pipelines/a.yaml", 3, "boom")) == "pipelines/a.yaml:3: boom"
    assert str(Problem("pipelines/a.yaml", None, "boom")) == "pipelines/a.yaml: boom"


def test_a_kind_on_an_engine_without_the_capabilities_it_needs_is_a_problem_at_its_task(ws: Workspace) -> None:
    write_pipeline(ws, "local", "engine: spark\ntasks:\n  - {name: only_here, kind: probe}\n")
    problems = validate_workspace(ws)
    assert [(p.file, p.line) for p in problems] == [("pipelines/local.yaml", 3)]
    assert "task 'only_here': kind probe cannot run on engine 'spark': it needs streams_locally" in problems[0].message
    assert "(it runs on: duckdb)" in problems[0].message


def test_feature_table_files_are_checked(ws: Workspace) -> None:
    write_pipeline(ws, "bronze", "tasks:\n  - {name: land, kind: probe, writes: {bronze.orders: 0}}\n")
    features = ws.root / "features"
    (features / "good.yaml").write_text("keys: [id]\nevent_time: at\nsource: {table: bronze.orders}\n", encoding="utf-8")
    (features / "typo.yaml").write_text("keys: [id]\nevent_tme: at\nttl: soon\nsource: {sql: sql/missing.sql}\n", encoding="utf-8")
    (features / "roles.yaml").write_text("keys: [id]\nevent_time: id\nsource:\n  table: silver.nowhere\n", encoding="utf-8")
    found = [str(p) for p in validate_workspace(ws) if p.file.startswith("features")]
    assert not any(p.startswith("features/good.yaml") for p in found)
    assert any(p.startswith("features/typo.yaml:2:") and "event_tme" in p for p in found)
    assert any(p.startswith("features/typo.yaml:3:") and "duration" in p for p in found)
    assert "features/roles.yaml:1: column 'id' has two roles (keys, event_time, created_time must differ)" in found
    assert "features/roles.yaml:4: source table silver.nowhere does not exist and no pipeline task writes it" in found
