"""No raw PII value reaches a file, a log or the state database: a pipeline whose contracts
mark PII columns runs through the `brickyard` command on raw files holding distinctive
values (some that do not parse, some that break a rule, one that makes the engine's cast
fail, one on a malformed CSV line), then every file of the workspace but the raw inputs is
searched for those values: Parquet decoded cell by cell, Delta logs, SQLite databases
dumped, task logs, and what `run`, `runs`, `run-show` and `logs` print. On both engines."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cli_helpers import brickyard

from brickyard import Workspace

pytestmark = pytest.mark.e2e

KEY = {"TEST_PII_KEY": "pii-test-key"}
# Each raw value appears once in the raw files and must appear nowhere else.
SECRETS = (
    "leak-me-4711@example.com",  # a good row's email: the table holds its token
    "leak-two-4712@example.com",
    "not-a-date-4713",  # a pii date that does not parse
    "ssn-bad-4715",  # a pii integer that does not parse
    "-4242424",  # a pii integer that breaks a range rule
    "-31415.5",  # a pii integer that is not an integer
    "code-4740",  # a pii value a contract's SQL rule casts: the engine's cast fails
    "leak-late-4730@example.com",  # on a malformed CSV line far past the reader's sample
    "too-many-4731",
    "leak-direct-4750@example.com",  # cast by a sql task's own query
    "leak-bad-line-4760@example.com",  # on a malformed line of a raw file a sql task reads
)
PEOPLE = (
    "id,email,birth,ssn\n"
    "1,leak-me-4711@example.com,1990-01-02,123456\n"
    "2,leak-two-4712@example.com,not-a-date-4713,123456\n"
    "3,a@example.com,1991-02-03,ssn-bad-4715\n"
    "4,a@example.com,1992-03-04,-4242424\n"
    "5,a@example.com,1992-03-04,-31415.5\n"
)
PEOPLE_CONTRACT = """\
pii_key: ${env:TEST_PII_KEY}
columns:
  - {name: id, type: bigint}
  - {name: email, pii: true}
  - {name: birth, type: date, pii: true}
  - {name: ssn, type: bigint, pii: true}
expectations:
  - {range: {column: ssn, min: 0}, action: drop}
"""
CODES_CONTRACT = """\
pii_key: ${env:TEST_PII_KEY}
columns:
  - {name: id, type: bigint}
  - {name: code, pii: true}
expectations:
  - {sql: "CAST(code AS INTEGER) > 0", name: code_positive, action: drop}
"""
EMAIL_CONTRACT = """\
pii_key: ${env:TEST_PII_KEY}
columns:
  - {name: id, type: bigint}
  - {name: email, pii: true}
"""
PIPELINE = """\
tasks:
  - {name: people, kind: ingest, source: raw/people/*.csv, target: bronze.people, contract: contracts/people.yaml}
  - {name: codes, kind: ingest, source: raw/codes/*.csv, target: bronze.codes, contract: contracts/codes.yaml}
  - {name: big, kind: ingest, source: raw/big/*.csv, target: bronze.big, contract: contracts/email.yaml}
  - name: direct
    kind: sql
    query: "SELECT id, CAST(email AS INTEGER) AS n FROM 'raw/direct/a.csv'"
    target: silver.direct
    contract: contracts/email.yaml
  - name: malformed
    kind: sql
    query: "SELECT id FROM read_csv('raw/malformed/a.csv', header=true, delim=',')"
    target: silver.malformed
    contract: contracts/email.yaml
"""
SPARK_CONFIG = """
spark:
  master: local[2]
  conf:
    spark.sql.shuffle.partitions: "2"
    spark.default.parallelism: "2"
"""


def make_workspace(root: Path) -> Path:
    assert brickyard("init", str(root)).returncode == 0
    files = {
        "contracts/people.yaml": PEOPLE_CONTRACT,
        "contracts/codes.yaml": CODES_CONTRACT,
        "contracts/email.yaml": EMAIL_CONTRACT,
        "pipelines/pii.yaml": PIPELINE,
        "lake/raw/people/a.csv": PEOPLE,
        "lake/raw/codes/a.csv": "id,code\n1,12\n2,code-4740\n",
        "lake/raw/big/a.csv": "id,email\n"
        + "".join(f"{i},x{i}@example.com\n" for i in range(30000))
        + "9999,leak-late-4730@example.com,too-many-4731\n",
        "lake/raw/direct/a.csv": "id,email\n1,leak-direct-4750@example.com\n",
        "lake/raw/malformed/a.csv": "id,email\n"
        + "".join(f"{i},x{i}@example.com\n" for i in range(30000))
        + "9999,leak-bad-line-4760@example.com,extra\n",
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def readable(path: Path) -> str:
    """A file's content as text to search: Parquet decoded cell by cell, a SQLite database
    dumped as SQL, anything else decoded as UTF-8 (undecodable bytes replaced)."""
    data = path.read_bytes()
    if data.startswith(b"PAR1"):
        return repr(pq.read_table(path).to_pylist())
    if data.startswith(b"SQLite format 3"):
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return "\n".join(connection.iterdump())
        finally:
            connection.close()
    return data.decode("utf-8", errors="replace")


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def run_and_search(ws: Path, *engine: str) -> str:
    """Run the pipeline and the commands that show it; assert nothing printed or stored
    holds a raw value; return what `run-show` printed."""
    ran = brickyard("run", "pii", *engine, cwd=ws, env=KEY)
    assert ran.returncode == 1, ran.stderr  # people succeeds; the others fail
    run_id = ran.stdout.split()[1]
    printed = [ran.stdout, ran.stderr]
    for args in (("runs",), ("run-show", run_id), ("logs", run_id)):
        shown = brickyard(*args, cwd=ws)
        assert shown.returncode == 0, shown.stderr
        printed += [shown.stdout, shown.stderr]
    assert leaks("\n".join(printed)) == []

    raw = ws / "lake" / "raw"
    searched = [p for p in ws.rglob("*") if p.is_file() and raw not in p.parents]
    assert any(p.suffix == ".parquet" for p in searched)
    assert any(p.name == "state.db" for p in searched)
    assert any(p.suffix == ".log" for p in searched)
    found = {str(p.relative_to(ws)): leaks(readable(p)) for p in searched}
    assert {p: s for p, s in found.items() if s} == {}
    return brickyard("run-show", run_id, cwd=ws).stdout


def check_what_the_user_still_learns(ws: Path, shown: str) -> None:
    """Reasons and errors still name the column and the problem."""
    quarantine = Workspace.open(ws).lake.read("bronze.people__quarantine")
    bad = {r["id"]: r["_reason"] for r in quarantine.to_pylist()}
    assert bad == {
        "2": "birth: cannot parse <pii value withheld> as DATE",
        "3": "ssn: cannot parse <pii value withheld> as BIGINT",
        "4": "range(ssn): <pii value withheld>",
        "5": "ssn: <pii value withheld> is not an integer (BIGINT)",
    }
    text = " ".join(shown.split())
    assert "<message withheld: it may quote pii values>" in text
    assert "task codes: raw/codes/a.csv" in text or "task codes: reading raw/codes/a.csv" in text
    assert "raw/big/a.csv:30002: 3 fields where 2 were expected; nothing was loaded" in text


def test_no_raw_pii_value_reaches_a_file_a_log_or_the_state_database(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    shown = run_and_search(ws)
    check_what_the_user_still_learns(ws, shown)
    text = " ".join(shown.split())
    assert "(column code, to INT32)" in text
    assert "3 fields where 2 were expected: <message withheld" in text


@pytest.mark.spark
@pytest.mark.slow
def test_no_raw_pii_value_reaches_a_file_a_log_or_the_state_database_on_spark(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    with (ws / "brickyard.yaml").open("a", encoding="utf-8") as config:
        config.write(SPARK_CONFIG)
    shown = run_and_search(ws, "--engine", "spark")
    check_what_the_user_still_learns(ws, shown)
    assert "[CAST_INVALID_INPUT] <message withheld" in " ".join(shown.split())
